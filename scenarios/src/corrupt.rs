//! `mmsim real corrupt --dir D`: corrupt files on the real filesystem.
//!
//! Seeds `D` with a Mailman-like layout (`lists/<list>/`, `qfiles/<queue>/`,
//! `locks/`, `logs/`) holding four kinds of damage, runs the model's own code
//! on each through `model::RealOs` rooted at `D` (the list store's `Load()`,
//! `MailList.Lock()` over the list lock, an IncomingRunner's start-up and one
//! `_oneloop` pass), and reports per case what the model did, read back
//! afterwards from the files under `D` and from the Mailman-style logs the
//! model wrote there (`logs/error`, `logs/locks`). What each case should come
//! to, and in which release function: docs/semantics/mailman-corrupt-files.md.
//!
//! Every path this module touches is `D` joined with a relative path of its
//! own, and the model's paths are relative to its `RealOs` root, so nothing is
//! written outside `D`. The seeded lock content holds no `/`, so the lock
//! break's unlink of the "winner" it names stays inside `D` as well.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use model::list_access::{ListConfig, LockCounter, MailList};
use model::profile::Settings;
use model::runner::{run_runner, IncomingRunner};
use model::slice::Slice;
use model::RealOs;
use serde::Serialize;

/// The list whose `config.pck` is truncated.
pub const CONFIG_LIST: &str = "test";
/// The list whose lock file holds garbage.
pub const LOCKED_LIST: &str = "other";
/// The queue of the two queue cases.
pub const QUEUE: &str = "in";
/// The entry that does not decode: `<received time>+<sha1 hex>`, as Switchboard names them.
pub const BAD_PCK: &str = "1700000000.25+da39a3ee5e6b4b0d3255bfef95601890afd80709";
/// The zero-length `.bak`.
pub const EMPTY_BAK: &str = "1700000001.5+2fd4e1c67a2d28fced849ee1bb76e7391b93eb12";
/// What the undecodable entry holds: NUL blocks, as a client crash leaves them, then text.
pub const BAD_PCK_BYTES: &[u8] = b"\0\0\0\0\0\0\0\0garbage, not a queue entry\n";
/// What the garbage lock file holds (no `/`: see the module doc).
pub const LOCK_GARBAGE: &[u8] = b"#garbage, not a claim 0xdeadbeef\n";
/// How old the garbage lock file's mtime is made: past `CLOCK_SLOP` (10 s).
pub const LOCK_AGE: Duration = Duration::from_secs(3600);
/// The `post_id`s of the good `.last` and of the newer, truncated `config.pck`.
pub const LAST_POST_ID: u64 = 7;
pub const PRIMARY_POST_ID: u64 = 8;
/// The release the default settings model.
pub const PROFILE: &str = "2.1.39";

/// The layout names `D` must not hold yet: the report reads what the run
/// appended, and a second run would find the first one's files.
const LAYOUT: [&str; 4] = ["lists", "qfiles", "locks", "logs"];

/// Why `--dir` cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum BadDir {
    #[error("--dir {0}: not a directory")]
    NotADirectory(String),
    #[error("--dir {0}: not writable: {1}")]
    NotWritable(String, io::ErrorKind),
    #[error("--dir {0}: already holds {1}/ (give an empty directory)")]
    NotEmpty(String, String),
}

/// One line of a Mailman-style log written during a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// `error` or `locks`.
    pub log: String,
    /// The message, without the time stamp, pid and host; may span lines.
    pub message: String,
}

/// What happened to one corrupt file.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    /// `config`, `queue-entry`, `bak`, `lock`.
    pub id: String,
    /// The corrupt file, relative to `D`.
    pub file: String,
    /// What was seeded.
    pub seeded: String,
    /// The model call and what it returned.
    pub call: String,
    /// What the model did, read back from `D` and its logs.
    pub outcome: String,
    /// Whether that is what the release does (docs/semantics/mailman-corrupt-files.md).
    pub as_release: bool,
    /// The release function that decides it.
    pub release_function: String,
    /// The directories the case touches and their entries afterwards, sorted.
    pub files: BTreeMap<String, Vec<String>>,
    /// The lines `logs/error` and `logs/locks` gained during the case; the
    /// model's JSON event lines in `logs/locks` are left out.
    pub logs: Vec<LogEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CorruptReport {
    pub dir: String,
    pub profile: String,
    pub cases: Vec<Case>,
}

impl CorruptReport {
    /// True when every case went as the release does.
    pub fn as_release(&self) -> bool {
        self.cases.iter().all(|c| c.as_release)
    }

    pub fn render(&self) -> String {
        let mut s = format!("dir      {}\nprofile  Mailman {}\n", self.dir, self.profile);
        for c in &self.cases {
            s.push_str(&format!("\n{} ({})\n", c.file, c.id));
            s.push_str(&format!("  seeded   {}\n", c.seeded));
            s.push_str(&format!("  call     {}\n", c.call));
            let verdict = if c.as_release { "as" } else { "NOT as" };
            s.push_str(&format!("  outcome  {} [{verdict} {}]\n", c.outcome, c.release_function));
            for (dir, names) in &c.files {
                let names = if names.is_empty() { "(empty)".to_string() } else { names.join(" ") };
                s.push_str(&format!("  files    {dir}/: {names}\n"));
            }
            for entry in &c.logs {
                let mut lines = entry.message.lines();
                s.push_str(&format!("  log      {}: {}\n", entry.log, lines.next().unwrap_or("")));
                for more in lines {
                    s.push_str(&format!("           {}  {more}\n", " ".repeat(entry.log.len())));
                }
            }
        }
        let n = self.cases.iter().filter(|c| c.as_release).count();
        s.push_str(&format!("\n{n} of {} cases handled as Mailman {} does\n", self.cases.len(), self.profile));
        s
    }
}

/// Checks `dir` for the command: a directory, writable, without the layout yet.
pub fn check_dir(dir: &Path) -> Result<(), BadDir> {
    let shown = dir.display().to_string();
    if !dir.is_dir() {
        return Err(BadDir::NotADirectory(shown));
    }
    if let Some(name) = LAYOUT.iter().find(|n| dir.join(n).symlink_metadata().is_ok()) {
        return Err(BadDir::NotEmpty(shown, name.to_string()));
    }
    // A probe file, removed again: permission bits alone do not tell (root, ACLs, read-only mounts).
    let probe = dir.join(".mmsim-corrupt-probe");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(BadDir::NotWritable(shown, e.kind())),
    }
}

/// Seeds `dir` (already checked by [`check_dir`]) and runs every case.
pub fn corrupt(dir: &Path, host: &str) -> io::Result<CorruptReport> {
    let seeds = seed(dir)?;
    let settings = Settings::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let os = RealOs::new(dir.to_path_buf(), host.to_string());
    let counter = LockCounter::new();
    let logs = Logs { dir: dir.to_path_buf(), host: host.to_string() };

    let mut cases = Vec::new();

    // 1. The truncated config.pck, through an unlocked Load() as a runner's `_open_list` does.
    let before = logs.mark();
    let call = local.block_on(&runtime, async {
        let mut mlist = match MailList::new(&os, &counter, CONFIG_LIST, settings.list_store.clone()) {
            Ok(m) => m,
            Err(e) => return format!("MailList({CONFIG_LIST:?}) failed: {e}"),
        };
        let loaded = mlist.load().await;
        let post_id = mlist.config().post_id;
        let finalized = mlist.finalize().await;
        match (loaded, finalized) {
            (Ok(()), Ok(())) => format!("MailList({CONFIG_LIST:?}).Load(): ok, post_id {post_id}"),
            (Err(e), _) => format!("MailList({CONFIG_LIST:?}).Load(): error: {e}"),
            (Ok(()), Err(e)) => format!("MailList({CONFIG_LIST:?}).Load(): ok, then finalisation failed: {e}"),
        }
    });
    cases.push(config_case(dir, &seeds, call, logs.since(&before)));

    // 2. The garbage lock file, through MailList.Lock(LIST_LOCK_TIMEOUT).
    let before = logs.mark();
    let timeout = settings.list_store.list_lock_timeout;
    let call = local.block_on(&runtime, async {
        let mut mlist = match MailList::new(&os, &counter, LOCKED_LIST, settings.list_store.clone()) {
            Ok(m) => m,
            Err(e) => return format!("MailList({LOCKED_LIST:?}) failed: {e}"),
        };
        let locked = mlist.lock(Some(timeout)).await;
        let text = match &locked {
            Ok(()) => {
                let unlocked = mlist.unlock().await;
                match unlocked {
                    Ok(()) => format!("MailList({LOCKED_LIST:?}).Lock({}): acquired; Unlock(): ok", timeout.as_secs()),
                    Err(e) => format!("MailList({LOCKED_LIST:?}).Lock({}): acquired; Unlock(): {e}", timeout.as_secs()),
                }
            }
            Err(e) => format!("MailList({LOCKED_LIST:?}).Lock({}): error: {e}", timeout.as_secs()),
        };
        match mlist.finalize().await {
            Ok(()) => text,
            Err(e) => format!("{text}; finalisation failed: {e}"),
        }
    });
    cases.push(lock_case(dir, call, logs.since(&before)));

    // 3 and 4. One IncomingRunner start (recover_backup_files) and one `_oneloop` pass.
    // Last: the runner asks for signals, which leaves TERM, INT and HUP caught in this process.
    let before = logs.mark();
    let mut one_pass = settings.clone();
    one_pass.runner.passes_max = 1;
    let code = local.block_on(&runtime, run_runner(&os, &one_pass, Slice::WHOLE, IncomingRunner::new()));
    let call = format!("IncomingRunner on qfiles/{QUEUE}, start-up and one _oneloop pass: exit {code}");
    let entries = logs.since(&before);
    let (bak_logs, pck_logs): (Vec<LogEntry>, Vec<LogEntry>) =
        entries.into_iter().partition(|e| e.message.contains(EMPTY_BAK));
    cases.push(queue_case(dir, &call, "queue-entry", BAD_PCK, ".pck", BAD_PCK_BYTES, pck_logs));
    cases.push(queue_case(dir, &call, "bak", EMPTY_BAK, ".bak", b"", bak_logs));
    // The order of the brief: config, queue entry, .bak, lock.
    let lock = cases.remove(1);
    cases.push(lock);

    Ok(CorruptReport { dir: dir.display().to_string(), profile: PROFILE.to_string(), cases })
}

/// What `seed` wrote, for the checks afterwards.
struct Seeds {
    truncated: Vec<u8>,
    full_len: usize,
    last: Vec<u8>,
}

fn seed(dir: &Path) -> io::Result<Seeds> {
    for d in [
        format!("lists/{CONFIG_LIST}"),
        format!("lists/{LOCKED_LIST}"),
        format!("qfiles/{QUEUE}"),
        "locks".to_string(),
        "logs".to_string(),
    ] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    let config = |post_id| {
        let mut c = ListConfig::new(CONFIG_LIST, "lists.example.org", "example.net", 3);
        c.post_id = post_id;
        ListConfig::encode(&Rc::new(c))
    };
    let last = config(LAST_POST_ID);
    let full = config(PRIMARY_POST_ID);
    let truncated = full[..full.len() / 2].to_vec();
    let list_dir = dir.join("lists").join(CONFIG_LIST);
    std::fs::write(list_dir.join("config.pck.last"), &last)?;
    std::fs::write(list_dir.join("config.pck"), &truncated)?;

    let mut other = ListConfig::new(LOCKED_LIST, "lists.example.org", "example.net", 3);
    other.post_id = 1;
    std::fs::write(dir.join("lists").join(LOCKED_LIST).join("config.pck"), ListConfig::encode(&Rc::new(other)))?;
    let lock = dir.join("locks").join(format!("{LOCKED_LIST}.lock"));
    std::fs::write(&lock, LOCK_GARBAGE)?;
    #[allow(clippy::disallowed_methods)] // a real file's mtime, set from the real clock
    let old = SystemTime::now() - LOCK_AGE;
    std::fs::File::options().write(true).open(&lock)?.set_modified(old)?;

    let queue = dir.join("qfiles").join(QUEUE);
    std::fs::write(queue.join(format!("{BAD_PCK}.pck")), BAD_PCK_BYTES)?;
    std::fs::write(queue.join(format!("{EMPTY_BAK}.bak")), b"")?;
    Ok(Seeds { truncated, full_len: full.len(), last })
}

fn read(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(rel)).ok()
}

fn names(dir: &Path, rel: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(rel))
        .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn listing(dir: &Path, rels: &[&str]) -> BTreeMap<String, Vec<String>> {
    rels.iter().map(|r| (r.to_string(), names(dir, r))).collect()
}

fn has(logs: &[LogEntry], log: &str, message: &str) -> bool {
    logs.iter().any(|e| e.log == log && e.message == message)
}

fn config_case(dir: &Path, seeds: &Seeds, call: String, logs: Vec<LogEntry>) -> Case {
    let base = format!("lists/{CONFIG_LIST}");
    let primary = format!("{base}/config.pck");
    let last = format!("{primary}.last");
    let is = |rel: &str, bytes: &[u8]| read(dir, rel).as_deref() == Some(bytes);
    let fell_back = logs
        .iter()
        .any(|e| e.log == "error" && e.message.starts_with(&format!("couldn't load config file {primary}\n")));
    let fixing = has(&logs, "error", &format!("fixing corrupt config file, using: {last}"));
    let copied_back = is(&primary, &seeds.last);
    let corrupt_kept = is(&format!("{primary}.corrupt"), &seeds.truncated);
    let safety = is(&format!("{primary}.safety"), &seeds.last);
    let last_intact = is(&last, &seeds.last);
    // The repair's own lock and claim (`locks/test.lock…`) are gone again.
    let lock_left = names(dir, "locks").into_iter().any(|n| n.starts_with(&format!("{CONFIG_LIST}.lock")));
    let outcome = match (fell_back, copied_back, corrupt_kept) {
        (true, true, true) if fixing && safety && last_intact => {
            "fell back to config.pck.last, repaired (config.pck.corrupt kept)".to_string()
        }
        (true, true, false) => {
            "fell back to config.pck.last, copied it over config.pck (the truncated file is gone)".to_string()
        }
        (true, false, _) => "fell back past config.pck but did not repair it".to_string(),
        (false, _, _) if is(&primary, &seeds.truncated) => "config.pck left truncated, no fallback logged".to_string(),
        _ => "config.pck changed without a logged fallback".to_string(),
    };
    let outcome = if lock_left { format!("{outcome}, but locks/{CONFIG_LIST}.lock files are left") } else { outcome };
    let as_release = fell_back && fixing && copied_back && corrupt_kept && safety && last_intact && !lock_left;
    Case {
        id: "config".into(),
        file: primary,
        seeded: format!(
            "{} of {} bytes (post_id {PRIMARY_POST_ID}, cut in half); config.pck.last good (post_id {LAST_POST_ID})",
            seeds.truncated.len(),
            seeds.full_len
        ),
        call,
        outcome,
        as_release,
        release_function: "Mailman/MailList.py Load(), __fix_corrupt_pckfile()".into(),
        files: listing(dir, &[&base]),
        logs,
    }
}

fn lock_case(dir: &Path, call: String, logs: Vec<LogEntry>) -> Case {
    let file = format!("locks/{LOCKED_LIST}.lock");
    let prefix = format!("{LOCKED_LIST}.lock");
    let linkcount = has(&logs, "locks", &format!("{prefix} unexpected linkcount: 1"));
    let broke = has(&logs, "locks", &format!("{prefix} lifetime has expired, breaking"));
    let acquired = call.contains("acquired; Unlock(): ok");
    let gone = read(dir, &file).is_none();
    let no_claims = names(dir, "locks").is_empty();
    let mut parts = Vec::new();
    if linkcount {
        parts.push("unexpected linkcount 1 (a file, not a claim's hard link)".to_string());
    }
    if broke {
        parts.push(format!("lifetime expired (mtime {} s old): broken", LOCK_AGE.as_secs()));
    }
    parts.push(if acquired { "then acquired and released".into() } else { "not acquired".to_string() });
    if !gone {
        parts.push("the garbage lock file is still there".into());
    } else if !no_claims {
        parts.push("claim files left in locks/".into());
    }
    Case {
        id: "lock".into(),
        file,
        seeded: format!(
            "{} bytes of garbage ({:?}), nlink 1, mtime {} s ago",
            LOCK_GARBAGE.len(),
            String::from_utf8_lossy(LOCK_GARBAGE),
            LOCK_AGE.as_secs()
        ),
        call,
        outcome: parts.join(", "),
        as_release: linkcount && broke && acquired && gone && no_claims,
        release_function: "Mailman/LockFile.py lock(), __read(), __break()".into(),
        files: listing(dir, &["locks"]),
        logs,
    }
}

fn queue_case(dir: &Path, call: &str, id: &str, fb: &str, ext: &str, bytes: &[u8], logs: Vec<LogEntry>) -> Case {
    let queue = format!("qfiles/{QUEUE}");
    let file = format!("{queue}/{fb}{ext}");
    let psv = format!("qfiles/bad/{fb}.psv");
    let preserved = read(dir, &psv).as_deref() == Some(bytes);
    let in_queue: Vec<String> = names(dir, &queue).into_iter().filter(|n| n.starts_with(fb)).collect();
    let outcome = if preserved && in_queue.is_empty() {
        let what = if id == "bak" { "not recovered to .pck: " } else { "undecodable: " };
        format!("{what}preserved in {psv}")
    } else if !in_queue.is_empty() {
        format!("left in {queue}/ as {}", in_queue.join(", "))
    } else {
        "gone: neither in the queue nor in qfiles/bad/".to_string()
    };
    let (release_function, logged) = if id == "bak" {
        (
            "Mailman/Queue/Switchboard.py recover_backup_files(), finish(preserve=True)",
            logs.iter().any(|e| {
                e.log == "error"
                    && e.message.starts_with("Unpickling .bak exception: ")
                    && e.message.ends_with(&format!("\npreserving file: {fb}"))
            }),
        )
    } else {
        (
            "Mailman/Queue/Switchboard.py dequeue(), finish(preserve=True); Mailman/Queue/Runner.py _oneloop()",
            logs.iter().any(|e| e.log == "error" && e.message.starts_with("Uncaught runner exception: "))
                && has(&logs, "error", &format!("Skipping and preserving unparseable message: {fb}")),
        )
    };
    Case {
        id: id.into(),
        file,
        seeded: if bytes.is_empty() {
            "0 bytes".into()
        } else {
            format!("{} bytes that do not decode ({:?})", bytes.len(), String::from_utf8_lossy(bytes))
        },
        call: call.to_string(),
        outcome,
        as_release: preserved && in_queue.is_empty() && logged,
        release_function: release_function.into(),
        files: listing(dir, &[&queue, "qfiles/bad"]),
        logs,
    }
}

/// The Mailman-style logs `RealOs` writes under `D/logs/`: each entry is
/// `<20-character time stamp> (<pid>) <host>: <message>`, and a message may
/// continue on the lines after it.
struct Logs {
    dir: PathBuf,
    host: String,
}

/// How many entries each log had.
struct Mark(BTreeMap<&'static str, usize>);

const LOGS_READ: [&str; 2] = ["error", "locks"];

impl Logs {
    fn entries(&self, log: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("logs").join(log)).unwrap_or_default();
        let mut entries: Vec<String> = Vec::new();
        let tag = format!(" {}: ", self.host);
        for line in text.lines() {
            let head = line.get(20..).filter(|rest| rest.starts_with(" (")).and_then(|rest| {
                rest.find(&tag).filter(|&i| rest[2..i].ends_with(')')).map(|i| &rest[i + tag.len()..])
            });
            match (head, entries.last_mut()) {
                (Some(message), _) => entries.push(message.to_string()),
                (None, Some(last)) => {
                    last.push('\n');
                    last.push_str(line);
                }
                (None, None) => entries.push(line.to_string()),
            }
        }
        entries
    }

    fn mark(&self) -> Mark {
        Mark(LOGS_READ.iter().map(|&log| (log, self.entries(log).len())).collect())
    }

    /// The entries written since `mark`, `error` first; JSON event lines left out.
    fn since(&self, mark: &Mark) -> Vec<LogEntry> {
        let mut out = Vec::new();
        for log in LOGS_READ {
            for message in self.entries(log).into_iter().skip(mark.0[log]) {
                if !message.starts_with('{') {
                    out.push(LogEntry { log: log.to_string(), message });
                }
            }
        }
        out
    }
}
