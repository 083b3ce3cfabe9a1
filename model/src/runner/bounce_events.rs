//! BounceMixin (2.1.5+): the per-process bounce events file and its periodic
//! registration under the list lock (docs/semantics/mailman-queues-runners.md §13).
//!
//! Models `DATA_DIR/bounce-events-%05d.pck % pid`, opened lazily with
//! `'a+b'`, one record `(listname, addr, (y, m, d), msg)` per address,
//! `flush` + `fsync` after every batch; `_doperiodic` registering no earlier
//! than `REGISTER_BOUNCES_EVERY` after start-up; `_register_bounces` reading
//! every record back from offset 0, grouping by list in first-seen order,
//! `Lock()` **without a timeout**, `registerBounce`, `Save()`, `Unlock()` in
//! `finally`, then close and unlink; `_cleanup` registering what is pending.
//! Records are JSON lines instead of pickles; a torn last record fails to
//! decode and is skipped with a log line (Python would raise out of
//! `_doperiodic`, which the model does only for I/O errors).

use indexmap::IndexMap;

use crate::fileio::{read_to_end, READ_CHUNK_BYTES};
use crate::message::Message;
use crate::os::{Fd, OpenFlags, Os};
use crate::python::{duration_s, localtime_ymd, time_s};
use crate::syslog::syslog;

use super::base::{Raised, RunnerCtx};

pub struct BounceEvents {
    path: String,
    fd: Option<Fd>,
    bouncecnt: usize,
    nextaction_s: f64,
    every_s: f64,
}

impl BounceEvents {
    /// `BounceMixin.__init__`.
    pub fn new<O: Os>(ctx: &RunnerCtx<'_, O>, data_dir: &str, every_s: f64) -> Self {
        BounceEvents {
            path: format!("{data_dir}/bounce-events-{:05}.pck", ctx.os.pid()),
            fd: None,
            bouncecnt: 0,
            nextaction_s: time_s(ctx.os) + duration_s(every_s).as_secs_f64(),
            every_s,
        }
    }

    /// `_queue_bounces(listname, addrs, msg)`.
    pub async fn queue_bounces<O: Os>(
        &mut self,
        ctx: &RunnerCtx<'_, O>,
        listname: &str,
        addrs: &[String],
        msg: &Message,
    ) -> Result<(), Raised> {
        if addrs.is_empty() {
            return Ok(());
        }
        let fd = match self.fd {
            Some(fd) => fd,
            None => {
                let fd = ctx.os.open(&self.path, OpenFlags::read_append()).await?;
                self.fd = Some(fd);
                fd
            }
        };
        let day = localtime_ymd(time_s(ctx.os));
        let mut out = Vec::new();
        for addr in addrs {
            let record = serde_json::json!([listname, addr, [day.0, day.1, day.2], msg.to_text()]);
            out.extend(serde_json::to_vec(&record).expect("a record always serialises"));
            out.push(b'\n');
        }
        ctx.os.write(fd, &out).await?;
        ctx.os.fsync(fd).await?;
        self.bouncecnt += addrs.len();
        Ok(())
    }

    /// `_doperiodic()` of the mixin.
    pub async fn doperiodic<O: Os>(&mut self, ctx: &RunnerCtx<'_, O>) -> Result<(), Raised> {
        let now = time_s(ctx.os);
        if self.nextaction_s > now || self.bouncecnt == 0 {
            return Ok(());
        }
        self.nextaction_s = now + duration_s(self.every_s).as_secs_f64();
        self.register_bounces(ctx).await
    }

    /// `_cleanup()` of the mixin.
    pub async fn cleanup<O: Os>(&mut self, ctx: &RunnerCtx<'_, O>) -> Result<(), Raised> {
        if self.bouncecnt > 0 {
            self.register_bounces(ctx).await?;
        }
        Ok(())
    }

    async fn register_bounces<O: Os>(&mut self, ctx: &RunnerCtx<'_, O>) -> Result<(), Raised> {
        let Some(fd) = self.fd else { return Ok(()) };
        ctx.os.seek(fd, 0).await?;
        let bytes = read_to_end(ctx.os, fd, READ_CHUNK_BYTES).await?;
        let mut events: IndexMap<String, Vec<String>> = IndexMap::new();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<(String, String, (i64, u32, u32), String)>(line) {
                Ok((list, addr, _, _)) => events.entry(list).or_default().push(addr),
                Err(e) => syslog(ctx.os, "bounce", format!("undecodable bounce event in {}: {e}", self.path)),
            }
        }
        for (listname, addrs) in events {
            // `_open_list`, then `Lock()` with no timeout.
            let mut mlist = ctx.open_list(&listname).await?;
            let registered = ctx.register_bounces_locked(&mut mlist, None, &addrs).await;
            ctx.release(mlist).await;
            registered??;
        }
        self.fd = None;
        ctx.os.close(fd).await?;
        ctx.os.unlink(&self.path).await?;
        self.bouncecnt = 0;
        Ok(())
    }
}
