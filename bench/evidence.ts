import { generateKeyPairSync, sign } from "node:crypto";
import { ControlPlane } from "../src/core/run/control-plane.js";
import type { EvidenceResult } from "../src/core/run/schema.js";
import { ScenarioSpec } from "../src/core/spec/schema.js";
import { decode } from "../src/core/wire/common.js";
import { EvidencePipeline } from "../src/evidence/pipeline.js";
import { jsonEvidence } from "../src/evidence/provider.js";
import { hashCanonical } from "../src/json/hash.js";
import { parseJson } from "../src/json/parse.js";
import type { JsonValue } from "../src/json/value.js";
import { canonicalJson } from "../src/json/write.js";
import { MemoryRunStateStore } from "../src/store/memory/run-state.js";
import { type BenchResult, measure } from "./measure.js";

const CONDITIONS = 10;
const KEY_ID = "bench-signer.pub";

/** A gate of 10 conditions whose provider signs every answer; each trigger verifies 10 signatures. */
export async function benchSignedEvidence(): Promise<BenchResult> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const rawKey = new Uint8Array(Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url"));
  const signedAnswer = (value: JsonValue): EvidenceResult => {
    const digest = hashCanonical(value);
    const message = Buffer.from(canonicalJson(digest as unknown as JsonValue));
    const signature = new Uint8Array(sign(null, message, privateKey));
    return { ...jsonEvidence(value), signature: { scheme: "ed25519", key_id: KEY_ID, signature } };
  };
  const answers = Array.from({ length: CONDITIONS }, (_, i) => signedAnswer(BigInt(i)));
  const pipeline = new EvidencePipeline({
    providers: [{ providerId: "signer", query: async (query) => answers[Number(query.check_id)] as EvidenceResult }],
    defaultSignaturePolicy: { kind: "require_signature", keys: new Map([[KEY_ID, rawKey]]) },
  });
  const conditions = Array.from({ length: CONDITIONS }, (_, i) => ({
    condition_id: `c${i}`,
    query: { provider_id: "signer", check_id: String(i) },
    comparator: "equals",
    expected: i,
    policy_tags: [],
  }));
  const spec = decode(
    ScenarioSpec,
    parseJson(
      canonicalJson({
        scenario_id: "bench",
        namespace_id: 2n,
        spec_version: "1",
        stages: [
          {
            stage_id: "s",
            entry_packets: [],
            gates: [{ gate_id: "g", requirement: { And: conditions.map((c) => ({ Condition: c.condition_id })) } }],
            advance_to: { kind: "terminal" },
            timeout: null,
            on_timeout: "fail",
          },
        ],
        conditions: conditions.map((c) => ({ ...c, expected: BigInt(c.expected) + 1000n })),
        policies: [],
        schemas: [],
      } as unknown as JsonValue),
    ),
    "spec",
  );
  const store = new MemoryRunStateStore();
  const plane = new ControlPlane(spec, { store, evidence: pipeline });
  const run = {
    tenant_id: 1n,
    namespace_id: 2n,
    run_id: "bench",
    scenario_id: "bench",
    dispatch_targets: [],
    policy_tags: [],
  };
  await plane.start(run, { kind: "logical", value: 0n }, false);
  let trigger = 0;
  return measure("signed evidence: gate of 10 signed conditions (memory store)", CONDITIONS, async () => {
    trigger++;
    const { result } = await plane.next({
      run_id: "bench",
      tenant_id: 1n,
      namespace_id: 2n,
      trigger_id: `t-${trigger}`,
      agent_id: "bench",
      time: { kind: "logical", value: BigInt(trigger) },
      correlation_id: null,
    });
    if (result.decision.outcome.kind !== "hold") throw new Error("the bench gate must hold");
  });
}
