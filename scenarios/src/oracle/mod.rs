//! Oracles: properties checked over the recorded history, one per file.
//!
//! An oracle reads the trace (and, for end-state properties, the server's final
//! namespace); it never asks the model whether it behaved. Each is a state
//! machine ([`Oracle`]) shown every event as it is recorded: it keeps its
//! ledger, never the events, so that a run that only reports keeps none.
//! [`check`] runs the same machine over a recorded [`History`].

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

pub use crate::verdict::Property;

/// An oracle: its name, what it checks, whether a failure is a safety or a
/// liveness verdict (the oracle's own `PROPERTY`), and its state machine.
pub struct OracleSpec {
    pub name: &'static str,
    /// One line, for `mmsim list`.
    pub description: &'static str,
    pub property: Property,
    make: fn() -> Box<dyn Oracle>,
}

/// Every oracle, in report order (a scenario that names none enables them all, in this order).
pub const ORACLES: &[OracleSpec] = &[
    OracleSpec {
        name: "no_missing_list",
        description: "no process concluded that an existing list does not exist (MTA router, post, runners)",
        property: no_missing_list::PROPERTY,
        make: || Box::<no_missing_list::NoMissingList>::default(),
    },
    OracleSpec {
        name: "lock_exclusion",
        description:
            "no two holders of one lock between lock() returning and unlock() starting, in true simulated time",
        property: lock_exclusion::PROPERTY,
        make: || Box::<lock_exclusion::LockExclusion>::default(),
    },
    OracleSpec {
        name: "message_conservation",
        description: "every message the MTA accepted reaches every member, or ends in shunt or bad/",
        property: message_conservation::PROPERTY,
        make: || Box::<message_conservation::MessageConservation>::default(),
    },
    OracleSpec {
        name: "lost_update",
        description: "list saves never lose a post_id increment; no post number twice; registered bounces persist",
        property: lost_update::PROPERTY,
        make: || Box::<lost_update::LostUpdate>::default(),
    },
    OracleSpec {
        name: "liveness",
        description:
            "after the load and the heal, every non-terminal queue drains and every lock is released within the budget",
        property: liveness::PROPERTY,
        make: || Box::new(liveness::Liveness),
    },
    OracleSpec {
        name: "runner_errors",
        description: "no unexpected error shunted, preserved or dropped a message, or killed a runner",
        property: runner_errors::PROPERTY,
        make: || Box::<runner_errors::RunnerErrors>::default(),
    },
    OracleSpec {
        name: "append_conservation",
        description: "every record a process appended inside its critical section is in the final file, exactly once",
        property: append_conservation::PROPERTY,
        make: || Box::<append_conservation::AppendConservation>::default(),
    },
];

/// The oracle called `name`, if there is one.
pub fn spec(name: &str) -> Option<&'static OracleSpec> {
    ORACLES.iter().find(|o| o.name == name)
}

/// Whether `name` is an oracle.
pub fn is_oracle(name: &str) -> bool {
    spec(name).is_some()
}

/// The oracle names, comma-separated, for error messages.
pub fn names() -> String {
    ORACLES.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
}

fn known(name: &str) -> &'static OracleSpec {
    spec(name).unwrap_or_else(|| unreachable!("scenario validation admits only known oracles, got {name}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OracleResult {
    pub name: String,
    /// Whether a failure is a safety or a liveness verdict (the oracle's own declaration).
    pub property: Property,
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

/// The violations an oracle found, as its report shows them: the first
/// [`VIOLATIONS_SHOWN_MAX`] by event (then in the order found; `u64::MAX` for
/// a violation of the end state), and how many there were.
#[derive(Default)]
pub(crate) struct Violations {
    /// (event, order found) -> text; never more than `VIOLATIONS_SHOWN_MAX`.
    shown: BTreeMap<(u64, u64), String>,
    total: u64,
}

impl Violations {
    /// A violation at event `seq`; `text` is only rendered when it would be shown.
    pub fn push(&mut self, seq: u64, text: impl FnOnce() -> String) {
        let key = (seq, self.total);
        self.total += 1;
        if self.shown.len() == VIOLATIONS_SHOWN_MAX {
            if self.shown.last_key_value().is_some_and(|(last, _)| *last < key) {
                return;
            }
            self.shown.pop_last();
        }
        self.shown.insert(key, text());
    }
}

impl OracleResult {
    /// A result of oracle `name`, which must be in [`ORACLES`] (its property comes from [`property`]).
    fn new(name: &str, checked: u64, violations: Violations) -> OracleResult {
        let first_event = violations.shown.keys().next().map(|(seq, _)| *seq).filter(|seq| *seq != u64::MAX);
        let status = if violations.total == 0 { Status::Pass } else { Status::Fail };
        let mut lines: Vec<String> = violations.shown.into_values().collect();
        if violations.total > VIOLATIONS_SHOWN_MAX as u64 {
            lines.push(format!("… and {} more", violations.total - VIOLATIONS_SHOWN_MAX as u64));
        }
        OracleResult {
            name: name.to_string(),
            property: property(name),
            status,
            checked,
            violations: lines,
            first_event,
            tally: BTreeMap::new(),
        }
    }
}

/// One event as an oracle sees it: with its model annotation, if it is one.
pub struct Seen<'a> {
    pub event: &'a Event,
    /// `(host, pid, annotation)` of a `Note` whose payload is a [`ModelEvent`].
    pub note: Option<(&'a str, u32, &'a ModelEvent)>,
}

impl<'a> Seen<'a> {
    pub fn of(event: &'a Event) -> Seen<'a> {
        let note = match &event.kind {
            sim::EventKind::Note { host, pid, payload, .. } => {
                payload.downcast_ref::<ModelEvent>().map(|m| (&**host, *pid, m))
            }
            _ => None,
        };
        Seen { event, note }
    }
}

/// One property as a state machine: shown every event of a run in order, as it
/// is recorded, it keeps only its ledger; `finish` judges the ledger against
/// the end of the run.
pub trait Oracle {
    fn observe(&mut self, seen: &Seen);
    fn finish(self: Box<Self>, end: &End) -> OracleResult;
}

/// What oracle `name` checks: a safety property (judged on what completed,
/// even in a run cut off by its budget) or a liveness one (judged at the end,
/// after the heal). See `verdict.rs`.
pub fn property(name: &str) -> Property {
    known(name).property
}

/// A fresh state machine for oracle `name`.
pub fn oracle(name: &str) -> Box<dyn Oracle> {
    (known(name).make)()
}

/// What an oracle may read after the run: the end state.
pub struct End<'a> {
    /// The server's namespace at the end of the run.
    pub store: &'a sim::nfs::store::Store,
    /// Why the run did not end by draining, if it did not (budget, livelock).
    pub ending_problem: Option<&'a str>,
    /// Whether the run was cut off (budget, livelock) before its work was done.
    /// A safety oracle then judges only what completed: work still in flight at
    /// the cut (a message still queued, a bounce registered but not yet saved, a
    /// record written but not yet noted) is pending, not lost.
    pub cut: bool,
    /// Whether lock files left at the end are a liveness failure (not after
    /// a crash that the scenario does not recover from).
    pub held_locks_must_be_free: bool,
}

impl End<'_> {
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
                self.store.read_file(&e.path).and_then(|d| model::ListConfig::decode(d).ok().map(|c| (*c).clone()))
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
}

/// A recorded history, for the tools that keep every event (and tests on
/// hand-made histories).
pub struct History<'a> {
    /// The events, in `seq` order.
    pub events: &'a [Event],
    /// The server's namespace at the end of the run.
    pub store: &'a sim::nfs::store::Store,
    /// Why the run did not end by draining, if it did not (budget, livelock).
    pub ending_problem: Option<String>,
    /// Whether the run was cut off before its work was done (see [`End::cut`]).
    pub cut: bool,
    /// Whether lock files left at the end are a liveness failure (not after
    /// a crash that the scenario does not recover from).
    pub held_locks_must_be_free: bool,
}

impl History<'_> {
    pub fn end(&self) -> End<'_> {
        End {
            store: self.store,
            ending_problem: self.ending_problem.as_deref(),
            cut: self.cut,
            held_locks_must_be_free: self.held_locks_must_be_free,
        }
    }
}

/// Checks oracle `name` on a whole history: the same state machine a run
/// feeds as it goes, fed every event of `history`, then finished.
pub fn check(name: &str, history: &History) -> OracleResult {
    let mut oracle = oracle(name);
    for event in history.events {
        oracle.observe(&Seen::of(event));
    }
    oracle.finish(&history.end())
}
