import { describe, expect, it } from "vitest";
import { createDispatchPolicy } from "../../src/core/dispatch/policy.js";
import { ConflictError, InvalidInputError, SpecInvalidError } from "../../src/core/errors.js";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import { REDACT_ALL } from "../../src/core/run/evidence.js";
import type { ReceiptIssuer } from "../../src/core/run/receipts.js";
import { TriggerEvent } from "../../src/core/run/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { parseJson } from "../../src/json/parse.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { harness, logical, nextRequest, RELEASE_GATE, runConfig, specFrom, tick } from "../support/scenarios.js";
import { jsonResult, TimeEvidence } from "../support/time-evidence.js";

const sha = (value: string) => ({ algorithm: "sha256" as const, value });

describe("the reference's worked example (engine §A)", () => {
  it("starts, holds, replays, advances, completes and reports status with the reference's hashes", async () => {
    const { plane, store } = harness();
    expect(plane.specHash).toEqual(sha("17d00618805e73a7d76690d4ad317bf74d6035ed61faf3fdadc4f6eda65bbce7"));

    const { state: started } = await plane.start(runConfig(), logical(1), true);
    expect(started.current_stage_id).toBe("review");
    expect(started.triggers).toEqual([
      {
        seq: 1n,
        event: {
          trigger_id: "init",
          tenant_id: 1n,
          namespace_id: 2n,
          run_id: "run-1",
          kind: "external_event",
          time: logical(1),
          source_id: "system",
          payload: null,
          correlation_id: null,
        },
      },
    ]);
    expect(started.decisions[0]?.outcome).toEqual({ kind: "start", stage_id: "review" });
    expect(started.packets[0]?.envelope.content_hash).toEqual(
      sha("faf0237414bb4de6d09919f02006843e237179c7a3a866d6cc77e967688d6e02"),
    );
    expect(started.packets[0]?.receipts).toEqual([
      {
        dispatch_id: "mcp-brief",
        target: { kind: "agent", agent_id: "agent-1" },
        receipt_hash: sha("5b907b2d4215fc7d96751cb32b6b23007a985675d42a25ec92119b96b8d9468e"),
        dispatched_at: logical(1),
        dispatcher: "mcp",
      },
    ]);
    expect(started.tool_calls).toEqual([]);

    const { result: held } = await plane.next(nextRequest("t-1", 3));
    expect(held).toEqual({
      decision: {
        decision_id: "decision-2",
        seq: 2n,
        trigger_id: "t-1",
        stage_id: "review",
        decided_at: logical(3),
        outcome: {
          kind: "hold",
          summary: { status: "hold", unmet_gates: ["window_gate"], retry_hint: "await_evidence", policy_tags: [] },
        },
        correlation_id: null,
      },
      packets: [],
      status: "active",
    });
    let state = await store.load(runConfig());
    expect(state?.gate_evals).toEqual([
      {
        trigger_id: "t-1",
        stage_id: "review",
        evaluation: {
          gate_id: "window_gate",
          status: "False",
          trace: [{ condition_id: "after_window", status: "False" }],
        },
        evidence: [
          {
            condition_id: "after_window",
            status: "False",
            result: {
              ...jsonResult(false, { anchor_type: "trigger_time_logical", anchor_value: "3" }),
              evidence_hash: sha("fcbcf165908dd18a9e49f7ff27810176db8e9f63b4352213741664245224f8aa"),
            },
          },
        ],
      },
    ]);
    expect(state?.tool_calls[0]).toMatchObject({
      call_id: "call-1",
      method: "scenario.next",
      request_hash: sha("6b263e2dc2cd0b2160aae2d390a8758208eaebcf4a1e31cbfba67eb849de3f29"),
      response_hash: sha("b6453772b228f40a77b3ff5a0654baf7152d638f2023407f1361a0f5e6d64d9f"),
      called_at: logical(3),
      error: null,
    });

    expect((await plane.next(nextRequest("t-1", 3))).result).toEqual(held);
    state = await store.load(runConfig());
    expect(state?.triggers).toHaveLength(2);
    expect(state?.gate_evals).toHaveLength(1);
    expect(state?.tool_calls.map((call) => call.call_id)).toEqual(["call-1", "call-2"]);

    const { result: advanced } = await plane.next(nextRequest("t-2", 10));
    expect(advanced.decision.outcome).toEqual({
      kind: "advance",
      from_stage: "review",
      to_stage: "ship",
      timeout: false,
    });
    expect(advanced.packets).toHaveLength(1);
    expect(advanced.packets[0]?.envelope).toMatchObject({
      stage_id: "ship",
      issued_at: logical(10),
      content_hash: sha("d4a2e45e2540b68a1f488d5a22e506ff63cc0c315c66445e92ddabbc17be4d21"),
    });
    expect(advanced.packets[0]?.receipts[0]?.receipt_hash).toEqual(
      sha("071800511e2a585c0cdbd93ce5497b51e082df9bca8d55b869935ea073839771"),
    );
    expect(advanced.packets[0]?.decision_id).toBe("decision-3");

    const { result: completed } = await plane.next(nextRequest("t-3", 11));
    expect(completed.decision).toMatchObject({ decision_id: "decision-4", seq: 4n, stage_id: "ship" });
    expect(completed.decision.outcome).toEqual({ kind: "complete", stage_id: "ship" });
    expect(completed.status).toBe("completed");

    const { result: afterEnd } = await plane.next(nextRequest("t-4", 12));
    expect(afterEnd).toEqual({ decision: completed.decision, packets: [], status: "completed" });

    const status = await plane.status({
      run_id: "run-1",
      tenant_id: 1n,
      namespace_id: 2n,
      requested_at: logical(20),
      correlation_id: null,
    });
    expect(status).toEqual({
      run_id: "run-1",
      scenario_id: "release-gate",
      current_stage_id: "ship",
      status: "completed",
      last_decision: completed.decision,
      issued_packet_ids: ["brief", "ship_notice"],
      safe_summary: null,
    });
    state = await store.load(runConfig());
    expect(state?.triggers.map((trigger) => trigger.seq)).toEqual([1n, 2n, 3n, 4n]);
    expect(state?.tool_calls.map((call) => call.method)).toEqual([
      "scenario.next",
      "scenario.next",
      "scenario.next",
      "scenario.next",
      "scenario.next",
      "scenario.status",
    ]);
  });

  it("reports a hold's summary through status", async () => {
    const { plane } = harness();
    await plane.start(runConfig(), logical(1), true);
    await plane.next(nextRequest("t-1", 3));
    const status = await plane.status({
      run_id: "run-1",
      tenant_id: 1n,
      namespace_id: 2n,
      requested_at: logical(4),
      correlation_id: null,
    });
    expect(status.safe_summary).toEqual({
      status: "hold",
      unmet_gates: ["window_gate"],
      retry_hint: "await_evidence",
      policy_tags: [],
    });
  });
});

describe("start", () => {
  it("without entry packets records nothing but the head", async () => {
    const { plane } = harness();
    const { state } = await plane.start(runConfig(), logical(1), false);
    expect([state.triggers, state.decisions, state.packets]).toEqual([[], [], []]);
  });

  it("refuses a second run under the same key, a wrong scenario and a wrong namespace", async () => {
    const { plane } = harness();
    await plane.start(runConfig(), logical(1), false);
    await expect(plane.start(runConfig(), logical(1), false)).rejects.toMatchObject({
      code: "run_exists",
      message: "run already exists: run-1",
    });
    await expect(plane.start(runConfig({ scenario_id: "other" }), logical(1), false)).rejects.toMatchObject({
      message: "scenario mismatch for run: other",
    });
    await expect(plane.start(runConfig({ namespace_id: 3n }), logical(1), false)).rejects.toMatchObject({
      message: "namespace mismatch for run: 3",
    });
  });

  it("fails and stores nothing when the dispatch policy denies an entry packet", async () => {
    const { plane, store } = harness(RELEASE_GATE, { dispatchPolicy: createDispatchPolicy({ engine: "deny_all" }) });
    await expect(plane.start(runConfig(), logical(1), true)).rejects.toMatchObject({
      kind: "control_plane",
      message: "policy denied disclosure",
    });
    expect(await store.load(runConfig())).toBeUndefined();
  });
});

describe("packet issue failures during an advance", () => {
  it("a denied packet fails the run with the policy's reason", async () => {
    const { plane, store } = harness(RELEASE_GATE, { dispatchPolicy: createDispatchPolicy({ engine: "deny_all" }) });
    await plane.start(runConfig(), logical(1), false);
    const { result } = await plane.next(nextRequest("t-1", 10));
    expect(result.decision.outcome).toEqual({ kind: "fail", reason: "policy denied disclosure" });
    expect(result).toMatchObject({ packets: [], status: "failed" });
    const state = await store.load(runConfig());
    expect(state).toMatchObject({ current_stage_id: "review", status: "failed", packets: [] });
  });

  it("a static rule with the error effect fails the run with its message", async () => {
    const policy = createDispatchPolicy({
      engine: "static",
      static: {
        default: "permit",
        rules: [
          {
            effect: "error",
            error_message: "labels unavailable",
            target_kinds: [],
            targets: [],
            require_labels: [],
            forbid_labels: [],
            require_policy_tags: [],
            forbid_policy_tags: [],
            content_types: [],
            schema_ids: [],
            packet_ids: ["ship_notice"],
            stage_ids: [],
            scenario_ids: [],
          },
        ],
      },
    });
    const { plane } = harness(RELEASE_GATE, { dispatchPolicy: policy });
    await plane.start(runConfig(), logical(1), true);
    const { result } = await plane.next(nextRequest("t-1", 10));
    expect(result.decision.outcome).toEqual({ kind: "fail", reason: "policy decision error: labels unavailable" });
  });
});

describe("idempotency and conflicts", () => {
  it("D4: a re-sent trigger id with different content is a conflict and changes nothing", async () => {
    const { plane, store } = harness();
    await plane.start(runConfig(), logical(1), true);
    await plane.next(nextRequest("t-1", 3));
    const before = await store.load(runConfig());
    const attempt = plane.next(nextRequest("t-1", 4));
    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(plane.next(nextRequest("t-1", 4))).rejects.toMatchObject({
      kind: "conflict",
      code: "trigger_conflict",
      message: "trigger_id conflict: t-1",
    });
    expect(await store.load(runConfig())).toEqual(before);
  });

  it("a retry may carry a new correlation id", async () => {
    const { plane } = harness();
    await plane.start(runConfig(), logical(1), true);
    const { result: first } = await plane.next(nextRequest("t-1", 3, { correlation_id: "a" }));
    expect((await plane.next(nextRequest("t-1", 3, { correlation_id: "b" }))).result).toEqual(first);
  });

  it("the init trigger replays the start decision", async () => {
    const { plane } = harness();
    await plane.start(runConfig(), logical(1), true);
    const { result: replay } = await plane.trigger(
      tick("init", logical(1), { kind: "external_event", source_id: "system" }),
    );
    expect(replay.decision.outcome).toEqual({ kind: "start", stage_id: "review" });
    expect(replay.packets.map((packet) => packet.envelope.packet_id)).toEqual(["brief"]);
  });

  it("submissions are idempotent, and a different payload under the same id is a recorded conflict", async () => {
    const { plane, store } = harness();
    await plane.start(runConfig(), logical(1), false);
    const submit = (payload: string) =>
      plane.submit({
        run_id: "run-1",
        tenant_id: 1n,
        namespace_id: 2n,
        submission_id: "s-1",
        payload: { kind: "json", value: parseJson(payload) },
        content_type: "application/json",
        submitted_at: logical(2),
        correlation_id: null,
      });
    const first = await submit('{"a":1}');
    expect(first.record.content_hash).toEqual(sha("015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"));
    expect(await submit('{"a":1}')).toEqual(first);
    await expect(submit('{"a":1.0}')).rejects.toMatchObject({
      kind: "conflict",
      code: "submission_conflict",
      message: "submission_id conflict: s-1",
    });
    const state = await store.load(runConfig());
    expect(state?.submissions).toHaveLength(1);
    expect(state?.tool_calls.map((call) => call.error?.code ?? null)).toEqual([null, null, "submission_conflict"]);
    expect(state?.tool_calls[2]?.error?.details).toEqual({ kind: "message", info: "submission_id=s-1" });
  });
});

describe("what each call reports beside its result", () => {
  const issuer: ReceiptIssuer = {
    issue: ({ decision }, previous) => ({
      decision_id: decision.decision_id,
      receipt_sha256: `receipt-of-${decision.decision_id}`,
      previous: previous?.receipt_sha256 ?? null,
    }),
  };

  it("the start decision's receipt, then each new decision's gate evaluations and chained receipt", async () => {
    const { plane, store } = harness(RELEASE_GATE, { receipts: issuer });
    const started = await plane.start(runConfig(), logical(1), true);
    expect(started.receipt).toEqual({
      decision_id: "decision-1",
      receipt_sha256: "receipt-of-decision-1",
      previous: null,
    });
    const held = await plane.next(nextRequest("t-1", 3));
    expect(held.replayed).toBe(false);
    expect(held.gateEvals).toEqual((await store.load(runConfig()))?.gate_evals);
    expect(held.gateEvals).toHaveLength(1);
    expect(held.receipt).toEqual({
      decision_id: "decision-2",
      receipt_sha256: "receipt-of-decision-2",
      previous: "receipt-of-decision-1",
    });
  });

  it("a replay reports the earlier decision's receipt and no gate evaluations", async () => {
    const { plane } = harness(RELEASE_GATE, { receipts: issuer });
    await plane.start(runConfig(), logical(1), true);
    const held = await plane.next(nextRequest("t-1", 3));
    const replay = await plane.next(nextRequest("t-1", 3));
    expect(replay).toEqual({ result: held.result, replayed: true, gateEvals: null, receipt: held.receipt });
  });

  it("no receipts without an issuer; a timeout evaluates no gate", async () => {
    const { plane } = harness();
    expect((await plane.start(runConfig(), logical(1), true)).receipt).toBeNull();
    const timedOut = await plane.trigger(tick("tick-1", logical(101)));
    expect(timedOut).toMatchObject({ replayed: false, gateEvals: [], receipt: null });
  });
});

describe("timeouts fire only on ticks", () => {
  const withTimeout = (policy: string, advance = '{"kind":"linear"}', gates = "") =>
    RELEASE_GATE.replace('"on_timeout": "fail"}', `"on_timeout": "${policy}"}`)
      .replace('"advance_to": {"kind": "linear"}', `"advance_to": ${advance}`)
      .replace(
        '"gates": [], "advance_to": {"kind": "terminal"}',
        `"gates": [${gates}], "advance_to": {"kind": "terminal"}`,
      );

  it("fail: the run fails with reason timeout and no gate evaluation", async () => {
    const { plane, store, evidence } = harness();
    await plane.start(runConfig(), logical(1), true);
    const { result } = await plane.trigger(tick("tick-1", logical(101)));
    expect(result.decision.outcome).toEqual({ kind: "fail", reason: "timeout" });
    expect(result.status).toBe("failed");
    expect((await store.load(runConfig()))?.gate_evals).toEqual([]);
    expect(evidence.queries).toEqual([]);
  });

  it("a tick before the deadline and a non-tick after it evaluate gates", async () => {
    const { plane } = harness();
    await plane.start(runConfig(), logical(1), true);
    expect((await plane.trigger(tick("tick-1", logical(100)))).result.decision.outcome.kind).toBe("advance");
    const other = harness();
    await other.plane.start(runConfig(), logical(1), true);
    const { result: late } = await other.plane.next(nextRequest("t-1", 500));
    expect(late.decision.outcome).toEqual({ kind: "advance", from_stage: "review", to_stage: "ship", timeout: false });
  });

  it("advance_with_flag: advances with the timeout flag and issues the next stage's packets", async () => {
    const { plane } = harness(withTimeout("advance_with_flag"));
    await plane.start(runConfig(), logical(1), true);
    const { result } = await plane.trigger(tick("tick-1", logical(101)));
    expect(result.decision.outcome).toEqual({ kind: "advance", from_stage: "review", to_stage: "ship", timeout: true });
    expect(result.packets.map((packet) => packet.envelope.packet_id)).toEqual(["ship_notice"]);
  });

  it("alternate_branch: takes the first branch rule for an unknown gate", async () => {
    const branch = `{"kind":"branch","branches":[
      {"gate_id":"window_gate","outcome":"true","next_stage_id":"review"},
      {"gate_id":"window_gate","outcome":"unknown","next_stage_id":"ship"}],"default":null}`;
    const { plane } = harness(withTimeout("alternate_branch", branch));
    await plane.start(runConfig(), logical(1), true);
    const { result } = await plane.trigger(tick("tick-1", logical(101)));
    expect(result.decision.outcome).toEqual({ kind: "advance", from_stage: "review", to_stage: "ship", timeout: true });
  });

  it("alternate_branch without a matching rule or default is an error that records nothing", async () => {
    const branch = `{"kind":"branch","branches":[{"gate_id":"window_gate","outcome":"true","next_stage_id":"ship"}],"default":null}`;
    const { plane, store } = harness(withTimeout("alternate_branch", branch));
    await plane.start(runConfig(), logical(1), true);
    const before = await store.load(runConfig());
    await expect(plane.trigger(tick("tick-1", logical(101)))).rejects.toMatchObject({
      message: "gate resolution failed: no branch matched",
    });
    expect(await store.load(runConfig())).toEqual(before);
  });

  it("a tick whose time kind differs from the stage entry is an error that records nothing", async () => {
    const { plane, store } = harness();
    await plane.start(runConfig(), logical(1), true);
    const before = await store.load(runConfig());
    await expect(plane.trigger(tick("tick-1", { kind: "unix_millis", value: 1000n }))).rejects.toMatchObject({
      kind: "control_plane",
      code: "time_kind_mismatch",
      message: "trigger time kind mismatch: timeout evaluation requires matching timestamp kinds",
    });
    expect(await store.load(runConfig())).toEqual(before);
  });
});

describe("evidence failures and trust", () => {
  const twoProviders = (trust = "") =>
    RELEASE_GATE.replace(
      '"comparator": "equals", "expected": true, "policy_tags": []}',
      `"comparator": "equals", "expected": true, "policy_tags": []},
       {"condition_id": "ext", "query": {"provider_id": "ext", "check_id": "ok"},
        "comparator": "equals", "expected": true, "policy_tags": []${trust}}`,
    ).replace(
      '{"And": [{"Condition": "after_window"}]}',
      '{"And": [{"Condition": "after_window"}, {"Condition": "ext"}]}',
    );

  it("a missing provider records a failed tool call and raises provider_missing", async () => {
    const { plane, store, evidence } = harness(twoProviders());
    evidence.unregister("ext");
    await plane.start(runConfig(), logical(1), false);
    await expect(plane.next(nextRequest("t-1", 10))).rejects.toMatchObject({
      code: "provider_missing",
      message:
        'provider validation failed: ProviderMissingError { missing_providers: ["ext"], required_capabilities: ["ok"], blocked_by_policy: false }',
    });
    const state = await store.load(runConfig());
    expect(state?.triggers).toEqual([]);
    expect(state?.tool_calls[0]?.error).toEqual({
      code: "provider_missing",
      message: "required evidence providers are missing or blocked",
      details: {
        kind: "provider_missing",
        missing_providers: ["ext"],
        required_capabilities: ["ok"],
        blocked_by_policy: false,
      },
    });
  });

  it("a provider failure becomes provider_error and Unknown, and the gate holds", async () => {
    const { plane, store, evidence } = harness(twoProviders());
    evidence.script("ext", () => {
      throw new Error("connection refused");
    });
    await plane.start(runConfig(), logical(1), false);
    const { result } = await plane.next(nextRequest("t-1", 10));
    expect(result.decision.outcome.kind).toBe("hold");
    const record = (await store.load(runConfig()))?.gate_evals[0]?.evidence.find((e) => e.condition_id === "ext");
    expect(record).toEqual({
      condition_id: "ext",
      status: "Unknown",
      result: {
        value: null,
        lane: "verified",
        error: { code: "provider_error", message: "evidence provider error: connection refused", details: null },
        evidence_hash: null,
        evidence_ref: null,
        evidence_anchor: null,
        signature: null,
        content_type: null,
      },
    });
  });

  it("asserted evidence under the default verified minimum is Unknown with a trust_lane error", async () => {
    const { plane, store, evidence } = harness(twoProviders());
    evidence.script("ext", () => jsonResult(true, null, "asserted"));
    await plane.start(runConfig(), logical(1), false);
    expect((await plane.next(nextRequest("t-1", 10))).result.decision.outcome.kind).toBe("hold");
    const record = (await store.load(runConfig()))?.gate_evals[0]?.evidence.find((e) => e.condition_id === "ext");
    expect(record?.status).toBe("Unknown");
    expect(record?.result.error).toEqual({
      code: "trust_lane",
      message: "evidence lane Asserted does not satisfy Verified",
      details: null,
    });
    expect(record?.result.value).toEqual({ kind: "json", value: true });
  });

  it("an asserted global minimum admits asserted evidence, and a condition's own minimum tightens it", async () => {
    const relaxed = harness(twoProviders(), { trust: { minLane: "asserted" } });
    relaxed.evidence.script("ext", () => jsonResult(true, null, "asserted"));
    await relaxed.plane.start(runConfig(), logical(1), false);
    expect((await relaxed.plane.next(nextRequest("t-1", 10))).result.decision.outcome.kind).toBe("advance");

    const tightened = harness(twoProviders(', "trust": {"min_lane": "verified"}'), { trust: { minLane: "asserted" } });
    tightened.evidence.script("ext", () => jsonResult(true, null, "asserted"));
    await tightened.plane.start(runConfig(), logical(1), false);
    expect((await tightened.plane.next(nextRequest("t-1", 10))).result.decision.outcome.kind).toBe("hold");
  });

  it("by default records the raw value with its hash, anchor and status, as the reference does", async () => {
    const store = new MemoryRunStateStore();
    const plane = new ControlPlane(specFrom(RELEASE_GATE), { store, evidence: new TimeEvidence() });
    await plane.start(runConfig(), logical(1), false);
    await plane.next(nextRequest("t-1", 3));
    expect((await store.load(runConfig()))?.gate_evals[0]?.evidence[0]).toEqual({
      condition_id: "after_window",
      status: "False",
      result: {
        ...jsonResult(false, { anchor_type: "trigger_time_logical", anchor_value: "3" }),
        evidence_hash: sha("fcbcf165908dd18a9e49f7ff27810176db8e9f63b4352213741664245224f8aa"),
      },
    });
  });

  it("with a recording policy that withholds values, records no raw value but keeps the hash, anchor and status", async () => {
    const store = new MemoryRunStateStore();
    const plane = new ControlPlane(specFrom(RELEASE_GATE), {
      store,
      evidence: new TimeEvidence(),
      recordDisclosure: REDACT_ALL,
    });
    await plane.start(runConfig(), logical(1), false);
    await plane.next(nextRequest("t-1", 3));
    expect((await store.load(runConfig()))?.gate_evals[0]?.evidence[0]).toEqual({
      condition_id: "after_window",
      status: "False",
      result: {
        ...jsonResult(false, { anchor_type: "trigger_time_logical", anchor_value: "3" }),
        value: null,
        content_type: null,
        evidence_hash: sha("fcbcf165908dd18a9e49f7ff27810176db8e9f63b4352213741664245224f8aa"),
      },
    });
  });

  it("a gate's own minimum applies to that gate only: one answer is True in one gate and Unknown in another", async () => {
    const twoGates = twoProviders().replace(
      '"gates": [{"gate_id": "window_gate", "requirement": {"And": [{"Condition": "after_window"}, {"Condition": "ext"}]}}]',
      `"gates": [{"gate_id": "open_gate", "requirement": {"Condition": "ext"}},
                 {"gate_id": "strict_gate", "requirement": {"Condition": "ext"}, "trust": {"min_lane": "verified"}}]`,
    );
    const { plane, store, evidence } = harness(twoGates, { trust: { minLane: "asserted" } });
    evidence.script("ext", () => jsonResult(true, null, "asserted"));
    await plane.start(runConfig(), logical(1), false);
    const { result } = await plane.next(nextRequest("t-1", 10));
    expect(result.decision.outcome).toMatchObject({ kind: "hold", summary: { unmet_gates: ["strict_gate"] } });
    const evals = (await store.load(runConfig()))?.gate_evals ?? [];
    expect(evals.map((record) => [record.evaluation.gate_id, record.evaluation.status])).toEqual([
      ["open_gate", "True"],
      ["strict_gate", "Unknown"],
    ]);
    expect(evals[1]?.evidence[0]?.result.error?.code).toBe("trust_lane");
  });

  it("the engine recomputes a provider-supplied evidence hash", async () => {
    const { plane, store, evidence } = harness(twoProviders());
    evidence.script("ext", () => ({ ...jsonResult(true), evidence_hash: sha("00") }));
    await plane.start(runConfig(), logical(1), false);
    await plane.next(nextRequest("t-1", 10));
    const record = (await store.load(runConfig()))?.gate_evals[0]?.evidence.find((e) => e.condition_id === "ext");
    expect(record?.result.evidence_hash).toEqual(
      sha("b5bea41b6c623f7c09f1bf24dcae58ebab3c0cdd90ad966bc43a45b44867e12b"),
    );
  });

  it("evidence over 1 MiB is an error that records nothing", async () => {
    const { plane, store, evidence } = harness(twoProviders());
    evidence.script("ext", () => jsonResult("x".repeat(1_048_576)));
    await plane.start(runConfig(), logical(1), false);
    await expect(plane.next(nextRequest("t-1", 10))).rejects.toMatchObject({
      code: "evidence_too_large",
      message: "evidence payload exceeds size limit (1048578 > 1048576)",
    });
    expect((await store.load(runConfig()))?.tool_calls).toEqual([]);
  });
});

describe("D3: runs are bound to their scenario and spec", () => {
  it("refuses a run started under another scenario, or under another version of the same one", async () => {
    const store = new MemoryRunStateStore();
    const evidence = new TimeEvidence();
    const original = new ControlPlane(specFrom(RELEASE_GATE), { store, evidence });
    await original.start(runConfig(), logical(1), false);

    const other = new ControlPlane(specFrom(RELEASE_GATE.replace('"release-gate"', '"other-gate"')), {
      store,
      evidence,
    });
    await expect(other.next(nextRequest("t-1", 10))).rejects.toMatchObject({
      code: "run_scenario_mismatch",
      message: "run run-1 belongs to scenario release-gate, not other-gate",
    });
    const changed = new ControlPlane(specFrom(RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 50')), {
      store,
      evidence,
    });
    await expect(changed.next(nextRequest("t-1", 10))).rejects.toMatchObject({ code: "run_spec_mismatch" });
    expect((await store.load(runConfig()))?.triggers).toEqual([]);
  });

  it("a missing run is run_not_found", async () => {
    const { plane } = harness();
    await expect(plane.next(nextRequest("t-1", 10, { run_id: "nope" }))).rejects.toMatchObject({
      kind: "control_plane",
      code: "run_not_found",
      message: "run not found: nope",
    });
  });
});

describe("concurrency", () => {
  const neverPasses = RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000');

  it("64 concurrent triggers on one run get 64 distinct seqs and none is lost", async () => {
    const { plane, store } = harness(neverPasses);
    await plane.start(runConfig(), logical(1), true);
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => plane.next(nextRequest(`t-${i}`, 2 + i))));
    const state = await store.load(runConfig());
    expect(new Set(results.map(({ result }) => result.decision.seq)).size).toBe(64);
    expect(state?.triggers.map((trigger) => trigger.seq)).toEqual(Array.from({ length: 65 }, (_, i) => BigInt(i + 1)));
    expect(state?.decisions.map((decision) => decision.decision_id)).toEqual(
      Array.from({ length: 65 }, (_, i) => `decision-${i + 1}`),
    );
    expect(state?.tool_calls).toHaveLength(64);
    expect(new Set(state?.tool_calls.map((call) => call.call_id)).size).toBe(64);
  });

  it("two control planes sharing a store serialize on the run", async () => {
    const store = new MemoryRunStateStore();
    const evidence = new TimeEvidence();
    const a = new ControlPlane(specFrom(neverPasses), { store, evidence });
    const b = new ControlPlane(specFrom(neverPasses), { store, evidence });
    await a.start(runConfig(), logical(1), false);
    await Promise.all(Array.from({ length: 32 }, (_, i) => (i % 2 ? a : b).next(nextRequest(`t-${i}`, 2))));
    expect((await store.load(runConfig()))?.decisions).toHaveLength(32);
  });

  it("a commit that lost a race with another writer is re-run on fresh state", async () => {
    const store = new MemoryRunStateStore();
    const evidence = new TimeEvidence();
    const plane = new ControlPlane(specFrom(neverPasses), { store, evidence });
    await plane.start(runConfig(), logical(1), false);
    // Another process (simulated: a second store handle) commits between our read and our commit.
    const intruder = new ControlPlane(specFrom(neverPasses), { store: new Proxy(store, {}), evidence });
    let raced = false;
    evidence.script("time", async (context) => {
      if (!raced) {
        raced = true;
        await intruder.next(nextRequest("intruder", 2));
      }
      return jsonResult(false, {
        anchor_type: "trigger_time_logical",
        anchor_value: String(context.trigger_time.value),
      });
    });
    const { result } = await plane.next(nextRequest("mine", 3));
    expect(result.decision.seq).toBe(2n);
    const state = await store.load(runConfig());
    expect(state?.decisions.map((decision) => decision.trigger_id)).toEqual(["intruder", "mine"]);
    expect(state?.triggers.map((trigger) => trigger.seq)).toEqual([1n, 2n]);
  });
});

describe("typed rejections", () => {
  it("a malformed trigger names the offending field", () => {
    const attempt = () =>
      decode(
        TriggerEvent,
        parseJson(
          '{"trigger_id":"t","tenant_id":0,"namespace_id":2,"run_id":"r","kind":"poke","time":{"kind":"logical","value":1.5},"source_id":"s"}',
        ),
        "trigger",
      );
    expect(attempt).toThrow(InvalidInputError);
    expect(attempt).toThrow(/trigger\.tenant_id: .*trigger\.kind: .*trigger\.time\.value: expected an integer/);
  });

  it("an invalid spec is refused when the control plane is built", () => {
    const duplicate = RELEASE_GATE.replace('"stage_id": "ship"', '"stage_id": "review"');
    expect(() => harness(duplicate)).toThrow(SpecInvalidError);
    expect(() => harness(duplicate)).toThrow("invalid scenario spec: duplicate stage identifier: review");
  });
});
