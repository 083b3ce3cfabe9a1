//! `message_conservation`: a ledger per message, from injection to delivery.
//!
//! Keyed by `Message-Id`: injected by the sender; answered by the MTA
//! (accepted, deferred, bounced); queued; delivered per recipient at the sink.
//! A recipient fails permanently when Mailman's SMTP session to the sink is
//! refused with 5xx, or when the MTA's delivery process to the smarthost
//! fails it (and bounces it to the list).
//! A message the MTA accepted must reach every member that does not fail
//! permanently, or end in `shunt` or `bad/`. Anything else is lost, which is a
//! violation. Duplicated deliveries are counted; Mailman 2.1 promises
//! at-least-once delivery (docs/semantics/mailman-queues-runners.md §6), so they are not violations.
//!
//! In a run cut off before it finished (`End::cut`), a message not yet
//! delivered whose queue entry (`.pck`, `.bak`, 2.0's `.db`/`.msg`) is still on
//! the server, or that the MTA had not yet answered, is pending, not lost: it is
//! tallied `pending_at_cut`, and the cut itself is the liveness verdict. A
//! message that left every queue undelivered is lost, cut or not.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use model::ModelEvent;

use super::{End, Oracle, OracleResult, Property, Seen, Violations};

/// A safety property: a message that left every queue undelivered is lost; one still queued is pending.
pub const PROPERTY: Property = Property::Safety;

#[derive(Default)]
struct Ledger {
    first_seq: u64,
    accepted: bool,
    bounced: Option<u16>,
    shunted: bool,
    deleted: bool,
    preserved: bool,
    /// Its queue entries, by filebase.
    filebases: BTreeSet<String>,
    /// Deliveries per recipient, indexed by recipient number (see `recipients`).
    delivered: Vec<u32>,
    /// Recipient numbers that failed permanently.
    permanent: BTreeSet<u32>,
}

#[derive(Default)]
pub struct MessageConservation {
    ledgers: BTreeMap<Rc<str>, Ledger>,
    /// Queue entry -> the message it holds.
    files: BTreeMap<String, Rc<str>>,
    /// Every recipient seen, numbered in order of appearance: a message's
    /// deliveries are counts indexed by these numbers, not a map of names.
    recipients: BTreeMap<String, u32>,
}

impl MessageConservation {
    fn ledger(&mut self, message_id: &str) -> &mut Ledger {
        if !self.ledgers.contains_key(message_id) {
            self.ledgers.insert(message_id.into(), Ledger::default());
        }
        self.ledgers.get_mut(message_id).expect("just inserted")
    }

    /// The ledger of a message the sender injected; the MTA's own bounce
    /// messages travel the same queues and have none.
    fn injected(&mut self, message_id: &str) -> Option<&mut Ledger> {
        self.ledgers.get_mut(message_id)
    }

    fn recipient(&mut self, recipient: &str) -> u32 {
        if let Some(n) = self.recipients.get(recipient) {
            return *n;
        }
        let n = self.recipients.len() as u32;
        self.recipients.insert(recipient.to_string(), n);
        n
    }
}

impl Oracle for MessageConservation {
    fn observe(&mut self, seen: &Seen) {
        let Some((_, _, note)) = seen.note else { return };
        match note {
            ModelEvent::SenderInjected { message_id, .. } if !self.ledgers.contains_key(message_id.as_str()) => {
                let ledger = Ledger { first_seq: seen.event.seq, ..Default::default() };
                self.ledgers.insert(message_id.as_str().into(), ledger);
            }
            ModelEvent::SenderAccepted { message_id, .. } => self.ledger(message_id).accepted = true,
            ModelEvent::SenderBounced { message_id, code, .. } => self.ledger(message_id).bounced = Some(*code),
            ModelEvent::QueueEnqueued { filebase, message_id, .. }
            | ModelEvent::QueueDequeued { filebase, message_id, .. } => {
                let id: Rc<str> = match self.ledgers.get_key_value(message_id.as_str()) {
                    Some((id, _)) => id.clone(),
                    None => message_id.as_str().into(),
                };
                // Only messages the sender injected have a ledger (not, say, a bounce notice).
                if let Some(ledger) = self.ledgers.get_mut(&id) {
                    if !ledger.filebases.contains(filebase.as_str()) {
                        ledger.filebases.insert(filebase.clone());
                    }
                }
                match self.files.get_mut(filebase.as_str()) {
                    Some(held) => *held = id,
                    None => {
                        self.files.insert(filebase.clone(), id);
                    }
                }
            }
            ModelEvent::Shunted { message_id, .. } => {
                if let Some(l) = self.injected(message_id) {
                    l.shunted = true;
                }
            }
            ModelEvent::MessageDeleted { message_id, .. } => {
                if let Some(l) = self.injected(message_id) {
                    l.deleted = true;
                }
            }
            ModelEvent::QueueFinished { filebase, outcome, .. } if *outcome == model::FinishOutcome::Preserved => {
                let held = self.files.get(filebase.as_str());
                if let Some(l) = held.and_then(|id| self.ledgers.get_mut(id)) {
                    l.preserved = true;
                }
            }
            ModelEvent::SinkReceived { message_id, recipient, .. } => {
                let n = self.recipient(recipient) as usize;
                if let Some(l) = self.injected(message_id) {
                    if l.delivered.len() <= n {
                        l.delivered.resize(n + 1, 0);
                    }
                    l.delivered[n] += 1;
                }
            }
            ModelEvent::SmtpRecipient { message_id, recipient, outcome, .. }
                if *outcome == model::RecipientOutcome::Permanent =>
            {
                let n = self.recipient(recipient);
                if let Some(l) = self.injected(message_id) {
                    l.permanent.insert(n);
                }
            }
            ModelEvent::MtaRemote { message_id, failed, .. } => {
                let failed: Vec<u32> = failed.iter().map(|r| self.recipient(r)).collect();
                if let Some(l) = self.injected(message_id) {
                    l.permanent.extend(failed);
                }
            }
            _ => {}
        }
    }

    fn finish(self: Box<Self>, end: &End) -> OracleResult {
        let members: Vec<(String, Option<u32>)> = end
            .final_members()
            .into_iter()
            .map(|m| {
                let n = self.recipients.get(&m).copied();
                (m, n)
            })
            .collect();
        // The filebases still queued at a cut (a file name minus its extension).
        let queued: BTreeSet<String> = if end.cut {
            end.store
                .dump()
                .into_iter()
                .filter(|e| !e.dir && e.path.starts_with("qfiles/"))
                .filter_map(|e| {
                    let name = e.path.rsplit('/').next()?;
                    Some(name.rsplit_once('.').map_or(name, |(base, _)| base).to_string())
                })
                .collect()
        } else {
            BTreeSet::new()
        };
        let mut violations = Violations::default();
        let mut tally: BTreeMap<&str, u64> = BTreeMap::new();
        for (id, l) in &self.ledgers {
            let still_queued = || l.filebases.iter().any(|f| queued.contains(f));
            let delivered = |n: Option<u32>| n.and_then(|n| l.delivered.get(n as usize)).is_some_and(|d| *d > 0);
            let expected: Vec<&(String, Option<u32>)> =
                members.iter().filter(|(_, n)| !n.is_some_and(|n| l.permanent.contains(&n))).collect();
            let missing: Vec<&&(String, Option<u32>)> = expected.iter().filter(|(_, n)| !delivered(*n)).collect();
            let duplicated = l.delivered.iter().filter(|n| **n > 1).count() as u64;
            *tally.entry("duplicated_deliveries").or_default() += duplicated;
            let outcome = if let Some(code) = l.bounced {
                if code == 550 {
                    "bounced"
                } else {
                    "bounced_other"
                }
            } else if !l.accepted && end.cut {
                "pending_at_cut"
            } else if !l.accepted {
                "never_accepted"
            } else if l.shunted {
                "shunted"
            } else if l.preserved {
                "preserved_bad"
            } else if l.deleted {
                "deleted"
            } else if missing.is_empty() {
                "delivered"
            } else if end.cut && still_queued() {
                "pending_at_cut"
            } else {
                violations.push(l.first_seq, || {
                    format!(
                        "message {id}: accepted but {} of {} expected recipients never received it (e.g. {}) [event {}]",
                        missing.len(),
                        expected.len(),
                        missing[0].0,
                        l.first_seq
                    )
                });
                "lost"
            };
            *tally.entry(outcome).or_default() += 1;
            if outcome == "never_accepted" {
                violations.push(l.first_seq, || {
                    format!("message {id}: injected but never answered by the MTA [event {}]", l.first_seq)
                });
            }
            if outcome == "deleted" {
                violations
                    .push(l.first_seq, || format!("message {id}: deleted without delivery [event {}]", l.first_seq));
            }
        }
        let mut result = OracleResult::new("message_conservation", self.ledgers.len() as u64, violations);
        result.tally = tally.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        result
    }
}
