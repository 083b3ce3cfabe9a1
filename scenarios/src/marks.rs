//! Coverage marks: proof that a run hit the interesting paths.
//!
//! A mark counts how often a path was hit, computed from the trace. A scenario
//! lists the marks it requires; a run that misses one is vacuous (exit 4).

use std::collections::BTreeMap;

use sim::{Event, EventKind};

pub const NAMES: &[&str] = &["lock_contended", "retransmission"];

pub fn count(events: &[Event]) -> BTreeMap<String, u64> {
    let mut marks: BTreeMap<String, u64> = NAMES.iter().map(|n| (n.to_string(), 0)).collect();
    for e in events {
        match &e.kind {
            EventKind::Call { op: "open", args, outcome: Err(libc::EEXIST), .. } if args.contains("EXCL") => {
                *marks.get_mut("lock_contended").expect("known mark") += 1;
            }
            EventKind::Rpc { retransmit, .. } if *retransmit > 0 => {
                *marks.get_mut("retransmission").expect("known mark") += 1;
            }
            _ => {}
        }
    }
    marks
}
