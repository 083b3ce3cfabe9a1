//! `append_conservation`: every record appended inside a critical section is in
//! the final file exactly once, and the file holds nothing else.
//!
//! The ledger is the `Appended` annotations; the final state is the file's
//! contents on the server at the end of the run.

use std::collections::BTreeMap;

use model::ModelEvent;

use super::{History, OracleResult};

pub fn check(history: &History) -> OracleResult {
    // path -> record -> (times appended, first event)
    let mut ledger: BTreeMap<&str, BTreeMap<&str, (u32, u64)>> = BTreeMap::new();
    for (event, _, _, note) in history.notes() {
        if let ModelEvent::Appended { path, record } = note {
            let entry = ledger.entry(path).or_default().entry(record).or_insert((0, event.seq));
            entry.0 += 1;
        }
    }
    let mut violations = Vec::new();
    let mut checked = 0u64;
    for (path, records) in &ledger {
        let content =
            history.store.read_file(path).map(|d| String::from_utf8_lossy(d).into_owned()).unwrap_or_default();
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        for line in content.lines() {
            *seen.entry(line).or_default() += 1;
        }
        for (record, (appended, seq)) in records {
            checked += 1;
            let found = seen.get(record).copied().unwrap_or(0);
            if found < *appended {
                violations.push((
                    *seq,
                    format!("{path}: record {record:?} appended {appended}x but found {found}x (lost) [event {seq}]"),
                ));
            } else if found > *appended {
                violations.push((
                    *seq,
                    format!(
                        "{path}: record {record:?} appended {appended}x but found {found}x (duplicated) [event {seq}]"
                    ),
                ));
            }
        }
        for (line, n) in &seen {
            if !records.contains_key(line) {
                violations.push((u64::MAX, format!("{path}: line {line:?} ({n}x) was never appended (corruption)")));
            }
        }
    }
    OracleResult::new("append_conservation", checked, violations)
}
