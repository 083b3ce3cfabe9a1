//! The simulated world, on an engine seam (an event-driven engine, or turmoil). It knows nothing of Mailman.
//!
//! Map:
//! - `rng`: one seed, split into named ChaCha8 streams.
//! - `clock`: true simulated time, and each host's wall clock (offset, drift, steps).
//! - `world`: hosts, processes, the program table; [`World`] is the shared handle.
//!   `config`: what a world is built from ([`WorldConfig`]). `counters`: what every report counts.
//! - `process`: a simulated process ([`Proc`]) and the sim gate its calls pass through.
//! - `sched`: who goes first at the gate: the default (latency-driven) scheduler,
//!   or PCT-style random priorities with change points.
//! - `engine`: the seam to the substrate (clock, tasks, timers, datagrams,
//!   streams, crashes, partitions) and its two engines: `events` (the default,
//!   discrete-event, nanosecond time) and turmoil (the 1 ms reference).
//! - `rpc`: NFS RPCs over the engine's datagrams, with per-link fates and retransmission
//!   (`timeo`/`retrans` backoff, hard and soft mounts).
//! - `nfs`: the NFSv3 filesystem, one mechanism per module: wire shapes (`proto`),
//!   the server's inode store with UNSTABLE data (`store`), the duplicate request
//!   cache (`drc`), the server host with crash, reboot and `async` rollback
//!   (`server`), mount options and client profiles (`mount`), and the client
//!   (`client`) with its attribute cache (`attr_cache`), lookup cache
//!   (`dentry_cache`), readdir cache (`readdir_cache`), page cache (`pages`) and
//!   silly rename (`silly`).
//! - `trace`: the recorded history and its hash. `errno`: errno symbols.
//! - [`Simulation`]: builds the world on its engine from a [`WorldConfig`], runs it, and
//!   injects faults: partitions, server reboots, host and process crashes, at once
//!   or at a scheduled time ([`Fault`]).
//!
//! Invariants: no wall clock, no OS entropy, no `HashMap` iteration, no real
//! threads or sleeps. All randomness comes from [`Rng`] streams keyed by name.

#[cfg(not(tokio_unstable))]
compile_error!("sim must be built with --cfg tokio_unstable (a RUSTFLAGS variable overrides .cargo/config.toml; add the cfg to it)");

mod clock;
mod config;
mod counters;
pub mod engine;
mod errno;
pub mod nfs;
mod pipe;
mod process;
mod rng;
mod rpc;
mod sched;
mod sem;
mod simulation;
mod trace;
mod world;

pub use clock::{epoch, from_system_time, to_system_time, true_now, ClockConfig, ClockStep, Nanos, EPOCH_UNIX_S};
pub use config::{BootProgram, GateConfig, HostConfig, Program, WorldConfig};
pub use counters::Counters;
pub use engine::{EngineKind, LinkProfile, LinkTiming, NetConfig};
pub use errno::errno_name;
pub use nfs::client::{Attr, Flags};
pub use nfs::mount::{
    Ac, ClientProfile, Cto, DentryRevalidate, EstaleErrno, EstaleRetry, ExclusiveCreate, LookupCache, MapEexist,
    MountOptions, PostOpAttrs, WriteMode, RWSIZE_MAX, RWSIZE_NEGOTIATED,
};
pub use nfs::server::{Export, ServerConfig, ServerProfile};
pub use nfs::store::{DumpEntry, ReaddirOrder};
pub use process::{Proc, TcpListener, TcpStream};
pub use rng::{ppm, Rng};
pub use rpc::{Backoff, LinkFaults, MountKind, TransportOptions};
pub use sched::{SchedConfig, SchedKind, SchedReport, DEFER_MS_MAX_MAX, DEPTH_MAX};
pub use simulation::{Fault, Simulation};
pub use trace::{event_at, events_before, first_divergence, Event, EventKind, Outcome, Retention, Trace};
pub use world::{ProcStatus, World};

/// The NFS server's host name.
pub const SERVER_HOST: &str = "nfs";
