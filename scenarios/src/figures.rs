//! Per-run figures that experiments aggregate: throughput and the delay in
//! registering bounces, read from the model's notes in the trace (like the
//! oracles, never by asking the model).
//!
//! Definitions (docs/experiment-format.md §metrics):
//! - an **acquisition** is a `LockAcquired` note (any lock); `last_acquired_ms`
//!   is the simulated time of the last one, so acquisitions per second are
//!   `acquisitions / last_acquired_ms`;
//! - a **delivery** is a `SinkReceived` note (one recipient's copy accepted
//!   downstream); deliveries per second likewise use `last_delivery_ms`;
//! - a **permanent failure** is an `SmtpRecipient` note with outcome
//!   `permanent`, or an address an `MtaRemote` note failed (the MTA's delivery
//!   process to the smarthost, for the list whose `-bounces` address sent
//!   it); its **bounce delay** runs from that note to the
//!   `BounceRegistered` note that registers it, paired first-in first-out per
//!   (list, address). Failures never registered by the end of the run (lost on
//!   a runner's stop or crash, R20 of docs/semantics/mailman-races.md, or still pending) are counted
//!   in `permanent_failures` but have no delay.
//!
//! Left out: per-lock breakdowns (every lock counts), and bounces the
//! BounceRunner registers from the events file (2.1.5+) are paired the same way.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use model::ModelEvent;
use serde::{Deserialize, Serialize};

/// What one run did, in counts and simulated milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub last_acquired_ms: u64,
    pub deliveries: u64,
    pub last_delivery_ms: u64,
    pub permanent_failures: u64,
    /// One entry per registered permanent failure, in registration order.
    pub bounce_delays_ms: Vec<u64>,
    /// The run in the operator's words (`mail.rs`).
    #[serde(default)]
    pub mail: crate::mail::MailFigures,
}

/// The figures, computed as events are recorded.
#[derive(Default)]
pub struct FigureLedger {
    figures: Figures,
    /// list -> recipient -> when each of its unregistered permanent failures happened.
    pending: BTreeMap<String, BTreeMap<String, VecDeque<Duration>>>,
    mail: crate::mail::MailLedger,
}

impl FigureLedger {
    pub fn observe(&mut self, e: &sim::Event) {
        self.mail.observe(e);
        let sim::EventKind::Note { payload, .. } = &e.kind else { return };
        let f = &mut self.figures;
        let ms = e.t.as_millis() as u64;
        match payload.downcast_ref::<ModelEvent>() {
            Some(ModelEvent::LockAcquired { .. }) => f.last_acquired_ms = ms,
            Some(ModelEvent::SinkReceived { .. }) => {
                f.deliveries += 1;
                f.last_delivery_ms = ms;
            }
            Some(ModelEvent::SmtpRecipient { list, recipient, outcome, .. })
                if *outcome == model::RecipientOutcome::Permanent =>
            {
                self.permanent(list, recipient, e.t);
            }
            Some(ModelEvent::MtaRemote { sender, failed, .. }) => {
                // Mailman's envelope sender is the list's `-bounces` address.
                let (local, _) = model::smtp::split_address(sender);
                if let Some(list) = local.strip_suffix("-bounces") {
                    for recipient in failed {
                        self.permanent(list, recipient, e.t);
                    }
                }
            }
            Some(ModelEvent::BounceRegistered { list, address }) => {
                let pending = self.pending.get_mut(list.as_str()).and_then(|r| r.get_mut(address.as_str()));
                if let Some(at) = pending.and_then(VecDeque::pop_front) {
                    f.bounce_delays_ms.push((e.t - at).as_millis() as u64);
                }
            }
            _ => {}
        }
    }

    fn permanent(&mut self, list: &str, recipient: &str, t: Duration) {
        self.figures.permanent_failures += 1;
        let by_recipient = match self.pending.get_mut(list) {
            Some(r) => r,
            None => self.pending.entry(list.to_string()).or_default(),
        };
        match by_recipient.get_mut(recipient) {
            Some(q) => q.push_back(t),
            None => {
                by_recipient.insert(recipient.to_string(), VecDeque::from([t]));
            }
        }
    }

    pub fn finish(self) -> Figures {
        Figures { mail: self.mail.finish(), ..self.figures }
    }
}

/// The figures of a recorded trace.
pub fn figures(events: &[sim::Event]) -> Figures {
    let mut ledger = FigureLedger::default();
    for e in events {
        ledger.observe(e);
    }
    ledger.finish()
}
