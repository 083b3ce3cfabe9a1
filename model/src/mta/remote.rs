//! The MTA's delivery process for the smarthost router's addresses
//! (docs/semantics/exim.md §remote delivery): the `remote_smtp` transport,
//! Exim's retry rule, and the bounce message for what fails.
//!
//! Models: one SMTP connection to the smarthost per attempt; the addresses in
//! transactions of at most `max_rcpt`; per address, a 2xx after DATA →
//! delivered, a 5xx (to RCPT, or to MAIL or DATA for the whole transaction)
//! → failed, a 4xx or a lost connection → deferred. Deferred addresses are
//! tried again on the retry rule's schedule, measured from the first
//! failure; past the rule's last cutoff they fail ("retry timeout
//! exceeded"). Failed addresses are reported to the envelope sender in one
//! bounce message (a DSN with `X-Failed-Recipients`, from `<>`), which Exim
//! delivers like any message: routed (a local domain goes through the Mailman
//! router and its `require_files` check) and transported. A bounce that cannot
//! be delivered is frozen (logged). Left out: parallel connections
//! (`remote_max_parallel`), hints databases, queue runs (a retry happens at
//! its scheduled time), and the spool.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{deliver_local, split_address, MtaSettings, PipeOutcome};
use crate::event::ModelEvent;
use crate::message::message_id_in_text;
use crate::os::{errno_name, Os};
use crate::smtp::{SmtpClient, SmtpError};
use crate::syslog::syslog;

/// One step of a retry rule, in force until `until_s` after the first failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryStep {
    /// `F,<until>,<every>`.
    Fixed { until_s: f64, every_s: f64 },
    /// `G,<until>,<first>,<factor>`: the interval starts at `first_s` and is
    /// multiplied by `factor` after each try.
    Geometric { until_s: f64, first_s: f64, factor: f64 },
}

/// `begin retry`: the default configuration's `* * F,2h,15m; G,16h,1h,1.5; F,4d,6h`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    pub steps: Vec<RetryStep>,
}

impl Default for RetryRule {
    fn default() -> Self {
        const H: f64 = 3600.0;
        RetryRule {
            steps: vec![
                RetryStep::Fixed { until_s: 2.0 * H, every_s: 15.0 * 60.0 },
                RetryStep::Geometric { until_s: 16.0 * H, first_s: H, factor: 1.5 },
                RetryStep::Fixed { until_s: 96.0 * H, every_s: 6.0 * H },
            ],
        }
    }
}

/// Where a message is in its retry schedule: the step and wait of the last retry.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryState {
    last: Option<(usize, Duration)>,
}

impl RetryStep {
    pub fn until_s(&self) -> f64 {
        match *self {
            RetryStep::Fixed { until_s, .. } | RetryStep::Geometric { until_s, .. } => until_s,
        }
    }
}

impl RetryRule {
    /// The wait before the next try, `elapsed` after the first failure;
    /// `None` once the last cutoff has passed.
    pub fn next_wait(&self, elapsed: Duration, state: &mut RetryState) -> Option<Duration> {
        let e = elapsed.as_secs_f64();
        let (i, step) = self.steps.iter().enumerate().find(|(_, s)| e < s.until_s())?;
        let wait_s = match *step {
            RetryStep::Fixed { every_s, .. } => every_s,
            RetryStep::Geometric { first_s, factor, .. } => match state.last {
                Some((j, w)) if j == i => w.as_secs_f64() * factor,
                _ => first_s,
            },
        };
        let wait = Duration::from_secs_f64(wait_s);
        state.last = Some((i, wait));
        Some(wait)
    }

    /// What serde cannot say: cutoffs rise, waits are positive and at most a
    /// cutoff long, factors are at least 1. `Err` is the "expected" text.
    pub fn check(&self) -> Result<(), String> {
        let mut until_before = 0.0;
        for (i, step) in self.steps.iter().enumerate() {
            let until = step.until_s();
            if !(until.is_finite() && until > until_before && until <= 365.0 * 86_400.0) {
                return Err(format!("steps.{i}.until_s: expected a rising cutoff of at most a year, in seconds"));
            }
            let (wait, factor) = match *step {
                RetryStep::Fixed { every_s, .. } => (every_s, 1.0),
                RetryStep::Geometric { first_s, factor, .. } => (first_s, factor),
            };
            if !(wait.is_finite() && wait >= 1.0 && wait <= until) {
                return Err(format!("steps.{i}: expected a wait of 1 s up to the step's cutoff"));
            }
            if !(factor.is_finite() && (1.0..=100.0).contains(&factor)) {
                return Err(format!("steps.{i}.factor: expected 1..=100"));
            }
            until_before = until;
        }
        Ok(())
    }
}

/// What one attempt made of one address.
enum Verdict {
    Delivered,
    Failed(String),
    Deferred(String),
}

/// One attempt: a connection to the smarthost, the addresses in transactions
/// of at most `max_rcpt`.
async fn attempt<O: Os>(os: &O, settings: &MtaSettings, from: &str, rcpts: &[String], text: &str) -> Vec<Verdict> {
    let Some(smarthost) = &settings.smarthost else {
        return rcpts.iter().map(|_| Verdict::Failed("Unrouteable address".into())).collect();
    };
    let mut client = match SmtpClient::connect(os, &smarthost.host, smarthost.port).await {
        Ok(c) => c,
        Err(e) => {
            let why = format!("could not connect to {}: {e}", smarthost.host);
            return rcpts.iter().map(|_| Verdict::Deferred(why.clone())).collect();
        }
    };
    let helo = os.hostname();
    let mut verdicts = Vec::with_capacity(rcpts.len());
    let mut lost: Option<String> = None;
    for batch in rcpts.chunks(settings.remote_rcpts_max.max(1)) {
        if let Some(why) = &lost {
            verdicts.extend(batch.iter().map(|_| Verdict::Deferred(why.clone())));
            continue;
        }
        match client.transact(&helo, from, batch, text).await {
            // Every address of the batch is in `refused` when all were refused.
            Ok(refused) | Err(SmtpError::RecipientsRefused(refused)) => {
                verdicts.extend(batch.iter().map(|r| match refused.get(r) {
                    None => Verdict::Delivered,
                    Some(reply) => classify(reply.code, &format!("after RCPT TO:<{r}>: {} {}", reply.code, reply.text)),
                }))
            }
            Err(SmtpError::Response { code, text }) => {
                let why = format!("after MAIL FROM or DATA: {code} {text}");
                verdicts.extend(batch.iter().map(|_| classify(code, &why)));
            }
            Err(SmtpError::Io(e)) => {
                let why = format!("connection to {} lost: {}", smarthost.host, errno_name(crate::os::errno(&e)));
                verdicts.extend(batch.iter().map(|_| Verdict::Deferred(why.clone())));
                lost = Some(why);
            }
        }
    }
    if lost.is_none() {
        client.quit().await;
    }
    verdicts
}

fn classify(code: u16, why: &str) -> Verdict {
    let why = format!("SMTP error from remote mail server {why}");
    if code >= 500 {
        Verdict::Failed(why)
    } else {
        Verdict::Deferred(why)
    }
}

/// `mta-deliver`: delivers `text` from `from` to `rcpts` through the
/// smarthost, retrying deferrals, and bounces the failures to `from`.
pub async fn mta_deliver<O: Os>(
    os: &O,
    settings: &MtaSettings,
    child_args: &[String],
    from: &str,
    rcpts: &[String],
    text: &str,
) -> i32 {
    let message_id = message_id_in_text(text);
    let mut pending: Vec<String> = rcpts.to_vec();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut since_first_failure = Duration::ZERO;
    let mut retry = RetryState::default();
    for tries in 1u32.. {
        let verdicts = attempt(os, settings, from, &pending, text).await;
        let mut delivered = 0u32;
        let mut failed_now = Vec::new();
        let mut deferred: Vec<(String, String)> = Vec::new();
        for (rcpt, verdict) in pending.iter().zip(verdicts) {
            match verdict {
                Verdict::Delivered => delivered += 1,
                Verdict::Failed(why) => {
                    failed_now.push(rcpt.clone());
                    failed.push((rcpt.clone(), why));
                }
                Verdict::Deferred(why) => deferred.push((rcpt.clone(), why)),
            }
        }
        os.event(ModelEvent::MtaRemote {
            message_id: message_id.clone(),
            sender: from.to_string(),
            attempt: tries,
            delivered,
            failed: failed_now,
            deferred: deferred.iter().map(|(r, _)| r.clone()).collect(),
        });
        if deferred.is_empty() {
            break;
        }
        match settings.retry.next_wait(since_first_failure, &mut retry) {
            Some(wait) => {
                syslog(os, "exim-main", format!("{message_id}: {} deferred: {}", deferred.len(), deferred[0].1));
                os.sleep(wait).await;
                since_first_failure += wait;
                pending = deferred.into_iter().map(|(r, _)| r).collect();
            }
            None => {
                failed.extend(deferred.into_iter().map(|(r, why)| (r, format!("retry timeout exceeded ({why})"))));
                break;
            }
        }
    }
    if !failed.is_empty() {
        bounce(os, settings, child_args, from, &message_id, &failed, text).await;
    }
    0
}

/// The bounce message: to the envelope sender, from `<>`, never bounced itself.
async fn bounce<O: Os>(
    os: &O,
    settings: &MtaSettings,
    child_args: &[String],
    to: &str,
    message_id: &str,
    failed: &[(String, String)],
    original: &str,
) {
    if to.is_empty() {
        syslog(os, "exim-main", format!("{message_id}: bounce message for a bounce: frozen"));
        return;
    }
    let host = os.hostname();
    let addresses: Vec<&str> = failed.iter().map(|(r, _)| r.as_str()).collect();
    let mut text = format!(
        "From: Mail Delivery System <Mailer-Daemon@{host}>\nTo: {to}\nSubject: Mail delivery failed: returning message to sender\nMessage-Id: <dsn-{pid}@{host}>\nX-Failed-Recipients: {list}\nAuto-Submitted: auto-replied\n\nThis message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n",
        pid = os.pid(),
        list = addresses.join(", "),
    );
    for (rcpt, why) in failed {
        text.push_str(&format!("  {rcpt}\n    {why}\n"));
    }
    text.push_str("\n------ This is a copy of the message, including all the headers. ------\n\n");
    text.push_str(original);
    let (_, domain) = split_address(to);
    let outcome = if settings.is_local_domain(domain) {
        deliver_local(os, settings, child_args, &[to.to_string()], &text).await
    } else {
        // A bounce to another domain goes out through the smarthost; its own
        // failure would be frozen.
        match attempt(os, settings, "", &[to.to_string()], &text).await.first() {
            Some(Verdict::Delivered) => PipeOutcome::Delivered,
            _ => PipeOutcome::Bounced,
        }
    };
    if outcome != PipeOutcome::Delivered {
        syslog(os, "exim-main", format!("{message_id}: bounce message to {to} not delivered ({outcome:?}): frozen"));
    }
}
