//! Every consumer of the trace in the report path, as one state machine fed
//! each event as it is recorded: the oracles, the coverage marks, the figures
//! and the lock waits. A run that only reports installs it as the trace's
//! observer and keeps no event; a run that kept its events feeds it after.

use std::collections::BTreeMap;
use std::time::Duration;

use model::ModelEvent;
use sim::Event;

use crate::figures::{FigureLedger, Figures};
use crate::marks::Marks;
use crate::oracle::{self, End, Oracle, OracleResult, Seen};
use crate::run::LockWaits;

pub struct Ledgers {
    oracles: Vec<Box<dyn Oracle>>,
    marks: Marks,
    figures: FigureLedger,
    lock_waits: LockWaitLedger,
    /// How many events were observed (a check that none was missed).
    observed: u64,
}

/// What the ledgers conclude at the end of a run.
pub struct Judged {
    pub oracles: Vec<OracleResult>,
    pub marks: BTreeMap<String, u64>,
    pub figures: Figures,
    pub lock_waits: LockWaits,
}

impl Ledgers {
    /// Ledgers for the oracles `enabled`, in that order, and for marks, figures and lock waits.
    pub fn new(enabled: &[String]) -> Ledgers {
        Ledgers {
            oracles: enabled.iter().map(|name| oracle::oracle(name)).collect(),
            marks: Marks::default(),
            figures: FigureLedger::default(),
            lock_waits: LockWaitLedger::default(),
            observed: 0,
        }
    }

    pub fn observe(&mut self, e: &Event) {
        self.observed += 1;
        let seen = Seen::of(e);
        for oracle in &mut self.oracles {
            oracle.observe(&seen);
        }
        self.marks.observe(e);
        self.figures.observe(e);
        self.lock_waits.observe(e);
    }

    pub fn observed(&self) -> u64 {
        self.observed
    }

    pub fn finish(self, end: &End, counters: &sim::Counters) -> Judged {
        Judged {
            oracles: self.oracles.into_iter().map(|o| o.finish(end)).collect(),
            marks: self.marks.finish(counters),
            figures: self.figures.finish(),
            lock_waits: self.lock_waits.finish(),
        }
    }
}

/// Lock waits read from the model's annotations: `LockContended` (first
/// EEXIST of a `lock()` call) to `LockAcquired` of the same claim.
#[derive(Default)]
struct LockWaitLedger {
    /// Claims waiting for a lock, since their first contention.
    contended: BTreeMap<String, Duration>,
    waits: Vec<u64>,
}

impl LockWaitLedger {
    fn observe(&mut self, e: &Event) {
        let sim::EventKind::Note { payload, .. } = &e.kind else { return };
        match payload.downcast_ref::<ModelEvent>() {
            Some(ModelEvent::LockContended { claim, .. }) if !self.contended.contains_key(claim.as_str()) => {
                self.contended.insert(claim.clone(), e.t);
            }
            Some(ModelEvent::LockAcquired { claim, .. }) => {
                let since = self.contended.remove(claim.as_str()).unwrap_or(e.t);
                self.waits.push((e.t - since).as_millis() as u64);
            }
            Some(ModelEvent::LockTimedOut { claim, .. }) => {
                self.contended.remove(claim.as_str());
            }
            _ => {}
        }
    }

    fn finish(self) -> LockWaits {
        let mut waits = self.waits;
        waits.sort_unstable();
        let pick =
            |q: f64| waits.get(((waits.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0);
        LockWaits {
            acquisitions: waits.len() as u64,
            p50: pick(0.50),
            p99: pick(0.99),
            max: waits.last().copied().unwrap_or(0),
        }
    }
}
