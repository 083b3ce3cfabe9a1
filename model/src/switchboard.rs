//! Mailman's Switchboard: one queue directory of message entries
//! (docs/semantics/mailman-queues-runners.md §2–§6).
//!
//! Models the three on-disk formats and their exact operation order:
//! - [`QueueFormat::OnePck`] (2.1.5+): one `<fb>.pck` written through
//!   `<fb>.pck.tmp` with an unconditional `fsync`, dequeued by `open` then
//!   `unlink` (2.1.5–2.1.8) or `rename` to `<fb>.bak` (2.1.9+), finished by
//!   unlinking or preserving the `.bak`, recovered from `.bak` at start-up.
//! - [`QueueFormat::TwoFile21Early`] (2.1.0–2.1.4): the message file
//!   (`<fb>.pck` or plaintext `<fb>.msg`) written in place, then `<fb>.db`
//!   through `<fb>.db.tmp`; dequeued by read and unlink.
//! - [`QueueFormat::Flat20`] (2.0): flat `qfiles/<sha>.db` written in place
//!   and `<sha>.msg` through `.msg.tmp`; read and deleted by the 2.0 qrunner.
//!
//! Serialisation: Mailman pickles (2.1) or marshals (2.0) the message and the
//! metadata. The model writes JSON values instead, two of them back to back in
//! one `.pck` file, as two pickles follow each other. What matters is kept: a
//! truncated or garbled file fails to decode, and decoding reads through the
//! handle that was opened before the name was unlinked or renamed.
//!
//! Left out: the `maildir` queue, `_dirty` tracking of 2.0 re-queues (the
//! `.msg` is always rewritten), and file modes (`umask`), which `Os` does not
//! carry.

use std::io;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::event::{BakOutcome, DequeueFailure, FinishOutcome, ModelEvent};
use crate::fileio::{self, close_after, makedirs, read_to_end, Sync};
use crate::message::{Message, MessageParseError};
use crate::msgdata::MsgData;
use crate::os::{errno, errno_name, OpenFlags, Os};
use crate::python::{repr_f64, time_s};
use crate::slice::{in_slice, parse_digest, Slice, SliceRule};
use crate::syslog::syslog;

/// The on-disk layout of queue entries (docs/semantics/mailman-queues-runners.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueFormat {
    /// 2.0: flat `qfiles/<sha>.db` + `<sha>.msg`.
    Flat20,
    /// 2.1.0–2.1.4: `qfiles/<q>/<fb>.pck|.msg` + `<fb>.db`.
    TwoFile21Early,
    /// 2.1.5+: `qfiles/<q>/<fb>.pck`.
    OnePck,
}

/// What dequeue does to the entry's name (docs/semantics/mailman-queues-runners.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DequeueMode {
    /// 2.1.0–2.1.4: read `.db` and unlink it, then read the message file and unlink it.
    ReadThenUnlink,
    /// 2.1.5–2.1.8: `open(.pck)`, `unlink(.pck)`, then read through the handle.
    OpenThenUnlink,
    /// 2.1.9+: `open(.pck)`, `rename(.pck, .bak)`, then read through the handle.
    OpenThenRenameToBak,
}

/// What `files()` does when two entries have the same `float(when)` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyCollision {
    /// Before 2.1.9: the later entry overwrites the earlier in the dict, so one
    /// is skipped until a later pass (R15).
    DropUntilNextPass,
    /// 2.1.9+: add `key_delta_s` until the key is free.
    AddDelta,
}

/// Start-up recovery of `.bak` entries (docs/semantics/mailman-queues-runners.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BakRecovery {
    /// Before 2.1.9: there are no `.bak` files.
    None,
    /// 2.1.9: every `.bak` goes back to `.pck` on every start (R17).
    Always,
    /// 2.1.10+: count recoveries in `_bak_count`; preserve at `max_bak_count`.
    Counted,
}

/// What the runner's `_oneloop` does with an entry whose `dequeue` raised
/// (2.1.12 `QRUNNER_SAVE_BAD_MESSAGES`). `finish(preserve=True)` itself always
/// preserves, whatever this says: `recover_backup_files` and a failed shunt
/// call it too (docs/semantics/mailman-corrupt-files.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadMessages {
    /// "Skipping and preserving unparseable message", `finish(preserve=True)`:
    /// `bad/<fb>.psv` (default `Yes`, and always before 2.1.12).
    Preserve,
    /// "Ignoring unparseable message", `finish(preserve=False)`: the `.bak` is unlinked.
    Discard,
}

/// Whether `finish` removes the entry or keeps it for a human.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Remove,
    Preserve,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchboardSettings {
    pub format: QueueFormat,
    pub dequeue_mode: DequeueMode,
    pub slice_rule: SliceRule,
    pub key_collision: KeyCollision,
    /// 2.1.9 `DELTA`.
    pub key_delta_s: f64,
    pub bak_recovery: BakRecovery,
    /// 2.1.10 `MAX_BAK_COUNT`.
    pub max_bak_count: u32,
    pub bad_messages: BadMessages,
    /// `QUEUE_DIR`, relative to the Mailman prefix.
    pub queue_dir: String,
}

impl Default for SwitchboardSettings {
    /// 2.1.39.
    fn default() -> Self {
        SwitchboardSettings {
            format: QueueFormat::OnePck,
            dequeue_mode: DequeueMode::OpenThenRenameToBak,
            slice_rule: SliceRule::InclusiveUpper,
            key_collision: KeyCollision::AddDelta,
            key_delta_s: 0.0001,
            bak_recovery: BakRecovery::Counted,
            max_bak_count: 3,
            bad_messages: BadMessages::Preserve,
            queue_dir: "qfiles".to_string(),
        }
    }
}

/// The message half of an entry: text handed over with `_plaintext`, or a
/// parsed message (a pickled `Message` object in Mailman).
#[derive(Clone, Debug, PartialEq)]
pub enum QueuedMessage {
    Text(String),
    Parsed(Message),
}

impl QueuedMessage {
    pub fn message_id(&self) -> String {
        match self {
            QueuedMessage::Text(t) => crate::message::message_id_in_text(t),
            QueuedMessage::Parsed(m) => m.message_id(),
        }
    }

    fn to_value(&self) -> serde_json::Value {
        match self {
            QueuedMessage::Text(t) => serde_json::Value::String(t.clone()),
            QueuedMessage::Parsed(m) => serde_json::to_value(m).expect("a message always serialises"),
        }
    }

    fn text_for_plain_file(&self) -> String {
        match self {
            QueuedMessage::Text(t) => t.clone(),
            QueuedMessage::Parsed(m) => m.to_text(),
        }
    }
}

/// A dequeued entry. `msg` is `None` when 2.1.0–2.1.4 found no message file
/// ("lost data files").
#[derive(Clone, Debug, PartialEq)]
pub struct Dequeued {
    pub msg: Option<Message>,
    pub data: MsgData,
}

#[derive(Debug, thiserror::Error)]
pub enum DequeueError {
    /// An `OSError`/`IOError` from open, unlink, rename or read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The pickle (here: JSON) did not decode: a truncated or corrupt file.
    #[error("cannot decode queue entry: {0}")]
    Decode(String),
    /// The entry held text that does not parse as a message.
    #[error(transparent)]
    Parse(#[from] MessageParseError),
}

impl DequeueError {
    /// What kind of failure it is, for events.
    pub fn kind(&self) -> DequeueFailure {
        match self {
            DequeueError::Io(_) => DequeueFailure::Io,
            DequeueError::Decode(_) => DequeueFailure::Decode,
            DequeueError::Parse(_) => DequeueFailure::Parse,
        }
    }

    /// The errno symbol, `none` for decode and parse errors.
    pub fn errno_name(&self) -> String {
        match self {
            DequeueError::Io(e) => errno_name(errno(e)),
            _ => "none".to_string(),
        }
    }
}

/// One queue (`whichq`) seen by one runner slice.
pub struct Switchboard<'a, O: Os> {
    os: &'a O,
    settings: &'a SwitchboardSettings,
    whichq: String,
    dir: String,
    slice: Slice,
}

const NOLIST: &str = "--nolist--";

impl<'a, O: Os> Switchboard<'a, O> {
    /// A Switchboard for `whichq` without touching the filesystem. In the
    /// 2.0 format every queue name maps to the one flat `qfiles/`.
    pub fn new(os: &'a O, settings: &'a SwitchboardSettings, whichq: &str, slice: Slice) -> Self {
        let dir = match settings.format {
            QueueFormat::Flat20 => settings.queue_dir.clone(),
            _ => format!("{}/{}", settings.queue_dir, whichq),
        };
        Switchboard { os, settings, whichq: whichq.to_string(), dir, slice }
    }

    /// `Switchboard.__init__`: the above plus `os.makedirs(whichq)` (EEXIST ignored).
    pub async fn open(os: &'a O, settings: &'a SwitchboardSettings, whichq: &str, slice: Slice) -> io::Result<Self> {
        let sb = Switchboard::new(os, settings, whichq, slice);
        makedirs(os, &sb.dir).await?;
        Ok(sb)
    }

    pub fn whichq(&self) -> &str {
        &self.whichq
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn settings(&self) -> &SwitchboardSettings {
        self.settings
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{}", self.dir, name)
    }

    fn bad_dir(&self) -> String {
        format!("{}/bad", self.settings.queue_dir)
    }

    /// `enqueue(_msg, _metadata)`. Returns the filebase.
    pub async fn enqueue(&self, msg: QueuedMessage, mut data: MsgData) -> io::Result<String> {
        let now = time_s(self.os);
        let listname = data.listname.clone().unwrap_or_else(|| NOLIST.to_string());
        let message_id = msg.message_id();
        let filebase = match self.settings.format {
            QueueFormat::Flat20 => self.enqueue_flat20(&msg, &mut data, now, &listname).await?,
            QueueFormat::TwoFile21Early => self.enqueue_two_file(&msg, &mut data, now, &listname).await?,
            QueueFormat::OnePck => self.enqueue_one_pck(&msg, &mut data, now, &listname).await?,
        };
        self.os.event(ModelEvent::QueueEnqueued {
            queue: self.whichq.clone(),
            filebase: filebase.clone(),
            message_id,
            list: data.listname.clone().unwrap_or_default(),
        });
        Ok(filebase)
    }

    fn filebase_21(msgsave: &[u8], listname: &str, now: f64, rcvtime: f64) -> String {
        let mut h = Sha1::new();
        h.update(msgsave);
        h.update(listname.as_bytes());
        h.update(repr_f64(now).as_bytes());
        format!("{}+{}", repr_f64(rcvtime), hex::encode(h.finalize()))
    }

    /// 2.1.5+ (docs/semantics/mailman-queues-runners.md §4, right column).
    async fn enqueue_one_pck(
        &self,
        msg: &QueuedMessage,
        data: &mut MsgData,
        now: f64,
        listname: &str,
    ) -> io::Result<String> {
        let rcvtime = *data.received_time.get_or_insert(now);
        let msgsave = serde_json::to_vec(&msg.to_value()).expect("a JSON value always serialises");
        let filebase = Self::filebase_21(&msgsave, listname, now, rcvtime);
        let mut out = data.without_private_keys();
        out.version = Some(3);
        out.parsemsg = matches!(msg, QueuedMessage::Text(_));
        *data = out.clone();
        let mut bytes = msgsave;
        bytes.push(b'\n');
        bytes.extend(serde_json::to_vec(&out).expect("msgdata always serialises"));
        let pck = self.path(&format!("{filebase}.pck"));
        let tmp = format!("{pck}.tmp");
        fileio::write_then_rename(self.os, &tmp, &pck, &bytes, Sync::Fsync).await?;
        Ok(filebase)
    }

    /// 2.1.0–2.1.4: message file in place, then `.db` through `.db.tmp`.
    async fn enqueue_two_file(
        &self,
        msg: &QueuedMessage,
        data: &mut MsgData,
        now: f64,
        listname: &str,
    ) -> io::Result<String> {
        let rcvtime = *data.received_time.get_or_insert(now);
        let (ext, msgsave) = match msg {
            QueuedMessage::Text(t) if data.plaintext => ("msg", t.clone().into_bytes()),
            _ => ("pck", serde_json::to_vec(&msg.to_value()).expect("a JSON value always serialises")),
        };
        let filebase = Self::filebase_21(&msgsave, listname, now, rcvtime);
        let mut out = data.without_private_keys();
        out.version = Some(3);
        *data = out.clone();
        fileio::write_file(self.os, &self.path(&format!("{filebase}.{ext}")), &msgsave, Sync::NoFsync).await?;
        let db = self.path(&format!("{filebase}.db"));
        let tmp = format!("{db}.tmp");
        let meta = serde_json::to_vec(&out).expect("msgdata always serialises");
        fileio::write_then_rename(self.os, &tmp, &db, &meta, Sync::NoFsync).await?;
        Ok(filebase)
    }

    /// 2.0 `Message.Enqueue`: `<sha>.db` in place, then `<sha>.msg` via `.msg.tmp`.
    async fn enqueue_flat20(
        &self,
        msg: &QueuedMessage,
        data: &mut MsgData,
        now: f64,
        listname: &str,
    ) -> io::Result<String> {
        let text = msg.text_for_plain_file();
        let mut h = Sha1::new();
        h.update(text.as_bytes());
        h.update(listname.as_bytes());
        h.update(repr_f64(now).as_bytes());
        let sha = hex::encode(h.finalize());
        data.received_time.get_or_insert(now);
        let meta = serde_json::to_vec(&*data).expect("msgdata always serialises");
        fileio::write_file(self.os, &self.path(&format!("{sha}.db")), &meta, Sync::NoFsync).await?;
        let msgfile = self.path(&format!("{sha}.msg"));
        let tmp = format!("{msgfile}.tmp");
        fileio::write_then_rename(self.os, &tmp, &msgfile, text.as_bytes(), Sync::NoFsync).await?;
        Ok(sha)
    }

    /// `files()`: entries of this slice whose extension is the trigger
    /// (`.db` before 2.1.5, `.pck` after), FIFO by `float(when)`. In the 2.0
    /// format: every `<sha>.db` in directory order, unsliced.
    pub async fn files(&self) -> io::Result<Vec<String>> {
        let trigger = match self.settings.format {
            QueueFormat::Flat20 => {
                let names = self.os.read_dir(&self.dir).await?;
                return Ok(names.iter().filter_map(|n| n.strip_suffix(".db").map(str::to_string)).collect());
            }
            QueueFormat::TwoFile21Early => "db",
            QueueFormat::OnePck => "pck",
        };
        self.files_with_extension(trigger).await
    }

    async fn files_with_extension(&self, extension: &str) -> io::Result<Vec<String>> {
        let names = self.os.read_dir(&self.dir).await?;
        // `times` keyed by the float; Vec + total order keeps insertion semantics
        // of the Python dict (a later entry with an equal key replaces the earlier).
        let mut times: Vec<(f64, String)> = Vec::new();
        for name in names {
            let Some((filebase, ext)) = name.rsplit_once('.') else {
                continue;
            };
            if ext != extension {
                continue;
            }
            // Mailman raises ValueError on a name without `+` or with a bad
            // float; the model skips such names so that a stray file cannot
            // kill a runner (a documented departure).
            let Some((when, digest)) = filebase.split_once('+') else {
                continue;
            };
            let Some(digest) = parse_digest(digest) else {
                continue;
            };
            let Ok(mut key) = when.parse::<f64>() else {
                continue;
            };
            if !in_slice(&digest, self.slice, self.settings.slice_rule) {
                continue;
            }
            match self.settings.key_collision {
                KeyCollision::DropUntilNextPass => {
                    if let Some(slot) = times.iter_mut().find(|(k, _)| *k == key) {
                        slot.1 = filebase.to_string();
                        continue;
                    }
                }
                KeyCollision::AddDelta => {
                    let mut guard = 0u32;
                    while times.iter().any(|(k, _)| *k == key) && guard < 1_000_000 {
                        key += self.settings.key_delta_s;
                        guard += 1;
                    }
                }
            }
            times.push((key, filebase.to_string()));
        }
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(times.into_iter().map(|(_, fb)| fb).collect())
    }

    /// `dequeue(filebase)` for the 2.1 formats (docs/semantics/mailman-queues-runners.md §6).
    pub async fn dequeue(&self, filebase: &str) -> Result<Dequeued, DequeueError> {
        let result = match self.settings.format {
            QueueFormat::OnePck => self.dequeue_one_pck(filebase).await,
            QueueFormat::TwoFile21Early => self.dequeue_two_file(filebase).await,
            QueueFormat::Flat20 => self.read_flat(filebase).await,
        };
        match &result {
            Ok(d) => self.os.event(ModelEvent::QueueDequeued {
                queue: self.whichq.clone(),
                filebase: filebase.to_string(),
                message_id: d.msg.as_ref().map(Message::message_id).unwrap_or_default(),
                list: d.data.listname.clone().unwrap_or_default(),
            }),
            Err(e) => self.os.event(ModelEvent::QueueDequeueFailed {
                queue: self.whichq.clone(),
                filebase: filebase.to_string(),
                reason: e.kind(),
                errno: e.errno_name(),
            }),
        }
        result
    }

    async fn dequeue_one_pck(&self, filebase: &str) -> Result<Dequeued, DequeueError> {
        let pck = self.path(&format!("{filebase}.pck"));
        let fd = self.os.open(&pck, OpenFlags::read_only()).await?;
        let body = async {
            match self.settings.dequeue_mode {
                DequeueMode::OpenThenRenameToBak => {
                    self.os.rename(&pck, &self.path(&format!("{filebase}.bak"))).await?
                }
                DequeueMode::OpenThenUnlink | DequeueMode::ReadThenUnlink => self.os.unlink(&pck).await?,
            }
            read_to_end(self.os, fd, fileio::READ_CHUNK_BYTES).await
        }
        .await;
        let bytes = close_after(self.os, fd, body).await?;
        let (msg_value, data, _) = decode_pair(&bytes)?;
        let msg = message_from_value(msg_value, data.parsemsg)?;
        Ok(Dequeued { msg: Some(msg), data })
    }

    /// Tag 2.1.2 `dequeue`: `.db` first (ENOENT → `{}`), then `.pck`, then `.msg`.
    async fn dequeue_two_file(&self, filebase: &str) -> Result<Dequeued, DequeueError> {
        let db = self.path(&format!("{filebase}.db"));
        let data = match fileio::read_file(self.os, &db).await {
            Ok(bytes) => {
                let data: MsgData = serde_json::from_slice(&bytes).map_err(|e| DequeueError::Decode(e.to_string()))?;
                self.os.unlink(&db).await?;
                data
            }
            Err(e) if errno(&e) == libc::ENOENT => MsgData::default(),
            Err(e) => return Err(e.into()),
        };
        let pck = self.path(&format!("{filebase}.pck"));
        match fileio::read_file(self.os, &pck).await {
            Ok(bytes) => {
                let value: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| DequeueError::Decode(e.to_string()))?;
                self.os.unlink(&pck).await?;
                let msg = message_from_value(value, true)?;
                return Ok(Dequeued { msg: Some(msg), data });
            }
            Err(e) if errno(&e) == libc::ENOENT => {}
            Err(e) => return Err(e.into()),
        }
        let msgfile = self.path(&format!("{filebase}.msg"));
        match fileio::read_file(self.os, &msgfile).await {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                match Message::parse(&text) {
                    Ok(msg) => {
                        self.os.unlink(&msgfile).await?;
                        Ok(Dequeued { msg: Some(msg), data })
                    }
                    Err(e) => {
                        // Tag 2.1.2: an unparsable `.msg` goes to `bad/<fb>.txt`.
                        syslog(self.os, "error", format!("message is unparsable: {filebase}: {e}"));
                        fileio::mkdir_exist_ok(self.os, &self.bad_dir()).await?;
                        self.os.rename(&msgfile, &format!("{}/{filebase}.txt", self.bad_dir())).await?;
                        Ok(Dequeued { msg: None, data })
                    }
                }
            }
            Err(e) if errno(&e) == libc::ENOENT => Ok(Dequeued { msg: None, data }),
            Err(e) => Err(e.into()),
        }
    }

    /// 2.0: read `<sha>.db` and `<sha>.msg` without removing them.
    pub async fn read_flat(&self, sha: &str) -> Result<Dequeued, DequeueError> {
        let db = fileio::read_file(self.os, &self.path(&format!("{sha}.db"))).await?;
        let data: MsgData = serde_json::from_slice(&db).map_err(|e| DequeueError::Decode(e.to_string()))?;
        let text = fileio::read_file(self.os, &self.path(&format!("{sha}.msg"))).await?;
        let msg = Message::parse(&String::from_utf8_lossy(&text))?;
        Ok(Dequeued { msg: Some(msg), data })
    }

    /// 2.0 re-queue of a kept message: rewrite `<sha>.db` in place (the
    /// `.msg` is left as it is).
    pub async fn rewrite_flat_db(&self, sha: &str, data: &MsgData) -> io::Result<()> {
        let meta = serde_json::to_vec(data).expect("msgdata always serialises");
        fileio::write_file(self.os, &self.path(&format!("{sha}.db")), &meta, Sync::NoFsync).await
    }

    /// 2.0 `dequeue(root)`: unlink `.db`, then `.msg`. Errors propagate.
    pub async fn remove_flat(&self, sha: &str) -> io::Result<()> {
        self.os.unlink(&self.path(&format!("{sha}.db"))).await?;
        self.os.unlink(&self.path(&format!("{sha}.msg"))).await
    }

    /// `finish(filebase, preserve)`: only the `.bak` format has anything to
    /// finish. Errors are logged and swallowed, as in Mailman.
    pub async fn finish(&self, filebase: &str, how: Finish) {
        if self.settings.dequeue_mode != DequeueMode::OpenThenRenameToBak || self.settings.format != QueueFormat::OnePck
        {
            return;
        }
        let bak = self.path(&format!("{filebase}.bak"));
        let preserve = how == Finish::Preserve;
        let result = async {
            if preserve {
                fileio::mkdir_exist_ok(self.os, &self.bad_dir()).await?;
                self.os.rename(&bak, &format!("{}/{filebase}.psv", self.bad_dir())).await
            } else {
                self.os.unlink(&bak).await
            }
        }
        .await;
        let (outcome, errno_symbol) = match &result {
            Ok(()) if preserve => (FinishOutcome::Preserved, "none".to_string()),
            Ok(()) => (FinishOutcome::Removed, "none".to_string()),
            Err(e) => {
                syslog(self.os, "error", format!("Failed to unlink/preserve backup file: {bak}: {e}"));
                (FinishOutcome::Failed, errno_name(errno(e)))
            }
        };
        self.os.event(ModelEvent::QueueFinished {
            queue: self.whichq.clone(),
            filebase: filebase.to_string(),
            outcome,
            errno: errno_symbol,
        });
    }

    /// `recover_backup_files()` (2.1.9+), for the `.bak` entries in this slice.
    /// I/O errors other than decode failures propagate, as they do out of
    /// `Runner.__init__`.
    pub async fn recover_backup_files(&self) -> io::Result<()> {
        if self.settings.bak_recovery == BakRecovery::None || self.settings.format != QueueFormat::OnePck {
            return Ok(());
        }
        for filebase in self.files_with_extension("bak").await? {
            let src = self.path(&format!("{filebase}.bak"));
            let dst = self.path(&format!("{filebase}.pck"));
            if self.settings.bak_recovery == BakRecovery::Always {
                self.os.rename(&src, &dst).await?;
                self.bak_event(&filebase, 0, BakOutcome::Recovered);
                continue;
            }
            let fd = self.os.open(&src, OpenFlags::read_write()).await?;
            let rewritten = async {
                let bytes = read_to_end(self.os, fd, fileio::READ_CHUNK_BYTES).await?;
                let (mut data, data_pos) = match decode_pair(&bytes) {
                    Ok((_, data, data_pos)) => (data, data_pos),
                    Err(e) => return Ok(Err(e)),
                };
                let count = data.bak_count.unwrap_or(0) + 1;
                data.bak_count = Some(count);
                let mut tail = vec![b'\n'];
                tail.extend(serde_json::to_vec(&data).expect("msgdata always serialises"));
                self.os.seek(fd, data_pos as u64).await?;
                self.os.write(fd, &tail).await?;
                self.os.set_len(fd, (data_pos + tail.len()) as u64).await?;
                self.os.fsync(fd).await?;
                Ok::<_, io::Error>(Ok(count))
            }
            .await;
            match close_after(self.os, fd, rewritten).await? {
                Err(e) => {
                    // docs/semantics/mailman-corrupt-files.md: the exception text
                    // is the model decoder's, not cPickle's.
                    let why = match &e {
                        DequeueError::Decode(why) => why.clone(),
                        other => other.to_string(),
                    };
                    syslog(self.os, "error", format!("Unpickling .bak exception: {why}\npreserving file: {filebase}"));
                    self.finish(&filebase, Finish::Preserve).await;
                    self.bak_event(&filebase, 0, BakOutcome::PreservedUndecodable);
                }
                Ok(count) if count >= self.settings.max_bak_count => {
                    syslog(self.os, "error", format!(".bak file max count, preserving file: {filebase}"));
                    self.finish(&filebase, Finish::Preserve).await;
                    self.bak_event(&filebase, count, BakOutcome::PreservedMaxCount);
                }
                Ok(count) => {
                    self.os.rename(&src, &dst).await?;
                    self.bak_event(&filebase, count, BakOutcome::Recovered);
                }
            }
        }
        Ok(())
    }

    fn bak_event(&self, filebase: &str, bak_count: u32, outcome: BakOutcome) {
        self.os.event(ModelEvent::BakRecovered {
            queue: self.whichq.clone(),
            filebase: filebase.to_string(),
            bak_count,
            outcome,
        });
    }
}

/// Decodes the two back-to-back values of a one-file entry. Returns the
/// message value, the metadata and the byte offset where the metadata starts
/// (Python's `fp.tell()` after the first `load`).
fn decode_pair(bytes: &[u8]) -> Result<(serde_json::Value, MsgData, usize), DequeueError> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
    let msg = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(DequeueError::Decode(e.to_string())),
        None => return Err(DequeueError::Decode("EOFError: empty entry".to_string())),
    };
    let data_pos = stream.byte_offset();
    let data = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(DequeueError::Decode(e.to_string())),
        None => return Err(DequeueError::Decode("EOFError: no metadata".to_string())),
    };
    let data: MsgData = serde_json::from_value(data).map_err(|e| DequeueError::Decode(e.to_string()))?;
    Ok((msg, data, data_pos))
}

/// A message from its stored value: text is parsed when `parse` is set (or
/// always, since text cannot be used unparsed), an object is a stored message.
fn message_from_value(value: serde_json::Value, parse: bool) -> Result<Message, DequeueError> {
    match value {
        serde_json::Value::String(text) => {
            let _ = parse;
            Ok(Message::parse(&text)?)
        }
        other => serde_json::from_value(other).map_err(|e| DequeueError::Decode(e.to_string())),
    }
}
