//! Running a scenario under a seed, and the report it produces.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use sim::{Simulation, Trace};

use crate::ledgers::{Judged, Ledgers};
use crate::oracle::{End, OracleResult, Property, Status};
use crate::programs;
use crate::scenario::Scenario;
use crate::verdict::Verdict;

/// Exit codes, the same for every command.
pub mod exit {
    pub const PASS: i32 = 0;
    pub const SAFETY: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const LIVENESS: i32 = 3;
    pub const VACUOUS: i32 = 4;
    pub const NONDETERMINISM: i32 = 5;
    pub const PANIC: i32 = 6;
}

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Every process the scenario waits for exited.
    Completed,
    /// The simulated-time budget ran out first.
    BudgetExhausted,
    /// A step passed the sim gate's op cap.
    Livelock(String),
    /// A host's software failed (a bug in the sim).
    SimError(String),
    /// An external program asked for what mmsim cannot run (bad input).
    Refused(String),
    /// An external program made no call for its watchdog's wall-clock time.
    Hung(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct Fingerprint {
    pub git_revision: String,
    pub rustc: String,
    /// XXH3-64 of the committed Cargo.lock.
    pub cargo_lock: String,
    /// XXH3-64 of the canonical scenario TOML (after `--set`).
    pub scenario: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    /// `verdicts.exit_code()`.
    pub exit_code: i32,
    /// `verdicts.render()`: every failing part, safety first.
    pub verdict: String,
    /// Safety, liveness, vacuity and nondeterminism, apart (`verdict.rs`).
    pub verdicts: Verdict,
    pub ending: Ending,
    /// When the fault phase ended and what the heal ended; `None` when the run
    /// ended (or was cut off) before it.
    pub heal: Option<Heal>,
    pub sim_time_ms: u64,
    pub wall_ms: f64,
    pub steps: u64,
    pub steps_per_s: f64,
    pub sim_to_wall: f64,
    /// The load phase: from the start until the awaited programs (the senders)
    /// were seen to have exited, in simulated and wall time (both 0 when the
    /// scenario awaits nothing or they never exited).
    pub load_sim_ms: u64,
    pub load_wall_ms: f64,
    pub events: u64,
    pub trace_hash: String,
    pub oracles: Vec<OracleResult>,
    pub marks: BTreeMap<String, u64>,
    pub counters: sim::Counters,
    pub fingerprint: Fingerprint,
    pub replay: String,
    /// Lock waits: from a `lock()` call's first contention to its success, in
    /// simulated ms (uncontended acquisitions count as 0).
    pub lock_wait_ms: LockWaits,
    /// Throughput and bounce-registration figures (`figures.rs`).
    pub figures: crate::figures::Figures,
    /// The faults this seed drew in swarm mode (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swarm: Vec<String>,
    /// The scheduler, its parameters, the change points it drew and what it did.
    pub sched: sim::SchedReport,
    /// The engine that ran the world, and its link timing.
    pub engine: EngineReport,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineReport {
    pub kind: sim::EngineKind,
    pub profile: sim::LinkProfile,
    pub net: sim::NetConfig,
}

impl EngineReport {
    fn render(&self) -> String {
        let n = &self.net;
        let bw = |b: u64| if b == 0 { "unlimited".to_string() } else { format!("{} Mbit/s", b / 1_000_000) };
        let mut s = format!(
            "{} | {}: {} µs + {} between hosts, {} µs loopback",
            self.kind.name(),
            self.profile.name(),
            n.lan.latency_ns as f64 / 1000.0,
            bw(n.lan.bandwidth_bit_s),
            n.loopback.latency_ns as f64 / 1000.0,
        );
        if self.kind == sim::EngineKind::Turmoil {
            s.push_str(" (turmoil: every duration rounded up to whole ms, no bandwidth, loopback on the next step)");
        }
        s
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LockWaits {
    pub acquisitions: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Whether every non-terminal queue directory on the server is empty: the
/// entries `oracle::liveness` would flag, found by scanning only the queue
/// directories (and `qfiles/` itself, for 2.0's flat layout) instead of dumping
/// the whole store.
fn queues_empty(world: &sim::World) -> bool {
    use crate::oracle::{is_draining_queue, DRAINING};
    world.with_server(|s| {
        DRAINING.iter().chain(&["qfiles"]).all(|dir| {
            s.store.scan_dir(dir, |name, is_dir| is_dir || name.starts_with(".nfs") || !is_draining_queue(dir, name))
        })
    })
}

/// Everything a run leaves behind.
pub struct RunOutput {
    pub report: Report,
    pub trace: Trace,
}

pub fn fingerprint(canonical: &str) -> Fingerprint {
    Fingerprint {
        git_revision: env!("MMSIM_GIT_REV").to_string(),
        rustc: env!("MMSIM_RUSTC").to_string(),
        cargo_lock: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(include_bytes!("../../Cargo.lock"))),
        scenario: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(canonical.as_bytes())),
    }
}

/// The library entry point: runs `scenario` under `seed`, keeping no event:
/// the oracles, marks and figures read each as it is recorded.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    run_kept(scenario, seed, "", FOR_ORACLES).report
}

/// What a run that only judges and reports keeps of its trace: nothing. Every
/// event is still hashed and counted, and shown to the oracles as it is
/// recorded; no event and no line hash is stored.
pub const FOR_ORACLES: sim::Retention = sim::Retention::NONE;

/// [`FOR_ORACLES`] plus the line hashes that name a divergence (`--check-determinism`).
pub const FOR_ORACLES_AND_DIVERGENCE: sim::Retention = sim::Retention { line_hashes: true, ..sim::Retention::NONE };

/// What the trace shows every event to as it is recorded (`sim::Trace::set_observer`).
pub(crate) type Observer = Box<dyn FnMut(&sim::Event)>;

/// A run driven up to its end, or up to where the caller stopped it.
pub(crate) struct Driven<'a> {
    pub simulation: Simulation<'a>,
    /// `None` when `stop` ended the drive before the run's own ending.
    pub ending: Option<Ending>,
    /// Simulated and wall time at which the awaited programs were first seen to have exited.
    pub load_phase: Option<(Duration, std::time::Duration)>,
    /// When the fault phase ended and what the heal ended, if it came.
    pub heal: Option<Heal>,
}

/// The end of the fault phase (`run.heal_at_s`, `sim::Simulation::heal`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Heal {
    /// Simulated time of the heal.
    pub at_ms: u64,
    /// What it ended: open partitions, crashed hosts it booted, lossy links,
    /// gate stalls (empty when nothing was faulty by then).
    pub healed: Vec<String>,
}

/// Builds the world of `scenario` under `seed` and steps it: scheduled faults,
/// process crashes, the load phase, the heal, the drain, the budget. The drain
/// (the liveness phase) is judged only after the heal: at `run.heal_at_s`, or
/// once the awaited programs have exited and every scheduled fault has fired. `stop` is asked after
/// every step (before the run's own ending is judged); `true` ends the drive.
pub(crate) fn drive<'a>(
    scenario: &Scenario,
    seed: u64,
    started: std::time::Instant,
    retention: sim::Retention,
    observer: Option<Observer>,
    stop: &mut dyn FnMut(&sim::World) -> bool,
) -> Driven<'a> {
    let mut simulation = Simulation::new(scenario.world_config(seed));
    simulation.world().set_trace_retention(retention);
    assert!(simulation.world().trace().is_empty(), "the observer and retention see every event");
    simulation.world().set_trace_observer(observer);
    programs::register(simulation.world());
    let budget = Duration::from_secs(scenario.run.duration_s_max);
    let wait_for: Vec<&str> = scenario.run.wait_for.iter().map(String::as_str).collect();
    use crate::scenario::FaultSpec;
    for f in &scenario.faults {
        let at = Duration::from_secs_f64(f.at_s());
        let fault = match f {
            FaultSpec::Partition { a, b, window_s, .. } => {
                sim::Fault::Partition { a: a.clone(), b: b.clone(), window: Duration::from_secs_f64(*window_s) }
            }
            FaultSpec::RebootServer { down_s, .. } => {
                sim::Fault::RebootServer { down_for: Duration::from_secs_f64(*down_s) }
            }
            FaultSpec::CrashHost { host, .. } => sim::Fault::CrashHost { host: host.clone() },
            FaultSpec::RestartHost { host, .. } => sim::Fault::RestartHost { host: host.clone() },
            FaultSpec::CrashProcess { host, program, .. } => {
                sim::Fault::CrashProcess { host: host.clone(), program: program.clone() }
            }
        };
        simulation.schedule(at, fault);
    }
    let heal_at = (scenario.run.heal_at_s > 0.0).then(|| Duration::from_secs_f64(scenario.run.heal_at_s));
    let last_fault = scenario.faults.iter().map(|f| Duration::from_secs_f64(f.at_s())).max().unwrap_or_default();
    let mut heal: Option<Heal> = None;
    let healed_now = |simulation: &mut Simulation| Heal {
        healed: simulation.heal(),
        at_ms: simulation.elapsed().as_millis() as u64,
    };
    let quiet = Duration::from_secs(scenario.run.drain_quiet_s);
    // The awaited programs have all started once the last of them is due.
    let wait_from = Duration::from_millis(
        scenario
            .hosts
            .iter()
            .flat_map(|h| &h.boot)
            .filter(|b| wait_for.contains(&b.program.as_str()))
            .map(|b| b.start_ms)
            .max()
            .unwrap_or(0),
    );
    let mut drained_since: Option<Duration> = None;
    let mut load_phase: Option<(Duration, std::time::Duration)> = None;
    // Asked once before the first step too, so that a hook can arm a probe on the world.
    if stop(simulation.world()) {
        return Driven { simulation, ending: None, load_phase, heal };
    }
    // The driver looks at the world every 100 ms of simulated time: cheap, and
    // the end time stays a function of the seed. Faults fire inside `run_until`, at their own times.
    let check_every = Duration::from_millis(100);
    let mut next_check = check_every;
    let ending = loop {
        let mut target = next_check.min(budget);
        if let Some(at) = heal_at.filter(|_| heal.is_none()) {
            target = target.min(at.max(simulation.elapsed()));
        }
        if let Err(e) = simulation.run_until(target) {
            break Some(Ending::SimError(e));
        }
        if let Some(why) = simulation.world().livelock() {
            break Some(Ending::Livelock(why));
        }
        match crate::external::take_refusal() {
            Some(crate::external::Refusal::BadInput(why)) => break Some(Ending::Refused(why)),
            Some(crate::external::Refusal::Hung(why)) => break Some(Ending::Hung(why)),
            None => {}
        }
        if heal.is_none() && heal_at.is_some_and(|at| simulation.elapsed() >= at) {
            heal = Some(healed_now(&mut simulation));
        }
        if stop(simulation.world()) {
            break None;
        }
        let checkpoint = simulation.elapsed() >= next_check;
        if checkpoint {
            next_check += check_every;
        }
        if !wait_for.is_empty()
            && checkpoint
            && simulation.elapsed() > wait_from
            && !simulation.world().any_live(&wait_for)
        {
            load_phase.get_or_insert_with(|| (simulation.elapsed(), started.elapsed()));
            if !scenario.run.drain {
                break Some(Ending::Completed);
            }
            if heal.is_none() && heal_at.is_none() && simulation.elapsed() >= last_fault {
                heal = Some(healed_now(&mut simulation));
            }
            if heal.is_none() {
                // The fault phase is not over: the drain is not judged yet.
            } else if queues_empty(simulation.world()) {
                let since = *drained_since.get_or_insert(simulation.elapsed());
                if simulation.elapsed() >= since + quiet {
                    break Some(Ending::Completed);
                }
            } else {
                drained_since = None;
            }
        }
        if simulation.elapsed() >= budget {
            break Some(Ending::BudgetExhausted);
        }
    };
    Driven { simulation, ending, load_phase, heal }
}

/// Runs and keeps the whole trace. `replay_args` are appended to the replay
/// command. The report is judged after the run, from the kept events (the
/// same ledgers [`run_kept`] feeds as it goes, fed every event at the end).
pub fn run_full(scenario: &Scenario, seed: u64, replay_args: &str) -> RunOutput {
    run_judged(scenario, seed, replay_args, sim::Retention::ALL, false)
}

/// Runs and keeps what `retention` keeps of the trace (nothing, under
/// [`FOR_ORACLES`]); the report is judged as the run goes, by ledgers shown
/// every event as it is recorded, and is the same whatever the trace keeps.
pub fn run_kept(scenario: &Scenario, seed: u64, replay_args: &str, retention: sim::Retention) -> RunOutput {
    run_judged(scenario, seed, replay_args, retention, true)
}

/// A run, and with `check_determinism` a second run of the same seed whose
/// trace is compared with the first line by line.
pub struct Checked {
    /// The first run. Its report says where the second diverged, if it did.
    pub first: RunOutput,
    pub second: Option<RunOutput>,
    /// The first event at which the two traces differ.
    pub divergence: Option<usize>,
}

/// Runs `scenario` under `seed` keeping what `retention` keeps, and with
/// `check_determinism` runs it again (keeping line hashes at least) and
/// judges the first report nondeterministic where the traces part.
pub fn run_checked(
    scenario: &Scenario,
    seed: u64,
    replay_args: &str,
    retention: sim::Retention,
    check_determinism: bool,
) -> Checked {
    let retention = if check_determinism { sim::Retention { line_hashes: true, ..retention } } else { retention };
    let mut first = run_kept(scenario, seed, replay_args, retention);
    let second = check_determinism.then(|| run_kept(scenario, seed, replay_args, retention));
    let divergence =
        second.as_ref().and_then(|second| sim::first_divergence(first.trace.line_hashes(), second.trace.line_hashes()));
    if let Some(i) = divergence {
        first.report.set_nondeterminism(i);
    }
    Checked { first, second, divergence }
}

fn run_judged(
    scenario: &Scenario,
    seed: u64,
    replay_args: &str,
    retention: sim::Retention,
    as_it_goes: bool,
) -> RunOutput {
    #[allow(clippy::disallowed_methods)] // wall time is reported, never fed to the world
    let started = std::time::Instant::now();
    let ledgers = Rc::new(RefCell::new(Ledgers::new(&scenario.oracles.enabled)));
    let observer = as_it_goes.then(|| {
        let ledgers = ledgers.clone();
        Box::new(move |e: &sim::Event| ledgers.borrow_mut().observe(e)) as Observer
    });
    let Driven { simulation, ending, load_phase, heal } =
        drive(scenario, seed, started, retention, observer, &mut |_| false);
    let ending = ending.expect("only a stop hook ends a drive early, and run_judged has none");
    let wall = started.elapsed();
    let steps = simulation.steps();
    let sim_time = simulation.elapsed();
    let world = simulation.world().clone();
    let store = world.with_server(|s| s.store.clone());
    let counters = world.counters();
    let sched = world.sched_report();
    drop(simulation);
    world.set_trace_observer(None);
    let trace = world.take_trace();
    let mut ledgers = Rc::try_unwrap(ledgers).ok().expect("the observer is gone").into_inner();
    if !as_it_goes {
        for e in trace.events() {
            ledgers.observe(e);
        }
    }
    assert_eq!(ledgers.observed(), trace.len() as u64, "the ledgers saw every event");
    let ending_problem = match &ending {
        Ending::Completed => None,
        Ending::BudgetExhausted => {
            Some(format!("the {} s simulated-time budget ran out before the run drained", scenario.run.duration_s_max))
        }
        Ending::Livelock(why) | Ending::Hung(why) | Ending::Refused(why) => Some(why.clone()),
        Ending::SimError(e) => Some(e.clone()),
    };
    let cut = ending != Ending::Completed;
    let end = End { store: &store, ending_problem: ending_problem.as_deref(), cut, held_locks_must_be_free: true };
    let Judged { oracles, marks, figures, lock_waits } = ledgers.finish(&end, &counters);
    let failed = |property: Property| {
        oracles.iter().filter(move |o| o.status == Status::Fail && o.property == property).map(|o| o.name.clone())
    };
    let mut verdict = Verdict { safety: failed(Property::Safety).collect(), ..Verdict::default() };
    match &ending {
        Ending::SimError(e) => verdict.internal = Some(e.clone()),
        Ending::Livelock(why) | Ending::Hung(why) => verdict.liveness.push(why.clone()),
        Ending::Refused(why) => verdict.bad_input = Some(why.clone()),
        Ending::BudgetExhausted => {
            verdict.liveness.push(format!("the {}s simulated-time budget ran out", scenario.run.duration_s_max))
        }
        // A cut run may not have reached its marks yet: vacuity is judged on a completed run.
        Ending::Completed => {
            verdict.vacuous = scenario
                .run
                .require_marks
                .iter()
                .filter(|m| marks.get(*m).copied().unwrap_or(0) == 0)
                .cloned()
                .collect()
        }
    }
    verdict.liveness.extend(failed(Property::Liveness).map(|name| format!("oracle {name}")));
    let canonical = toml::to_string(scenario).unwrap_or_default();
    let wall_s = wall.as_secs_f64().max(1e-9);
    let report = Report {
        scenario: scenario.name.clone(),
        seed,
        exit_code: verdict.exit_code(),
        verdict: verdict.render(),
        verdicts: verdict,
        ending,
        heal,
        sim_time_ms: sim_time.as_millis() as u64,
        wall_ms: wall.as_secs_f64() * 1000.0,
        steps,
        steps_per_s: steps as f64 / wall_s,
        sim_to_wall: sim_time.as_secs_f64() / wall_s,
        load_sim_ms: load_phase.map_or(0, |(sim, _)| sim.as_millis() as u64),
        load_wall_ms: load_phase.map_or(0.0, |(_, wall)| wall.as_secs_f64() * 1000.0),
        events: trace.len() as u64,
        trace_hash: format!("{:016x}", trace.hash()),
        oracles,
        marks,
        counters,
        fingerprint: fingerprint(&canonical),
        replay: format!("mmsim run {} --seed {seed}{replay_args}", scenario.name),
        swarm: Vec::new(),
        sched,
        engine: EngineReport {
            kind: scenario.network.engine,
            profile: scenario.network.profile,
            net: scenario.network.net_config(),
        },
        lock_wait_ms: lock_waits,
        figures,
    };
    RunOutput { report, trace }
}

/// Every non-zero counter but the per-procedure RPC counts, as `name=value`.
pub fn nonzero_counters(counters: &sim::Counters) -> Vec<String> {
    let value = serde_json::to_value(counters).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            if let Some(n) = v.as_u64().filter(|n| *n > 0) {
                out.push(format!("{k}={n}"));
            }
        }
    }
    out
}

/// The scheduler line of the report. Under `pct` it says plainly that no
/// probability bound is claimed: latency still drives the interleaving.
fn render_sched(r: &sim::SchedReport) -> String {
    match r.kind {
        sim::SchedKind::Default => "default (latency-driven)".into(),
        sim::SchedKind::Pct => format!(
            "pct depth={} horizon_calls={} defer_ms_max={}; change points at calls {:?}, {} applied; \
             {} ms deferred; no probability bound is claimed (latency still drives the interleaving)",
            r.depth, r.horizon_calls, r.defer_ms_max, r.change_points, r.priority_changes, r.deferred_ms
        ),
    }
}

impl Report {
    /// The failing oracle (only `only`, when given) whose first violation
    /// came first; one about the end state only (no event) comes last.
    pub fn first_failing(&self, only: Option<&str>) -> Option<&OracleResult> {
        self.oracles
            .iter()
            .filter(|o| o.status == Status::Fail && only.is_none_or(|n| o.name == n))
            .min_by_key(|o| o.first_event.unwrap_or(u64::MAX))
    }

    /// Records that a second run of the seed diverged at event `at`, and
    /// judges the report again (nondeterminism is the last part of a verdict).
    pub fn set_nondeterminism(&mut self, at: usize) {
        self.verdicts.nondeterminism = Some(format!("at event {at}"));
        self.exit_code = self.verdicts.exit_code();
        self.verdict = self.verdicts.render();
    }

    /// The human report.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "scenario    {}", self.scenario);
        let _ = writeln!(s, "seed        {}", self.seed);
        let _ = writeln!(s, "verdict     {} (exit {})", self.verdict, self.exit_code);
        let _ = writeln!(
            s,
            "time        {:.3} s simulated, {:.1} ms wall, {:.0}x",
            self.sim_time_ms as f64 / 1000.0,
            self.wall_ms,
            self.sim_to_wall
        );
        let _ = writeln!(s, "steps       {} ({:.0} steps/s)", self.steps, self.steps_per_s);
        let _ = writeln!(s, "events      {}", self.events);
        let _ = writeln!(s, "engine      {}", self.engine.render());
        let _ = writeln!(s, "sched       {}", render_sched(&self.sched));
        for line in &self.swarm {
            let _ = writeln!(s, "swarm       {line}");
        }
        let _ = writeln!(s, "trace hash  {}", self.trace_hash);
        match &self.heal {
            Some(h) if h.healed.is_empty() => {
                let _ = writeln!(s, "heal        at {:.3} s, nothing left to heal", h.at_ms as f64 / 1000.0);
            }
            Some(h) => {
                let _ = writeln!(s, "heal        at {:.3} s: {}", h.at_ms as f64 / 1000.0, h.healed.join(", "));
            }
            None => {}
        }
        if let Some(mail) = self.figures.mail.mail_line() {
            let _ = writeln!(s, "mail        {mail}");
            let _ = writeln!(s, "missing     {}", self.figures.mail.missing_line());
        }
        let _ = writeln!(s, "oracles");
        for o in &self.oracles {
            let status = match o.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
            };
            let property = match o.property {
                Property::Safety => "safety",
                Property::Liveness => "liveness",
            };
            let _ = writeln!(s, "  {:<22} {status} ({} checked, {property})", o.name, o.checked);
            for v in &o.violations {
                let _ = writeln!(s, "      {v}");
            }
        }
        let w = &self.lock_wait_ms;
        let _ = writeln!(
            s,
            "lock waits  {} acquisitions, p50 {} ms, p99 {} ms, max {} ms",
            w.acquisitions, w.p50, w.p99, w.max
        );
        let marks: Vec<String> = self.marks.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "marks       {}", marks.join(" "));
        let rpcs: Vec<String> = self.counters.rpcs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "rpcs        {}", rpcs.join(" "));
        let _ = writeln!(s, "nfs         {}", nonzero_counters(&self.counters).join(" "));
        let _ = writeln!(
            s,
            "build       git {} | {} | Cargo.lock {} | scenario {}",
            self.fingerprint.git_revision,
            self.fingerprint.rustc,
            self.fingerprint.cargo_lock,
            self.fingerprint.scenario
        );
        if self.exit_code != exit::PASS {
            let _ = writeln!(s, "replay      {}", self.replay);
        }
        s
    }
}
