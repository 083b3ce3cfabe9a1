//! Seed sweeps: many seeds of one scenario, in isolated worker processes.
//!
//! Each job owns a worker subprocess (`mmsim worker …`, a re-exec of this
//! binary) that reads seeds on stdin and answers one JSON line per seed. A
//! wall-clock watchdog kills a worker stuck on one seed; a worker that dies (a
//! stack overflow, an abort, out of memory) is replaced. Either way that seed is
//! recorded as a failure with exit 6 and the sweep goes on.
//!
//! Lines are written in seed order and contain no wall time, so the output is
//! byte-identical for any `--jobs` and any `--shard` split (after `merge`).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::oracle::Status;
use crate::run::exit;
use crate::scenario::InputError;

/// One seed's result: the JSON line a sweep writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedLine {
    pub seed: u64,
    pub exit_code: i32,
    pub verdict: String,
    /// Oracle name → "pass" or "fail".
    pub oracles: BTreeMap<String, String>,
    pub trace_hash: String,
    pub sim_time_ms: u64,
    pub steps: u64,
    pub events: u64,
    pub marks: BTreeMap<String, u64>,
    /// The first violation line of the first failing oracle.
    pub first_violation: Option<String>,
    /// The scheduler that ran the seed: `default` or `pct depth=D`.
    #[serde(default)]
    pub sched: String,
    /// The load phase in simulated ms (`Report::load_sim_ms`).
    #[serde(default)]
    pub load_sim_ms: u64,
    #[serde(default)]
    pub lock_wait_ms: crate::LockWaits,
    #[serde(default)]
    pub figures: crate::figures::Figures,
    /// RPCs sent (first transmissions, every procedure).
    #[serde(default)]
    pub rpcs: u64,
}

impl SeedLine {
    pub fn from_report(r: &crate::Report) -> SeedLine {
        let oracles = r
            .oracles
            .iter()
            .map(|o| (o.name.clone(), if o.status == Status::Pass { "pass" } else { "fail" }.to_string()))
            .collect();
        let first_violation = r
            .oracles
            .iter()
            .find(|o| o.status == Status::Fail)
            .and_then(|o| o.violations.first().map(|v| format!("{}: {v}", o.name)));
        SeedLine {
            seed: r.seed,
            exit_code: r.exit_code,
            verdict: r.verdict.clone(),
            oracles,
            trace_hash: r.trace_hash.clone(),
            sim_time_ms: r.sim_time_ms,
            steps: r.steps,
            events: r.events,
            marks: r.marks.clone(),
            first_violation,
            sched: r.sched.label(),
            load_sim_ms: r.load_sim_ms,
            lock_wait_ms: r.lock_wait_ms.clone(),
            figures: r.figures.clone(),
            rpcs: r.counters.rpcs.values().sum(),
        }
    }

    pub fn crashed(seed: u64, why: String) -> SeedLine {
        SeedLine {
            seed,
            exit_code: exit::PANIC,
            verdict: why,
            oracles: BTreeMap::new(),
            trace_hash: String::new(),
            sim_time_ms: 0,
            steps: 0,
            events: 0,
            marks: BTreeMap::new(),
            first_violation: None,
            sched: String::new(),
            load_sim_ms: 0,
            lock_wait_ms: crate::LockWaits::default(),
            figures: crate::figures::Figures::default(),
            rpcs: 0,
        }
    }
}

/// What one sweep worker (`mmsim worker`) runs: every seed it is given, of
/// one scenario, and how.
pub struct Job {
    pub scenario: crate::Scenario,
    pub check_determinism: bool,
    pub swarm: bool,
}

impl Job {
    /// Reads seeds, one a line, and answers each with its [`SeedLine`], until
    /// `input` ends. A seed whose run panics is a line with exit 6; the
    /// worker goes on with the next.
    pub fn serve(&self, mut input: impl BufRead, mut output: impl Write) {
        let mut line = String::new();
        while {
            line.clear();
            input.read_line(&mut line).unwrap_or(0) > 0
        } {
            let Ok(seed) = line.trim().parse::<u64>() else { continue };
            // Test hook for the sweep's own crash handling (never set by mmsim itself).
            if std::env::var("MMSIM_WORKER_ABORT_ON_SEED").ok().and_then(|v| v.parse::<u64>().ok()) == Some(seed) {
                std::process::abort();
            }
            let result = std::panic::catch_unwind(|| self.run(seed))
                .unwrap_or_else(|_| SeedLine::crashed(seed, "internal panic".into()));
            let _ = writeln!(output, "{}", serde_json::to_string(&result).expect("line serialises"));
            let _ = output.flush();
        }
    }

    fn run(&self, seed: u64) -> SeedLine {
        let mut seeded = self.scenario.clone();
        if self.swarm {
            crate::swarm::apply(&mut seeded, seed);
        }
        let checked = crate::run_checked(&seeded, seed, "", crate::FOR_ORACLES, self.check_determinism);
        SeedLine::from_report(&checked.first.report)
    }
}

/// `A..B`, half-open.
pub fn parse_seed_range(s: &str) -> Result<(u64, u64), InputError> {
    let bad = || InputError(format!("--seeds {s:?}: expected A..B with A < B (half-open), e.g. 0..1000"));
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if a >= b {
        return Err(bad());
    }
    Ok((a, b))
}

/// `K/N` with K < N: this shard's contiguous part of the range.
pub fn parse_shard(s: &str) -> Result<(u64, u64), InputError> {
    let bad = || InputError(format!("--shard {s:?}: expected K/N with 0 <= K < N, e.g. 0/4"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The seeds of shard `k` of `n` over `[a, b)`: contiguous, sizes differing by at most one.
pub fn shard_seeds(a: u64, b: u64, shard: Option<(u64, u64)>) -> (u64, u64) {
    let Some((k, n)) = shard else { return (a, b) };
    let len = b - a;
    let start = a + len * k / n;
    let end = a + len * (k + 1) / n;
    (start, end)
}

pub struct Options {
    pub exe: PathBuf,
    /// Arguments after `worker`: the scenario and its `--set`s, and `--check-determinism`.
    pub worker_args: Vec<String>,
    pub seeds: (u64, u64),
    pub jobs: usize,
    pub out: Option<PathBuf>,
    pub stop_on_first: bool,
    pub timeout: Duration,
    pub progress: bool,
    /// The scheduler's label (`SchedConfig::label`), for seeds whose worker died.
    pub sched: String,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

fn start_worker(exe: &Path, args: &[String]) -> std::io::Result<Worker> {
    let mut child = Command::new(exe)
        .arg("worker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Worker { child, stdin, lines })
}

impl Worker {
    /// Closes its stdin, which ends its loop, and waits for it to exit.
    fn retire(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// The resident memory a worker may reach before it is replaced: a guard.
/// A world used to stay allocated after its run (its hosts' processes and
/// NFS clients held handles to it: ~100 MB a full-load `two-servers` seed,
/// fixed by `World::release_hosts`); a future leak of that kind must not run
/// a long sweep out of memory.
const WORKER_RSS_MAX: u64 = 1 << 30;

/// A process's resident memory, from `/proc/<pid>/statm` (Linux; `None` elsewhere).
fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Runs one seed on a worker, replacing the worker if it dies or hangs.
fn run_seed(worker: &mut Option<Worker>, exe: &Path, args: &[String], seed: u64, timeout: Duration) -> SeedLine {
    if worker.is_none() {
        match start_worker(exe, args) {
            Ok(w) => *worker = Some(w),
            Err(e) => return SeedLine::crashed(seed, format!("cannot start a worker: {}", e.kind())),
        }
    }
    let w = worker.as_mut().expect("started");
    if writeln!(w.stdin, "{seed}").and_then(|_| w.stdin.flush()).is_err() {
        let _ = w.child.kill();
        let _ = w.child.wait();
        *worker = None;
        return SeedLine::crashed(seed, "worker died before the seed was sent".into());
    }
    match w.lines.recv_timeout(timeout) {
        Ok(line) => match serde_json::from_str::<SeedLine>(&line) {
            Ok(result) if result.seed == seed => result,
            _ => SeedLine::crashed(seed, format!("worker answered garbage: {line:.80}")),
        },
        Err(RecvTimeoutError::Timeout) => {
            let _ = w.child.kill();
            let _ = w.child.wait();
            *worker = None;
            SeedLine::crashed(seed, format!("timeout: no answer within {} s of wall time", timeout.as_secs()))
        }
        Err(RecvTimeoutError::Disconnected) => {
            let status = w.child.wait().map(|s| s.to_string()).unwrap_or_else(|_| "unknown".into());
            *worker = None;
            SeedLine::crashed(seed, format!("worker died ({status})"))
        }
    }
}

/// Runs the sweep; returns every seed's line, in seed order.
pub fn sweep(opts: &Options) -> std::io::Result<Vec<SeedLine>> {
    let (a, b) = opts.seeds;
    let queue: Arc<Mutex<VecDeque<u64>>> = Arc::new(Mutex::new((a..b).collect()));
    let (tx, rx) = mpsc::channel::<SeedLine>();
    let mut handles = Vec::new();
    for _ in 0..opts.jobs.max(1) {
        let queue = queue.clone();
        let tx = tx.clone();
        let exe = opts.exe.clone();
        let args = opts.worker_args.clone();
        let timeout = opts.timeout;
        let sched = opts.sched.clone();
        // Test hook: `MMSIM_WORKER_RSS_MAX_BYTES` lowers the bound (1 replaces every worker after each seed).
        let rss_max =
            std::env::var("MMSIM_WORKER_RSS_MAX_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(WORKER_RSS_MAX);
        handles.push(std::thread::spawn(move || {
            let mut worker: Option<Worker> = None;
            loop {
                let Some(seed) = queue.lock().expect("queue").pop_front() else { break };
                let mut line = run_seed(&mut worker, &exe, &args, seed, timeout);
                // A worker that has grown past WORKER_RSS_MAX is replaced
                // before the next seed. Seeds are independent, so
                // no line changes.
                if worker.as_ref().is_some_and(|w| resident_bytes(w.child.id()).is_some_and(|b| b > rss_max)) {
                    if let Some(w) = worker.take() {
                        w.retire();
                    }
                }
                if line.sched.is_empty() {
                    // A worker that died or hung reported nothing, not even its scheduler.
                    line.sched = sched.clone();
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
            if let Some(w) = worker {
                w.retire();
            }
        }));
    }
    drop(tx);
    let bar = indicatif::ProgressBar::new(b - a);
    if opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}")
                .expect("template"),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut out: Option<Box<dyn Write>> = match &opts.out {
        Some(path) => Some(Box::new(std::io::BufWriter::new(std::fs::File::create(path)?))),
        None => None,
    };
    let mut pending: BTreeMap<u64, SeedLine> = BTreeMap::new();
    let mut next = a;
    let mut done = Vec::new();
    let mut failures = 0u64;
    for line in rx {
        if line.exit_code != exit::PASS {
            failures += 1;
            bar.set_message(format!("{failures} failing"));
            if opts.stop_on_first {
                queue.lock().expect("queue").clear();
            }
        }
        bar.inc(1);
        pending.insert(line.seed, line);
        while let Some(line) = pending.remove(&next) {
            if let Some(out) = out.as_mut() {
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
                // A long sweep that is stopped keeps every line it finished.
                out.flush()?;
            }
            done.push(line);
            next += 1;
        }
    }
    // With --stop-on-first, seeds after a gap were never run; keep the rest in order.
    done.extend(pending.into_values());
    if let Some(out) = out.as_mut() {
        for line in done.iter().filter(|l| l.seed >= next) {
            serde_json::to_writer(&mut *out, line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    bar.finish_and_clear();
    for h in handles {
        let _ = h.join();
    }
    Ok(done)
}

/// Wilson score interval at 95 % for `k` successes out of `n`.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The human summary of a sweep: per-oracle failure rates with 95 % intervals,
/// then the first failing seeds with their replay commands.
pub fn summary(lines: &[SeedLine], scenario: &str, replay_args: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let n = lines.len() as u64;
    let passed = lines.iter().filter(|l| l.exit_code == exit::PASS).count() as u64;
    let _ = writeln!(s, "{scenario}: {n} seeds, {passed} passed, {} failed", n - passed);
    // Which scheduler found the failures: one line per scheduler (a merge may mix them).
    let mut by_sched: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for l in lines {
        let e = by_sched.entry(sched_name(l)).or_default();
        e.0 += 1;
        if l.exit_code != exit::PASS {
            e.1 += 1;
        }
    }
    for (sched, (runs, fails)) in &by_sched {
        let _ = writeln!(s, "  sched {sched}: {fails}/{runs} seeds failed");
    }
    let mut by_oracle: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for l in lines {
        for (name, status) in &l.oracles {
            let e = by_oracle.entry(name).or_default();
            e.0 += 1;
            if status == "fail" {
                e.1 += 1;
            }
        }
    }
    for (name, (runs, fails)) in &by_oracle {
        let (lo, hi) = wilson(*fails, *runs);
        let _ = writeln!(
            s,
            "  {name:<24} {fails}/{runs} failed ({:.2}%, 95% CI {:.2}–{:.2}%)",
            100.0 * *fails as f64 / *runs as f64,
            100.0 * lo,
            100.0 * hi
        );
    }
    let mut by_exit: BTreeMap<i32, u64> = BTreeMap::new();
    for l in lines {
        *by_exit.entry(l.exit_code).or_default() += 1;
    }
    let exits: Vec<String> = by_exit.iter().map(|(k, v)| format!("exit {k}: {v}")).collect();
    let _ = writeln!(s, "  {}", exits.join(", "));
    let mail = total_mail(lines);
    if let Some(line) = mail.mail_line() {
        let seeds_missing = lines.iter().filter(|l| l.figures.mail.appearances() > 0).count() as u64;
        let (lo, hi) = wilson(mail.bounced, mail.injected);
        let _ = writeln!(
            s,
            "  mail: {line}; {:.3} bounced per 1000 messages (95% CI {:.3}–{:.3}, messages taken as independent)",
            mail.bounced_per_1000(),
            1000.0 * lo,
            1000.0 * hi
        );
        let _ = writeln!(s, "  missing: {} (in {seeds_missing} of {n} seeds)", mail.missing_line());
    }
    let failing: Vec<&SeedLine> = lines.iter().filter(|l| l.exit_code != exit::PASS).take(5).collect();
    if !failing.is_empty() {
        let _ = writeln!(s, "first failing seeds:");
        for l in failing {
            let _ = writeln!(
                s,
                "  seed {} exit {} (sched {}): {}",
                l.seed,
                l.exit_code,
                sched_name(l),
                l.first_violation.as_deref().unwrap_or(&l.verdict)
            );
            let _ = writeln!(s, "    mmsim run {scenario} --seed {}{replay_args}", l.seed);
        }
    }
    s
}

/// The mail figures of every seed, added up.
pub fn total_mail(lines: &[SeedLine]) -> crate::mail::MailFigures {
    let mut t = crate::mail::MailFigures::default();
    for l in lines {
        t.add(&l.figures.mail);
    }
    t
}

/// The scheduler a line names; lines written before schedulers existed ran the default.
fn sched_name(l: &SeedLine) -> &str {
    if l.sched.is_empty() {
        "default"
    } else {
        &l.sched
    }
}

/// Reads and combines shard outputs: sorted by seed, one line per seed.
pub fn merge(paths: &[PathBuf]) -> Result<Vec<SeedLine>, InputError> {
    let mut all: BTreeMap<u64, SeedLine> = BTreeMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("merge: cannot read {}: {}", path.display(), e.kind())))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let parsed: SeedLine = serde_json::from_str(line)
                .map_err(|e| InputError(format!("merge: {}:{}: not a sweep line ({e})", path.display(), i + 1)))?;
            if let Some(prev) = all.get(&parsed.seed) {
                if prev != &parsed {
                    return Err(InputError(format!(
                        "merge: seed {} appears twice with different results",
                        parsed.seed
                    )));
                }
            }
            all.insert(parsed.seed, parsed);
        }
    }
    Ok(all.into_values().collect())
}
