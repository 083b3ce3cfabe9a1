//! What `mmsim` accepts: every subcommand's flags, declared once with clap.
//!
//! The flags most subcommands share are two flattened groups: [`Subject`]
//! (the scenario, its `--set`s and the scheduler sugar) and [`Target`] (a
//! subject and its seed). Each subcommand's `run` is in the file named after
//! it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mmsim", version, about = "Deterministic replay of Mailman lock and queue races over NFS")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one scenario under one seed and print its report.
    Run(Run),
    /// Measure seeds/s, simulated-to-wall time and peak RSS, each seed in its own process.
    Bench(Bench),
    /// Run one seed and tell the causal story of its first violation.
    Explain(Explain),
    /// Run one seed and draw a window of it as a self-contained HTML page.
    Timeline(Timeline),
    /// List the builtin scenarios, programs and oracles.
    List(List),
    /// Print a scenario with every default and profile expanded, after `--set`.
    Show(Show),
    /// Run a range of seeds in isolated worker processes.
    Sweep(Sweep),
    /// Run a grid of parameters, each cell a seed sweep; write CSV and one SVG per metric.
    Experiment(Experiment),
    /// Run the model on a real directory with real processes.
    Real {
        #[command(subcommand)]
        command: Real,
    },
    /// Minimise a failing run while the same oracle fails by the same mechanism.
    Shrink(Shrink),
    /// Combine sweep outputs (shards) into one, in seed order.
    Merge(Merge),
    /// Internal: run one program on the real OS (how `RealOs::spawn` re-executes mmsim).
    #[command(hide = true)]
    Exec(Exec),
    /// Internal: a sweep worker; reads seeds on stdin, writes JSON lines.
    #[command(hide = true)]
    Worker(Worker),
}

/// A scenario as the command line names it: the file or builtin, its
/// `--set`s, and the scheduler and engine sugar.
#[derive(clap::Args, Clone)]
pub struct Subject {
    /// A builtin scenario name (see `mmsim list`) or a path to a .toml file.
    pub scenario: String,
    /// Override any scenario key: `--set network.latency_us=200`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[command(flatten)]
    pub sched: SchedArgs,
}

/// One run's subject and seed.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// The seed; otherwise MMSIM_SEED, otherwise 1.
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub subject: Subject,
}

/// `--sched KIND [--depth D]`: sugar for `--set sched.kind=KIND --set sched.depth=D`,
/// so the scheduler is part of the scenario and replays with the seed.
#[derive(clap::Args, Clone, Default)]
pub struct SchedArgs {
    /// The scheduler at the sim gate: `default` (latency-driven) or `pct`.
    #[arg(long, value_name = "KIND")]
    pub sched: Option<String>,
    /// pct's number of priority change points (0..=100; only with `--sched pct`).
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    /// The engine: `events` (default, nanosecond time) or `turmoil` (the 1 ms reference).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
}

#[derive(clap::Args)]
pub struct Run {
    #[command(flatten)]
    pub target: Target,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write every event as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The --trace file's format: `jsonl` (the trace as recorded) or
    /// `chrome` (Chrome Trace Event JSON, for ui.perfetto.dev and chrome://tracing).
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub trace_format: scenarios::chrome_trace::TraceFormat,
    /// Run twice in this process and compare the traces event by event.
    #[arg(long)]
    pub check_determinism: bool,
    /// Swarm mode: the seed also draws which fault kinds are on and how hard.
    #[arg(long)]
    pub swarm: bool,
    /// Keep only matching events in --trace: `path=lists/test,host=mail1,pid=12`.
    #[arg(long, value_name = "KEY=VALUE,…")]
    pub trace_filter: Option<String>,
    /// Print the world's state at trace event EVENT instead of the report.
    #[arg(long, value_name = "EVENT")]
    pub dump_at: Option<u64>,
    /// Write each host's Mailman-style logs under DIR/<host>/logs/.
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct Bench {
    #[arg(long, default_value = "two-servers")]
    pub scenario: String,
    /// Seeds 1..=N.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Load multipliers for every sender's --count, e.g. `1,10`.
    #[arg(long, default_value = "1")]
    pub scale: String,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Also run the same load's model code on the real kernel in --dir.
    #[arg(long)]
    pub real: bool,
    /// Where the real run works (tmpfs is best, e.g. /dev/shm).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Posts for the real run (default: the scaled sender count).
    #[arg(long)]
    pub real_messages: Option<u64>,
    /// Engines to run each scale on, side by side: `events`, `turmoil` or `events,turmoil`.
    #[arg(long, default_value = "events")]
    pub engine: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct Explain {
    #[command(flatten)]
    pub target: Target,
    /// Explain the first violation of this oracle instead of the first of all.
    #[arg(long)]
    pub oracle: Option<String>,
}

#[derive(clap::Args)]
pub struct Timeline {
    #[command(flatten)]
    pub target: Target,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Window start in simulated seconds (default: 10 s before the first violation, or 0).
    #[arg(long)]
    pub from_s: Option<f64>,
    /// Window end in simulated seconds (default: 10 s after the first violation, or 60).
    #[arg(long)]
    pub to_s: Option<f64>,
    /// Mark the first violation of this oracle instead of the first of all.
    #[arg(long)]
    pub oracle: Option<String>,
}

#[derive(clap::Args)]
pub struct List {}

#[derive(clap::Args)]
pub struct Show {
    #[command(flatten)]
    pub subject: Subject,
}

#[derive(clap::Args)]
pub struct Sweep {
    #[command(flatten)]
    pub subject: Subject,
    /// Half-open seed range, `A..B`.
    #[arg(long)]
    pub seeds: String,
    /// Worker processes (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard K of N (`K/N`), a contiguous part of the range.
    #[arg(long)]
    pub shard: Option<String>,
    /// Write one JSON line per seed, in seed order.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Stop scheduling seeds after the first failure.
    #[arg(long)]
    pub stop_on_first: bool,
    /// Run each seed twice and fail with exit 5 on any difference.
    #[arg(long)]
    pub check_determinism: bool,
    /// Wall-clock seconds one seed may take before it counts as hung.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// Swarm mode: each seed also draws its fault kinds and their strength.
    #[arg(long)]
    pub swarm: bool,
}

#[derive(clap::Args)]
pub struct Experiment {
    /// The experiment file (TOML; docs/experiment-format.md).
    pub file: PathBuf,
    /// Output directory (default: experiments/<name>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Worker processes (default: the file's `jobs`, else the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run nothing: redraw results.csv and the plots from the output
    /// directory's seeds.jsonl (after a change of labels or plots).
    #[arg(long)]
    pub replot: bool,
}

#[derive(Subcommand)]
pub enum Real {
    /// N processes contend for one Mailman LockFile in DIR; reports overlaps.
    LockStress(LockStress),
    /// N processes number posts of one list as IncomingRunner does; reports lost updates.
    ListStress(ListStress),
    /// Seed DIR with corrupt Mailman files and report what the model does with each.
    Corrupt(Corrupt),
}

#[derive(clap::Args)]
pub struct LockStress {
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 4)]
    pub processes: u32,
    #[arg(long, default_value_t = 200)]
    pub rounds: u32,
    /// mailman21, mailman20, flufl or open2.
    #[arg(long, default_value = "mailman21")]
    pub variant: String,
    /// The retry sleep's random spread (Mailman: 2000 ms).
    #[arg(long, default_value_t = 2000)]
    pub retry_ms_spread: u64,
    /// How long each critical section lasts.
    #[arg(long, default_value_t = 0)]
    pub hold_ms: u64,
    /// The lock lifetime (Mailman's default: 15 s).
    #[arg(long, default_value_t = 15.0)]
    pub lifetime_s: f64,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ListStress {
    #[command(flatten)]
    pub params: scenarios::real::ListStress,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct Corrupt {
    /// An empty, writable directory (a local disk, tmpfs or an NFS mount).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct Shrink {
    #[command(flatten)]
    pub subject: Subject,
    #[arg(long)]
    pub seed: u64,
    /// Where to write the smallest scenario found (default: NAME-seed-N-shrunk.toml).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// At most this many runs.
    #[arg(long, default_value_t = 60)]
    pub runs_max: u32,
}

#[derive(clap::Args)]
pub struct Merge {
    pub files: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct Exec {
    /// The Mailman prefix: every path the program uses is relative to it.
    #[arg(long)]
    pub root: PathBuf,
    /// The host name the program reports (claim files embed it).
    #[arg(long)]
    pub host: String,
    pub program: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(clap::Args)]
pub struct Worker {
    pub scenario: String,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[arg(long)]
    pub check_determinism: bool,
    #[arg(long)]
    pub swarm: bool,
}
