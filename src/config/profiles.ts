import type { CheckSettings, MonitorSettings } from "../health/settings.ts";

/**
 * Profiles: complete sets of defaults. `lan` is the default; `classic` is the seed exactly,
 * kept to measure ourselves against it; `wan` is `lan` for slower, lossier paths.
 * Every value has its reason beside it; `src/health/settings.ts` says what each one trades.
 */
export const PROFILE_NAMES = ["lan", "wan", "classic"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export interface Profile {
  check: CheckSettings;
  monitor: MonitorSettings;
}

const lan: Profile = {
  check: {
    interval: 2000, // HAProxy's `inter`; one connect per 2 s per target is cheap
    fastInterval: 500, // HAProxy's `fastinter`: a suspicion is settled within ~1.5 s
    jitter: 0.1, // ±10 %: enough to keep thousands of targets from synchronising
    timeout: {
      mode: "adaptive",
      initial: 2000, // the seed's value, until the first answer is measured
      min: 1000, // RFC 6298's floor; Linux resends a lost SYN after 1 s
      max: 8000, // tolerates a server that takes up to 8 s to accept (the seed's ">4 s" case)
      floor: 50,
    },
    patience: true, // a timeout makes a target suspect; only `max` of silence convicts
    fall: 3, // HAProxy's default: one lost packet is never an outage
    rise: 2, // HAProxy's default is 2 as well
    slowThreshold: 1000, // a 1 s connect on a LAN is a sick server
    downBackoffCap: 30_000, // a dead target is checked at most every 30 s
    critical: true,
  },
  monitor: {
    maxInFlight: 512, // well under the default 1024 descriptors per process
    scheduling: "spread",
    localHealth: { enabled: true, sampleInterval: 100, stallThreshold: 100, maxStretch: 8 },
    historyResults: 512,
    historyTransitions: 2000,
  },
};

const wan: Profile = {
  check: {
    ...lan.check,
    interval: 5000,
    fastInterval: 1000,
    jitter: 0.2,
    timeout: { mode: "adaptive", initial: 3000, min: 2000, max: 15_000, floor: 100 },
    slowThreshold: 3000,
    downBackoffCap: 60_000,
  },
  monitor: { ...lan.monitor },
};

/** The seed's `Failover`: connect with a 2 s timeout every 3 s, one target after another;
 *  one failure removes a node, one success restores it. No suspicion, no jitter. */
const classic: Profile = {
  check: {
    interval: 3000,
    fastInterval: 3000,
    jitter: 0,
    timeout: { mode: "fixed", initial: 2000, min: 2000, max: 2000, floor: 0 },
    patience: false,
    fall: 1,
    rise: 1,
    slowThreshold: 0,
    downBackoffCap: 3000,
    critical: true,
  },
  monitor: {
    ...lan.monitor,
    scheduling: "sequential",
    localHealth: { ...lan.monitor.localHealth, enabled: false },
  },
};

export const PROFILES: Record<ProfileName, Profile> = { lan, wan, classic };
