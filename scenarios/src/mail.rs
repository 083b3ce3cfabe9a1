//! The run in the operator's words: how many messages were injected,
//! accepted, delivered to every member and bounced, with the bounces split by
//! cause, and how many times a list appeared missing, by mechanism. Read from
//! the model's notes and the calls in the trace, like the oracles (never by
//! asking the model). Definitions: docs/experiment-format.md §mail.
//!
//! - **injected**: `SenderInjected` (a message's first attempt);
//!   **accepted**: `SenderAccepted`; **bounced**: `SenderBounced` (a 5xx, or
//!   the sender gave up after its last deferral).
//! - **delivered**: an accepted message every recipient of which, as Mailman
//!   addressed it (`SmtpRecipient`), got a copy at the sink (`SinkReceived`) or
//!   failed permanently downstream (a refusal, or an address the MTA's
//!   delivery process failed): what the operator calls "reached every member".
//! - **an appearance** of a missing list is one process concluding that an
//!   existing list (one whose config was saved) does not exist: the MTA
//!   router's `require_files` stat at RCPT or at delivery, `list_exists()` in
//!   `post` (and `post`'s exit 1 that follows it counts once), `post` exiting 1
//!   on a failed Load (2.0), or a runner dropping a message for a missing list.
//!   Its **mechanism** is where it happened and what answered the failing call:
//!   a negative dentry, the server (an RPC that got NOENT: the name was absent
//!   on the server at that instant), a stale handle (ESTALE), or other.
//! - **bounced for a missing list**: the appearances that send a 550 back to
//!   the sender: the router's, for a list's posting address (not its
//!   `-bounces` address, which carries the MTA's own bounces), and `post`'s
//!   exit 1. A message bounces at most once, so they are capped by `bounced`.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use model::{ModelEvent, RouteStage};
use serde::{Deserialize, Serialize};
use sim::{EventKind, Outcome};

/// Where a list appeared missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// The MTA's router verifying at RCPT.
    Rcpt,
    /// The MTA's router routing again for delivery, after DATA.
    Delivery,
    /// `post` (`list_exists()`, or a failed Load in 2.0).
    Post,
    /// A queue runner dropping a message for a missing list.
    Runner,
}

impl Place {
    pub fn name(self) -> &'static str {
        match self {
            Place::Rcpt => "rcpt",
            Place::Delivery => "delivery",
            Place::Post => "post",
            Place::Runner => "runner",
        }
    }
}

/// What answered the call that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// A negative dentry, without an RPC.
    NegativeDentry,
    /// An RPC: the server said NOENT.
    Server,
    /// ESTALE: a handle the server no longer knows.
    StaleHandle,
    Other,
}

impl Answer {
    pub fn name(self) -> &'static str {
        match self {
            Answer::NegativeDentry => "negative_dentry",
            Answer::Server => "server",
            Answer::StaleHandle => "stale_handle",
            Answer::Other => "other",
        }
    }

    /// What answered a call, from its outcome and `served_by`.
    fn of(outcome: &Outcome, served_by: &str) -> Answer {
        match outcome {
            Err(e) if *e == libc::ESTALE => Answer::StaleHandle,
            Err(e) if *e == libc::ENOENT && served_by.contains("neg-dentry") => Answer::NegativeDentry,
            Err(e) if *e == libc::ENOENT && !crate::trace_query::cache_served(served_by) => Answer::Server,
            _ => Answer::Other,
        }
    }
}

/// Every mechanism, in report order: `<place>_<answer>`.
pub fn mechanisms() -> impl Iterator<Item = String> {
    [Place::Rcpt, Place::Delivery, Place::Post, Place::Runner].into_iter().flat_map(|p| {
        [Answer::NegativeDentry, Answer::Server, Answer::StaleHandle, Answer::Other]
            .into_iter()
            .map(move |a| format!("{}_{}", p.name(), a.name()))
    })
}

/// One run's mail figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MailFigures {
    pub injected: u64,
    pub accepted: u64,
    /// Accepted messages that reached every member (see the module comment).
    pub delivered: u64,
    /// Accepted messages that did not reach every member and ended in `shunt`.
    #[serde(default)]
    pub shunted: u64,
    /// Accepted messages that neither reached every member nor ended in
    /// `shunt` (still queued at the end, in `bad/`, or lost).
    #[serde(default)]
    pub undelivered: u64,
    pub bounced: u64,
    /// Bounces because a list appeared missing.
    pub bounced_list_missing: u64,
    /// Appearances of a missing list, by mechanism (`<place>_<answer>`), only those seen.
    pub missing: BTreeMap<String, u64>,
}

impl MailFigures {
    /// Adds another run's figures (a sweep's totals).
    pub fn add(&mut self, other: &MailFigures) {
        self.injected += other.injected;
        self.accepted += other.accepted;
        self.delivered += other.delivered;
        self.shunted += other.shunted;
        self.undelivered += other.undelivered;
        self.bounced += other.bounced;
        self.bounced_list_missing += other.bounced_list_missing;
        for (k, v) in &other.missing {
            *self.missing.entry(k.clone()).or_default() += v;
        }
    }

    pub fn appearances(&self) -> u64 {
        self.missing.values().sum()
    }

    pub fn bounced_other(&self) -> u64 {
        self.bounced - self.bounced_list_missing
    }

    /// Bounces per 1000 injected messages.
    pub fn bounced_per_1000(&self) -> f64 {
        if self.injected == 0 {
            0.0
        } else {
            self.bounced as f64 * 1000.0 / self.injected as f64
        }
    }

    /// The report's `mail` line, or `None` for a run without mail.
    pub fn mail_line(&self) -> Option<String> {
        if self.injected == 0 {
            return None;
        }
        let mut short = String::new();
        if self.shunted > 0 {
            short.push_str(&format!(", shunted {}", self.shunted));
        }
        if self.undelivered > 0 {
            short.push_str(&format!(", undelivered {}", self.undelivered));
        }
        Some(format!(
            "injected {}, accepted {}, delivered to every member {}{short}, bounced {} of {} ({} list-missing, {} other)",
            self.injected,
            self.accepted,
            self.delivered,
            self.bounced,
            self.injected,
            self.bounced_list_missing,
            self.bounced_other()
        ))
    }

    /// The report's `missing` line: how many times a list appeared missing, by mechanism.
    pub fn missing_line(&self) -> String {
        let n = self.appearances();
        if n == 0 {
            return "a list never appeared missing".into();
        }
        let parts: Vec<String> = mechanisms()
            .filter_map(|m| self.missing.get(&m).map(|k| format!("{k} {}", m.replacen('_', ": ", 1).replace('_', " "))))
            .collect();
        format!("a list appeared missing {n} time{}: {}", if n == 1 { "" } else { "s" }, parts.join(", "))
    }
}

/// One message's deliveries, by recipient number.
#[derive(Default)]
struct Message {
    accepted: bool,
    shunted: bool,
    /// Recipients Mailman addressed.
    addressed: Vec<u32>,
    /// Recipients that got a copy or failed permanently downstream.
    done: Vec<u32>,
}

/// The figures, computed as events are recorded.
#[derive(Default)]
pub struct MailLedger {
    figures: MailFigures,
    messages: BTreeMap<Rc<str>, Message>,
    recipients: BTreeMap<String, u32>,
    /// Lists whose config has been saved.
    created: BTreeSet<String>,
    /// host -> pid -> what answered the first of its calls on a list's files
    /// that have failed since its last one that succeeded: the MTA's
    /// `require_files` stat, the first file of `list_exists()`'s chain, the
    /// open of a 2.0 Load.
    first_failure: BTreeMap<Rc<str>, BTreeMap<u32, Answer>>,
    /// host -> pids whose `list_exists()` was false (their exit 1 is the same appearance).
    list_exists_false: BTreeMap<Rc<str>, Vec<u32>>,
    /// Appearances that bounced the sender's message.
    list_missing_bounces: u64,
}

impl MailLedger {
    fn recipient(&mut self, recipient: &str) -> u32 {
        if let Some(n) = self.recipients.get(recipient) {
            return *n;
        }
        let n = self.recipients.len() as u32;
        self.recipients.insert(recipient.to_string(), n);
        n
    }

    fn message(&mut self, message_id: &str) -> Option<&mut Message> {
        self.messages.get_mut(message_id)
    }

    fn done(&mut self, message_id: &str, recipient: &str) {
        if self.messages.contains_key(message_id) {
            let n = self.recipient(recipient);
            if let Some(m) = self.message(message_id) {
                m.done.push(n);
            }
        }
    }

    /// Counts an appearance of a missing `list`; false (nothing counted)
    /// when the list's config has never been saved.
    fn appeared(&mut self, host: &str, pid: u32, list: &str, place: Place) -> bool {
        if !self.created.contains(list) {
            return false;
        }
        let answer = self.first_failure.get(host).and_then(|p| p.get(&pid)).copied().unwrap_or(Answer::Other);
        let key = format!("{}_{}", place.name(), answer.name());
        *self.figures.missing.entry(key).or_default() += 1;
        true
    }

    pub fn observe(&mut self, e: &sim::Event) {
        match &e.kind {
            EventKind::Call { host, pid, args, outcome, served_by, .. } if args.contains("lists/") => {
                let pids = match self.first_failure.get_mut(&**host) {
                    Some(pids) => pids,
                    None => self.first_failure.entry(host.clone()).or_default(),
                };
                match outcome {
                    Ok(_) => {
                        pids.remove(pid);
                    }
                    Err(_) => {
                        pids.entry(*pid).or_insert_with(|| Answer::of(outcome, served_by));
                    }
                }
            }
            EventKind::Note { host, pid, payload, .. } => {
                if let Some(note) = payload.downcast_ref::<ModelEvent>() {
                    self.note(host, *pid, note);
                }
            }
            _ => {}
        }
    }

    fn note(&mut self, host: &Rc<str>, pid: u32, note: &ModelEvent) {
        match note {
            ModelEvent::SenderInjected { message_id, .. } if !self.messages.contains_key(message_id.as_str()) => {
                self.messages.insert(message_id.as_str().into(), Message::default());
                self.figures.injected += 1;
            }
            ModelEvent::SenderAccepted { message_id, .. } => {
                self.figures.accepted += 1;
                if let Some(m) = self.message(message_id) {
                    m.accepted = true;
                }
            }
            ModelEvent::SenderBounced { .. } => self.figures.bounced += 1,
            ModelEvent::SmtpRecipient { message_id, recipient, outcome, .. }
                if self.messages.contains_key(message_id.as_str()) =>
            {
                let n = self.recipient(recipient);
                if let Some(m) = self.message(message_id) {
                    m.addressed.push(n);
                    if *outcome == model::RecipientOutcome::Permanent {
                        m.done.push(n);
                    }
                }
            }
            ModelEvent::SinkReceived { message_id, recipient, .. } => self.done(message_id, recipient),
            ModelEvent::SinkRefused { message_id, recipient, code } if *code >= 500 => self.done(message_id, recipient),
            ModelEvent::MtaRemote { message_id, failed, .. } => {
                for recipient in failed {
                    self.done(message_id, recipient);
                }
            }
            ModelEvent::ListSaved { list, .. } if !self.created.contains(list.as_str()) => {
                self.created.insert(list.clone());
            }
            ModelEvent::MtaRouted { list, recipient, decision, stage, .. }
                if *decision == model::RouteDecision::BouncedUnknownList =>
            {
                let place = match stage {
                    RouteStage::Verify => Place::Rcpt,
                    RouteStage::Delivery => Place::Delivery,
                };
                let (local, _) = model::smtp::split_address(recipient);
                if self.appeared(host, pid, list, place) && local.eq_ignore_ascii_case(list) {
                    self.list_missing_bounces += 1;
                }
            }
            ModelEvent::ListMissing { list, files, .. } if !files.is_empty() => {
                self.appeared(host, pid, list, Place::Post);
                self.list_exists_false.entry(host.clone()).or_default().push(pid);
            }
            ModelEvent::PostExited { list, exit_code: 1, .. } => {
                if !self.created.contains(list.as_str()) {
                    return;
                }
                let seen = self.list_exists_false.get(&**host).is_some_and(|pids| pids.contains(&pid));
                if !seen {
                    self.appeared(host, pid, list, Place::Post);
                }
                self.list_missing_bounces += 1;
            }
            ModelEvent::Shunted { list, reason, message_id, .. } => {
                if let Some(m) = self.message(message_id) {
                    m.shunted = true;
                }
                if reason.is_missing_list() {
                    self.appeared(host, pid, list, Place::Runner);
                }
            }
            ModelEvent::MessageDeleted { list, reason, .. } if reason.is_missing_list() => {
                self.appeared(host, pid, list, Place::Runner);
            }
            _ => {}
        }
    }

    pub fn finish(mut self) -> MailFigures {
        for m in self.messages.values_mut() {
            if !m.accepted {
                continue;
            }
            m.addressed.sort_unstable();
            m.addressed.dedup();
            m.done.sort_unstable();
            m.done.dedup();
            if !m.addressed.is_empty() && m.addressed.iter().all(|r| m.done.binary_search(r).is_ok()) {
                self.figures.delivered += 1;
            } else if m.shunted {
                self.figures.shunted += 1;
            } else {
                self.figures.undelivered += 1;
            }
        }
        self.figures.bounced_list_missing = self.list_missing_bounces.min(self.figures.bounced);
        self.figures
    }
}
