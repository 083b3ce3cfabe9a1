//! BounceRunner (`qfiles/bounces`) per version (docs/semantics/mailman-queues-runners.md §13).
//!
//! Models the three registration schemes: 2.1.0–2.1.2 register at once in
//! `_dispose` under `Lock(timeout=10 s)` and re-queue on timeout; 2.1.3–2.1.4
//! batch in memory and register every `REGISTER_BOUNCES_EVERY` with `Lock()`
//! and no timeout (lost on a crash); 2.1.5+ use BounceMixin's events file.
//! Bounce detection is reduced to Exim's `X-Failed-Recipients` header, the
//! format the model's MTA and peers produce. Left out: VERP and probe
//! parsing, the other BouncerAPI recognisers, site-list bounces and
//! `maybe_forward` (an unrecognised bounce is logged and dropped).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::list_access::MailList;
use crate::message::Message;
use crate::msgdata::MsgData;
use crate::os::Os;
use crate::python::{duration_s, time_s};
use crate::syslog::syslog;

use super::base::{Dispose, Keep, Raised, RunnerCtx};
use super::bounce_events::BounceEvents;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceRegistration {
    /// 2.1.0–2.1.2.
    LockInDispose,
    /// 2.1.3–2.1.4.
    InMemoryBatch,
    /// 2.1.5+.
    EventsFile,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BounceSettings {
    pub registration: BounceRegistration,
    /// `REGISTER_BOUNCES_EVERY`.
    pub register_bounces_every_s: f64,
}

impl Default for BounceSettings {
    fn default() -> Self {
        BounceSettings { registration: BounceRegistration::EventsFile, register_bounces_every_s: 900.0 }
    }
}

#[derive(Default)]
pub struct BounceRunner {
    events: Option<BounceEvents>,
    batched: IndexMap<String, Vec<String>>,
    nextaction_s: f64,
}

/// The failed addresses a bounce names.
pub fn failed_recipients(msg: &Message) -> Vec<String> {
    msg.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("X-Failed-Recipients"))
        .flat_map(|(_, v)| v.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect::<Vec<_>>())
        .collect()
}

impl BounceRunner {
    async fn register_batch<O: Os>(&mut self, ctx: &RunnerCtx<'_, O>) -> Result<(), Raised> {
        let lists: Vec<String> = self.batched.keys().cloned().collect();
        for listname in lists {
            let mut mlist = ctx.open_list(&listname).await?;
            let addrs = self.batched.get(&listname).cloned().unwrap_or_default();
            let registered = ctx.register_bounces_locked(&mut mlist, None, &addrs).await;
            ctx.release(mlist).await;
            registered??;
            self.batched.shift_remove(&listname);
        }
        Ok(())
    }
}

impl<'a, O: Os> Dispose<'a, O> for BounceRunner {
    fn name(&self) -> &str {
        "Bounce"
    }

    fn queue(&self) -> &str {
        "bounces"
    }

    async fn start(&mut self, ctx: &RunnerCtx<'a, O>) {
        let s = &ctx.settings.bounce;
        self.nextaction_s = time_s(ctx.os) + duration_s(s.register_bounces_every_s).as_secs_f64();
        if s.registration == BounceRegistration::EventsFile {
            self.events = Some(BounceEvents::new(ctx, &ctx.settings.outgoing.data_dir, s.register_bounces_every_s));
        }
    }

    async fn dispose(
        &mut self,
        ctx: &RunnerCtx<'a, O>,
        mlist: &mut MailList<'a, O>,
        msg: &mut Message,
        _data: &mut MsgData,
    ) -> Result<Keep, Raised> {
        if !mlist.config().bounce_processing {
            return Ok(Keep::Done);
        }
        let addrs = failed_recipients(msg);
        if addrs.is_empty() {
            syslog(ctx.os, "bounce", format!("bounce message w/no discernable addresses: {}", msg.message_id()));
            return Ok(Keep::Done);
        }
        match ctx.settings.bounce.registration {
            BounceRegistration::LockInDispose => {
                // "Try again later" on TimeOutError.
                match ctx.register_bounces_locked(mlist, Some(ctx.list_lock_timeout()), &addrs).await {
                    Err(e) if e.is_timeout() => return Ok(Keep::Requeue),
                    registered => registered??,
                }
            }
            BounceRegistration::InMemoryBatch => {
                self.batched.entry(mlist.name().to_string()).or_default().extend(addrs);
            }
            BounceRegistration::EventsFile => {
                if let Some(events) = &mut self.events {
                    events.queue_bounces(ctx, mlist.name(), &addrs, msg).await?;
                }
            }
        }
        Ok(Keep::Done)
    }

    async fn doperiodic(&mut self, ctx: &RunnerCtx<'a, O>) -> Result<(), Raised> {
        if let Some(events) = &mut self.events {
            return events.doperiodic(ctx).await;
        }
        if ctx.settings.bounce.registration == BounceRegistration::InMemoryBatch {
            let now = time_s(ctx.os);
            if now < self.nextaction_s {
                return Ok(());
            }
            self.nextaction_s = now + duration_s(ctx.settings.bounce.register_bounces_every_s).as_secs_f64();
            return self.register_batch(ctx).await;
        }
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &RunnerCtx<'a, O>) {
        let result = match &mut self.events {
            Some(events) => events.cleanup(ctx).await,
            None => self.register_batch(ctx).await,
        };
        if let Err(e) = result {
            syslog(ctx.os, "error", format!("bounce registration at cleanup failed: {}", e.reason));
        }
    }
}
