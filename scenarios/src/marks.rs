//! Coverage marks: proof that a run hit the interesting paths.
//!
//! A mark counts how often a path was hit, read from the trace (model
//! annotations, calls and RPCs) and from the world's counters. A scenario lists
//! the marks it requires; a run that misses one is vacuous (exit 4).

use std::collections::BTreeMap;

use model::{ListLoadOutcome, ModelEvent};
use sim::{Counters, Event, EventKind};

/// Every mark, with what it proves.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    ("lock_contended", "a lock attempt found the lock held (EEXIST on link or O_EXCL)"),
    ("lock_timed_out", "a lock attempt timed out (and the message was re-queued)"),
    ("lock_broken", "an expired lock was broken"),
    ("retransmission", "an RPC was retransmitted with the same xid"),
    ("drc_hit", "the server answered a retransmission from its duplicate request cache"),
    ("false_eexist", "a replayed LINK/MKDIR/CREATE returned EEXIST although the first execution succeeded"),
    ("false_enoent", "a replayed RENAME/REMOVE/RMDIR returned ENOENT although the first execution succeeded"),
    ("estale_retry", "a path walk was retried after ESTALE"),
    ("negative_dentry_hit", "a lookup was answered ENOENT from a cached negative dentry"),
    ("attr_cache_hit", "a stat was answered from the attribute cache"),
    ("silly_rename", "a busy file was renamed to .nfsXXXX"),
    ("corrupt_config_read", "a list config failed to decode"),
    ("last_fallback", "Load fell back to config.X.last"),
    ("config_repair", "a corrupt list config was repaired"),
];

pub const NAMES: &[&str] = &[
    "lock_contended",
    "lock_timed_out",
    "lock_broken",
    "retransmission",
    "drc_hit",
    "false_eexist",
    "false_enoent",
    "estale_retry",
    "negative_dentry_hit",
    "attr_cache_hit",
    "silly_rename",
    "corrupt_config_read",
    "last_fallback",
    "config_repair",
];

/// Reads a counter by name from the serialised counters, 0 if the sim has no such counter.
fn counter(counters: &serde_json::Value, name: &str) -> u64 {
    counters.get(name).and_then(|v| v.as_u64()).unwrap_or(0)
}

/// The marks read from the trace, counted as events are recorded.
#[derive(Default)]
pub struct Marks {
    hits: BTreeMap<&'static str, u64>,
}

impl Marks {
    pub fn observe(&mut self, e: &Event) {
        let mark = match &e.kind {
            EventKind::Call { op: "open", args, outcome: Err(libc::EEXIST), .. } if args.contains("EXCL") => {
                "lock_contended"
            }
            EventKind::Rpc { retransmit, .. } if *retransmit > 0 => "retransmission",
            EventKind::Note { payload, .. } => match payload.downcast_ref::<ModelEvent>() {
                Some(ModelEvent::LockContended { .. }) => "lock_contended",
                Some(ModelEvent::LockTimedOut { .. }) => "lock_timed_out",
                Some(ModelEvent::LockBroken { .. }) => "lock_broken",
                Some(ModelEvent::ListFileLoad { outcome: ListLoadOutcome::Corrupt, .. }) => "corrupt_config_read",
                Some(ModelEvent::ListFallbackUsed { .. }) => "last_fallback",
                Some(ModelEvent::ListRepairStarted { .. }) => "config_repair",
                _ => return,
            },
            _ => return,
        };
        *self.hits.entry(mark).or_default() += 1;
    }

    /// Every mark: the trace's counts and the world's counters.
    pub fn finish(self, counters: &Counters) -> BTreeMap<String, u64> {
        let mut marks: BTreeMap<String, u64> = NAMES.iter().map(|n| (n.to_string(), 0)).collect();
        let mut hit = |name: &str, n: u64| *marks.get_mut(name).expect("known mark") += n;
        for (mark, n) in self.hits {
            hit(mark, n);
        }
        let c = serde_json::to_value(counters).unwrap_or_default();
        for (mark, name) in [
            ("drc_hit", "drc_hits"),
            ("false_eexist", "false_eexist"),
            ("false_enoent", "false_enoent"),
            ("estale_retry", "estale_retries"),
            ("negative_dentry_hit", "negative_dentry_hits"),
            ("attr_cache_hit", "attr_cache_hits"),
            ("silly_rename", "silly_renames"),
        ] {
            hit(mark, counter(&c, name));
        }
        marks
    }
}

/// The marks of a recorded trace.
pub fn count(events: &[Event], counters: &Counters) -> BTreeMap<String, u64> {
    let mut marks = Marks::default();
    for e in events {
        marks.observe(e);
    }
    marks.finish(counters)
}
