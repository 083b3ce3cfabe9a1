//! `lock_exclusion`: no two processes hold one lock at once.
//!
//! An interval runs from the `LockAcquired` annotation (lock() returned
//! success) to the holder's `LockReleasing` annotation (unlock() is about to make
//! its first call), in true simulated time. Intervals are matched by claim, so a
//! second lock object in the same process cannot end another's interval. A
//! holder that never releases (it crashed, or the run ended) holds until the end.
//! The checker keeps, per lock, the current `holder: Option<(claim, since)>`: a
//! second acquisition while a holder is set is a violation.
//!
//! A lock broken while its holder is alive is reported even when no overlap
//! follows: it shows when the holder's next `refresh()` (from `Save()`) finds the
//! lock gone (`LockRefreshed { held: false }`).

use std::collections::BTreeMap;
use std::time::Duration;

use model::ModelEvent;

use super::{History, OracleResult};

struct Holder<'a> {
    who: String,
    claim: &'a str,
    since: Duration,
}

pub fn check(history: &History) -> OracleResult {
    let mut holders: BTreeMap<&str, Holder> = BTreeMap::new();
    // Claims that held a lock and have not released it, with the lock and since when.
    let mut holding: BTreeMap<&str, (&str, Duration)> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut intervals = 0u64;
    for (event, host, pid, note) in history.notes() {
        let who = format!("{host}/{pid}");
        let t = event.t.as_secs_f64();
        match note {
            ModelEvent::LockAcquired { lock, claim } => {
                intervals += 1;
                if let Some(h) = holders.get(lock.as_str()) {
                    violations.push((
                        event.seq,
                        format!(
                            "t={t:.3}s {who} acquired {lock} (claim {claim}) while {} (claim {}) held it since t={:.3}s [event {}]",
                            h.who,
                            h.claim,
                            h.since.as_secs_f64(),
                            event.seq
                        ),
                    ));
                }
                holders.insert(lock, Holder { who, claim, since: event.t });
                holding.insert(claim, (lock, event.t));
            }
            ModelEvent::LockReleasing { lock, claim } => {
                if holders.get(lock.as_str()).is_some_and(|h| h.claim == claim) {
                    holders.remove(lock.as_str());
                }
                holding.remove(claim.as_str());
            }
            ModelEvent::LockRefreshed { lock, claim, held: false } => {
                if let Some((_, since)) = holding.remove(claim.as_str()) {
                    violations.push((
                        event.seq,
                        format!(
                            "t={t:.3}s {who} found its lock {lock} (claim {claim}, held since t={:.3}s) broken while it was alive [event {}]",
                            since.as_secs_f64(),
                            event.seq
                        ),
                    ));
                    if holders.get(lock.as_str()).is_some_and(|h| h.claim == claim) {
                        holders.remove(lock.as_str());
                    }
                }
            }
            _ => {}
        }
    }
    OracleResult::new("lock_exclusion", intervals, violations)
}
