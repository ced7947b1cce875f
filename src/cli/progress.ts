import cliProgress from "cli-progress";

/** Shows how far a long runpack command has got. */
export interface Progress {
  /** `done` of `total` steps of `task` are finished; cheap enough to call per step, the bar redraws at most 10 times a second. */
  update(task: string, done: number, total: number): void;
  stop(): void;
}

const SILENT: Progress = { update: () => {}, stop: () => {} };

/**
 * A progress bar on standard error while standard output is a terminal; otherwise nothing at all, so piped and
 * redirected output stays exactly what it was. The bar is cleared when the work is done.
 */
export function terminalProgress(): Progress {
  if (process.stdout.isTTY !== true) return SILENT;
  const bar = new cliProgress.SingleBar(
    { format: "{task} [{bar}] {value}/{total}", stream: process.stderr, clearOnComplete: true, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(task, done, total) {
      if (!started) {
        bar.start(total, done, { task });
        started = true;
        return;
      }
      bar.setTotal(total);
      bar.update(done, { task });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/** Runs `work` with a terminal progress bar, which is removed however the work ends. */
export async function withProgress<T>(work: (progress: Progress) => Promise<T>): Promise<T> {
  const progress = terminalProgress();
  try {
    return await work(progress);
  } finally {
    progress.stop();
  }
}
