//! Oracles: properties checked over the recorded history, one per file.
//!
//! An oracle reads the trace (and, for end-state properties, the server's final
//! namespace); it never asks the model whether it behaved.

mod append_conservation;
mod lock_exclusion;

use serde::Serialize;
use sim::Event;

use model::ModelEvent;

/// Every oracle, by name.
pub const NAMES: &[&str] = &["lock_exclusion", "append_conservation"];

/// One-line descriptions, for `mmsim list`.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "lock_exclusion",
        "no two holders of one lock between lock() returning and unlock() starting, in true simulated time",
    ),
    (
        "append_conservation",
        "every record a process appended inside its critical section is in the final file, exactly once",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OracleResult {
    pub name: String,
    pub status: Status,
    /// How many items the oracle checked (intervals, records, …).
    pub checked: u64,
    /// One line per violation, first violations first (capped).
    pub violations: Vec<String>,
    /// Trace sequence number of the first violating event, if any.
    pub first_event: Option<u64>,
}

pub const VIOLATIONS_SHOWN_MAX: usize = 10;

impl OracleResult {
    fn new(name: &str, checked: u64, mut violations: Vec<(u64, String)>) -> OracleResult {
        violations.sort_by_key(|(seq, _)| *seq);
        let first_event = violations.first().map(|(seq, _)| *seq);
        let status = if violations.is_empty() { Status::Pass } else { Status::Fail };
        let total = violations.len();
        let mut lines: Vec<String> = violations.into_iter().take(VIOLATIONS_SHOWN_MAX).map(|(_, v)| v).collect();
        if total > VIOLATIONS_SHOWN_MAX {
            lines.push(format!("… and {} more", total - VIOLATIONS_SHOWN_MAX));
        }
        OracleResult { name: name.to_string(), status, checked, violations: lines, first_event }
    }
}

/// What an oracle may read.
pub struct History<'a> {
    pub events: &'a [Event],
    /// The server's namespace at the end of the run.
    pub store: &'a sim::nfs::store::Store,
}

impl History<'_> {
    /// Model annotations, with their events.
    pub fn notes(&self) -> impl Iterator<Item = (&Event, &str, u32, &ModelEvent)> {
        self.events.iter().filter_map(|e| match &e.kind {
            sim::EventKind::Note { host, pid, payload, .. } => {
                payload.downcast_ref::<ModelEvent>().map(|m| (e, &**host, *pid, m))
            }
            _ => None,
        })
    }
}

pub fn check(name: &str, history: &History) -> OracleResult {
    match name {
        "lock_exclusion" => lock_exclusion::check(history),
        "append_conservation" => append_conservation::check(history),
        other => unreachable!("scenario validation admits only known oracles, got {other}"),
    }
}
