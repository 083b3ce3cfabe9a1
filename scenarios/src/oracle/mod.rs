//! Oracles: properties checked over the recorded history, one per file.
//!
//! An oracle reads the trace (and, for end-state properties, the server's final
//! namespace); it never asks the model whether it behaved.

mod append_conservation;
mod liveness;
mod lock_exclusion;
mod lost_update;
mod message_conservation;
mod no_missing_list;
mod runner_errors;

use std::collections::{BTreeMap, BTreeSet};

pub use liveness::{is_draining_queue, DRAINING};

use serde::Serialize;
use sim::Event;

use model::ModelEvent;

/// Every oracle, by name.
pub const NAMES: &[&str] = &[
    "no_missing_list",
    "lock_exclusion",
    "message_conservation",
    "lost_update",
    "liveness",
    "runner_errors",
    "append_conservation",
];

/// One-line descriptions, for `mmsim list`.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    ("no_missing_list", "no process concluded that an existing list does not exist (MTA router, post, runners)"),
    ("message_conservation", "every message the MTA accepted reaches every member, or ends in shunt or bad/"),
    ("lost_update", "list saves never lose a post_id increment; no post number twice; registered bounces persist"),
    ("liveness", "after the load, every non-terminal queue drains and every lock is released within the budget"),
    ("runner_errors", "no unexpected error shunted, preserved or dropped a message, or killed a runner"),
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
    /// Counts by outcome, for oracles that keep a ledger.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tally: BTreeMap<String, u64>,
}

pub const VIOLATIONS_SHOWN_MAX: usize = 10;

impl OracleResult {
    fn new(name: &str, checked: u64, mut violations: Vec<(u64, String)>) -> OracleResult {
        violations.sort_by_key(|(seq, _)| *seq);
        let first_event = violations.first().map(|(seq, _)| *seq).filter(|seq| *seq != u64::MAX);
        let status = if violations.is_empty() { Status::Pass } else { Status::Fail };
        let total = violations.len();
        let mut lines: Vec<String> = violations.into_iter().take(VIOLATIONS_SHOWN_MAX).map(|(_, v)| v).collect();
        if total > VIOLATIONS_SHOWN_MAX {
            lines.push(format!("… and {} more", total - VIOLATIONS_SHOWN_MAX));
        }
        OracleResult { name: name.to_string(), status, checked, violations: lines, first_event, tally: BTreeMap::new() }
    }
}

/// What an oracle may read.
pub struct History<'a> {
    /// The events the run kept, in `seq` order: at least what
    /// [`crate::run::FOR_ORACLES`] keeps. Index by `seq` only through
    /// [`sim::events_before`].
    pub events: &'a [Event],
    /// The server's namespace at the end of the run.
    pub store: &'a sim::nfs::store::Store,
    /// Why the run did not end by draining, if it did not (budget, livelock).
    pub ending_problem: Option<String>,
    /// Whether lock files left at the end are a liveness failure (not after
    /// a crash that the scenario does not recover from).
    pub held_locks_must_be_free: bool,
}

impl History<'_> {
    /// Every list config on the server at the end, by list directory name.
    pub fn final_configs(&self) -> BTreeMap<String, model::ListConfig> {
        let mut out = BTreeMap::new();
        for e in self.store.dump() {
            let Some(rest) = e.path.strip_prefix("lists/") else { continue };
            let Some((list, file)) = rest.split_once('/') else { continue };
            if file != "config.pck" && file != "config.db" {
                continue;
            }
            if let Some(config) =
                self.store.read_file(&e.path).and_then(|d| serde_json::from_slice::<model::ListConfig>(d).ok())
            {
                out.entry(list.to_string()).or_insert(config);
            }
        }
        out
    }

    /// The members of every list at the end.
    pub fn final_members(&self) -> BTreeSet<String> {
        self.final_configs().values().flat_map(|c| c.members.iter().cloned()).collect()
    }

    pub fn final_bounce_addresses(&self, list: &str) -> BTreeSet<String> {
        self.final_configs().get(list).map(|c| c.bounce_info.keys().cloned().collect()).unwrap_or_default()
    }

    /// The server's last change to a list config name before event `seq`, as
    /// the server applied it: what the name looked like on the server then.
    pub fn name_state_at(&self, seq: u64, _list: &str) -> String {
        for e in sim::events_before(self.events, seq).iter().rev() {
            if let sim::EventKind::Apply { proc, args, status, xid, client, .. } = &e.kind {
                let touches = args.contains("\"config.pck\"") || args.contains("\"config.db\"");
                let changes = matches!(*proc, "RENAME" | "REMOVE" | "CREATE" | "LINK" | "SETATTR" | "WRITE");
                if touches && changes {
                    return format!(
                        "last change {proc} {args} {status} by {client} x{xid} at t={:.3}s [event {}]",
                        e.t.as_secs_f64(),
                        e.seq
                    );
                }
            }
        }
        "no server change to the config before this".into()
    }

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
        "no_missing_list" => no_missing_list::check(history),
        "message_conservation" => message_conservation::check(history),
        "lost_update" => lost_update::check(history),
        "liveness" => liveness::check(history),
        "runner_errors" => runner_errors::check(history),
        other => unreachable!("scenario validation admits only known oracles, got {other}"),
    }
}
