//! `mmsim bench`: seeds per second, simulated-to-wall time and memory of a
//! scenario, and the same workload's model code on the real kernel beside it.
//!
//! Each simulated seed runs in its own child process (`mmsim run … --json`), so
//! one seed's heap cannot inflate the next one's peak RSS: the peak is the
//! child's `ru_maxrss`, read with `wait4`. `--scale K` multiplies the load: every
//! `--count=N` boot argument of a `sender` program becomes `--count=N*K` (a
//! scenario transformation expressed as `--set`s, so the child and the replay
//! command see the same scenario).
//!
//! The real side (`--real --dir D`) installs the list in a fresh directory under
//! `D`, enqueues the same number of posts through `mmsim exec post` processes,
//! and lets two real IncomingRunner processes (one per slice, as the two hosts
//! of `two-servers` do) drain `qfiles/in`. It models neither the MTA nor SMTP
//! delivery, so only wall time and messages per second are compared.
//!
//! Wall time is measured here and never reaches a simulated world.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::{InputError, Scenario};

/// The `--set`s that scale every sender's `--count=N` by `scale`, and the total
/// message count after scaling. A count written `{posts}` scales through
/// `load.posts`, once for all the senders that use it.
pub fn scale_sets(scenario: &Scenario, scale: u64) -> Result<(Vec<String>, u64), InputError> {
    let mut sets = Vec::new();
    let mut messages = 0u64;
    let posts =
        scenario.load.posts.checked_mul(scale).ok_or_else(|| InputError(format!("--scale {scale}: too large")))?;
    for (i, host) in scenario.hosts.iter().enumerate() {
        for (j, boot) in host.boot.iter().enumerate() {
            if boot.program != "sender" {
                continue;
            }
            for (k, arg) in boot.args.iter().enumerate() {
                let Some(n) = arg.strip_prefix("--count=") else { continue };
                if n == "{posts}" {
                    messages += posts;
                    let set = format!("load.posts={posts}");
                    if scale != 1 && !sets.contains(&set) {
                        sets.push(set);
                    }
                    continue;
                }
                let n: u64 = n.parse().map_err(|_| InputError(format!("sender argument {arg:?}: not a count")))?;
                let scaled = n.checked_mul(scale).ok_or_else(|| InputError(format!("--scale {scale}: too large")))?;
                messages += scaled;
                if scale != 1 {
                    sets.push(format!("hosts.{i}.boot.{j}.args.{k}=--count={scaled}"));
                }
            }
        }
    }
    Ok((sets, messages))
}

/// Parses `--scale 1,10`.
pub fn parse_scales(text: &str) -> Result<Vec<u64>, InputError> {
    let scales: Result<Vec<u64>, _> = text.split(',').map(|s| s.trim().parse::<u64>()).collect();
    match scales {
        Ok(v) if !v.is_empty() && v.iter().all(|s| *s >= 1) => Ok(v),
        _ => Err(InputError(format!("--scale {text:?}: expected positive integers separated by commas, e.g. 1,10"))),
    }
}

/// One simulated seed's figures.
#[derive(Clone, Debug, Serialize)]
pub struct SeedFigures {
    pub seed: u64,
    pub exit_code: i32,
    pub trace_hash: String,
    /// Wall time of the whole child process (parse, run, oracles, report).
    pub wall_s: f64,
    /// Wall time of the simulation loop alone, as the run reports it.
    pub run_wall_s: f64,
    pub sim_s: f64,
    pub sim_to_wall: f64,
    /// Simulated and wall time until the senders had exited.
    pub load_sim_s: f64,
    pub load_wall_s: f64,
    pub load_sim_to_wall: f64,
    pub steps: u64,
    pub steps_per_s: f64,
    pub events: u64,
    pub events_per_s: f64,
    pub rpcs: u64,
    pub rpcs_per_s: f64,
    pub messages_per_s: f64,
    pub peak_rss_mb: f64,
}

/// Median, minimum and maximum over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Spread { median: 0.0, min: 0.0, max: 0.0 };
        }
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1] }
    }
}

/// The real-kernel run of the same load.
#[derive(Clone, Debug, Serialize)]
pub struct RealFigures {
    pub dir: String,
    pub messages: u64,
    /// Enqueueing every post, one `mmsim exec post` process each.
    pub post_wall_s: f64,
    pub posts_per_s: f64,
    /// Two IncomingRunners draining `qfiles/in`.
    pub runner_wall_s: f64,
    pub messages_per_s: f64,
    pub wall_s: f64,
    /// Messages still in `qfiles/in` when the runners were stopped (0 unless the deadline passed).
    pub left_in_queue: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScaleFigures {
    /// The engine these seeds ran on.
    pub engine: String,
    pub scale: u64,
    pub messages: u64,
    pub sets: Vec<String>,
    pub seeds: Vec<SeedFigures>,
    pub seeds_per_s: f64,
    pub wall_s: Spread,
    pub sim_s: Spread,
    pub sim_to_wall: Spread,
    pub load_sim_to_wall: Spread,
    pub steps_per_s: Spread,
    pub events_per_s: Spread,
    pub rpcs_per_s: Spread,
    pub messages_per_s: Spread,
    pub peak_rss_mb: Spread,
    pub real: Option<RealFigures>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub scenario: String,
    pub seeds: Vec<u64>,
    pub scales: Vec<ScaleFigures>,
    pub git_revision: String,
}

pub struct Options {
    pub exe: PathBuf,
    pub scenario: Scenario,
    pub scenario_arg: String,
    pub sets: Vec<String>,
    pub seeds: Vec<u64>,
    pub scales: Vec<u64>,
    /// Engines to run every scale on (`--engine events,turmoil`), in order.
    pub engines: Vec<sim::EngineKind>,
    pub real_dir: Option<PathBuf>,
    /// Posts for the real run; by default the scaled sender count.
    pub real_messages: Option<u64>,
}

/// The fields of a run's `--json` report (`run::Report`) that the benchmark
/// reads. Each is required: a renamed report field makes the benchmark fail
/// with the field's name instead of reading 0.
#[derive(Deserialize)]
struct ReportFigures {
    wall_ms: f64,
    sim_time_ms: u64,
    load_sim_ms: u64,
    load_wall_ms: f64,
    steps: u64,
    events: u64,
    trace_hash: String,
    counters: ReportCounters,
}

#[derive(Deserialize)]
struct ReportCounters {
    rpcs: std::collections::BTreeMap<String, u64>,
}

fn per_s(n: f64, s: f64) -> f64 {
    if s > 0.0 {
        n / s
    } else {
        0.0
    }
}

/// Runs `cmd` to completion, returning its stdout, exit code and peak RSS in KiB.
fn run_measured(mut cmd: Command) -> std::io::Result<(String, i32, u64)> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, which nothing else reaps.
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { crate::exit::PANIC };
    Ok((out, code, usage.ru_maxrss as u64))
}

fn seed_figures(opts: &Options, seed: u64, sets: &[String], messages: u64) -> std::io::Result<SeedFigures> {
    let mut cmd = Command::new(&opts.exe);
    cmd.args(["run", &opts.scenario_arg, "--seed", &seed.to_string(), "--json"]);
    for s in opts.sets.iter().chain(sets) {
        cmd.args(["--set", s]);
    }
    #[allow(clippy::disallowed_methods)] // wall time of a benchmark, reported only
    let started = std::time::Instant::now();
    let (out, exit_code, rss_kib) = run_measured(cmd)?;
    let wall_s = started.elapsed().as_secs_f64();
    let r: ReportFigures = serde_json::from_str(&out)
        .map_err(|e| std::io::Error::other(format!("the run's --json report does not read (exit {exit_code}): {e}")))?;
    let run_wall_s = r.wall_ms / 1000.0;
    let sim_s = r.sim_time_ms as f64 / 1000.0;
    let load_sim_s = r.load_sim_ms as f64 / 1000.0;
    let load_wall_s = r.load_wall_ms / 1000.0;
    let (steps, events) = (r.steps, r.events);
    let rpcs: u64 = r.counters.rpcs.values().sum();
    Ok(SeedFigures {
        seed,
        exit_code,
        trace_hash: r.trace_hash,
        wall_s,
        run_wall_s,
        sim_s,
        sim_to_wall: per_s(sim_s, run_wall_s),
        load_sim_s,
        load_wall_s,
        load_sim_to_wall: per_s(load_sim_s, load_wall_s),
        steps,
        steps_per_s: per_s(steps as f64, run_wall_s),
        events,
        events_per_s: per_s(events as f64, run_wall_s),
        rpcs,
        rpcs_per_s: per_s(rpcs as f64, run_wall_s),
        messages_per_s: per_s(messages as f64, run_wall_s),
        peak_rss_mb: rss_kib as f64 / 1024.0,
    })
}

/// The model on the real kernel: install, `messages` posts, two IncomingRunners.
pub fn real_figures(exe: &Path, dir: &Path, messages: u64) -> std::io::Result<RealFigures> {
    let root = dir.join(format!("mmsim-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let root_text = root.display().to_string();
    let exec = |args: &[&str]| {
        let mut c = Command::new(exe);
        c.args(["exec", "--root", &root_text, "--host", "real"]).args(args);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let status = exec(&["install", "--profile=2.1.39", "--list=test", "--members=200"]).status()?;
    if !status.success() {
        return Err(std::io::Error::other("mmsim exec install failed"));
    }
    #[allow(clippy::disallowed_methods)] // wall time of a real run, reported only
    let started = std::time::Instant::now();
    for i in 0..messages {
        let text = format!(
            "From: a@example.org\nTo: test@lists.example.com\nSubject: post {i}\nMessage-Id: <bench-{i}@real>\n\nbody {i}\n"
        );
        exec(&["post", "--profile=2.1.39", &format!("--stdin={text}"), "test"]).status()?;
    }
    let post_wall_s = started.elapsed().as_secs_f64();
    let queued = || std::fs::read_dir(root.join("qfiles/in")).map(|d| d.count() as u64).unwrap_or(0);
    #[allow(clippy::disallowed_methods)] // wall time of a real run, reported only
    let runners_started = std::time::Instant::now();
    // Short lock retry sleeps, as in the real-runner test: two runners share the
    // list lock, and Mailman's 2 s retry spread would dominate a short run.
    let settings = r#"--settings={"list_store":{"lock":{"retry_sleep_spread_s":0.02}}}"#;
    let mut runners = Vec::new();
    for slice in 0..2 {
        runners
            .push(exec(&["qrunner", "--profile=2.1.39", settings, &format!("--runner=Incoming:{slice}:2")]).spawn()?);
    }
    let deadline = Duration::from_secs(600);
    while queued() > 0 && runners_started.elapsed() < deadline {
        #[allow(clippy::disallowed_methods)] // polling a real directory in real time
        std::thread::sleep(Duration::from_millis(10));
    }
    let runner_wall_s = runners_started.elapsed().as_secs_f64();
    for r in &mut runners {
        // SAFETY: sending SIGTERM to our own child.
        unsafe { libc::kill(r.id() as i32, libc::SIGTERM) };
        let _ = r.wait();
    }
    let left_in_queue = queued();
    let _ = std::fs::remove_dir_all(&root);
    Ok(RealFigures {
        dir: dir.display().to_string(),
        messages,
        post_wall_s,
        posts_per_s: per_s(messages as f64, post_wall_s),
        runner_wall_s,
        messages_per_s: per_s((messages - left_in_queue.min(messages)) as f64, runner_wall_s),
        wall_s: post_wall_s + runner_wall_s,
        left_in_queue,
    })
}

/// Runs the benchmark; `progress` gets one line per finished seed.
pub fn bench(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<BenchReport, String> {
    let mut scales = Vec::new();
    for (&engine, &scale) in opts.engines.iter().flat_map(|e| opts.scales.iter().map(move |s| (e, s))) {
        let (mut sets, messages) = scale_sets(&opts.scenario, scale).map_err(|e| e.to_string())?;
        sets.push(format!("network.engine={}", engine.name()));
        let mut seeds = Vec::new();
        for &seed in &opts.seeds {
            let f = seed_figures(opts, seed, &sets, messages).map_err(|e| format!("seed {seed}: {e}"))?;
            progress(&format!(
                "{} scale {scale} seed {seed}: exit {} wall {:.2} s, {:.0}x (load {:.0}x), {:.0} MB",
                engine.name(),
                f.exit_code,
                f.wall_s,
                f.sim_to_wall,
                f.load_sim_to_wall,
                f.peak_rss_mb
            ));
            seeds.push(f);
        }
        let real = match &opts.real_dir {
            Some(dir) if engine == opts.engines[0] => {
                let n = opts.real_messages.unwrap_or(messages);
                let r = real_figures(&opts.exe, dir, n).map_err(|e| format!("real run in {}: {e}", dir.display()))?;
                progress(&format!("scale {scale} real: {n} messages, {:.2} s", r.wall_s));
                Some(r)
            }
            _ => None,
        };
        let spread = |f: fn(&SeedFigures) -> f64| Spread::of(seeds.iter().map(f));
        let total_wall: f64 = seeds.iter().map(|s| s.wall_s).sum();
        scales.push(ScaleFigures {
            engine: engine.name().to_string(),
            scale,
            messages,
            sets,
            seeds_per_s: per_s(seeds.len() as f64, total_wall),
            wall_s: spread(|s| s.wall_s),
            sim_s: spread(|s| s.sim_s),
            sim_to_wall: spread(|s| s.sim_to_wall),
            load_sim_to_wall: spread(|s| s.load_sim_to_wall),
            steps_per_s: spread(|s| s.steps_per_s),
            events_per_s: spread(|s| s.events_per_s),
            rpcs_per_s: spread(|s| s.rpcs_per_s),
            messages_per_s: spread(|s| s.messages_per_s),
            peak_rss_mb: spread(|s| s.peak_rss_mb),
            seeds,
            real,
        });
    }
    Ok(BenchReport {
        scenario: opts.scenario.name.clone(),
        seeds: opts.seeds.clone(),
        scales,
        git_revision: env!("MMSIM_GIT_REV").to_string(),
    })
}

impl BenchReport {
    /// The human table: one row per scale, medians with [min–max].
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "scenario {} | seeds {:?} | git {}", self.scenario, self.seeds, self.git_revision);
        let r = |x: &Spread, p: usize| format!("{:.p$} [{:.p$}-{:.p$}]", x.median, x.min, x.max);
        for sc in &self.scales {
            let _ = writeln!(s, "engine {} | scale {} ({} messages)", sc.engine, sc.scale, sc.messages);
            let _ = writeln!(s, "  wall s/seed       {}", r(&sc.wall_s, 2));
            let _ = writeln!(s, "  seeds/s           {:.3}", sc.seeds_per_s);
            let _ = writeln!(s, "  simulated s       {}", r(&sc.sim_s, 1));
            let _ = writeln!(s, "  sim/wall          {}", r(&sc.sim_to_wall, 0));
            let _ = writeln!(s, "  sim/wall (load)   {}", r(&sc.load_sim_to_wall, 0));
            let _ = writeln!(s, "  steps/s           {}", r(&sc.steps_per_s, 0));
            let _ = writeln!(s, "  events/s          {}", r(&sc.events_per_s, 0));
            let _ = writeln!(s, "  fs RPCs/s         {}", r(&sc.rpcs_per_s, 0));
            let _ = writeln!(s, "  messages/s        {}", r(&sc.messages_per_s, 0));
            let _ = writeln!(s, "  peak RSS MB       {}", r(&sc.peak_rss_mb, 1));
            if let Some(real) = &sc.real {
                let _ = writeln!(
                    s,
                    "  real ({}): {} messages, post {:.2} s ({:.0}/s), 2 IncomingRunners {:.2} s ({:.0} messages/s), left {}",
                    real.dir,
                    real.messages,
                    real.post_wall_s,
                    real.posts_per_s,
                    real.runner_wall_s,
                    real.messages_per_s,
                    real.left_in_queue
                );
            }
        }
        // Side by side: the same scale on each engine, against the first engine.
        let engines: Vec<&str> = self.scales.iter().map(|sc| sc.engine.as_str()).fold(Vec::new(), |mut v, e| {
            if !v.contains(&e) {
                v.push(e);
            }
            v
        });
        if engines.len() > 1 {
            let _ = writeln!(s, "engines side by side (medians; ratio against {})", engines[0]);
            for first in self.scales.iter().filter(|sc| sc.engine == engines[0]) {
                for other in self.scales.iter().filter(|sc| sc.scale == first.scale && sc.engine != engines[0]) {
                    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
                    let _ = writeln!(
                        s,
                        "  scale {}: wall s/seed {} {:.3} vs {} {:.3} ({:.1}x); peak RSS MB {:.1} vs {:.1}; simulated s {:.1} vs {:.1}",
                        first.scale,
                        first.engine,
                        first.wall_s.median,
                        other.engine,
                        other.wall_s.median,
                        ratio(other.wall_s.median, first.wall_s.median),
                        first.peak_rss_mb.median,
                        other.peak_rss_mb.median,
                        first.sim_s.median,
                        other.sim_s.median,
                    );
                }
            }
        }
        s
    }
}
