//! Schedule exploration at the sim gate: the default scheduler, where latency
//! alone decides the interleaving, and a PCT-style one (Burckhardt, Kothari,
//! Musuvathi, Nagarakatte: "A Randomized Scheduler with Probabilistic
//! Guarantees of Finding Bugs", ASPLOS 2010).
//!
//! **pct.** Every process draws a priority when it starts, from its own named
//! stream (`sched/pct/{host}/{incarnation}/{pid}`), so adding a process shifts
//! no other draw. `depth` change points are drawn up front from the stream
//! `sched/pct`, uniformly over the run's first `horizon_calls` gate calls. When
//! the run's gate-call count reaches change point `i` (0-based), the process
//! making that call drops to priority `depth - i`, below every priority drawn at
//! start (PCT's `d - i`).
//!
//! Priority acts at the gate. A call announces itself and yields once, so that
//! every task of its host that is ready in this step reaches the gate too; then
//! it waits whole 1 ms steps, at most `defer_ms_max`, while a process of higher
//! priority waits at the gate or has passed it in this step or the previous one
//! (standing in for "is runnable"). Deferring by whole steps, rather than only
//! reordering tasks within one step, is what changes interleavings here: hosts
//! run one after another within a step, and the server applies each step's
//! requests as one batch in a seeded order. Time never freezes: every wait is a
//! 1 ms sleep, and the wait is bounded.
//!
//! What it deliberately is not: PCT's probability bound. Latency, the server's
//! seeded batch order and the programs' own sleeps still drive the interleaving,
//! and "runnable" is only approximated, so no bound on the chance of finding a
//! bug of depth `d` is claimed.
//!
//! The default scheduler draws nothing and waits for nothing: its runs are the
//! same, event for event, as before this module existed.

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Which scheduler decides the order of calls at the gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedKind {
    /// Latency, the server's batch order and the programs' sleeps decide.
    #[default]
    Default,
    /// Random priorities with `depth` change points (see the module docs).
    Pct,
}

impl SchedKind {
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Default => "default",
            SchedKind::Pct => "pct",
        }
    }
}

/// The scheduler's settings (the scenario's `[sched]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedConfig {
    pub kind: SchedKind,
    /// Priority change points (`pct` only).
    pub depth: u32,
    /// The change points are drawn uniformly over gate calls `1..=horizon_calls`.
    pub horizon_calls: u64,
    /// The longest a call waits at the gate for higher-priority processes, in
    /// whole 1 ms steps.
    pub defer_ms_max: u64,
}

/// Bounds checked by the scenario parser.
pub const DEPTH_MAX: u32 = 100;
pub const DEFER_MS_MAX_MAX: u64 = 60_000;

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig { kind: SchedKind::Default, depth: 3, horizon_calls: 5_000, defer_ms_max: 20 }
    }
}

/// What the scheduler did in one run, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchedReport {
    pub kind: SchedKind,
    /// `pct` only (0 under the default scheduler).
    pub depth: u32,
    pub horizon_calls: u64,
    pub defer_ms_max: u64,
    /// Global gate-call indices (1-based) at which a priority drops, ascending.
    pub change_points: Vec<u64>,
    /// Change points the run reached (a short run reaches fewer than `depth`).
    pub priority_changes: u64,
    /// 1 ms waits at the gate behind a higher-priority process.
    pub deferred_ms: u64,
}

fn label(kind: SchedKind, depth: u32) -> String {
    match kind {
        SchedKind::Default => "default".into(),
        SchedKind::Pct => format!("pct depth={depth}"),
    }
}

impl SchedConfig {
    /// `default`, or `pct depth=3`: what a sweep line and a summary name.
    pub fn label(&self) -> String {
        label(self.kind, self.depth)
    }
}

impl SchedReport {
    /// The same label as [`SchedConfig::label`].
    pub fn label(&self) -> String {
        label(self.kind, self.depth)
    }
}

/// A process, as the scheduler knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcKey {
    pub host: Rc<str>,
    pub incarnation: u32,
    pub pid: u32,
}

/// A process at the gate in some step, with its priority then.
struct Seen {
    key: ProcKey,
    priority: u64,
    step: u64,
}

/// Inserts or refreshes `key`'s entry, and forgets entries older than the
/// previous step (each list stays as small as the set of recently active processes).
fn upsert(list: &mut Vec<Seen>, key: &ProcKey, priority: u64, step: u64) {
    list.retain(|e| e.step + 1 >= step && e.key != *key);
    list.push(Seen { key: key.clone(), priority, step });
}

/// The scheduler's state in one world; inert under the default scheduler.
pub(crate) struct Sched {
    config: SchedConfig,
    change_points: Vec<u64>,
    change_next: usize,
    calls: u64,
    /// Processes waiting at the gate in the current or the previous step.
    waiting: Vec<Seen>,
    /// Processes that passed the gate in the current or the previous step.
    passed: Vec<Seen>,
    priority_changes: u64,
    deferred_ms: u64,
}

impl Sched {
    pub fn new(seed: u64, config: SchedConfig) -> Sched {
        let mut change_points = Vec::new();
        if config.kind == SchedKind::Pct {
            let mut rng = Rng::stream(seed, "sched/pct");
            change_points = (0..config.depth).map(|_| rng.between(1, config.horizon_calls.max(1))).collect();
            change_points.sort_unstable();
        }
        Sched {
            config,
            change_points,
            change_next: 0,
            calls: 0,
            waiting: Vec::new(),
            passed: Vec::new(),
            priority_changes: 0,
            deferred_ms: 0,
        }
    }

    pub fn is_pct(&self) -> bool {
        self.config.kind == SchedKind::Pct
    }

    pub fn defer_ms_max(&self) -> u64 {
        self.config.defer_ms_max
    }

    /// A new process's priority: above every priority a change point assigns.
    pub fn initial_priority(&self, seed: u64, key: &ProcKey) -> u64 {
        let name = format!("sched/pct/{}/{}/{}", key.host, key.incarnation, key.pid);
        u64::from(self.config.depth) + 1 + Rng::stream(seed, &name).below(1 << 48)
    }

    /// Counts one gate call; returns the lowered priority if this call reaches
    /// one or more change points (the lowest one wins).
    pub fn count_call(&mut self) -> Option<u64> {
        self.calls += 1;
        let mut lowered = None;
        while let Some(&at) = self.change_points.get(self.change_next) {
            if at > self.calls {
                break;
            }
            lowered = Some(u64::from(self.config.depth) - self.change_next as u64);
            self.change_next += 1;
            self.priority_changes += 1;
        }
        lowered
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// `key` is at the gate in `step` (again, after a wait).
    pub fn arrive(&mut self, key: &ProcKey, priority: u64, step: u64) {
        upsert(&mut self.waiting, key, priority, step);
    }

    /// Whether another process of higher priority than `priority` waits at the
    /// gate or passed it, in `step` or the step before: it runs first.
    pub fn must_wait(&self, key: &ProcKey, priority: u64, step: u64) -> bool {
        let ahead = |e: &Seen| e.priority > priority && e.step + 1 >= step && e.key != *key;
        self.waiting.iter().any(ahead) || self.passed.iter().any(ahead)
    }

    pub fn deferred(&mut self) {
        self.deferred_ms += 1;
    }

    /// `key` passed the gate in `step`.
    pub fn pass(&mut self, key: &ProcKey, priority: u64, step: u64) {
        self.waiting.retain(|e| e.key != *key);
        upsert(&mut self.passed, key, priority, step);
    }

    pub fn report(&self) -> SchedReport {
        let pct = self.is_pct();
        SchedReport {
            kind: self.config.kind,
            depth: if pct { self.config.depth } else { 0 },
            horizon_calls: if pct { self.config.horizon_calls } else { 0 },
            defer_ms_max: if pct { self.config.defer_ms_max } else { 0 },
            change_points: self.change_points.clone(),
            priority_changes: self.priority_changes,
            deferred_ms: self.deferred_ms,
        }
    }
}
