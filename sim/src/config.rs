//! What a world is built from: its hosts, the programs each boots, the sim
//! gate's settings, and the engine, links, server and scheduler it runs on.
//! Scenario files deserialize into these (`WorldConfig` is the root).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::clock::ClockConfig;
use crate::nfs::client::MountOptions;
use crate::nfs::server::ServerConfig;
use crate::process::Proc;
use crate::rpc::LinkFaults;
use crate::sched::SchedConfig;

/// A program: an entry point a process runs, given its handle and argv.
pub type Program = Rc<dyn Fn(Proc, Vec<String>) -> Pin<Box<dyn Future<Output = i32>>>>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootProgram {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Simulated milliseconds after boot at which the program starts.
    #[serde(default)]
    pub start_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub name: String,
    #[serde(default)]
    pub clock: ClockConfig,
    #[serde(default)]
    pub mount: MountOptions,
    /// Fault rates on this host's link to the NFS server.
    #[serde(default)]
    pub link: LinkFaults,
    /// Programs started when the host boots, in order.
    #[serde(default)]
    pub boot: Vec<BootProgram>,
}

/// The sim gate's settings (see [`crate::process`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// CPU time charged to a process for each `Os` call. A process whose charge
    /// reaches 1 ms sleeps 1 ms, so a loop over cached answers cannot freeze time.
    pub cpu_cost_us_per_call: u64,
    /// `Os` calls allowed in one 1 ms step, across all processes. Past it the run
    /// ends with a liveness verdict instead of hanging.
    pub ops_per_step_max: u64,
    /// Chance, per `Os` call, that the process stalls at the gate first (standing
    /// in for the OS scheduler and paging).
    pub stall_ppm: u32,
    /// Median stall length. Stalls follow a Pareto law of index 1 (a long tail):
    /// `median / (2u)` for u uniform in (0, 1], in whole ms, capped at `stall_ms_max`.
    pub stall_ms_median: u64,
    pub stall_ms_max: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            cpu_cost_us_per_call: 10,
            ops_per_step_max: 20_000,
            stall_ppm: 0,
            stall_ms_median: 10,
            stall_ms_max: 10_000,
        }
    }
}

impl GateConfig {
    /// Draws one stall length in whole ms (integer arithmetic only).
    pub fn draw_stall_ms(&self, rng: &mut crate::rng::Rng) -> u64 {
        let u = rng.between(1, 1 << 32);
        let ms = (self.stall_ms_median as u128 * (1u128 << 32) / (2 * u as u128)) as u64;
        ms.clamp(1, self.stall_ms_max.max(1))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldConfig {
    pub seed: u64,
    /// Which engine runs the world.
    #[serde(default)]
    pub engine: crate::engine::EngineKind,
    /// Link timing: fixed latency plus transmission time (jitter comes from
    /// [`LinkFaults`]). The turmoil engine rounds the latency up to whole ms
    /// and ignores bandwidth.
    pub net: crate::engine::NetConfig,
    pub server: ServerConfig,
    pub hosts: Vec<HostConfig>,
    pub gate: GateConfig,
    /// Which scheduler orders calls at the gate (see [`crate::sched`]).
    #[serde(default)]
    pub sched: SchedConfig,
}
