//! `mmsim real …`: the same model code on a real directory, with real processes.
//!
//! `lock-stress` starts N `mmsim exec … lock-worker` processes on one lock in
//! `--dir` (any directory: a local disk, tmpfs, or a real NFS mount), waits for
//! them, and reports acquisitions, waits, breaks and any overlap of critical
//! sections, read back from the shared log and Mailman's `logs/locks`.
//!
//! `list-stress` installs one list in an empty `--dir`, starts N `list-worker`
//! processes numbering its posts as IncomingRunner does, and reports the lost
//! updates read back from their shared log (docs/semantics/real-lost-update.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::lock_worker::{check_log, LogCheck};

#[derive(Debug, Serialize)]
pub struct LockStressReport {
    pub dir: String,
    pub processes: u32,
    pub rounds: u32,
    pub variant: String,
    pub failed_processes: u32,
    pub acquisitions: u64,
    /// `lock()` calls that found the lock held at least once.
    pub waits: u64,
    pub breaks: u64,
    pub overlaps: u64,
    pub first_overlap: Option<String>,
    pub wall_s: f64,
}

pub struct LockStress {
    pub dir: PathBuf,
    pub processes: u32,
    pub rounds: u32,
    pub variant: String,
    pub retry_ms_spread: u64,
    pub hold_ms: u64,
    pub lifetime_s: f64,
}

/// This machine's name (`gethostname(2)`), `localhost` if it has none.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn count(path: &Path, needle: &str) -> u64 {
    std::fs::read_to_string(path).map(|t| t.matches(needle).count() as u64).unwrap_or(0)
}

/// The shared log of the workers' critical sections, in the directory.
const LOG: &str = "lock-stress.log";

/// Each worker's `lock-worker` arguments; `lock_worker::plan` checks them
/// before any process starts.
pub fn worker_args(p: &LockStress) -> Vec<String> {
    vec![
        "--lock=locks/stress.lock".to_string(),
        format!("--log={LOG}"),
        format!("--rounds={}", p.rounds),
        format!("--variant={}", p.variant),
        format!("--retry-ms-spread={}", p.retry_ms_spread),
        format!("--hold-ms={}", p.hold_ms),
        format!("--lifetime-s={}", p.lifetime_s),
    ]
}

/// Starts `processes` copies of `mmsim exec --root DIR --host <this host>
/// <program> <args>` at once and waits for all of them; returns how many failed.
fn run_workers(exe: &Path, dir: &Path, program: &str, args: &[String], processes: u32) -> std::io::Result<u32> {
    let host = hostname();
    let mut children = Vec::new();
    for _ in 0..processes {
        children.push(
            Command::new(exe)
                .args(["exec", "--root", &dir.display().to_string(), "--host", &host, program])
                .args(args)
                .spawn()?,
        );
    }
    let mut failed = 0;
    for mut c in children {
        if !c.wait()?.success() {
            failed += 1;
        }
    }
    Ok(failed)
}

pub fn lock_stress(exe: &Path, p: &LockStress) -> std::io::Result<LockStressReport> {
    for d in ["locks", "logs"] {
        std::fs::create_dir_all(p.dir.join(d))?;
    }
    let log = LOG;
    let _ = std::fs::remove_file(p.dir.join(log));
    #[allow(clippy::disallowed_methods)] // wall time of a real run, reported only
    let started = std::time::Instant::now();
    let failed = run_workers(exe, &p.dir, "lock-worker", &worker_args(p), p.processes)?;
    let wall_s = started.elapsed().as_secs_f64();
    let LogCheck { sections, overlaps, first_overlap } =
        check_log(&std::fs::read_to_string(p.dir.join(log)).unwrap_or_default());
    let locks_log = p.dir.join("logs/locks");
    Ok(LockStressReport {
        dir: p.dir.display().to_string(),
        processes: p.processes,
        rounds: p.rounds,
        variant: p.variant.clone(),
        failed_processes: failed,
        acquisitions: sections,
        waits: count(&locks_log, "\"kind\":\"lock_contended\""),
        breaks: count(&locks_log, "\"kind\":\"lock_broken\""),
        overlaps,
        first_overlap,
        wall_s,
    })
}

/// `mmsim real list-stress`'s parameters (its command-line options too).
#[derive(Debug, Serialize, clap::Args)]
#[group(skip)]
pub struct ListStress {
    /// An empty directory (a local disk, tmpfs or an NFS mount).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 4)]
    pub processes: u32,
    #[arg(long, default_value_t = 1000)]
    pub rounds: u32,
    /// 2.0, 2.1-early or 2.1.39.
    #[arg(long, default_value = "2.1.39")]
    pub profile: String,
    /// The list's members (the config's size).
    #[arg(long, default_value_t = 200)]
    pub members: u32,
    /// `__load`'s test: profile, none, mtime-le or mtime-lt-local-stamp.
    #[arg(long, default_value = "profile")]
    pub load_shortcut: String,
    /// mm_cfg.SYNC_AFTER_WRITE: fsync the temporary config before the rename.
    #[arg(long)]
    pub sync_after_write: bool,
    /// The lock's retry sleep's random spread (Mailman: 2000 ms).
    #[arg(long, default_value_t = 2000)]
    pub retry_ms_spread: u64,
    /// The pause between rounds (a runner dequeueing its next message).
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct ListStressReport {
    #[serde(flatten)]
    pub params: ListStress,
    pub failed_processes: u32,
    #[serde(flatten)]
    pub log: crate::list_worker::LogCheck,
    /// Lock breaks (`lock_broken` in `logs/locks`). No list lock lives long
    /// enough to expire (5 h), so each one is R6 (docs/semantics/real-lost-update.md).
    pub breaks: u64,
    /// Lost updates per 1000 lock cycles.
    pub lost_per_1000: f64,
    /// Its Wilson 95 % interval, per 1000.
    pub lost_per_1000_ci: (f64, f64),
    pub wall_s: f64,
}

/// The shared log of saved post numbers, in the directory.
const POST_LOG: &str = "list-stress.log";
/// The list the workers number posts of.
const LIST: &str = "test";

/// `install`'s arguments for the list-stress list.
pub fn install_args(p: &ListStress) -> Vec<String> {
    vec![format!("--profile={}", p.profile), format!("--list={LIST}"), format!("--members={}", p.members)]
}

/// Each worker's `list-worker` arguments; `list_worker::plan` checks them
/// before any process starts.
pub fn list_worker_args(p: &ListStress) -> Vec<String> {
    vec![
        format!("--profile={}", p.profile),
        format!("--list={LIST}"),
        format!("--log={POST_LOG}"),
        format!("--rounds={}", p.rounds),
        format!("--load-shortcut={}", p.load_shortcut),
        format!("--sync-after-write={}", if p.sync_after_write { "yes" } else { "no" }),
        format!("--retry-ms-spread={}", p.retry_ms_spread),
        format!("--think-ms={}", p.think_ms),
    ]
}

/// Installs the list in `p.dir` (which must be empty: a second run would
/// meet the first one's list), runs the workers and checks their log.
pub fn list_stress(exe: &Path, p: ListStress) -> std::io::Result<ListStressReport> {
    if std::fs::read_dir(&p.dir)?.next().is_some() {
        return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "not empty"));
    }
    if run_workers(exe, &p.dir, "install", &install_args(&p), 1)? != 0 {
        return Err(std::io::Error::other("install failed (see logs/error in the directory)"));
    }
    std::fs::write(p.dir.join(POST_LOG), "")?;
    #[allow(clippy::disallowed_methods)] // wall time of a real run, reported only
    let started = std::time::Instant::now();
    let failed = run_workers(exe, &p.dir, "list-worker", &list_worker_args(&p), p.processes)?;
    let wall_s = started.elapsed().as_secs_f64();
    let log = crate::list_worker::check_log(&std::fs::read_to_string(p.dir.join(POST_LOG))?);
    let (lo, hi) = crate::sweep::wilson(log.lost_updates, log.cycles);
    let per_1000 = |x: f64| (x * 1000.0 * 1e4).round() / 1e4;
    let breaks = count(&p.dir.join("logs/locks"), "\"kind\":\"lock_broken\"");
    Ok(ListStressReport {
        params: p,
        failed_processes: failed,
        lost_per_1000: if log.cycles == 0 { 0.0 } else { per_1000(log.lost_updates as f64 / log.cycles as f64) },
        lost_per_1000_ci: (per_1000(lo), per_1000(hi)),
        breaks,
        log,
        wall_s,
    })
}

/// The report as text, one figure a line.
pub fn render_list_stress(r: &ListStressReport) -> String {
    format!(
        "dir           {}\n\
         processes     {} x {} rounds (Mailman {}, {} members, load shortcut {}, sync after write {}), {} failed\n\
         lock cycles   {} saved, {} saves refused (lock broken under its holder), {} lock timeouts, {} shunted\n\
         lock breaks   {}\n\
         lost updates  {} ({} per 1000 lock cycles, 95 % {}-{}){}\n\
         wall          {:.2} s\n",
        r.params.dir.display(),
        r.params.processes,
        r.params.rounds,
        r.params.profile,
        r.params.members,
        r.params.load_shortcut,
        if r.params.sync_after_write { "yes" } else { "no" },
        r.failed_processes,
        r.log.cycles,
        r.log.saves_refused,
        r.log.lock_timeouts,
        r.log.shunted,
        r.breaks,
        r.log.lost_updates,
        r.lost_per_1000,
        r.lost_per_1000_ci.0,
        r.lost_per_1000_ci.1,
        r.log.first_lost_update.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default(),
        r.wall_s,
    )
}
