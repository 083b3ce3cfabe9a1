//! The simulated world, built on turmoil and tokio. It knows nothing of Mailman.
//!
//! Map:
//! - `rng`: one seed, split into named ChaCha8 streams.
//! - `clock`: true simulated time, and each host's wall clock (offset, drift, steps).
//! - `world`: hosts, processes, the program table, counters; [`World`] is the shared handle.
//! - `process`: a simulated process ([`Proc`]) and the sim gate its calls pass through.
//! - `sched`: who goes first at the gate: the default (latency-driven) scheduler,
//!   or PCT-style random priorities with change points.
//! - `rpc`: NFS RPCs over turmoil UDP, with per-link fates and retransmission
//!   (`timeo`/`retrans` backoff, hard and soft mounts).
//! - `nfs`: the NFSv3 filesystem, one mechanism per module: wire shapes (`proto`),
//!   the server's inode store with UNSTABLE data (`store`), the duplicate request
//!   cache (`drc`), the server host with crash, reboot and `async` rollback
//!   (`server`), mount options and client profiles (`mount`), and the client
//!   (`client`) with its attribute cache (`attr_cache`), lookup cache
//!   (`dentry_cache`), readdir cache (`readdir_cache`), page cache (`pages`) and
//!   silly rename (`silly`).
//! - `trace`: the recorded history and its hash. `errno`: errno symbols.
//! - [`Simulation`]: builds the turmoil world from a [`WorldConfig`], steps it, and
//!   injects faults: partitions, server reboots, host and process crashes, at once
//!   or at a scheduled time ([`Fault`]).
//!
//! Invariants: no wall clock, no OS entropy, no `HashMap` iteration, no real
//! threads or sleeps. All randomness comes from [`Rng`] streams keyed by name.

#[cfg(not(tokio_unstable))]
compile_error!("sim must be built with --cfg tokio_unstable (a RUSTFLAGS variable overrides .cargo/config.toml; add the cfg to it)");

mod clock;
mod errno;
pub mod nfs;
mod process;
mod rng;
mod rpc;
mod sched;
mod trace;
mod world;

use std::time::Duration;

pub use clock::{epoch, from_system_time, to_system_time, true_now, ClockConfig, ClockStep, Nanos, EPOCH_UNIX_S};
pub use errno::errno_name;
pub use nfs::client::{Attr, Flags};
pub use nfs::mount::{
    Ac, ClientProfile, Cto, EstaleErrno, EstaleRetry, ExclusiveCreate, LookupCache, MapEexist, MountOptions,
    PostOpAttrs, WriteMode,
};
pub use nfs::server::{Export, ServerConfig, ServerProfile};
pub use nfs::store::{DumpEntry, ReaddirOrder};
pub use process::{Proc, TcpListener, TcpStream};
pub use rng::{ppm, Rng};
pub use rpc::{Backoff, LinkFaults, MountKind, TransportOptions};
pub use sched::{SchedConfig, SchedKind, SchedReport, DEFER_MS_MAX_MAX, DEPTH_MAX};
pub use trace::{events_before, first_divergence, Event, EventKind, Outcome, Retention, Trace};
pub use world::{BootProgram, Counters, GateConfig, HostConfig, ProcStatus, Program, World, WorldConfig};

/// The NFS server's host name.
pub const SERVER_HOST: &str = "nfs";

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
    CrashProcess {
        host: String,
        pid: u32,
    },
}

/// What the driver does at a scheduled time: a fault, or the end of a partition.
enum Action {
    Fault(Fault),
    Repair(String, String),
}

/// A world under turmoil, stepped one millisecond at a time by its driver.
pub struct Simulation<'a> {
    sim: turmoil::Sim<'a>,
    world: World,
    steps: u64,
    /// Faults not yet applied, by true time (then in scheduling order).
    scheduled: std::collections::BTreeMap<(Duration, u64), Action>,
    scheduled_next: u64,
}

impl<'a> Simulation<'a> {
    /// Builds the world: the NFS server host first, then the client hosts in
    /// configuration order (registration order is part of a seed's meaning).
    /// Programs must be registered on `world` before the first step.
    pub fn new(config: WorldConfig) -> Simulation<'a> {
        let latency = Duration::from_millis(config.latency_ms.max(1));
        let mut sim = turmoil::Builder::new()
            .rng_seed(config.seed)
            .epoch(epoch())
            .tick_duration(Duration::from_millis(1))
            .simulation_duration(Duration::from_secs(100 * 365 * 24 * 3600))
            .min_message_latency(latency)
            .max_message_latency(latency)
            .udp_capacity(1 << 16)
            .tcp_capacity(1 << 12)
            .build();
        let world = World::new(config.clone());
        let w = world.clone();
        sim.host(SERVER_HOST, move || nfs::server::serve(w.clone()));
        for host in &config.hosts {
            let w = world.clone();
            let name: std::rc::Rc<str> = host.name.as_str().into();
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
        Simulation { sim, world, steps: 0, scheduled: std::collections::BTreeMap::new(), scheduled_next: 0 }
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Runs one 1 ms step of every host. An error is a bug in the sim or a
    /// host's software returning an error.
    pub fn step(&mut self) -> Result<(), String> {
        let now = self.sim.elapsed();
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Action::Fault(fault) => self.apply(fault),
                Action::Repair(a, b) => self.repair(&a, &b),
            }
        }
        self.world.set_step(self.steps);
        self.steps += 1;
        self.sim.step().map(|_| ()).map_err(|e| e.to_string())
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// True simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    /// Crashes a whole client host: its processes die, its client state is lost,
    /// the server keeps what it made durable.
    pub fn crash_host(&mut self, host: &str) {
        self.world.host_crashed(host);
        self.sim.crash(host);
    }

    /// Boots a crashed host again: a new incarnation runs its boot programs.
    pub fn restart_host(&mut self, host: &str) {
        self.sim.bounce(host);
    }

    pub fn crash_process(&mut self, host: &str, pid: u32) -> bool {
        self.world.crash_process(host, pid)
    }

    /// Cuts the link between two hosts (either may be [`SERVER_HOST`]) both ways;
    /// messages in flight are lost. Lasts until [`Simulation::repair`].
    pub fn partition(&mut self, a: &str, b: &str) {
        self.world.fault(format!("partition {a} {b}"));
        self.sim.partition(a, b);
    }

    pub fn repair(&mut self, a: &str, b: &str) {
        self.world.fault(format!("repair {a} {b}"));
        self.sim.repair(a, b);
    }

    /// Crashes the NFS server now: the DRC empties, uncommitted data is lost, an
    /// `async` export rolls back, and nothing is served for `down_for`
    /// (spec/nfs.md §10). Hard-mount clients block and retry across the outage.
    pub fn reboot_server(&mut self, down_for: Duration) {
        self.world.reboot_server(down_for);
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
                let at = self.sim.elapsed() + window;
                self.enqueue(at, Action::Repair(a, b));
            }
            Fault::RebootServer { down_for } => self.reboot_server(down_for),
            Fault::CrashHost { host } => self.crash_host(&host),
            Fault::RestartHost { host } => self.restart_host(&host),
            Fault::CrashProcess { host, pid } => {
                self.crash_process(&host, pid);
            }
        }
    }
}
