//! Host wall clocks and true simulated time.
//!
//! True simulated time is the engine's clock (nanoseconds since the start of the run). It
//! orders the trace and the oracles, and the model never sees it. Every host
//! (the NFS server included) has its own wall clock derived from true time:
//! `wall = EPOCH + t + offset + t * drift + Σ steps that have happened`. The
//! model reads only its host's wall clock (`Os::now`), and the server stamps
//! inodes with its own (two clock domains: docs/semantics/linux-nfs-client.md §12).
//!
//! Not modelled: NTP slewing (a drift plus steps stands in for it), leap seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The fixed epoch of every run: 2002-01-15T00:00:00Z, the month of the report.
/// No real clock is read anywhere on sim or model paths.
pub const EPOCH_UNIX_S: u64 = 1_011_052_800;

/// Nanoseconds since the Unix epoch, as the server stores timestamps.
pub type Nanos = i64;

pub fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_S)
}

pub fn to_system_time(ns: Nanos) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

pub fn from_system_time(t: SystemTime) -> Nanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as Nanos,
        Err(e) => -(e.duration().as_nanos() as Nanos),
    }
}

/// True simulated time since the start of the run, from the engine that runs
/// the code on this thread (see `engine`). Zero outside a simulation.
pub fn true_now() -> Duration {
    crate::engine::now()
}

/// A one-off jump of a host clock, as an NTP step does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockStep {
    /// True simulated time at which the step happens.
    pub at_ms: u64,
    /// How far the clock jumps (negative jumps back).
    pub delta_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    /// Constant offset from true time.
    pub offset_ms: i64,
    /// Rate error in parts per million (positive runs fast).
    pub drift_ppm: i64,
    pub steps: Vec<ClockStep>,
}

impl ClockConfig {
    /// This host's wall clock at true time `t`.
    pub fn wall_ns(&self, t: Duration) -> Nanos {
        let t_ns = t.as_nanos() as i128;
        let mut ns = (EPOCH_UNIX_S as i128) * 1_000_000_000 + t_ns;
        ns += self.offset_ms as i128 * 1_000_000;
        ns += t_ns * self.drift_ppm as i128 / 1_000_000;
        for step in &self.steps {
            if t >= Duration::from_millis(step.at_ms) {
                ns += step.delta_ms as i128 * 1_000_000;
            }
        }
        ns as Nanos
    }

    pub fn wall(&self, t: Duration) -> SystemTime {
        to_system_time(self.wall_ns(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_drift_and_steps_add_up() {
        let c =
            ClockConfig { offset_ms: 1500, drift_ppm: 1000, steps: vec![ClockStep { at_ms: 10_000, delta_ms: -3000 }] };
        let base = EPOCH_UNIX_S as i64 * 1_000_000_000;
        assert_eq!(c.wall_ns(Duration::ZERO), base + 1_500_000_000);
        // 1000 ppm over 5 s is 5 ms.
        assert_eq!(c.wall_ns(Duration::from_secs(5)), base + 5_000_000_000 + 1_500_000_000 + 5_000_000);
        assert_eq!(
            c.wall_ns(Duration::from_secs(10)),
            base + 10_000_000_000 + 1_500_000_000 + 10_000_000 - 3_000_000_000
        );
    }
}
