//! The simulated world, built on turmoil and tokio. It knows nothing of Mailman.
//!
//! Map:
//! - `rng`: one seed, split into named ChaCha8 streams.
//! - `clock`: true simulated time, and each host's wall clock (offset, drift, steps).
//! - `world`: hosts, processes, the program table, counters; [`World`] is the shared handle.
//! - `process`: a simulated process ([`Proc`]) and the sim gate its calls pass through.
//! - `rpc`: NFS RPCs over turmoil UDP, with per-link fates and retransmission.
//! - `nfs`: the NFSv3 wire shapes, the server's inode store, the server host, the client.
//! - `trace`: the recorded history and its hash. `errno`: errno symbols.
//! - [`Simulation`]: builds the turmoil world from a [`WorldConfig`] and steps it.
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
mod trace;
mod world;

use std::time::Duration;

pub use clock::{epoch, from_system_time, to_system_time, true_now, ClockConfig, ClockStep, Nanos, EPOCH_UNIX_S};
pub use errno::errno_name;
pub use nfs::client::{Attr, Flags, MountOptions};
pub use nfs::server::ServerConfig;
pub use nfs::store::{DumpEntry, ReaddirOrder};
pub use process::{Proc, TcpListener, TcpStream};
pub use rng::{ppm, Rng};
pub use rpc::{LinkFaults, MountKind, TransportOptions};
pub use trace::{first_divergence, Event, EventKind, Outcome, Trace};
pub use world::{BootProgram, Counters, GateConfig, HostConfig, ProcStatus, Program, World, WorldConfig};

/// The NFS server's host name.
pub const SERVER_HOST: &str = "nfs";

/// A world under turmoil, stepped one millisecond at a time by its driver.
pub struct Simulation<'a> {
    sim: turmoil::Sim<'a>,
    world: World,
    steps: u64,
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
        Simulation { sim, world, steps: 0 }
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Runs one 1 ms step of every host. An error is a bug in the sim or a
    /// host's software returning an error.
    pub fn step(&mut self) -> Result<(), String> {
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
}
