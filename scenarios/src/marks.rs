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

pub fn count(events: &[Event], counters: &Counters) -> BTreeMap<String, u64> {
    let mut marks: BTreeMap<String, u64> = NAMES.iter().map(|n| (n.to_string(), 0)).collect();
    let mut hit = |name: &str, n: u64| *marks.get_mut(name).expect("known mark") += n;
    for e in events {
        match &e.kind {
            EventKind::Call { op: "open", args, outcome: Err(libc::EEXIST), .. } if args.contains("EXCL") => {
                hit("lock_contended", 1)
            }
            EventKind::Rpc { retransmit, .. } if *retransmit > 0 => hit("retransmission", 1),
            EventKind::Note { payload, .. } => match payload.downcast_ref::<ModelEvent>() {
                Some(ModelEvent::LockContended { .. }) => hit("lock_contended", 1),
                Some(ModelEvent::LockTimedOut { .. }) => hit("lock_timed_out", 1),
                Some(ModelEvent::LockBroken { .. }) => hit("lock_broken", 1),
                Some(ModelEvent::ListFileLoad { outcome: ListLoadOutcome::Corrupt, .. }) => {
                    hit("corrupt_config_read", 1)
                }
                Some(ModelEvent::ListFallbackUsed { .. }) => hit("last_fallback", 1),
                Some(ModelEvent::ListRepairStarted { .. }) => hit("config_repair", 1),
                _ => {}
            },
            _ => {}
        }
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
