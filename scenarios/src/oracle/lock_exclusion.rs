//! `lock_exclusion`: no two processes hold one lock at once.
//!
//! An interval runs from the `LockAcquired` annotation (lock() returned
//! success) to the holder's `LockReleasing` annotation (unlock() is about to make
//! its first call), in true simulated time. A holder that never releases (it
//! crashed, or the run ended) holds until the end. The checker keeps, per lock,
//! the current `holder: Option<(claim, since)>`: a second acquisition while a
//! holder is set is a violation.

use std::collections::BTreeMap;
use std::time::Duration;

use model::ModelEvent;

use super::{History, OracleResult};

pub fn check(history: &History) -> OracleResult {
    // Per lock: the current holder (host/pid, claim, since, seq).
    let mut holders: BTreeMap<&str, (String, String, Duration)> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut intervals = 0u64;
    for (event, host, pid, note) in history.notes() {
        let who = format!("{host}/{pid}");
        match note {
            ModelEvent::LockAcquired { lock, claim } => {
                intervals += 1;
                if let Some((other, other_claim, since)) = holders.get(lock.as_str()) {
                    violations.push((
                        event.seq,
                        format!(
                            "t={:.3}s {who} acquired {lock} (claim {claim}) while {other} (claim {other_claim}) held it since t={:.3}s [event {}]",
                            event.t.as_secs_f64(),
                            since.as_secs_f64(),
                            event.seq
                        ),
                    ));
                }
                holders.insert(lock, (who, claim.clone(), event.t));
            }
            ModelEvent::LockReleasing { lock, .. } if holders.get(lock.as_str()).is_some_and(|(h, _, _)| *h == who) => {
                holders.remove(lock.as_str());
            }
            _ => {}
        }
    }
    OracleResult::new("lock_exclusion", intervals, violations)
}
