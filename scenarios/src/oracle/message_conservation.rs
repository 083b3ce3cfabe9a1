//! `message_conservation`: a ledger per message, from injection to delivery.
//!
//! Keyed by `Message-Id`: injected by the sender; answered by the MTA
//! (accepted, deferred, bounced); queued; delivered per recipient at the sink.
//! A message the MTA accepted must reach every member that does not fail
//! permanently, or end in `shunt` or `bad/`. Anything else is lost, which is a
//! violation. Duplicated deliveries are counted; Mailman 2.1 promises
//! at-least-once delivery (spec/mailman.md §3.5), so they are not violations.

use std::collections::{BTreeMap, BTreeSet};

use model::ModelEvent;

use super::{History, OracleResult};

#[derive(Default)]
struct Ledger {
    first_seq: u64,
    accepted: bool,
    bounced: Option<u16>,
    shunted: bool,
    deleted: bool,
    preserved: bool,
    delivered: BTreeMap<String, u32>,
    permanent: BTreeSet<String>,
}

pub fn check(history: &History) -> OracleResult {
    let mut ledgers: BTreeMap<&str, Ledger> = BTreeMap::new();
    let mut files: BTreeMap<&str, &str> = BTreeMap::new();
    for (event, _, _, note) in history.notes() {
        match note {
            ModelEvent::SenderInjected { message_id, .. } => {
                ledgers.entry(message_id).or_insert_with(|| Ledger { first_seq: event.seq, ..Default::default() });
            }
            ModelEvent::SenderAccepted { message_id, .. } => ledgers.entry(message_id).or_default().accepted = true,
            ModelEvent::SenderBounced { message_id, code, .. } => {
                ledgers.entry(message_id).or_default().bounced = Some(*code)
            }
            ModelEvent::QueueEnqueued { filebase, message_id, .. }
            | ModelEvent::QueueDequeued { filebase, message_id, .. } => {
                files.insert(filebase, message_id);
            }
            ModelEvent::Shunted { message_id, .. } => ledgers.entry(message_id).or_default().shunted = true,
            ModelEvent::MessageDeleted { message_id, .. } => ledgers.entry(message_id).or_default().deleted = true,
            ModelEvent::QueueFinished { filebase, outcome, .. } if outcome == "preserved" => {
                if let Some(id) = files.get(filebase.as_str()) {
                    ledgers.entry(id).or_default().preserved = true;
                }
            }
            ModelEvent::SinkReceived { message_id, recipient, .. } => {
                *ledgers.entry(message_id).or_default().delivered.entry(recipient.clone()).or_default() += 1;
            }
            ModelEvent::SmtpRecipient { message_id, recipient, outcome, .. } if outcome == "permanent" => {
                ledgers.entry(message_id).or_default().permanent.insert(recipient.clone());
            }
            _ => {}
        }
    }
    let members = history.final_members();
    let mut violations = Vec::new();
    let mut tally: BTreeMap<&str, u64> = BTreeMap::new();
    for (id, l) in &ledgers {
        let expected: Vec<&String> = members.iter().filter(|m| !l.permanent.contains(*m)).collect();
        let missing: Vec<&&String> = expected.iter().filter(|m| !l.delivered.contains_key(m.as_str())).collect();
        let duplicated = l.delivered.values().filter(|n| **n > 1).count() as u64;
        *tally.entry("duplicated_deliveries").or_default() += duplicated;
        let outcome = if let Some(code) = l.bounced {
            if code == 550 {
                "bounced"
            } else {
                "bounced_other"
            }
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
        } else {
            violations.push((
                l.first_seq,
                format!(
                    "message {id}: accepted but {} of {} expected recipients never received it (e.g. {}) [event {}]",
                    missing.len(),
                    expected.len(),
                    missing[0],
                    l.first_seq
                ),
            ));
            "lost"
        };
        *tally.entry(outcome).or_default() += 1;
        if outcome == "never_accepted" {
            violations.push((
                l.first_seq,
                format!("message {id}: injected but never answered by the MTA [event {}]", l.first_seq),
            ));
        }
        if outcome == "deleted" {
            violations.push((l.first_seq, format!("message {id}: deleted without delivery [event {}]", l.first_seq)));
        }
    }
    let mut result = OracleResult::new("message_conservation", ledgers.len() as u64, violations);
    result.tally = tally.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    result
}
