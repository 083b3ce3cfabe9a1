//! IncomingRunner (`qfiles/in`) and the pipeline essentials that decide
//! post numbering (docs/semantics/mailman-queues-runners.md §9).
//!
//! Models `_dispose` in its exact order: `Lock(timeout=LIST_LOCK_TIMEOUT)`
//! (timeout → re-queue to `in`), the pipeline taken from `msgdata` or
//! `GLOBAL_PIPELINE` and stored back into `msgdata['pipeline']`, handlers
//! popped one by one (an exception puts the handler back and propagates, so
//! the shunted copy keeps what is left), then `Save()` and `Unlock()` in
//! `finally`. The handlers that matter for the race oracles are real:
//! CookHeaders (subject prefix, `%d` → `post_id`), CalcRecips (members),
//! ToArchive (→ `archive`), AfterDelivery (`last_post_time`, `post_id += 1`)
//! and ToOutgoing (→ `out`). The others (SpamDetect, Hold, Scrubber, …) pass
//! the message through unchanged: no discards, holds or rejects are modelled.

use crate::event::ModelEvent;
use crate::list_access::MailList;
use crate::message::Message;
use crate::msgdata::MsgData;
use crate::os::Os;
use crate::python::time_s;
use crate::switchboard::QueuedMessage;

use super::base::{Dispose, Keep, Raised, RunnerCtx};

/// Where the runner takes its pipeline from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineSource {
    /// `msgdata['pipeline']`, else `GLOBAL_PIPELINE` (IncomingRunner).
    MsgDataOrGlobal,
    /// A fixed pipeline with `_fasttrack` set (VirginRunner).
    FastTrack(Vec<String>),
}

pub struct IncomingRunner {
    name: String,
    queue: String,
    pipeline: PipelineSource,
}

impl IncomingRunner {
    pub fn new() -> Self {
        IncomingRunner {
            name: "Incoming".to_string(),
            queue: "in".to_string(),
            pipeline: PipelineSource::MsgDataOrGlobal,
        }
    }

    /// The same runner on another queue with another pipeline (VirginRunner).
    pub fn with_pipeline(name: &str, queue: &str, pipeline: PipelineSource) -> Self {
        IncomingRunner { name: name.to_string(), queue: queue.to_string(), pipeline }
    }
}

impl Default for IncomingRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, O: Os> Dispose<'a, O> for IncomingRunner {
    fn name(&self) -> &str {
        &self.name
    }

    fn queue(&self) -> &str {
        &self.queue
    }

    async fn dispose(
        &mut self,
        ctx: &RunnerCtx<'a, O>,
        mlist: &mut MailList<'a, O>,
        msg: &mut Message,
        data: &mut MsgData,
    ) -> Result<Keep, Raised> {
        if !ctx.lock_list(mlist).await? {
            return Ok(Keep::Requeue);
        }
        let body = async {
            let fasttrack = matches!(self.pipeline, PipelineSource::FastTrack(_));
            let pipeline = match &self.pipeline {
                PipelineSource::FastTrack(p) => p.clone(),
                PipelineSource::MsgDataOrGlobal => {
                    data.pipeline.clone().unwrap_or_else(|| ctx.settings.runner.global_pipeline.clone())
                }
            };
            data.pipeline = Some(pipeline);
            let more = dopipeline(ctx, mlist, msg, data, fasttrack).await?;
            if more == Keep::Done {
                data.pipeline = None;
            }
            // `Save()` records `ListSaved` with the post_id it wrote.
            mlist.save().await?;
            Ok::<Keep, Raised>(more)
        }
        .await;
        let unlocked = mlist.unlock().await;
        match (body, unlocked) {
            (_, Err(e)) => Err(e.into()),
            (result, Ok(())) => result,
        }
    }
}

/// `_dopipeline`: pops handlers off `msgdata['pipeline']`.
async fn dopipeline<'a, O: Os>(
    ctx: &RunnerCtx<'a, O>,
    mlist: &mut MailList<'a, O>,
    msg: &mut Message,
    data: &mut MsgData,
    fasttrack: bool,
) -> Result<Keep, Raised> {
    loop {
        let handler = match data.pipeline.as_mut() {
            Some(p) if !p.is_empty() => p.remove(0),
            _ => return Ok(Keep::Done),
        };
        if let Err(e) = process(ctx, &handler, mlist, msg, data, fasttrack).await {
            if let Some(p) = data.pipeline.as_mut() {
                p.insert(0, handler);
            }
            return Err(e);
        }
    }
}

/// One handler's `process(mlist, msg, msgdata)`.
async fn process<'a, O: Os>(
    ctx: &RunnerCtx<'a, O>,
    handler: &str,
    mlist: &mut MailList<'a, O>,
    msg: &mut Message,
    data: &mut MsgData,
    fasttrack: bool,
) -> Result<(), Raised> {
    match handler {
        "CookHeaders" => cook_headers(ctx.os, mlist, msg, fasttrack),
        "CalcRecips" => calc_recips(mlist, data),
        "ToArchive" if mlist.config().archive => {
            let archive_data = MsgData { listname: Some(mlist.name().to_string()), ..MsgData::default() };
            ctx.enqueue_to("archive", QueuedMessage::Parsed(msg.clone()), archive_data).await?;
        }
        "AfterDelivery" => after_delivery(ctx.os, mlist),
        "ToOutgoing" => {
            let mut out = data.clone();
            out.pipeline = None;
            out.listname = Some(mlist.name().to_string());
            ctx.enqueue_to("out", QueuedMessage::Parsed(msg.clone()), out).await?;
        }
        _ => {}
    }
    Ok(())
}

/// CookHeaders: the subject prefix numbered with `post_id` (not when
/// fast-tracked), and the `PostNumbered` annotation the post-numbering oracle reads.
pub(super) fn cook_headers<O: Os>(os: &O, mlist: &MailList<'_, O>, msg: &mut Message, fasttrack: bool) {
    if !fasttrack {
        cook_subject(&mlist.config().subject_prefix, mlist.config().post_id, msg);
    }
    os.event(ModelEvent::PostNumbered {
        list: mlist.name().to_string(),
        message_id: msg.message_id(),
        post_id: mlist.config().post_id,
    });
}

/// CalcRecips: the list's members, unless msgdata already names recipients.
pub(super) fn calc_recips<O: Os>(mlist: &MailList<'_, O>, data: &mut MsgData) {
    if data.recips.is_none() {
        data.recips = Some(mlist.config().members.clone());
    }
}

/// AfterDelivery: `last_post_time = time.time()`, `post_id += 1` (mailman-queues-runners.md §9).
pub(super) fn after_delivery<O: Os>(os: &O, mlist: &mut MailList<'_, O>) {
    let config = mlist.config_mut();
    config.last_post_time = time_s(os);
    config.post_id += 1;
}

/// CookHeaders' subject prefix: a `%d` becomes `post_id`; an old prefix
/// (with any number) is removed before the new one is put in front.
pub fn cook_subject(subject_prefix: &str, post_id: u64, msg: &mut Message) {
    let prefix = subject_prefix.trim();
    if prefix.is_empty() {
        return;
    }
    let subject = msg.get("Subject").unwrap_or("(no subject)").to_string();
    let stripped = match prefix.split_once("%d") {
        Some((before, after)) => strip_numbered_prefix(&subject, before, after),
        None => subject.strip_prefix(prefix).map(str::to_string).unwrap_or(subject.clone()),
    };
    let numbered = prefix.replacen("%d", &post_id.to_string(), 1);
    msg.set("Subject", &format!("{numbered} {}", stripped.trim_start()));
}

fn strip_numbered_prefix(subject: &str, before: &str, after: &str) -> String {
    if let Some(rest) = subject.strip_prefix(before) {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            if let Some(tail) = rest[digits..].strip_prefix(after) {
                return tail.to_string();
            }
        }
    }
    subject.to_string()
}
