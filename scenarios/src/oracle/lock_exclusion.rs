//! `lock_exclusion`: no two processes hold one lock at once.
//!
//! An interval runs from the `LockAcquired` annotation (lock() returned
//! success) to the holder's `LockReleasing` annotation (unlock() is about to make
//! its first call), in true simulated time. Intervals are matched by claim, so a
//! second lock object in the same process cannot end another's interval. A
//! holder that never releases (it crashed, or the run ended) holds until the end.
//! The ledger keeps, per lock, the current holder (claim, since when): a
//! second acquisition while a holder is set is a violation.
//!
//! A lock broken while its holder is alive is reported even when no overlap
//! follows: it shows when the holder's next `refresh()` (from `Save()`) finds the
//! lock gone (`LockRefreshed { held: false }`).

use std::collections::BTreeMap;
use std::time::Duration;

use model::ModelEvent;

use super::{End, Oracle, OracleResult, Property, Seen, Violations};
use crate::trace_query::Holdings;

/// A safety property: an overlap or a broken live lock is an event in the history.
pub const PROPERTY: Property = Property::Safety;

struct Holder {
    who: String,
    claim: String,
    since: Duration,
}

#[derive(Default)]
pub struct LockExclusion {
    /// The current holder of each lock: its last acquirer, until that one lets go.
    holders: BTreeMap<String, Holder>,
    /// Claims that hold a lock and have not let go (the account the tools share).
    holding: Holdings,
    violations: Violations,
    intervals: u64,
}

impl Oracle for LockExclusion {
    fn observe(&mut self, seen: &Seen) {
        let Some((host, pid, note)) = seen.note else { return };
        let event = seen.event;
        let t = event.t.as_secs_f64();
        let ended = self.holding.observe(event);
        match note {
            ModelEvent::LockAcquired { lock, claim } => {
                self.intervals += 1;
                let who = format!("{host}/{pid}");
                if let Some(h) = self.holders.get(lock.as_str()) {
                    self.violations.push(event.seq, || {
                        format!(
                            "t={t:.3}s {who} acquired {lock} (claim {claim}) while {} (claim {}) held it since t={:.3}s [event {}]",
                            h.who,
                            h.claim,
                            h.since.as_secs_f64(),
                            event.seq
                        )
                    });
                }
                self.holders.insert(lock.clone(), Holder { who, claim: claim.clone(), since: event.t });
            }
            ModelEvent::LockReleasing { lock, claim }
                if self.holders.get(lock.as_str()).is_some_and(|h| h.claim == *claim) =>
            {
                self.holders.remove(lock.as_str());
            }
            ModelEvent::LockRefreshed { lock, claim, held: false } => {
                if let Some(was) = ended {
                    let who = format!("{host}/{pid}");
                    self.violations.push(event.seq, || {
                        format!(
                            "t={t:.3}s {who} found its lock {lock} (claim {claim}, held since t={:.3}s) broken while it was alive [event {}]",
                            was.since.as_secs_f64(),
                            event.seq
                        )
                    });
                    if self.holders.get(lock.as_str()).is_some_and(|h| h.claim == *claim) {
                        self.holders.remove(lock.as_str());
                    }
                }
            }
            _ => {}
        }
    }

    fn finish(self: Box<Self>, _: &End) -> OracleResult {
        OracleResult::new("lock_exclusion", self.intervals, self.violations)
    }
}
