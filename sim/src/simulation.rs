//! A world on its engine: built from a [`WorldConfig`], run up to a time, and
//! faulted (partitions, server reboots, host and process crashes, at once or
//! at a scheduled time).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use crate::config::WorldConfig;
use crate::engine::{self, events, Current, EngineKind};
use crate::world::World;
use crate::SERVER_HOST;

/// A fault the driver applies at a scheduled time (see [`Simulation::schedule`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Cut the link between two hosts both ways for `window`.
    Partition {
        a: String,
        b: String,
        window: Duration,
    },
    /// Crash the NFS server; it serves again after `down_for`.
    RebootServer {
        down_for: Duration,
    },
    CrashHost {
        host: String,
    },
    RestartHost {
        host: String,
    },
    /// Crash the first live process on `host` that runs `program` (found when
    /// the fault fires: pids are only known then); a fault line says so when
    /// there is none.
    CrashProcess {
        host: String,
        program: String,
    },
}

/// What the driver does at a scheduled time: a fault, or the end of a partition.
enum Action {
    Fault(Fault),
    Repair(String, String),
}

enum Substrate<'a> {
    Events(Rc<events::Runtime>),
    Turmoil { sim: Box<turmoil::Sim<'a>>, steps: u64 },
}

/// A world under its engine, run forward by its driver.
pub struct Simulation<'a> {
    substrate: Substrate<'a>,
    world: World,
    /// Faults not yet applied, by true time (then in scheduling order).
    scheduled: BTreeMap<(Duration, u64), Action>,
    scheduled_next: u64,
    /// Client hosts crashed and not booted again, for [`Simulation::heal`].
    down: BTreeSet<String>,
}

/// Rounds a duration up to whole milliseconds (turmoil's quantum).
pub(crate) fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)
}

impl<'a> Simulation<'a> {
    /// Builds the world: the NFS server host first, then the client hosts in
    /// configuration order (registration order is part of a seed's meaning).
    /// Programs must be registered on `world` before the world first runs.
    pub fn new(config: WorldConfig) -> Simulation<'a> {
        let world = World::new(config.clone());
        let substrate = match config.engine {
            EngineKind::Events => {
                let rt = events::Runtime::new(config.net);
                engine::enter(Current::Events(rt.clone()));
                let w = world.clone();
                rt.add_host(
                    SERVER_HOST,
                    Rc::new(move || {
                        let w = w.clone();
                        Box::pin(async move { crate::nfs::server::serve(w).await })
                    }),
                );
                for host in &config.hosts {
                    let w = world.clone();
                    let name: Rc<str> = host.name.as_str().into();
                    rt.add_host(
                        &host.name,
                        Rc::new(move || {
                            let (w, name) = (w.clone(), name.clone());
                            Box::pin(async move {
                                w.boot_host(&name).await;
                                w.reaper(&name).await;
                                Ok(())
                            })
                        }),
                    );
                }
                Substrate::Events(rt)
            }
            EngineKind::Turmoil => {
                engine::enter(Current::Turmoil { elapsed: Duration::ZERO });
                let latency = whole_ms(Duration::from_nanos(config.net.lan.latency_ns)).max(Duration::from_millis(1));
                let mut sim = turmoil::Builder::new()
                    .rng_seed(config.seed)
                    .epoch(crate::clock::epoch())
                    .tick_duration(Duration::from_millis(1))
                    .simulation_duration(Duration::from_secs(100 * 365 * 24 * 3600))
                    .min_message_latency(latency)
                    .max_message_latency(latency)
                    .udp_capacity(1 << 16)
                    .tcp_capacity(1 << 12)
                    .build();
                let w = world.clone();
                sim.host(SERVER_HOST, move || {
                    let w = w.clone();
                    async move { crate::nfs::server::serve(w).await.map_err(|e| e.into()) }
                });
                for host in &config.hosts {
                    let w = world.clone();
                    let name: Rc<str> = host.name.as_str().into();
                    sim.host(host.name.as_str(), move || {
                        let w = w.clone();
                        let name = name.clone();
                        async move {
                            w.boot_host(&name).await;
                            w.reaper(&name).await;
                            Ok(())
                        }
                    });
                }
                Substrate::Turmoil { sim: Box::new(sim), steps: 0 }
            }
        };
        Simulation { substrate, world, scheduled: BTreeMap::new(), scheduled_next: 0, down: BTreeSet::new() }
    }

    /// Makes this simulation's engine the one the code on this thread sees.
    fn enter(&self) {
        match &self.substrate {
            Substrate::Events(rt) => engine::enter(Current::Events(rt.clone())),
            Substrate::Turmoil { sim, .. } => engine::enter(Current::Turmoil { elapsed: sim.elapsed() }),
        }
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn engine(&self) -> EngineKind {
        match self.substrate {
            Substrate::Events(_) => EngineKind::Events,
            Substrate::Turmoil { .. } => EngineKind::Turmoil,
        }
    }

    /// Runs 1 ms of simulated time.
    pub fn step(&mut self) -> Result<(), String> {
        let to = self.elapsed() + Duration::from_millis(1);
        self.run_until(to)
    }

    /// Runs every event up to true time `until` (turmoil: whole steps until
    /// its clock reaches `until`), applying scheduled faults on the way. An
    /// error is a bug in the sim or a host's software returning an error.
    pub fn run_until(&mut self, until: Duration) -> Result<(), String> {
        self.enter();
        loop {
            let now = self.elapsed();
            while let Some(entry) = self.scheduled.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                match entry.remove() {
                    Action::Fault(fault) => self.apply(fault),
                    Action::Repair(a, b) => self.repair(&a, &b),
                }
            }
            if now >= until {
                return Ok(());
            }
            let next = self.scheduled.first_key_value().map_or(until, |(k, _)| k.0.min(until)).max(now);
            match &mut self.substrate {
                Substrate::Events(rt) => rt.run_until(next)?,
                Substrate::Turmoil { sim, steps } => {
                    engine::enter(Current::Turmoil { elapsed: sim.elapsed() });
                    *steps += 1;
                    let r = sim.step().map(|_| ()).map_err(|e| e.to_string());
                    engine::enter(Current::Turmoil { elapsed: sim.elapsed() });
                    r?;
                }
            }
        }
    }

    /// Engine steps so far: turmoil's 1 ms steps, or the distinct instants the
    /// events engine woke up at.
    pub fn steps(&self) -> u64 {
        match &self.substrate {
            Substrate::Events(rt) => rt.instants(),
            Substrate::Turmoil { steps, .. } => *steps,
        }
    }

    /// True simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        match &self.substrate {
            Substrate::Events(rt) => rt.now(),
            Substrate::Turmoil { sim, .. } => sim.elapsed(),
        }
    }

    /// Crashes a whole client host: its processes die, its client state is lost,
    /// the server keeps what it made durable.
    pub fn crash_host(&mut self, host: &str) {
        self.enter();
        self.down.insert(host.to_string());
        self.world.host_crashed(host);
        match &mut self.substrate {
            Substrate::Events(rt) => rt.crash(host),
            Substrate::Turmoil { sim, .. } => sim.crash(host),
        }
    }

    /// Boots a crashed host again: a new incarnation runs its boot programs.
    pub fn restart_host(&mut self, host: &str) {
        self.enter();
        self.down.remove(host);
        match &mut self.substrate {
            Substrate::Events(rt) => rt.restart(host),
            Substrate::Turmoil { sim, .. } => sim.bounce(host),
        }
    }

    pub fn crash_process(&mut self, host: &str, pid: u32) -> bool {
        self.enter();
        self.world.crash_process(host, pid)
    }

    /// Cuts the link between two hosts (either may be [`SERVER_HOST`]) both ways;
    /// messages in flight are lost. Lasts until [`Simulation::repair`].
    pub fn partition(&mut self, a: &str, b: &str) {
        self.enter();
        self.world.fault(format!("partition {a} {b}"));
        match &mut self.substrate {
            Substrate::Events(rt) => rt.partition(a, b),
            Substrate::Turmoil { sim, .. } => sim.partition(a, b),
        }
    }

    pub fn repair(&mut self, a: &str, b: &str) {
        self.enter();
        self.world.fault(format!("repair {a} {b}"));
        match &mut self.substrate {
            Substrate::Events(rt) => rt.repair(a, b),
            Substrate::Turmoil { sim, .. } => sim.repair(a, b),
        }
    }

    /// Crashes the NFS server now: the DRC empties, uncommitted data is lost, an
    /// `async` export rolls back, and nothing is served for `down_for`
    /// (docs/semantics: server reboot). Hard-mount clients block and retry across the outage.
    pub fn reboot_server(&mut self, down_for: Duration) {
        self.enter();
        self.world.reboot_server(down_for);
    }

    /// The end of the fault phase, as VOPR ends its own before judging liveness:
    /// faults not yet applied are dropped, open partitions are repaired now,
    /// crashed client hosts boot again, and the world stops losing messages and
    /// stalling processes ([`World::heal`]). A rebooting server comes back at its
    /// own time: its outage is already bounded. Records one `heal: …` fault line
    /// naming what it healed, and nothing when nothing was faulty (so a run
    /// without faults keeps its trace). Returns what it healed.
    pub fn heal(&mut self) -> Vec<String> {
        self.enter();
        let mut healed = Vec::new();
        let mut repairs = Vec::new();
        for action in std::mem::take(&mut self.scheduled).into_values() {
            match action {
                Action::Fault(_) => healed.push("a scheduled fault dropped".to_string()),
                Action::Repair(a, b) => {
                    healed.push(format!("partition {a} {b}"));
                    repairs.push((a, b));
                }
            }
        }
        let down: Vec<String> = std::mem::take(&mut self.down).into_iter().collect();
        healed.extend(down.iter().map(|h| format!("restart {h}")));
        healed.extend(self.world.heal());
        if healed.is_empty() {
            return healed;
        }
        self.world.fault(format!("heal: {}", healed.join(", ")));
        for (a, b) in repairs {
            self.repair(&a, &b);
        }
        for host in down {
            self.restart_host(&host);
        }
        healed
    }

    /// Applies `fault` at true simulated time `at` (at once if `at` has passed).
    pub fn schedule(&mut self, at: Duration, fault: Fault) {
        self.enqueue(at, Action::Fault(fault));
    }

    fn enqueue(&mut self, at: Duration, action: Action) {
        self.scheduled.insert((at, self.scheduled_next), action);
        self.scheduled_next += 1;
    }

    fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Partition { a, b, window } => {
                self.partition(&a, &b);
                let at = self.elapsed() + window;
                self.enqueue(at, Action::Repair(a, b));
            }
            Fault::RebootServer { down_for } => self.reboot_server(down_for),
            Fault::CrashHost { host } => self.crash_host(&host),
            Fault::RestartHost { host } => self.restart_host(&host),
            Fault::CrashProcess { host, program } => {
                let victim = self.world.live_processes().into_iter().find(|(h, _, p)| *h == host && *p == program);
                match victim {
                    Some((_, pid, _)) => {
                        self.crash_process(&host, pid);
                    }
                    None => self.world.fault(format!("crash-process: no live {program} on {host}")),
                }
            }
        }
    }
}

impl Drop for Simulation<'_> {
    fn drop(&mut self) {
        if let Substrate::Events(rt) = &self.substrate {
            engine::enter(Current::Events(rt.clone()));
            rt.shutdown();
            engine::leave_events(rt);
        }
        self.world.release_hosts();
    }
}
