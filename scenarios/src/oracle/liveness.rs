//! `liveness`: after the fault phase and the heal (`run.heal_at_s`), the system drains.
//!
//! Every non-terminal queue (everything but `shunt` and `bad`) is empty at the
//! end, apart from entries held back on purpose (`deliver_after` beyond the
//! budget shows as an entry in `retry`, which is therefore tolerated), and every
//! lock is released. A run that ran out of budget or livelocked fails here too.

use super::{End, Oracle, OracleResult, Property, Seen, Violations};

/// A liveness property: the queues drain and the locks come free eventually: judged at the end, after the heal.
pub const PROPERTY: Property = Property::Liveness;

/// Queue directories that must drain (2.1 layout, and 2.0's flat `qfiles/`).
pub const DRAINING: &[&str] =
    &["qfiles/in", "qfiles/out", "qfiles/virgin", "qfiles/archive", "qfiles/bounces", "qfiles/commands", "qfiles/news"];

/// Whether `dir/name` is an entry of a queue that must drain.
pub fn is_draining_queue(dir: &str, name: &str) -> bool {
    DRAINING.contains(&dir) || (dir == "qfiles" && (name.ends_with(".db") || name.ends_with(".msg")))
}

/// Reads no event: only the end state.
pub struct Liveness;

impl Oracle for Liveness {
    fn observe(&mut self, _: &Seen) {}

    fn finish(self: Box<Self>, end: &End) -> OracleResult {
        let mut violations = Violations::default();
        let mut checked = 0u64;
        if let Some(why) = end.ending_problem {
            violations.push(u64::MAX, || why.to_string());
        }
        for entry in end.store.dump() {
            if entry.dir {
                continue;
            }
            let (dir, name) = entry.path.rsplit_once('/').unwrap_or(("", &entry.path));
            if is_draining_queue(dir, name) && !name.starts_with(".nfs") {
                checked += 1;
                violations.push(u64::MAX, || format!("{} is still queued at the end", entry.path));
            }
            if dir == "locks"
                && (name.ends_with(".lock") || name == "master-qrunner" || name == "qrunner.lock")
                && end.held_locks_must_be_free
            {
                checked += 1;
                violations.push(u64::MAX, || format!("{} is still held at the end", entry.path));
            }
        }
        OracleResult::new("liveness", checked, violations)
    }
}
