import { describe, expect, it } from "vitest";
import { MEMBERSHIP_PRESETS, membershipConfig } from "../../src/membership/config.ts";

describe("membership config presets", () => {
  it("lan is memberlist's DefaultLANConfig with a 500/200 ms period and twice the retransmits", () => {
    expect(membershipConfig("lan")).toMatchObject({
      probeInterval: 500,
      probeTimeout: 200,
      indirectChecks: 3,
      suspicionMult: 4,
      suspicionMaxTimeoutMult: 6,
      retransmitMult: 8,
      gossipInterval: 200,
      gossipNodes: 3,
      pushPullInterval: 30_000,
      awarenessMaxMultiplier: 8,
      maxPacketSize: 1400,
    });
  });

  it("wan and local derive from lan with slower / faster timings", () => {
    expect(MEMBERSHIP_PRESETS.wan).toMatchObject({
      probeInterval: 5000,
      probeTimeout: 3000,
      suspicionMult: 6,
    });
    expect(MEMBERSHIP_PRESETS.local).toMatchObject({
      probeTimeout: 200,
      indirectChecks: 1,
      suspicionMult: 3,
    });
    for (const preset of ["lan", "wan", "local"] as const)
      expect(() => membershipConfig(preset)).not.toThrow();
  });

  it("names every invalid field", () => {
    expect(() =>
      membershipConfig("lan", { probeTimeout: 2000, retransmitMult: 0, maxPacketSize: 100 }),
    ).toThrow(
      expect.objectContaining({
        code: "LL_CONFIG_INVALID",
        issues: [
          expect.objectContaining({ path: "membership.probeTimeout" }),
          expect.objectContaining({ path: "membership.retransmitMult" }),
          expect.objectContaining({ path: "membership.maxPacketSize" }),
        ],
      }),
    );
    expect(() => membershipConfig("nope" as "lan")).toThrow(/unknown preset/);
  });
});
