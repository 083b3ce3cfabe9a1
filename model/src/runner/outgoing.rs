//! OutgoingRunner (`qfiles/out`) and SMTPDirect delivery
//! (docs/semantics/mailman-queues-runners.md §10 for 2.1.5+, §11 for 2.1.0–2.1.4, §12 for retry).
//!
//! Models: the `deliver_after` hold; the unlocked `Load()`; SMTPDirect's
//! chunks of `SMTP_MAX_RCPTS` over one `Os::tcp_connect` session to
//! `SMTPHOST:SMTPPORT`, with progress in `msgdata['undelivered']` and the
//! current chunk pushed back after an exception; smtplib's error classes and
//! the classification `code >= 500 && code != 552` → permanent, everything
//! else (including −1) → temporary; a failed connect ("Cannot connect to
//! SMTP server", logged once, snooze, keep); temporary failures re-queued
//! per version; permanent failures either written to the BounceMixin events
//! file (2.1.5+) or held in memory and registered under the list lock every
//! `DEAL_WITH_PERMFAILURES_EVERY` calls of `_doperiodic` (2.1.0–2.1.4),
//! iterating lists in the order they were first added (Python iterates a
//! dict in hash order; the model fixes first-added order, mailman-queues-runners.md §11).
//!
//! Left out: VERP and personalisation, probe bounces (`_probe_bounce`),
//! chunking by domain (chunks are taken in recipient order), and
//! `SMTP_MAX_SESSIONS_PER_CONNECTION` (one session per message).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::event::{ModelEvent, RecipientOutcome};
use crate::list_access::MailList;
use crate::message::Message;
use crate::msgdata::MsgData;
use crate::os::Os;
use crate::python::{duration_s, time_s};
use crate::smtp::{Reply, SmtpClient, SmtpError};
use crate::switchboard::QueuedMessage;
use crate::syslog::syslog;

use super::base::{Dispose, Keep, Raised, RunnerCtx};
use super::bounce_events::BounceEvents;

/// Where a message with temporary failures goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TempFailures {
    /// 2.1.0–2.1.2: set `deliver_after = now + DELIVERY_RETRY_WAIT` and return
    /// True, so the entry is re-queued into `out` (and re-dequeued every pass).
    RequeueOutWithDeliverAfter,
    /// 2.1.3–2.1.25: enqueue to `retry`; `deliver_after` is not set.
    RetryQueue,
    /// 2.1.26+: enqueue to `retry` with `deliver_after` (LP #1729472).
    RetryQueueWithDeliverAfter,
}

/// Where permanent failures go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermFailures {
    /// 2.1.0–2.1.4: `_permfailures` in memory, registered in `_doperiodic`.
    InMemory,
    /// 2.1.5+: BounceMixin's events file.
    BounceEventsFile,
}

/// What `_cleanup` does with in-memory permanent failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermFailuresOnCleanup {
    /// 2.1.0–2.1.2: lost on stop.
    Lost,
    /// 2.1.3–2.1.4: flushed.
    Flushed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutgoingSettings {
    /// `SMTPHOST`.
    pub smtp_host: String,
    /// `SMTPPORT` (0 in Defaults means 25).
    pub smtp_port: u16,
    /// `SMTP_MAX_RCPTS`.
    pub smtp_max_rcpts: usize,
    /// `DELIVERY_RETRY_PERIOD`.
    pub delivery_retry_period_s: f64,
    /// `DELIVERY_RETRY_WAIT`.
    pub delivery_retry_wait_s: f64,
    pub temp_failures: TempFailures,
    pub perm_failures: PermFailures,
    /// `DEAL_WITH_PERMFAILURES_EVERY` (1 in 2.1.1–2.1.2, 10 in 2.1.3–2.1.4).
    pub deal_with_permfailures_every: u32,
    pub perm_failures_on_cleanup: PermFailuresOnCleanup,
    /// `DATA_DIR`, relative to the Mailman prefix.
    pub data_dir: String,
}

impl Default for OutgoingSettings {
    /// 2.1.39.
    fn default() -> Self {
        OutgoingSettings {
            smtp_host: "localhost".to_string(),
            smtp_port: 25,
            smtp_max_rcpts: 500,
            delivery_retry_period_s: 5.0 * 86_400.0,
            delivery_retry_wait_s: 3_600.0,
            temp_failures: TempFailures::RetryQueueWithDeliverAfter,
            perm_failures: PermFailures::BounceEventsFile,
            deal_with_permfailures_every: 10,
            perm_failures_on_cleanup: PermFailuresOnCleanup::Flushed,
            data_dir: "data".to_string(),
        }
    }
}

pub struct OutgoingRunner {
    permfailures: IndexMap<String, Vec<(String, Message)>>,
    permfail_counter: u32,
    events: Option<BounceEvents>,
    logged_connect_failure: bool,
}

impl OutgoingRunner {
    pub fn new() -> Self {
        OutgoingRunner {
            permfailures: IndexMap::new(),
            permfail_counter: 0,
            events: None,
            logged_connect_failure: false,
        }
    }

    /// 2.1.0–2.1.4 `_doperiodic` body after the counter check.
    async fn deal_with_permfailures<O: Os>(&mut self, ctx: &RunnerCtx<'_, O>) -> Result<(), Raised> {
        let lists: Vec<String> = self.permfailures.keys().cloned().collect();
        for listname in lists {
            // The keys are list objects in Python, already loaded.
            let mut mlist = ctx.open_list(&listname).await?;
            let recips: Vec<String> =
                self.permfailures.get(&listname).into_iter().flatten().map(|(r, _)| r.clone()).collect();
            let registered = ctx.register_bounces_locked(&mut mlist, Some(ctx.list_lock_timeout()), &recips).await;
            ctx.release(mlist).await;
            match registered {
                // The remaining lists wait for the next call.
                Err(e) if e.is_timeout() => return Ok(()),
                Err(e) => return Err(e.into()),
                Ok(saved) => {
                    self.permfailures.shift_remove(&listname);
                    saved?;
                }
            }
        }
        Ok(())
    }
}

impl Default for OutgoingRunner {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of SMTPDirect for one message.
pub(super) enum Delivery {
    AllDelivered,
    /// `SomeRecipientsFailed(tempfailures, permfailures)`.
    SomeFailed {
        temp: Vec<String>,
        perm: Vec<String>,
    },
    /// `socket.error` from connecting.
    CannotConnect(Raised),
}

impl<'a, O: Os> Dispose<'a, O> for OutgoingRunner {
    fn name(&self) -> &str {
        "Outgoing"
    }

    fn queue(&self) -> &str {
        "out"
    }

    async fn start(&mut self, ctx: &RunnerCtx<'a, O>) {
        let s = &ctx.settings.outgoing;
        if s.perm_failures == PermFailures::BounceEventsFile {
            self.events = Some(BounceEvents::new(ctx, &s.data_dir, ctx.settings.bounce.register_bounces_every_s));
        }
    }

    async fn dispose(
        &mut self,
        ctx: &RunnerCtx<'a, O>,
        mlist: &mut MailList<'a, O>,
        msg: &mut Message,
        data: &mut MsgData,
    ) -> Result<Keep, Raised> {
        let s = &ctx.settings.outgoing;
        if time_s(ctx.os) < data.deliver_after.unwrap_or(0.0) {
            return Ok(Keep::Requeue);
        }
        mlist.load().await?;
        let (temp, perm) = match smtp_direct(ctx, mlist, msg, data).await {
            Delivery::AllDelivered => return Ok(Keep::Done),
            Delivery::CannotConnect(e) => {
                if !self.logged_connect_failure {
                    syslog(
                        ctx.os,
                        "error",
                        format!("Cannot connect to SMTP server {} on port {}: {}", s.smtp_host, s.smtp_port, e.reason),
                    );
                    self.logged_connect_failure = true;
                }
                ctx.os.sleep(duration_s(ctx.settings.runner.qrunner_sleep_time_s)).await;
                return Ok(Keep::Requeue);
            }
            Delivery::SomeFailed { temp, perm } => (temp, perm),
        };
        if !perm.is_empty() {
            match (&mut self.events, s.perm_failures) {
                (Some(events), PermFailures::BounceEventsFile) => {
                    events.queue_bounces(ctx, mlist.name(), &perm, msg).await?
                }
                _ => {
                    let entry = self.permfailures.entry(mlist.name().to_string()).or_default();
                    entry.extend(perm.iter().map(|r| (r.clone(), msg.clone())));
                }
            }
        }
        if temp.is_empty() {
            return Ok(Keep::Done);
        }
        let now = time_s(ctx.os);
        let last_recip_count = data.last_recip_count.unwrap_or(0);
        let deliver_until = data.deliver_until.unwrap_or(now);
        if temp.len() == last_recip_count {
            if now > deliver_until {
                return Ok(Keep::Done);
            }
        } else {
            data.deliver_until = Some(now + s.delivery_retry_period_s);
        }
        data.last_recip_count = Some(temp.len());
        data.recips = Some(temp);
        data.undelivered = None;
        match s.temp_failures {
            TempFailures::RequeueOutWithDeliverAfter => {
                data.deliver_after = Some(now + s.delivery_retry_wait_s);
                Ok(Keep::Requeue)
            }
            TempFailures::RetryQueue => {
                ctx.enqueue_to("retry", QueuedMessage::Parsed(msg.clone()), data.clone()).await?;
                Ok(Keep::Done)
            }
            TempFailures::RetryQueueWithDeliverAfter => {
                data.deliver_after = Some(now + s.delivery_retry_wait_s);
                ctx.enqueue_to("retry", QueuedMessage::Parsed(msg.clone()), data.clone()).await?;
                Ok(Keep::Done)
            }
        }
    }

    async fn doperiodic(&mut self, ctx: &RunnerCtx<'a, O>) -> Result<(), Raised> {
        if let Some(events) = &mut self.events {
            return events.doperiodic(ctx).await;
        }
        self.permfail_counter += 1;
        if self.permfail_counter < ctx.settings.outgoing.deal_with_permfailures_every {
            return Ok(());
        }
        self.permfail_counter = 0;
        self.deal_with_permfailures(ctx).await
    }

    async fn cleanup(&mut self, ctx: &RunnerCtx<'a, O>) {
        let result = match &mut self.events {
            Some(events) => events.cleanup(ctx).await,
            None => match ctx.settings.outgoing.perm_failures_on_cleanup {
                PermFailuresOnCleanup::Flushed => self.deal_with_permfailures(ctx).await,
                PermFailuresOnCleanup::Lost => Ok(()),
            },
        };
        if let Err(e) = result {
            syslog(ctx.os, "error", format!("bounce registration at cleanup failed: {}", e.reason));
        }
    }
}

/// Whether SMTPDirect counts a refusal code as permanent (mailman-queues-runners.md §10).
pub fn is_permanent(code: i32) -> bool {
    code >= 500 && code != 552
}

/// SMTPDirect `process` + `bulkdeliver` over the chunks.
pub(super) async fn smtp_direct<O: Os>(
    ctx: &RunnerCtx<'_, O>,
    mlist: &MailList<'_, O>,
    msg: &Message,
    data: &mut MsgData,
) -> Delivery {
    let s = &ctx.settings.outgoing;
    let recips = data.recips.clone().unwrap_or_default();
    if recips.is_empty() {
        return Delivery::AllDelivered;
    }
    let mut chunks: Vec<Vec<String>> = match data.undelivered.take() {
        Some(c) if !c.is_empty() => c,
        _ => recips.chunks(s.smtp_max_rcpts.max(1)).map(<[String]>::to_vec).collect(),
    };
    let envsender = format!("{}-bounces@{}", mlist.name(), mlist.config().host_name);
    let text = msg.to_text();
    let message_id = msg.message_id();
    let helo = ctx.os.hostname();
    let mut refused: IndexMap<String, i32> = IndexMap::new();
    let mut conn: Option<SmtpClient<'_, O>> = None;
    while !chunks.is_empty() {
        let chunk = chunks.remove(0);
        data.undelivered = Some(chunks.clone());
        if conn.is_none() {
            match SmtpClient::connect(ctx.os, &s.smtp_host, s.smtp_port).await {
                Ok(c) => conn = Some(c),
                Err(SmtpError::Io(e)) => {
                    // `socket.error` escapes `process`; the chunk is pushed back.
                    chunks.insert(0, chunk);
                    data.undelivered = Some(chunks);
                    return Delivery::CannotConnect(e.into());
                }
                Err(other) => {
                    for r in &chunk {
                        refused.insert(r.clone(), -1);
                    }
                    syslog(ctx.os, "smtp-failure", format!("SMTP session failure: {other}"));
                    continue;
                }
            }
        }
        let client = conn.as_mut().expect("connected above");
        let mut session_refused: Option<i32> = None;
        let chunk_refused: IndexMap<String, i32> = match client.sendmail(&helo, &envsender, &chunk, &text).await {
            Ok(r) => r.into_iter().map(|(k, v): (String, Reply)| (k, i32::from(v.code))).collect(),
            Err(SmtpError::RecipientsRefused(r)) => {
                conn = None;
                r.into_iter().map(|(k, v)| (k, i32::from(v.code))).collect()
            }
            Err(SmtpError::Response { code, text: resp }) => {
                conn = None;
                syslog(ctx.os, "smtp-failure", format!("SMTP session failure: {code}, {resp}"));
                if code < 500 || code == 552 {
                    chunk.iter().map(|r| (r.clone(), i32::from(code))).collect()
                } else {
                    // A permanent session failure marks nobody (mailman-queues-runners.md §10):
                    // the chunk counts as done although nothing was sent.
                    session_refused = Some(i32::from(code));
                    IndexMap::new()
                }
            }
            Err(SmtpError::Io(e)) => {
                conn = None;
                syslog(ctx.os, "smtp-failure", format!("Low level smtp error: {e}"));
                chunk.iter().map(|r| (r.clone(), -1)).collect()
            }
        };
        for r in &chunk {
            let code = chunk_refused.get(r).copied();
            let (code, outcome) = match code {
                None => match session_refused {
                    Some(c) => (c, RecipientOutcome::DroppedSessionRefused),
                    None => (250, RecipientOutcome::Delivered),
                },
                Some(c) if is_permanent(c) => (c, RecipientOutcome::Permanent),
                Some(c) => (c, RecipientOutcome::Temporary),
            };
            ctx.os.event(ModelEvent::SmtpRecipient {
                list: mlist.name().to_string(),
                message_id: message_id.clone(),
                recipient: r.clone(),
                code,
                outcome,
            });
        }
        refused.extend(chunk_refused);
    }
    data.undelivered = None;
    if let Some(c) = conn {
        c.quit().await;
    }
    if refused.is_empty() {
        return Delivery::AllDelivered;
    }
    let (mut temp, mut perm) = (Vec::new(), Vec::new());
    for (r, code) in refused {
        if is_permanent(code) {
            perm.push(r);
        } else {
            temp.push(r);
        }
    }
    Delivery::SomeFailed { temp, perm }
}
