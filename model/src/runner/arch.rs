//! ArchRunner (`qfiles/archive`, docs/semantics/mailman-queues-runners.md §8).
//!
//! Models the locking: `Lock(timeout=LIST_LOCK_TIMEOUT)` (timeout → re-queue),
//! `ArchiveMail` as an append of the message in mbox form to
//! `archives/private/<list>.mbox/<list>.mbox`, then `Save()` and `Unlock()`
//! in `finally`. Left out: the Date-header clobbering rules and Pipermail's
//! HTML archive; only the mbox append is written.

use serde::{Deserialize, Serialize};

use crate::event::ModelEvent;
use crate::fileio::{close_after, makedirs};
use crate::list_access::MailList;
use crate::message::Message;
use crate::msgdata::MsgData;
use crate::os::{OpenFlags, Os};

use super::base::{Dispose, Keep, Raised, RunnerCtx};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSettings {
    /// `PRIVATE_ARCHIVE_FILE_DIR`, relative to the Mailman prefix.
    pub private_archive_dir: String,
}

impl Default for ArchSettings {
    fn default() -> Self {
        ArchSettings { private_archive_dir: "archives/private".to_string() }
    }
}

#[derive(Default)]
pub struct ArchRunner;

impl<'a, O: Os> Dispose<'a, O> for ArchRunner {
    fn name(&self) -> &str {
        "Arch"
    }

    fn queue(&self) -> &str {
        "archive"
    }

    async fn dispose(
        &mut self,
        ctx: &RunnerCtx<'a, O>,
        mlist: &mut MailList<'a, O>,
        msg: &mut Message,
        _data: &mut MsgData,
    ) -> Result<Keep, Raised> {
        if !ctx.lock_list(mlist).await? {
            return Ok(Keep::Requeue);
        }
        let body = async {
            let name = mlist.name().to_string();
            let dir = format!("{}/{name}.mbox", ctx.settings.arch.private_archive_dir);
            makedirs(ctx.os, &dir).await?;
            let fd = ctx.os.open(&format!("{dir}/{name}.mbox"), OpenFlags::append()).await?;
            let mut text = format!("From {} \n", msg.get("From").unwrap_or("mailman")).into_bytes();
            text.extend(msg.to_text().into_bytes());
            text.push(b'\n');
            let written = ctx.os.write(fd, &text).await;
            close_after(ctx.os, fd, written).await?;
            ctx.os.event(ModelEvent::Archived { list: name, message_id: msg.message_id() });
            mlist.save().await?;
            Ok::<(), Raised>(())
        }
        .await;
        let unlocked = mlist.unlock().await;
        body?;
        unlocked?;
        Ok(Keep::Done)
    }
}
