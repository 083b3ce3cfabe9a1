//! Annotations: what the model believes it did, recorded beside what it did.
//!
//! Oracles in `scenarios` read these from the trace; they never ask the model.
//! Each variant is one belief at one instant. The canonical text of an event is
//! its serde JSON form, so the field order here is part of every trace hash:
//! append fields, never reorder them.

use serde::Serialize;

/// When Exim routes an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStage {
    /// At RCPT time, verifying the recipient.
    Verify,
    /// In the delivery process, after DATA.
    Delivery,
}

/// SMTPDirect's verdict for one recipient (mailman-queues-runners.md §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientOutcome {
    Delivered,
    /// A 5xx for the recipient: Mailman registers a bounce.
    Permanent,
    /// A 4xx: the recipient is retried.
    Temporary,
    /// A 5xx other than 552 for MAIL FROM or DATA: Mailman marks nobody, so
    /// the recipient is neither delivered nor retried.
    DroppedSessionRefused,
}

impl std::fmt::Display for RecipientOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecipientOutcome::Delivered => "delivered",
            RecipientOutcome::Permanent => "permanent",
            RecipientOutcome::Temporary => "temporary",
            RecipientOutcome::DroppedSessionRefused => "dropped_session_refused",
        })
    }
}

/// What start-up recovery did with a `.bak` entry (mailman-queues-runners.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BakOutcome {
    /// Renamed back to `.pck`, to be processed again.
    Recovered,
    /// Moved to `bad/`: it did not decode.
    PreservedUndecodable,
    /// Moved to `bad/`: it had been recovered too often.
    PreservedMaxCount,
}

/// How a dequeue failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DequeueFailure {
    /// An `OSError`/`IOError` from open, unlink, rename or read.
    Io,
    /// The entry did not decode.
    Decode,
    /// The entry's text does not parse as a message.
    Parse,
}

impl std::fmt::Display for DequeueFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DequeueFailure::Io => "io",
            DequeueFailure::Decode => "decode",
            DequeueFailure::Parse => "parse",
        })
    }
}

/// Why a runner process exits. Recorded as its `Display` text (`done`,
/// `sigterm`, `sigint`, `lock busy`, `error: …`), so the trace keeps the words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerExit {
    /// Its loop ended (`--once`, or the 2.0 qrunner's pass).
    Done,
    Sigterm,
    Sigint,
    /// The 2.0 qrunner found another holding its site lock.
    LockBusy,
    /// An exception escaped the loop: what it was.
    Error(String),
}

impl std::fmt::Display for RunnerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunnerExit::Done => f.write_str("done"),
            RunnerExit::Sigterm => f.write_str("sigterm"),
            RunnerExit::Sigint => f.write_str("sigint"),
            RunnerExit::LockBusy => f.write_str("lock busy"),
            RunnerExit::Error(what) => write!(f, "error: {what}"),
        }
    }
}

impl Serialize for RunnerExit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the MTA's Mailman router decided for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteDecision {
    /// The list check passed: the pipe transport runs the wrapper.
    Accepted,
    /// The check's stat failed with an errno other than ENOENT: 451, try again later.
    Deferred,
    /// The name is not a valid list name: unrouteable without a stat.
    RefusedBadName,
    /// The check's stat got ENOENT: unrouteable, 550, the message bounces.
    BouncedUnknownList,
}

/// How `Switchboard.finish()` ended with an entry's `.bak`. Recorded as
/// the word its `Display` gives, so the trace and the oracles' text agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishOutcome {
    /// The `.bak` was unlinked: the entry is done.
    Removed,
    /// The `.bak` was moved to `bad/` as `.psv` (preserve).
    Preserved,
    /// The unlink or the move failed (`errno` says why).
    Failed,
}

impl std::fmt::Display for FinishOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FinishOutcome::Removed => "removed",
            FinishOutcome::Preserved => "preserved",
            FinishOutcome::Failed => "failed",
        })
    }
}

impl Serialize for FinishOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why a runner shunted or deleted a message instead of delivering it.
///
/// It is recorded as the text Mailman logs, so the trace (and its hash) reads
/// as the string did; code matches on the variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// `_onefile`'s "Dequeuing message destined for missing list": the list
    /// did not open (2.1 shunts the message, 2.0's qrunner deletes it).
    MissingList,
    /// An uncaught exception in the runner, by its message (an errno's text).
    Raised(String),
}

impl DropReason {
    pub fn is_missing_list(&self) -> bool {
        matches!(self, DropReason::MissingList)
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::MissingList => f.write_str("Dequeuing message destined for missing list"),
            DropReason::Raised(message) => f.write_str(message),
        }
    }
}

impl Serialize for DropReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelEvent {
    /// `lock()` returned success: this process believes it holds `lock`.
    LockAcquired { lock: String, claim: String },
    /// `unlock()` is about to run its first filesystem call.
    LockReleasing { lock: String, claim: String },
    /// The smoke workload appended record `record` to `path` inside its critical section.
    Appended { path: String, record: String },
    /// Free-form log line, as Mailman writes to `logs/<log>`.
    Log { log: String, message: String },

    // --- lockfile / mlist events ---
    // Errno values are symbols (`"ENOENT"`, `"ESTALE"`), made by `errno_name`.
    /// The first `link()` of one `lock()` call that failed with EEXIST: another
    /// claim held `lock` (docs/semantics/mailman-lockfile.md §5 step 3.1).
    LockContended { lock: String, claim: String },
    /// `__break()` ran to its end (mailman-lockfile.md §6). `winner` is the claim read from
    /// the lock file before it was unlinked, `None` when the read found ENOENT.
    LockBroken { lock: String, claim: String, winner: Option<String> },
    /// flufl refused to break: the lock file's content is not a four-field claim
    /// name (mailman-lockfile.md §10).
    LockBreakRefused { lock: String, claim: String, content: String },
    /// `lock()` raised TimeOutError after unlinking its claim (mailman-lockfile.md §5 step 3.2).
    LockTimedOut { lock: String, claim: String },
    /// `link()` failed with EEXIST and the lock file's link count was not 2
    /// (mailman-lockfile.md §5 step 3.1). `nlink` is −1 when the stat found ENOENT.
    LockUnexpectedLinkcount { lock: String, claim: String, nlink: i64 },
    /// `link()` failed with an errno the variant does not tolerate; the claim is
    /// unlinked and the error raised out of `lock()` (mailman-lockfile.md §5 step 3.1).
    LockLinkError { lock: String, claim: String, errno: String },
    /// `refresh()` asked `locked()`; `held` is the answer. `false` means
    /// `refresh()` raises NotLockedError unless it was unconditional (mailman-lockfile.md §7).
    LockRefreshed { lock: String, claim: String, held: bool },
    /// `__load(file)` finished for one file of the fallback chain
    /// (docs/semantics/mailman-config-store.md §5). `errno` is set for `missing`; `post_id` for `loaded`.
    ListFileLoad { list: String, file: String, outcome: ListLoadOutcome, errno: Option<String>, post_id: Option<u64> },
    /// `Load()` took its state from `file`, which is not the primary config
    /// file (mailman-config-store.md §6 step 2).
    ListFallbackUsed { list: String, file: String },
    /// Every file of the fallback chain failed: MMCorruptListDatabaseError
    /// (mailman-config-store.md §6 step 2).
    ListCorrupt { list: String },
    /// The repair of mailman-config-store.md §6 step 3 starts, copying from `from`, the
    /// way `mode` says.
    ListRepairStarted { list: String, from: String, mode: crate::mlist::RepairMode },
    /// The repair of mailman-config-store.md §6 step 3 finished without error.
    ListRepairFinished { list: String, from: String },
    /// `Save()` renamed its temporary file over `file` (mailman-config-store.md §4 step 3.4):
    /// from now on the server holds `post_id`.
    ListSaved { list: String, file: String, post_id: u64 },
    /// `list_exists()` concluded that `list` does not exist (mailman-config-store.md §7).
    /// `errnos[i]` is what the stat of `files[i]` failed with; an empty
    /// `files` means the name itself was refused as hostile (2.1.23+).
    ListMissing { list: String, files: Vec<String>, errnos: Vec<String> },

    // --- queue / runner / mta events ---
    /// A Switchboard wrote an entry (docs/semantics/mailman-queues-runners.md §4). `filebase` names
    /// the entry inside `queue`; `message_id` is the ledger key.
    QueueEnqueued { queue: String, filebase: String, message_id: String, list: String },
    /// A Switchboard took an entry for processing (mailman-queues-runners.md §6).
    QueueDequeued { queue: String, filebase: String, message_id: String, list: String },
    /// A dequeue failed, and how.
    QueueDequeueFailed { queue: String, filebase: String, reason: DequeueFailure, errno: String },
    /// `finish()` ran: `outcome` is `removed`, `preserved` (to `bad/`) or `failed`.
    QueueFinished { queue: String, filebase: String, outcome: FinishOutcome, errno: String },
    /// A message was moved to `shunt` after processing raised (mailman-queues-runners.md §7).
    Shunted { queue: String, filebase: String, message_id: String, list: String, reason: DropReason, errno: String },
    /// A message was deleted without delivery (2.0 "dequeue for missing list", mailman-queues-runners.md §15).
    MessageDeleted { queue: String, filebase: String, message_id: String, list: String, reason: DropReason },
    /// A `.bak` entry was recovered (renamed back to `.pck`) or preserved at start-up (mailman-queues-runners.md §6).
    BakRecovered { queue: String, filebase: String, bak_count: u32, outcome: BakOutcome },
    /// IncomingRunner's pipeline numbered a post: the subject carried `post_id` (mailman-queues-runners.md §9).
    PostNumbered { list: String, message_id: String, post_id: u64 },
    /// SMTPDirect's verdict for one recipient (mailman-queues-runners.md §10): `code` is the SMTP code or -1,
    /// `outcome` is its verdict.
    SmtpRecipient { list: String, message_id: String, recipient: String, code: i32, outcome: RecipientOutcome },
    /// A bounce was registered on a list under its lock (mailman-queues-runners.md §11, §13).
    BounceRegistered { list: String, address: String },
    /// A message was appended to a list archive (ArchRunner).
    Archived { list: String, message_id: String },
    /// The MTA's Mailman router's decision for a list address
    /// (docs/semantics/exim.md): `accepted`, `deferred`, `bounced_unknown_list`
    /// or `refused_bad_name`, when verifying at RCPT or routing for delivery.
    MtaRouted { list: String, recipient: String, decision: RouteDecision, errno: String, stage: RouteStage },
    /// The MTA's pipe transport saw `post` exit (mailman-queues-runners.md §16) and judged it;
    /// `exit_code` is -1 for a signal.
    MtaPiped { list: String, message_id: String, program: String, exit_code: i32, outcome: crate::mta::PipeOutcome },
    /// One attempt of the MTA's delivery process at the smarthost
    /// (docs/semantics/exim.md): how many addresses it delivered, and the
    /// addresses that failed and that it deferred.
    MtaRemote {
        message_id: String,
        sender: String,
        attempt: u32,
        delivered: u32,
        failed: Vec<String>,
        deferred: Vec<String>,
    },
    /// The `post` program exits with `exit_code` (mailman-queues-runners.md §16).
    PostExited { list: String, message_id: String, exit_code: i32, reason: String },
    /// A runner process started serving `queue` slice `slice` of `count`.
    RunnerStarted { runner: String, slice: u32, count: u32 },
    /// A runner process is exiting, and why.
    RunnerExited { runner: String, slice: u32, count: u32, reason: RunnerExit },
    /// mailmanctl started (or restarted) a runner child.
    RunnerSpawned { runner: String, slice: u32, count: u32, pid: u32, restarts: u32 },
    /// The downstream sink accepted a delivery; `post_number` is parsed from the subject prefix.
    SinkReceived { recipient: String, message_id: String, post_number: Option<u64>, subject: String },
    /// The downstream sink refused a recipient with `code`.
    SinkRefused { recipient: String, message_id: String, code: u16 },
    /// The sender injected a message to `recipient` (first attempt).
    SenderInjected { message_id: String, recipient: String },
    /// The server accepted the sender's message.
    SenderAccepted { message_id: String, recipient: String, code: u16 },
    /// The server deferred (4xx) or the connection failed (`code` 0); the sender will retry.
    SenderDeferred { message_id: String, recipient: String, code: u16, attempt: u32 },
    /// The server refused permanently (5xx), or the sender gave up (`code` 0).
    SenderBounced { message_id: String, recipient: String, code: u16 },
}

/// What `__load(file)` made of one file (docs/semantics/mailman-config-store.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListLoadOutcome {
    /// Decoded: `(dict, None)`.
    Loaded,
    /// The "already current" mtime shortcut: `(None, None)`; `Load()` returns at once.
    ShortcutSkip,
    /// Opened but failed to decode (a truncated or partial file): `(None, e)`.
    Corrupt,
    /// ENOENT from `stat` or `open`: `(None, e)`.
    Missing,
}
