import { describe, expect, it } from "vitest";
import { createDispatchPolicy, type DispatchPolicy, DispatchPolicyConfig } from "../../src/core/dispatch/policy.js";
import { ControlPlaneError, InvalidInputError } from "../../src/core/errors.js";
import type { DispatchTarget, PacketEnvelope } from "../../src/core/run/schema.js";
import type { PacketPayload } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";

const AGENT: DispatchTarget = { kind: "agent", agent_id: "agent-1" };
const SESSION: DispatchTarget = { kind: "session", session_id: "session-1" };
const CHANNEL: DispatchTarget = { kind: "channel", channel: "channel-1" };
const EXTERNAL: DispatchTarget = { kind: "external", system: "slack", target: "ops" };
const ALL_TARGETS = [AGENT, SESSION, CHANNEL, EXTERNAL];

const PAYLOAD: PacketPayload = { kind: "json", value: null };

function envelope(overrides: Partial<PacketEnvelope> = {}): PacketEnvelope {
  return {
    scenario_id: "scenario-1",
    run_id: "run-1",
    stage_id: "stage-1",
    packet_id: "packet-1",
    schema_id: "schema-1",
    content_type: "application/json",
    content_hash: { algorithm: "sha256", value: "00" },
    visibility: { labels: ["internal", "audit"], policy_tags: ["pii"] },
    expiry: null,
    correlation_id: null,
    issued_at: { kind: "logical", value: 1n },
    ...overrides,
  };
}

function policyFrom(config: unknown): DispatchPolicy {
  return createDispatchPolicy(decode(DispatchPolicyConfig, config, "policy"));
}

/** A static policy defaulting to deny whose single rule permits what it matches. */
function permitWhen(criteria: Record<string, unknown>): DispatchPolicy {
  return policyFrom({ engine: "static", static: { rules: [{ effect: "permit", ...criteria }] } });
}

function decide(policy: DispatchPolicy, target: DispatchTarget = AGENT, packet: PacketEnvelope = envelope()) {
  return policy.authorize(target, packet, PAYLOAD);
}

function decodeError(config: unknown): string {
  try {
    decode(DispatchPolicyConfig, config, "policy");
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return (error as Error).message;
  }
  throw new Error("expected the config to be rejected");
}

describe("dispatch policy engines", () => {
  it("permit_all is the default engine and permits everything", () => {
    const policy = policyFrom({});
    for (const target of ALL_TARGETS) expect(decide(policy, target)).toBe("permit");
    expect(decide(policyFrom({ engine: "permit_all" }), EXTERNAL)).toBe("permit");
  });

  it("deny_all denies everything", () => {
    const policy = policyFrom({ engine: "deny_all" });
    for (const target of ALL_TARGETS) expect(decide(policy, target)).toBe("deny");
  });

  it("static with no rules applies the default, which is deny unless set", () => {
    expect(decide(policyFrom({ engine: "static", static: {} }))).toBe("deny");
    expect(decide(policyFrom({ engine: "static", static: { default: "permit", rules: [] } }))).toBe("permit");
  });
});

describe("static policy rules", () => {
  it("first matching rule wins", () => {
    const policy = policyFrom({
      engine: "static",
      static: {
        default: "permit",
        rules: [
          { effect: "deny", packet_ids: ["secret"] },
          { effect: "permit", target_kinds: ["agent"] },
          { effect: "deny", target_kinds: ["agent", "session"] },
        ],
      },
    });
    expect(decide(policy, AGENT, envelope({ packet_id: "secret" }))).toBe("deny");
    expect(decide(policy, AGENT)).toBe("permit");
    expect(decide(policy, SESSION)).toBe("deny");
    expect(decide(policy, CHANNEL)).toBe("permit");
  });

  it("requires every non-empty criterion to match", () => {
    const policy = permitWhen({ target_kinds: ["agent"], require_labels: ["internal"], stage_ids: ["stage-1"] });
    expect(decide(policy, AGENT)).toBe("permit");
    expect(decide(policy, SESSION)).toBe("deny");
    expect(decide(policy, AGENT, envelope({ stage_id: "stage-2" }))).toBe("deny");
    expect(decide(policy, AGENT, envelope({ visibility: { labels: [], policy_tags: [] } }))).toBe("deny");
  });

  it("an error rule throws a policy_error with its message", () => {
    const policy = policyFrom({
      engine: "static",
      static: { rules: [{ effect: "error", error_message: "misconfigured", target_kinds: ["channel"] }] },
    });
    expect(decide(policy, AGENT)).toBe("deny");
    expect(() => decide(policy, CHANNEL)).toThrow(ControlPlaneError);
    try {
      decide(policy, CHANNEL);
    } catch (error) {
      expect(error).toMatchObject({ code: "policy_error", message: "policy decision error: misconfigured" });
    }
  });

  it("ignores the payload", () => {
    const policy = permitWhen({ target_kinds: ["agent"] });
    expect(policy.authorize(AGENT, envelope(), { kind: "bytes", bytes: new Uint8Array([1]) })).toBe("permit");
  });
});

describe("static policy criteria", () => {
  it("target_kinds matches the target's kind", () => {
    const policy = permitWhen({ target_kinds: ["session", "external"] });
    expect(decide(policy, SESSION)).toBe("permit");
    expect(decide(policy, EXTERNAL)).toBe("permit");
    expect(decide(policy, AGENT)).toBe("deny");
    expect(decide(policy, CHANNEL)).toBe("deny");
  });

  it("a selector without target_id matches any id of its kind", () => {
    const policy = permitWhen({ targets: [{ target_kind: "channel" }] });
    expect(decide(policy, CHANNEL)).toBe("permit");
    expect(decide(policy, { kind: "channel", channel: "other" })).toBe("permit");
    expect(decide(policy, AGENT)).toBe("deny");
  });

  it.each([
    ["agent", AGENT, { kind: "agent", agent_id: "agent-2" }, "agent-1"],
    ["session", SESSION, { kind: "session", session_id: "session-2" }, "session-1"],
    ["channel", CHANNEL, { kind: "channel", channel: "channel-2" }, "channel-1"],
  ] as Array<[string, DispatchTarget, DispatchTarget, string]>)(
    "a %s selector with target_id matches that id only",
    (kind, matching, other, id) => {
      const policy = permitWhen({ targets: [{ target_kind: kind, target_id: id }] });
      expect(decide(policy, matching)).toBe("permit");
      expect(decide(policy, other)).toBe("deny");
    },
  );

  it("a selector's target_id does not match a target of another kind with the same id", () => {
    const policy = permitWhen({ targets: [{ target_kind: "session", target_id: "x" }] });
    expect(decide(policy, { kind: "agent", agent_id: "x" })).toBe("deny");
    expect(decide(policy, { kind: "channel", channel: "x" })).toBe("deny");
  });

  it("an external selector matches on the system and target it sets", () => {
    const bySystem = permitWhen({ targets: [{ target_kind: "external", system: "slack" }] });
    expect(decide(bySystem, EXTERNAL)).toBe("permit");
    expect(decide(bySystem, { kind: "external", system: "slack", target: "other" })).toBe("permit");
    expect(decide(bySystem, { kind: "external", system: "email", target: "ops" })).toBe("deny");
    expect(decide(bySystem, AGENT)).toBe("deny");

    const byTarget = permitWhen({ targets: [{ target_kind: "external", target: "ops" }] });
    expect(decide(byTarget, { kind: "external", system: "email", target: "ops" })).toBe("permit");
    expect(decide(byTarget, { kind: "external", system: "slack", target: "dev" })).toBe("deny");

    const byBoth = permitWhen({ targets: [{ target_kind: "external", system: "slack", target: "ops" }] });
    expect(decide(byBoth, EXTERNAL)).toBe("permit");
    expect(decide(byBoth, { kind: "external", system: "slack", target: "dev" })).toBe("deny");
    expect(decide(byBoth, { kind: "external", system: "email", target: "ops" })).toBe("deny");
  });

  it("any one of several selectors may match", () => {
    const policy = permitWhen({
      targets: [
        { target_kind: "agent", target_id: "agent-1" },
        { target_kind: "external", system: "slack" },
      ],
    });
    expect(decide(policy, AGENT)).toBe("permit");
    expect(decide(policy, EXTERNAL)).toBe("permit");
    expect(decide(policy, SESSION)).toBe("deny");
  });

  it("require_labels needs every listed label", () => {
    expect(decide(permitWhen({ require_labels: ["internal", "audit"] }))).toBe("permit");
    expect(decide(permitWhen({ require_labels: ["internal", "public"] }))).toBe("deny");
  });

  it("forbid_labels rejects any listed label", () => {
    expect(decide(permitWhen({ forbid_labels: ["public", "secret"] }))).toBe("permit");
    expect(decide(permitWhen({ forbid_labels: ["public", "audit"] }))).toBe("deny");
  });

  it("require_policy_tags needs every listed tag, checked against policy_tags not labels", () => {
    expect(decide(permitWhen({ require_policy_tags: ["pii"] }))).toBe("permit");
    expect(decide(permitWhen({ require_policy_tags: ["pii", "internal"] }))).toBe("deny");
  });

  it("forbid_policy_tags rejects any listed tag, checked against policy_tags not labels", () => {
    expect(decide(permitWhen({ forbid_policy_tags: ["internal"] }))).toBe("permit");
    expect(decide(permitWhen({ forbid_policy_tags: ["phi", "pii"] }))).toBe("deny");
  });

  it.each([
    ["content_types", "content_type", "application/json", "text/plain"],
    ["schema_ids", "schema_id", "schema-1", "schema-2"],
    ["packet_ids", "packet_id", "packet-1", "packet-2"],
    ["stage_ids", "stage_id", "stage-1", "stage-2"],
    ["scenario_ids", "scenario_id", "scenario-1", "scenario-2"],
  ] as const)("%s matches the envelope's %s exactly", (criterion, field, matching, other) => {
    const policy = permitWhen({ [criterion]: ["unrelated", matching] });
    expect(decide(policy, AGENT, envelope({ [field]: matching }))).toBe("permit");
    expect(decide(policy, AGENT, envelope({ [field]: other }))).toBe("deny");
    expect(decide(policy, AGENT, envelope({ [field]: matching.toUpperCase() }))).toBe("deny");
  });
});

describe("dispatch policy config validation", () => {
  it("fills in defaults", () => {
    expect(decode(DispatchPolicyConfig, {}, "policy")).toEqual({ engine: "permit_all" });
    const config = decode(
      DispatchPolicyConfig,
      { engine: "static", static: { rules: [{ effect: "deny", packet_ids: ["p"] }] } },
      "policy",
    );
    expect(config.static?.default).toBe("deny");
    expect(config.static?.rules[0]).toMatchObject({
      target_kinds: [],
      targets: [],
      require_labels: [],
      scenario_ids: [],
    });
  });

  it("rejects an unknown engine", () => {
    expect(decodeError({ engine: "opa" })).toContain("policy.engine:");
  });

  it("requires policy.static for the static engine", () => {
    expect(decodeError({ engine: "static" })).toContain(
      `policy.static: required when engine is "static" (policy.engine=static requires policy.static)`,
    );
  });

  it.each(["permit_all", "deny_all", undefined])("rejects policy.static for engine %s", (engine) => {
    expect(decodeError({ engine, static: {} })).toContain(
      "policy.static: not allowed when engine is", // followed by the engine name
    );
    expect(decodeError({ engine, static: {} })).toContain("policy.static only allowed when engine=static");
  });

  it("rejects error as the static default", () => {
    expect(decodeError({ engine: "static", static: { default: "error" } })).toContain(
      'policy.static.default: expected "permit" or "deny" (static policy default must be permit or deny)',
    );
  });

  it("requires a rule effect and rejects an unknown one", () => {
    expect(decodeError({ engine: "static", static: { rules: [{ packet_ids: ["p"] }] } })).toContain(
      "policy.static.rules[0].effect: missing field",
    );
    expect(decodeError({ engine: "static", static: { rules: [{ effect: "allow", packet_ids: ["p"] }] } })).toContain(
      "policy.static.rules[0].effect: Invalid option",
    );
  });

  it("requires a non-empty error_message for the error effect", () => {
    const rules = [
      { effect: "deny", packet_ids: ["p"] },
      { effect: "permit", packet_ids: ["p"] },
      { effect: "error", packet_ids: ["p"] },
      { effect: "error", error_message: "", packet_ids: ["p"] },
    ];
    const message = decodeError({ engine: "static", static: { rules } });
    expect(message).toContain(`policy.static.rules[2].error_message: required when effect is "error"`);
    expect(message).toContain(`policy.static.rules[3].error_message: required when effect is "error"`);
    expect(message).not.toContain("rules[0]");
    expect(message).not.toContain("rules[1]");
  });

  it("requires at least one non-empty match criterion", () => {
    const message = decodeError({ engine: "static", static: { rules: [{ effect: "permit", packet_ids: [] }] } });
    expect(message).toContain("policy.static.rules[0]: at least one of target_kinds, targets,");
    expect(message).toContain("rule must include at least one match criterion");
  });

  it("rejects an unknown or missing target kind", () => {
    expect(decodeError({ engine: "static", static: { rules: [{ effect: "deny", target_kinds: ["bot"] }] } })).toContain(
      "policy.static.rules[0].target_kinds[0]:",
    );
    const selectors = [{ target_kind: "bot" }, { target_id: "x" }];
    const message = decodeError({ engine: "static", static: { rules: [{ effect: "deny", targets: selectors }] } });
    expect(message).toContain("policy.static.rules[0].targets[0].target_kind: Invalid option");
    expect(message).toContain("policy.static.rules[0].targets[1].target_kind: missing field");
  });

  it("rejects target_id on an external selector", () => {
    const selectors = [{ target_kind: "external", system: "slack", target_id: "x" }];
    expect(decodeError({ engine: "static", static: { rules: [{ effect: "deny", targets: selectors }] } })).toContain(
      "policy.static.rules[0].targets[0].target_id: not allowed for target_kind external",
    );
  });

  it("requires system or target on an external selector", () => {
    const selectors = [{ target_kind: "agent" }, { target_kind: "external" }];
    expect(decodeError({ engine: "static", static: { rules: [{ effect: "deny", targets: selectors }] } })).toContain(
      "policy.static.rules[0].targets[1]: system or target is required for target_kind external",
    );
  });

  it.each(["agent", "session", "channel"])("rejects system and target on a %s selector", (kind) => {
    const selectors = [{ target_kind: kind, system: "slack", target: "ops" }];
    const message = decodeError({ engine: "static", static: { rules: [{ effect: "deny", targets: selectors }] } });
    expect(message).toContain("policy.static.rules[0].targets[0].system: only allowed for target_kind external");
    expect(message).toContain("policy.static.rules[0].targets[0].target: only allowed for target_kind external");
  });

  it("rejects list criteria that are not lists of strings", () => {
    expect(decodeError({ engine: "static", static: { rules: [{ effect: "deny", stage_ids: "s" }] } })).toContain(
      "policy.static.rules[0].stage_ids:",
    );
  });
});

describe("createDispatchPolicy", () => {
  it("refuses a static engine without its table", () => {
    expect(() => createDispatchPolicy({ engine: "static" })).toThrow("policy.static is required for static engine");
  });
});
