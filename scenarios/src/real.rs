//! `mmsim real …`: the same model code on a real directory, with real processes.
//!
//! `lock-stress` starts N `mmsim exec … lock-worker` processes on one lock in
//! `--dir` (any directory: a local disk, tmpfs, or a real NFS mount), waits for
//! them, and reports acquisitions, waits, breaks and any overlap of critical
//! sections, read back from the shared log and Mailman's `logs/locks`.

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

pub fn lock_stress(exe: &Path, p: &LockStress) -> std::io::Result<LockStressReport> {
    for d in ["locks", "logs"] {
        std::fs::create_dir_all(p.dir.join(d))?;
    }
    let log = LOG;
    let _ = std::fs::remove_file(p.dir.join(log));
    let host = hostname();
    #[allow(clippy::disallowed_methods)] // wall time of a real run, reported only
    let started = std::time::Instant::now();
    let mut children = Vec::new();
    for _ in 0..p.processes {
        children.push(
            Command::new(exe)
                .args(["exec", "--root", &p.dir.display().to_string(), "--host", &host, "lock-worker"])
                .args(worker_args(p))
                .spawn()?,
        );
    }
    let mut failed = 0;
    for mut c in children {
        if !c.wait()?.success() {
            failed += 1;
        }
    }
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
