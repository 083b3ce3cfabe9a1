//! `append_conservation`: every record appended inside a critical section is in
//! the final file exactly once, and the file holds nothing else.
//!
//! The ledger is the `Appended` annotations; the final state is the file's
//! contents on the server at the end of the run.
//!
//! A record is noted `Appended` only after its `close()` returned, so a line
//! that reached the server before the note is not corruption while its writer
//! is still inside its critical section. When the run was cut off (`End::cut`),
//! up to one unnoted line per critical section still open at the cut is such
//! pending work, not a violation; beyond that, or in a run that completed, every
//! unnoted line is.

use std::collections::{BTreeMap, BTreeSet};

use model::ModelEvent;

use super::{End, Oracle, OracleResult, Property, Seen, Violations};

/// A safety property: a record lost, duplicated or never appended is a fact of what completed.
pub const PROPERTY: Property = Property::Safety;

#[derive(Default)]
pub struct AppendConservation {
    /// path -> record -> (times appended, first event)
    ledger: BTreeMap<String, BTreeMap<String, (u32, u64)>>,
    /// Processes inside a critical section that have not yet noted their append.
    open: BTreeSet<(String, u32)>,
}

impl Oracle for AppendConservation {
    fn observe(&mut self, seen: &Seen) {
        let Some((host, pid, note)) = seen.note else { return };
        let (path, record) = match note {
            ModelEvent::LockAcquired { .. } => {
                self.open.insert((host.to_string(), pid));
                return;
            }
            ModelEvent::LockReleasing { .. } => {
                self.open.remove(&(host.to_string(), pid));
                return;
            }
            ModelEvent::Appended { path, record } => {
                self.open.remove(&(host.to_string(), pid));
                (path, record)
            }
            _ => return,
        };
        let records = match self.ledger.get_mut(path.as_str()) {
            Some(records) => records,
            None => self.ledger.entry(path.clone()).or_default(),
        };
        match records.get_mut(record.as_str()) {
            Some(entry) => entry.0 += 1,
            None => {
                records.insert(record.clone(), (1, seen.event.seq));
            }
        }
    }

    fn finish(self: Box<Self>, end: &End) -> OracleResult {
        let mut violations = Violations::default();
        let mut checked = 0u64;
        for (path, records) in &self.ledger {
            let content =
                end.store.read_file(path).map(|d| String::from_utf8_lossy(d).into_owned()).unwrap_or_default();
            let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
            for line in content.lines() {
                *seen.entry(line).or_default() += 1;
            }
            for (record, (appended, seq)) in records {
                checked += 1;
                let found = seen.get(record.as_str()).copied().unwrap_or(0);
                if found < *appended {
                    violations.push(*seq, || {
                        format!(
                            "{path}: record {record:?} appended {appended}x but found {found}x (lost) [event {seq}]"
                        )
                    });
                } else if found > *appended {
                    violations.push(*seq, || {
                        format!(
                            "{path}: record {record:?} appended {appended}x but found {found}x (duplicated) [event {seq}]"
                        )
                    });
                }
            }
            let unnoted: Vec<(&&str, &u32)> = seen.iter().filter(|(line, _)| !records.contains_key(**line)).collect();
            let pending = if end.cut { self.open.len() as u64 } else { 0 };
            if unnoted.iter().map(|(_, n)| **n as u64).sum::<u64>() <= pending {
                continue;
            }
            for (line, n) in unnoted {
                violations.push(u64::MAX, || format!("{path}: line {line:?} ({n}x) was never appended (corruption)"));
            }
        }
        OracleResult::new("append_conservation", checked, violations)
    }
}
