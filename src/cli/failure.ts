/** Thrown for failures the CLI reports on one stderr line with exit code 1. */
export class CliFailure extends Error {}
