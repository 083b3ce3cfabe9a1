//! RetryRunner (`qfiles/retry`, 2.1.3+; docs/semantics/mailman-queues-runners.md §12).
//!
//! Models `SLEEPTIME = minutes(15)` (it sleeps after every pass, busy or
//! not) and `_dispose` per version: 2.1.3–2.1.25 move **everything** back to
//! `out` (R23); 2.1.26+ keep an entry whose `deliver_after` lies in the
//! future. The list is opened (unlocked Load) by the base loop as in Mailman.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::list_access::MailList;
use crate::message::Message;
use crate::msgdata::MsgData;
use crate::os::Os;
use crate::python::{duration_s, time_s};
use crate::switchboard::QueuedMessage;

use super::base::{Dispose, Keep, Raised, RunnerCtx};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryWait {
    /// 2.1.3–2.1.25.
    IgnoreDeliverAfter,
    /// 2.1.26+ (LP #1729472, #1762871).
    HonourDeliverAfter,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// `RetryRunner.SLEEPTIME`.
    pub sleep_time_s: f64,
    pub wait: RetryWait,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings { sleep_time_s: 900.0, wait: RetryWait::HonourDeliverAfter }
    }
}

#[derive(Default)]
pub struct RetryRunner;

impl<'a, O: Os> Dispose<'a, O> for RetryRunner {
    fn name(&self) -> &str {
        "Retry"
    }

    fn queue(&self) -> &str {
        "retry"
    }

    async fn dispose(
        &mut self,
        ctx: &RunnerCtx<'a, O>,
        _mlist: &mut MailList<'a, O>,
        msg: &mut Message,
        data: &mut MsgData,
    ) -> Result<Keep, Raised> {
        if ctx.settings.retry.wait == RetryWait::HonourDeliverAfter
            && time_s(ctx.os) < data.deliver_after.unwrap_or(0.0)
        {
            return Ok(Keep::Requeue);
        }
        ctx.enqueue_to("out", QueuedMessage::Parsed(msg.clone()), data.clone()).await?;
        Ok(Keep::Done)
    }

    fn snooze(&self, ctx: &RunnerCtx<'a, O>, _files_found: usize) -> Option<Duration> {
        Some(duration_s(ctx.settings.retry.sleep_time_s))
    }
}
