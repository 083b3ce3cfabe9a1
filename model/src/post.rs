//! The `post` entry script (and its `bounces` sibling) that the MTA's pipe
//! transport runs (docs/semantics/mailman-queues-runners.md §16, §15).
//!
//! Models, per version: 2.1 `scripts/post`: `list_exists` (false → "post
//! script, list not found", exit 1), then `inq.enqueue(text, listname=...,
//! tolist=1, _plaintext=1)`, exit 0; an uncaught exception (ESTALE while
//! writing into `qfiles/in`) exits 1. 2.0 `post`: `MailList(name, lock=0)`,
//! a full unlocked Load (the real store's Load includes the unlocked fallback
//! copy of mailman-config-store.md §6), an `MMListError` ("Mailman error: post got bad listname")
//! or an IOError exits 1, then the flat 2.0 enqueue. `bounces` is the same
//! as 2.1 `post` but enqueues to `bounces` without `tolist`.
//!
//! The message arrives as an argument (`--stdin=<text>`) because `Os` has no
//! pipes; this stands for the pipe to the wrapper's stdin and touches no file.
//! Left out: the mail wrapper's group check and its own exit codes.

use serde::{Deserialize, Serialize};

use crate::event::ModelEvent;
use crate::list_access::{list_exists, LockCounter, MailList};
use crate::message::message_id_in_text;
use crate::msgdata::MsgData;
use crate::os::Os;
use crate::profile::Settings;
use crate::slice::Slice;
use crate::switchboard::{QueuedMessage, Switchboard};
use crate::syslog::syslog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostVariant {
    /// 2.0: full unlocked Load, then the flat enqueue.
    V20FullLoad,
    /// 2.1: `list_exists`, then enqueue to `in`.
    V21ListExists,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostSettings {
    pub variant: PostVariant,
}

impl Default for PostSettings {
    fn default() -> Self {
        PostSettings { variant: PostVariant::V21ListExists }
    }
}

/// Which script runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryScript {
    /// `post`: to the list (`in`, `tolist=1`).
    Post,
    /// `bounces`: to `bounces`.
    Bounces,
}

/// Runs the script for `listname` with `text` on stdin; returns the exit code.
pub async fn post<O: Os>(os: &O, settings: &Settings, script: EntryScript, listname: &str, text: &str) -> i32 {
    let message_id = message_id_in_text(text);
    let (code, reason) = match settings.post.variant {
        PostVariant::V21ListExists => post_21(os, settings, script, listname, text).await,
        PostVariant::V20FullLoad => post_20(os, settings, listname, text).await,
    };
    if code != 0 {
        syslog(os, "stderr", reason.clone());
    }
    os.event(ModelEvent::PostExited { list: listname.to_string(), message_id, exit_code: code, reason });
    code
}

async fn post_21<O: Os>(os: &O, settings: &Settings, script: EntryScript, listname: &str, text: &str) -> (i32, String) {
    let listname = listname.to_lowercase();
    // A refused name (an error here) does not exist either.
    if !list_exists(os, &listname, &settings.list_store).await.unwrap_or(false) {
        return (1, format!("post script, list not found: {listname}"));
    }
    let (queue, tolist) = match script {
        EntryScript::Post => ("in", true),
        EntryScript::Bounces => ("bounces", false),
    };
    let data = MsgData { listname: Some(listname), tolist, plaintext: true, ..MsgData::default() };
    let result = async {
        let sb = Switchboard::open(os, &settings.queue, queue, Slice::WHOLE).await?;
        sb.enqueue(QueuedMessage::Text(text.to_string()), data).await
    }
    .await;
    match result {
        Ok(_) => (0, "ok".to_string()),
        Err(e) => (1, format!("Traceback: {e}")),
    }
}

async fn post_20<O: Os>(os: &O, settings: &Settings, listname: &str, text: &str) -> (i32, String) {
    // This process's `LockFile.COUNTER`; the list object is its only lock.
    let counter = LockCounter::new();
    // `MailList(name, lock=0)`: the full unlocked Load, with the fallback
    // chain and the unlocked repair copy of mailman-config-store.md §6.
    let mut mlist = match MailList::new(os, &counter, listname, settings.list_store.clone()) {
        Ok(mlist) => mlist,
        Err(e) => return (1, format!("Mailman error: post got bad listname: {listname} ({e})")),
    };
    let outcome = match mlist.load().await {
        Err(e) if e.is_mm_list_error() => (1, format!("Mailman error: post got bad listname: {listname} ({e})")),
        Err(e) => (1, format!("Traceback: {e}")),
        Ok(()) => {
            let data = MsgData { listname: Some(mlist.name().to_string()), tolist: true, ..MsgData::default() };
            let sb = Switchboard::new(os, &settings.queue, "qfiles", Slice::WHOLE);
            match sb.enqueue(QueuedMessage::Text(text.to_string()), data).await {
                Ok(_) => (0, "ok".to_string()),
                Err(e) => (1, format!("Traceback: {e}")),
            }
        }
    };
    // The list object's `__del__` at exit; Python ignores its errors.
    let _ = mlist.finalize().await;
    outcome
}
