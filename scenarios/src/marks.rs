//! Coverage marks: proof that a run hit the interesting paths.
//!
//! A mark counts how often a path was hit, read from the trace (model
//! annotations, calls and RPCs) and from the world's counters. A scenario lists
//! the marks it requires; a run that misses one is vacuous (exit 4).

use std::collections::BTreeMap;

use model::{ListLoadOutcome, ModelEvent};
use sim::{Counters, Event, EventKind};

/// Where a mark's count comes from.
#[derive(Clone, Copy)]
pub enum Source {
    /// Counted from the trace, event by event ([`Marks::observe`]).
    Trace,
    /// One of the world's counters, read by field.
    Counter(fn(&Counters) -> u64),
}

/// A coverage mark: its name, what a hit proves, and where its count comes from.
pub struct Mark {
    pub name: &'static str,
    pub description: &'static str,
    pub source: Source,
}

const fn mark(name: &'static str, description: &'static str, source: Source) -> Mark {
    Mark { name, description, source }
}

/// Every mark, in report order.
pub const MARKS: &[Mark] = &[
    mark("lock_contended", "a lock attempt found the lock held (EEXIST on link or O_EXCL)", Source::Trace),
    mark("lock_timed_out", "a lock attempt timed out (and the message was re-queued)", Source::Trace),
    mark("lock_broken", "an expired lock was broken", Source::Trace),
    mark("retransmission", "an RPC was retransmitted with the same xid", Source::Trace),
    mark(
        "drc_hit",
        "the server answered a retransmission from its duplicate request cache",
        Source::Counter(|c| c.drc_hits),
    ),
    mark(
        "false_eexist",
        "a replayed LINK/MKDIR/CREATE returned EEXIST although the first execution succeeded",
        Source::Counter(|c| c.false_eexist_replies),
    ),
    mark(
        "false_enoent",
        "a replayed RENAME/REMOVE/RMDIR returned ENOENT although the first execution succeeded",
        Source::Counter(|c| c.false_enoent_replies),
    ),
    mark("estale_retry", "a path walk was retried after ESTALE", Source::Counter(|c| c.estale_retries)),
    mark(
        "negative_dentry_hit",
        "a lookup was answered ENOENT from a cached negative dentry",
        Source::Counter(|c| c.negative_dentry_hits),
    ),
    mark("attr_cache_hit", "a stat was answered from the attribute cache", Source::Counter(|c| c.attr_cache_hits)),
    mark("silly_rename", "a busy file was renamed to .nfsXXXX", Source::Counter(|c| c.silly_renames)),
    mark("corrupt_config_read", "a list config failed to decode", Source::Trace),
    mark("last_fallback", "Load fell back to config.X.last", Source::Trace),
    mark("config_repair", "a corrupt list config was repaired", Source::Trace),
];

/// Whether `name` is a mark.
pub fn is_mark(name: &str) -> bool {
    MARKS.iter().any(|m| m.name == name)
}

/// The mark names, comma-separated, for error messages.
pub fn names() -> String {
    MARKS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
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
        for name in self.hits.keys() {
            assert!(
                MARKS.iter().any(|m| m.name == *name && matches!(m.source, Source::Trace)),
                "observe counted {name:?}, which is not a trace mark of MARKS"
            );
        }
        MARKS
            .iter()
            .map(|m| {
                let n = match m.source {
                    Source::Trace => self.hits.get(m.name).copied().unwrap_or(0),
                    Source::Counter(read) => read(counters),
                };
                (m.name.to_string(), n)
            })
            .collect()
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
