//! `append_conservation`: every record appended inside a critical section is in
//! the final file exactly once, and the file holds nothing else.
//!
//! The ledger is the `Appended` annotations; the final state is the file's
//! contents on the server at the end of the run.

use std::collections::BTreeMap;

use model::ModelEvent;

use super::{End, Oracle, OracleResult, Seen, Violations};

#[derive(Default)]
pub struct AppendConservation {
    /// path -> record -> (times appended, first event)
    ledger: BTreeMap<String, BTreeMap<String, (u32, u64)>>,
}

impl Oracle for AppendConservation {
    fn observe(&mut self, seen: &Seen) {
        let Some((_, _, ModelEvent::Appended { path, record })) = seen.note else { return };
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
            for (line, n) in &seen {
                if !records.contains_key(*line) {
                    violations
                        .push(u64::MAX, || format!("{path}: line {line:?} ({n}x) was never appended (corruption)"));
                }
            }
        }
        OracleResult::new("append_conservation", checked, violations)
    }
}
