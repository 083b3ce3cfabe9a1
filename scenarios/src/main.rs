//! `mmsim`: run scenarios under seeds and report verdicts.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scenarios::{exit, scenario, Report};

#[derive(Parser)]
#[command(name = "mmsim", version, about = "Deterministic replay of Mailman lock and queue races over NFS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario under one seed and print its report.
    Run {
        /// A builtin scenario name (see `mmsim list`) or a path to a .toml file.
        scenario: String,
        /// The seed; otherwise MMSIM_SEED, otherwise 1.
        #[arg(long)]
        seed: Option<u64>,
        /// Override any scenario key: `--set network.latency_us=200`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        sched: SchedArgs,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write every event as JSON lines to FILE.
        #[arg(long, value_name = "FILE")]
        trace: Option<std::path::PathBuf>,
        /// The --trace file's format: `jsonl` (the trace as recorded) or
        /// `chrome` (Chrome Trace Event JSON, for ui.perfetto.dev and chrome://tracing).
        #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
        trace_format: scenarios::chrome_trace::TraceFormat,
        /// Run twice in this process and compare the traces event by event.
        #[arg(long)]
        check_determinism: bool,
        /// Swarm mode: the seed also draws which fault kinds are on and how hard.
        #[arg(long)]
        swarm: bool,
        /// Keep only matching events in --trace: `path=lists/test,host=mail1,pid=12`.
        #[arg(long, value_name = "KEY=VALUE,…")]
        trace_filter: Option<String>,
        /// Print the world's state at trace event EVENT instead of the report.
        #[arg(long, value_name = "EVENT")]
        dump_at: Option<u64>,
        /// Write each host's Mailman-style logs under DIR/<host>/logs/.
        #[arg(long, value_name = "DIR")]
        logs: Option<std::path::PathBuf>,
    },
    /// Measure seeds/s, simulated-to-wall time and peak RSS, each seed in its own process.
    Bench {
        #[arg(long, default_value = "two-servers")]
        scenario: String,
        /// Seeds 1..=N.
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// Load multipliers for every sender's --count, e.g. `1,10`.
        #[arg(long, default_value = "1")]
        scale: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Also run the same load's model code on the real kernel in --dir.
        #[arg(long)]
        real: bool,
        /// Where the real run works (tmpfs is best, e.g. /dev/shm).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Posts for the real run (default: the scaled sender count).
        #[arg(long)]
        real_messages: Option<u64>,
        /// Engines to run each scale on, side by side: `events`, `turmoil` or `events,turmoil`.
        #[arg(long, default_value = "events")]
        engine: String,
        #[arg(long)]
        json: bool,
    },
    /// Run one seed and tell the causal story of its first violation.
    Explain {
        scenario: String,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        sched: SchedArgs,
        /// Explain the first violation of this oracle instead of the first of all.
        #[arg(long)]
        oracle: Option<String>,
    },
    /// Run one seed and draw a window of it as a self-contained HTML page.
    Timeline {
        scenario: String,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        sched: SchedArgs,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        /// Window start in simulated seconds (default: 10 s before the first violation, or 0).
        #[arg(long)]
        from_s: Option<f64>,
        /// Window end in simulated seconds (default: 10 s after the first violation, or 60).
        #[arg(long)]
        to_s: Option<f64>,
        /// Mark the first violation of this oracle instead of the first of all.
        #[arg(long)]
        oracle: Option<String>,
    },
    /// List the builtin scenarios, programs and oracles.
    List,
    /// Print a scenario with every default and profile expanded, after `--set`.
    Show {
        scenario: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Run a range of seeds in isolated worker processes.
    Sweep {
        scenario: String,
        /// Half-open seed range, `A..B`.
        #[arg(long)]
        seeds: String,
        /// Worker processes (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only shard K of N (`K/N`), a contiguous part of the range.
        #[arg(long)]
        shard: Option<String>,
        /// Write one JSON line per seed, in seed order.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        sched: SchedArgs,
        /// Stop scheduling seeds after the first failure.
        #[arg(long)]
        stop_on_first: bool,
        /// Run each seed twice and fail with exit 5 on any difference.
        #[arg(long)]
        check_determinism: bool,
        /// Wall-clock seconds one seed may take before it counts as hung.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
        /// Swarm mode: each seed also draws its fault kinds and their strength.
        #[arg(long)]
        swarm: bool,
    },
    /// Run a grid of parameters, each cell a seed sweep; write CSV and one SVG per metric.
    Experiment {
        /// The experiment file (TOML; docs/experiment-format.md).
        file: std::path::PathBuf,
        /// Output directory (default: experiments/<name>/).
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
        /// Worker processes (default: the file's `jobs`, else the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run nothing: redraw results.csv and the plots from the output
        /// directory's seeds.jsonl (after a change of labels or plots).
        #[arg(long)]
        replot: bool,
    },
    /// Run the model on a real directory with real processes.
    Real {
        #[command(subcommand)]
        command: RealCommand,
    },
    /// Minimise a failing run while the same oracle fails by the same mechanism.
    Shrink {
        scenario: String,
        #[arg(long)]
        seed: u64,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        sched: SchedArgs,
        /// Where to write the smallest scenario found (default: NAME-seed-N-shrunk.toml).
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        /// At most this many runs.
        #[arg(long, default_value_t = 60)]
        runs_max: u32,
    },
    /// Combine sweep outputs (shards) into one, in seed order.
    Merge {
        files: Vec<std::path::PathBuf>,
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Internal: run one program on the real OS (how `RealOs::spawn` re-executes mmsim).
    #[command(hide = true)]
    Exec {
        /// The Mailman prefix: every path the program uses is relative to it.
        #[arg(long)]
        root: std::path::PathBuf,
        /// The host name the program reports (claim files embed it).
        #[arg(long)]
        host: String,
        program: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Internal: a sweep worker; reads seeds on stdin, writes JSON lines.
    #[command(hide = true)]
    Worker {
        scenario: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long)]
        check_determinism: bool,
        #[arg(long)]
        swarm: bool,
    },
}

/// `--sched KIND [--depth D]`: sugar for `--set sched.kind=KIND --set sched.depth=D`,
/// so the scheduler is part of the scenario and replays with the seed.
#[derive(clap::Args, Clone, Default)]
struct SchedArgs {
    /// The scheduler at the sim gate: `default` (latency-driven) or `pct`.
    #[arg(long, value_name = "KIND")]
    sched: Option<String>,
    /// pct's number of priority change points (0..=100; only with `--sched pct`).
    #[arg(long, value_name = "D")]
    depth: Option<u32>,
    /// The engine: `events` (default, nanosecond time) or `turmoil` (the 1 ms reference).
    #[arg(long, value_name = "ENGINE")]
    engine: Option<String>,
}

impl SchedArgs {
    /// The `--set`s this sugar stands for.
    fn sets(&self) -> Vec<String> {
        let mut sets = Vec::new();
        if let Some(kind) = &self.sched {
            sets.push(format!("sched.kind={kind}"));
        }
        if let Some(depth) = self.depth {
            sets.push(format!("sched.depth={depth}"));
        }
        if let Some(engine) = &self.engine {
            sets.push(format!("network.engine={engine}"));
        }
        sets
    }

    /// The same flags, for a replay command.
    fn replay(&self) -> String {
        let mut s = String::new();
        if let Some(kind) = &self.sched {
            s.push_str(&format!(" --sched {kind}"));
        }
        if let Some(depth) = self.depth {
            s.push_str(&format!(" --depth {depth}"));
        }
        if let Some(engine) = &self.engine {
            s.push_str(&format!(" --engine {engine}"));
        }
        s
    }
}

/// Loads a scenario with the caller's `--set`s and the scheduler sugar; returns
/// it with every `--set` it took (for sweep workers). `--depth` needs pct, from
/// `--sched pct` or from the scenario itself.
fn load_sched(name: &str, sets: &[String], sched: &SchedArgs) -> Result<(scenario::Scenario, Vec<String>), String> {
    if sched.depth.is_some() && sched.sched.as_deref() != Some("pct") {
        let mut without_depth = sets.to_vec();
        without_depth.extend(SchedArgs { depth: None, ..sched.clone() }.sets());
        let (s, _) = scenario::load(name, &without_depth).map_err(|e| e.to_string())?;
        if s.sched.kind != sim::SchedKind::Pct {
            return Err("--depth: only with --sched pct (or a scenario whose sched.kind is \"pct\")".into());
        }
    }
    let mut all = sets.to_vec();
    all.extend(sched.sets());
    let (s, _) = scenario::load(name, &all).map_err(|e| e.to_string())?;
    Ok((s, all))
}

/// The replay arguments of a run: its `--set`s, the scheduler sugar, `--swarm`.
fn replay_args(sets: &[String], sched: &SchedArgs, swarm: bool) -> String {
    let mut args: String = sets.iter().map(|s| format!(" --set {s}")).collect();
    args.push_str(&sched.replay());
    if swarm {
        args.push_str(" --swarm");
    }
    args
}

#[derive(Subcommand)]
enum RealCommand {
    /// N processes contend for one Mailman LockFile in DIR; reports overlaps.
    LockStress {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 4)]
        processes: u32,
        #[arg(long, default_value_t = 200)]
        rounds: u32,
        /// mailman21, mailman20, flufl or open2.
        #[arg(long, default_value = "mailman21")]
        variant: String,
        /// The retry sleep's random spread (Mailman: 2000 ms).
        #[arg(long, default_value_t = 2000)]
        retry_ms_spread: u64,
        /// How long each critical section lasts.
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
        /// The lock lifetime (Mailman's default: 15 s).
        #[arg(long, default_value_t = 15.0)]
        lifetime_s: f64,
        #[arg(long)]
        json: bool,
    },
    /// N processes number posts of one list as IncomingRunner does; reports lost updates.
    ListStress {
        #[command(flatten)]
        params: scenarios::real::ListStress,
        #[arg(long)]
        json: bool,
    },
    /// Seed DIR with corrupt Mailman files and report what the model does with each.
    Corrupt {
        /// An empty, writable directory (a local disk, tmpfs or an NFS mount).
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn bad_input(msg: &str) -> ExitCode {
    eprintln!("mmsim: {}", scenario::escape_controls(msg));
    ExitCode::from(exit::BAD_INPUT as u8)
}

fn seed_from(flag: Option<u64>) -> Result<u64, String> {
    if let Some(s) = flag {
        return Ok(s);
    }
    match std::env::var("MMSIM_SEED") {
        Ok(v) => v.trim().parse().map_err(|_| format!("MMSIM_SEED={v:?}: expected an unsigned 64-bit integer")),
        Err(_) => Ok(1),
    }
}

/// Loads a scenario and its seed, or the exit code of a bad input.
fn load_seeded(
    name: &str,
    seed: Option<u64>,
    sets: &[String],
    sched: &SchedArgs,
) -> Result<(scenario::Scenario, u64), ExitCode> {
    let seed = seed_from(seed).map_err(|e| bad_input(&e))?;
    let (scenario, _) = load_sched(name, sets, sched).map_err(|e| bad_input(&e))?;
    Ok((scenario, seed))
}

/// Runs a seed; `None` (after one line on stderr) when the run panicked.
fn run_caught(scenario: &scenario::Scenario, seed: u64, replay_args: &str) -> Option<scenarios::RunOutput> {
    let out = std::panic::catch_unwind(|| scenarios::run_full(scenario, seed, replay_args));
    if out.is_err() {
        eprintln!("mmsim: internal panic while running {} --seed {seed}", scenario.name);
    }
    out.ok()
}

/// What `mmsim real lock-stress` and `list-stress` check before any process
/// starts; gives the executable the workers re-execute.
fn real_stress_exe(dir: &std::path::Path, processes: u32, rounds: u32) -> Result<std::path::PathBuf, ExitCode> {
    if processes == 0 || rounds == 0 {
        return Err(bad_input("--processes and --rounds: expected at least 1"));
    }
    if !dir.is_dir() {
        return Err(bad_input(&format!("--dir {}: not a directory", dir.display())));
    }
    std::env::current_exe().map_err(|e| bad_input(&format!("cannot find this executable: {}", e.kind())))
}

/// A real stress run's exit: 1 when it saw the violation, 6 when a worker
/// failed, else 0.
fn real_stress_exit(violated: bool, failed_processes: u32) -> ExitCode {
    let code = if violated {
        exit::SAFETY
    } else if failed_processes > 0 {
        exit::PANIC
    } else {
        exit::PASS
    };
    ExitCode::from(code as u8)
}

fn main() -> ExitCode {
    // Die quietly when stdout is a closed pipe (`mmsim run … | head`), as CLI tools do.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            return bad_input(&format!(
                "{first} (see `mmsim --help`; commands: run, explain, timeline, sweep, experiment, merge, list)"
            ));
        }
    };
    match cli.command {
        Command::Show { scenario: name, sets } => match scenario::load(&name, &sets) {
            Ok((_, canonical)) => {
                print!("{canonical}");
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(&e.to_string()),
        },
        Command::Bench { scenario: name, seeds, scale, sets, real, dir, real_messages, engine, json } => {
            let mut engines = Vec::new();
            for e in engine.split(',') {
                match e.trim() {
                    "events" => engines.push(sim::EngineKind::Events),
                    "turmoil" => engines.push(sim::EngineKind::Turmoil),
                    other => {
                        return bad_input(&format!("--engine {other:?}: expected events, turmoil or events,turmoil"))
                    }
                }
            }
            let (scenario, _) = match scenario::load(&name, &sets) {
                Ok(s) => s,
                Err(e) => return bad_input(&e.to_string()),
            };
            if seeds == 0 {
                return bad_input("--seeds: expected at least 1");
            }
            let scales = match scenarios::bench::parse_scales(&scale) {
                Ok(s) => s,
                Err(e) => return bad_input(&e.to_string()),
            };
            for &k in &scales {
                let scaled = match scenarios::bench::scale_sets(&scenario, k) {
                    Ok((scaled, _)) => scaled,
                    Err(e) => return bad_input(&e.to_string()),
                };
                // Each scale's scenario must load too (a sender's --count has a bound).
                if let Err(e) = scenario::load(&name, &[sets.clone(), scaled].concat()) {
                    return bad_input(&format!("--scale {k}: {e}"));
                }
            }
            let real_dir = match (real, dir) {
                (false, None) => None,
                (false, Some(_)) => return bad_input("--dir: only with --real"),
                (true, None) => return bad_input("--real: expected --dir DIR"),
                (true, Some(d)) if !d.is_dir() => return bad_input(&format!("--dir {}: not a directory", d.display())),
                (true, Some(d)) => Some(d),
            };
            let exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => return bad_input(&format!("cannot find this executable to re-run it: {}", e.kind())),
            };
            let opts = scenarios::bench::Options {
                exe,
                scenario,
                scenario_arg: name,
                sets,
                seeds: (1..=seeds).collect(),
                scales,
                engines,
                real_dir,
                real_messages,
            };
            let report = match scenarios::bench::bench(&opts, &mut |line| eprintln!("{line}")) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mmsim: bench: {e}");
                    return ExitCode::from(exit::PANIC as u8);
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            } else {
                print!("{}", report.render());
            }
            ExitCode::SUCCESS
        }
        Command::List => {
            println!("scenarios:");
            for (name, text) in scenario::BUILTIN {
                let Ok((s, _)) = scenario::parse(text, &[]) else { continue };
                println!("  {name:<32} {}", s.description);
                for v in &s.variants {
                    println!("  {:<32} {}", format!("{name}/{}", v.name), v.description);
                }
            }
            println!("programs:");
            for p in scenarios::programs::programs() {
                for line in scenarios::programs::describe(p) {
                    println!("{line}");
                }
            }
            println!("marks:");
            for scenarios::marks::Mark { name, description, .. } in scenarios::marks::MARKS {
                println!("  {name:<24} {description}");
            }
            println!("oracles:");
            for scenarios::oracle::OracleSpec { name, description, .. } in scenarios::oracle::ORACLES {
                println!("  {name:<24} {description}");
            }
            ExitCode::SUCCESS
        }
        Command::Sweep {
            scenario: name,
            seeds,
            jobs,
            shard,
            out,
            sets,
            sched,
            stop_on_first,
            check_determinism,
            timeout_s,
            swarm,
        } => {
            let range = match scenarios::sweep::parse_seed_range(&seeds) {
                Ok(r) => r,
                Err(e) => return bad_input(&e.to_string()),
            };
            let shard = match shard.as_deref().map(scenarios::sweep::parse_shard).transpose() {
                Ok(s) => s,
                Err(e) => return bad_input(&e.to_string()),
            };
            let (scenario, all_sets) = match load_sched(&name, &sets, &sched) {
                Ok(v) => v,
                Err(e) => return bad_input(&e),
            };
            if jobs == Some(0) {
                return bad_input("--jobs: expected at least 1");
            }
            if let Some(path) = &out {
                if let Err(e) = std::fs::File::create(path) {
                    return bad_input(&format!("--out {}: cannot write: {}", path.display(), e.kind()));
                }
            }
            let exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => return bad_input(&format!("cannot find this executable to re-run it: {}", e.kind())),
            };
            let mut worker_args = vec![name.clone()];
            for s in &all_sets {
                worker_args.push("--set".into());
                worker_args.push(s.clone());
            }
            if check_determinism {
                worker_args.push("--check-determinism".into());
            }
            if swarm {
                worker_args.push("--swarm".into());
            }
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            let opts = scenarios::sweep::Options {
                exe,
                worker_args,
                seeds: scenarios::sweep::shard_seeds(range.0, range.1, shard),
                jobs,
                out: out.clone(),
                stop_on_first,
                timeout: std::time::Duration::from_secs(timeout_s.max(1)),
                progress: true,
                sched: scenario.sched.label(),
            };
            let lines = match scenarios::sweep::sweep(&opts) {
                Ok(lines) => lines,
                Err(e) => return bad_input(&format!("sweep: {}", e.kind())),
            };
            let replay_args = replay_args(&sets, &sched, swarm);
            eprint!("{}", scenarios::sweep::summary(&lines, &name, &replay_args));
            let worst = lines.iter().map(|l| l.exit_code).max().unwrap_or(0);
            ExitCode::from(worst as u8)
        }
        Command::Experiment { file, out, jobs, replot } => {
            let exp = match scenarios::experiment::Experiment::load(&file, jobs) {
                Ok(e) => e,
                Err(e) => return bad_input(&e.to_string()),
            };
            let dir = out.unwrap_or_else(|| std::path::Path::new("experiments").join(&exp.file.name));
            if replot {
                let results = match scenarios::experiment::read_results(&exp, &dir) {
                    Ok(r) => r,
                    Err(e) => return bad_input(&e.to_string()),
                };
                let outputs = scenarios::experiment::Outputs { dir: dir.clone() };
                return match scenarios::experiment::write_outputs(&exp, &results, &outputs) {
                    Ok(files) => {
                        print!("{}", scenarios::experiment::summary(&exp, &results));
                        for f in files {
                            println!("wrote {}", f.display());
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => bad_input(&format!("--out {}: cannot write: {}", dir.display(), e.kind())),
                };
            }
            let outputs = match scenarios::experiment::Outputs::prepare(&dir) {
                Ok(o) => o,
                Err(e) => return bad_input(&e.to_string()),
            };
            let exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => return bad_input(&format!("cannot find this executable to re-run it: {}", e.kind())),
            };
            eprintln!(
                "{}: {} cells x {} seeds, {} jobs, into {}",
                exp.file.name,
                exp.cells.len(),
                exp.file.seeds,
                exp.jobs,
                dir.display()
            );
            let results = match scenarios::experiment::run(&exp, &exe, &outputs, &mut |line| eprintln!("{line}")) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mmsim: experiment: {e}");
                    return ExitCode::from(exit::PANIC as u8);
                }
            };
            match scenarios::experiment::write_outputs(&exp, &results, &outputs) {
                Ok(files) => {
                    print!("{}", scenarios::experiment::summary(&exp, &results));
                    for f in files {
                        println!("wrote {}", f.display());
                    }
                }
                Err(e) => {
                    eprintln!("mmsim: experiment: writing {}: {e}", dir.display());
                    return ExitCode::from(exit::PANIC as u8);
                }
            }
            // Violations are the experiment's data; only a crashed seed makes it fail.
            let crashed = results.iter().flat_map(|r| &r.lines).any(|l| l.exit_code == exit::PANIC);
            ExitCode::from(if crashed { exit::PANIC as u8 } else { 0 })
        }
        Command::Shrink { scenario: name, seed, sets, sched, out, runs_max } => {
            let (scenario, _) = match load_sched(&name, &sets, &sched) {
                Ok(s) => s,
                Err(e) => return bad_input(&e),
            };
            let path = out.unwrap_or_else(|| format!("{}-seed-{seed}-shrunk.toml", name.replace('/', "_")).into());
            if let Err(e) = std::fs::File::create(&path) {
                return bad_input(&format!("--out {}: cannot write: {}", path.display(), e.kind()));
            }
            let Some(shrunk) =
                scenarios::shrink::shrink(&scenario, seed, runs_max.max(2), |line| eprintln!("shrink: {line}"))
            else {
                let _ = std::fs::remove_file(&path);
                println!("{name} --seed {seed} does not fail: nothing to shrink");
                return ExitCode::SUCCESS;
            };
            let text = toml::to_string(&shrunk.scenario).expect("scenario serialises");
            if let Err(e) = std::fs::write(&path, &text) {
                return bad_input(&format!("--out {}: {}", path.display(), e.kind()));
            }
            println!("{text}");
            println!("# signature: {}", shrunk.signature);
            println!(
                "# {} runs; kept: {}",
                shrunk.runs,
                if shrunk.steps.is_empty() { "nothing".into() } else { shrunk.steps.join("; ") }
            );
            println!("# replay: mmsim run {} --seed {seed}", path.display());
            ExitCode::from(shrunk.exit_code as u8)
        }
        Command::Merge { files, out } => {
            if files.is_empty() {
                return bad_input("merge: expected at least one results file");
            }
            let lines = match scenarios::sweep::merge(&files) {
                Ok(lines) => lines,
                Err(e) => return bad_input(&e.to_string()),
            };
            let mut text = String::new();
            for l in &lines {
                text.push_str(&serde_json::to_string(l).expect("line serialises"));
                text.push('\n');
            }
            match &out {
                Some(path) => {
                    if let Err(e) = std::fs::write(path, text) {
                        return bad_input(&format!("--out {}: {}", path.display(), e.kind()));
                    }
                }
                None => print!("{text}"),
            }
            eprint!("{}", scenarios::sweep::summary(&lines, "merged", ""));
            ExitCode::from(lines.iter().map(|l| l.exit_code).max().unwrap_or(0) as u8)
        }
        Command::Real { command: RealCommand::ListStress { params, json } } => {
            let exe = match real_stress_exe(&params.dir, params.processes, params.rounds) {
                Ok(exe) => exe,
                Err(code) => return code,
            };
            // The programs' own declarations check what they will be given.
            if let Err(e) = scenarios::install::plan(&scenarios::real::install_args(&params)) {
                return bad_input(&format!("install {e}"));
            }
            if let Err(e) = scenarios::list_worker::plan(&scenarios::real::list_worker_args(&params)) {
                return bad_input(&format!("list-worker {e}"));
            }
            let dir = params.dir.display().to_string();
            let report = match scenarios::real::list_stress(&exe, params) {
                Ok(r) => r,
                Err(e) => return bad_input(&format!("list-stress --dir {dir}: {e}")),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            } else {
                print!("{}", scenarios::real::render_list_stress(&report));
            }
            real_stress_exit(report.log.lost_updates > 0, report.failed_processes)
        }
        Command::Real {
            command:
                RealCommand::LockStress { dir, processes, rounds, variant, retry_ms_spread, hold_ms, lifetime_s, json },
        } => {
            let exe = match real_stress_exe(&dir, processes, rounds) {
                Ok(exe) => exe,
                Err(code) => return code,
            };
            let params =
                scenarios::real::LockStress { dir, processes, rounds, variant, retry_ms_spread, hold_ms, lifetime_s };
            // The workers' own declaration checks what they will be given (--variant, --lifetime-s, …).
            if let Err(e) = scenarios::lock_worker::plan(&scenarios::real::worker_args(&params)) {
                return bad_input(&format!("lock-worker {e}"));
            }
            let report = match scenarios::real::lock_stress(&exe, &params) {
                Ok(r) => r,
                Err(e) => return bad_input(&format!("lock-stress: {}", e.kind())),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            } else {
                println!("dir           {}", report.dir);
                println!(
                    "processes     {} x {} rounds ({}), {} failed",
                    report.processes, report.rounds, report.variant, report.failed_processes
                );
                println!("acquisitions  {}", report.acquisitions);
                println!("waits         {}", report.waits);
                println!("breaks        {}", report.breaks);
                println!(
                    "overlaps      {}{}",
                    report.overlaps,
                    report.first_overlap.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default()
                );
                println!("wall          {:.2} s", report.wall_s);
            }
            real_stress_exit(report.overlaps > 0, report.failed_processes)
        }
        Command::Real { command: RealCommand::Corrupt { dir, json } } => {
            if let Err(e) = scenarios::corrupt::check_dir(&dir) {
                return bad_input(&e.to_string());
            }
            let host = scenarios::real::hostname();
            let report = match std::panic::catch_unwind(|| scenarios::corrupt::corrupt(&dir, &host)) {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return bad_input(&format!("corrupt: seeding {}: {}", dir.display(), e.kind())),
                Err(_) => {
                    eprintln!("mmsim: internal panic in real corrupt");
                    return ExitCode::from(exit::PANIC as u8);
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            } else {
                print!("{}", report.render());
            }
            let code = if report.as_release() { exit::PASS } else { exit::SAFETY };
            ExitCode::from(code as u8)
        }
        Command::Exec { root, host, program, args } => {
            if !scenarios::programs::is_program(&program) {
                let known: Vec<&str> = scenarios::programs::programs().map(|p| p.name).collect();
                return bad_input(&format!("exec: unknown program {program:?}; expected one of: {}", known.join(", ")));
            }
            let exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => return bad_input(&format!("cannot find this executable: {}", e.kind())),
            };
            let spawn = model::SpawnConfig {
                exe,
                args_prefix: vec![
                    "exec".into(),
                    "--root".into(),
                    root.display().to_string(),
                    "--host".into(),
                    host.clone(),
                ],
            };
            let os = model::RealOs::new(root, host).with_spawn(spawn);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
            let local = tokio::task::LocalSet::new();
            let code = local.block_on(&runtime, scenarios::programs::run(os, &program, &args));
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Command::Worker { scenario: name, sets, check_determinism, swarm } => {
            let (scenario, _) = match scenario::load(&name, &sets) {
                Ok(s) => s,
                Err(e) => return bad_input(&e.to_string()),
            };
            let stdin = std::io::stdin();
            let mut stdout = std::io::stdout();
            let mut line = String::new();
            while {
                line.clear();
                std::io::BufRead::read_line(&mut stdin.lock(), &mut line).unwrap_or(0) > 0
            } {
                let Ok(seed) = line.trim().parse::<u64>() else { continue };
                // Test hook for the sweep's own crash handling (never set by mmsim itself).
                if std::env::var("MMSIM_WORKER_ABORT_ON_SEED").ok().and_then(|v| v.parse::<u64>().ok()) == Some(seed) {
                    std::process::abort();
                }
                let mut seeded = scenario.clone();
                if swarm {
                    scenarios::swarm::apply(&mut seeded, seed);
                }
                let scenario = &seeded;
                let result = std::panic::catch_unwind(|| {
                    let retention =
                        if check_determinism { scenarios::FOR_ORACLES_AND_DIVERGENCE } else { scenarios::FOR_ORACLES };
                    let mut first = scenarios::run_kept(scenario, seed, "", retention);
                    if check_determinism {
                        let second = scenarios::run_kept(scenario, seed, "", retention);
                        if let Some(i) = sim::first_divergence(first.trace.line_hashes(), second.trace.line_hashes()) {
                            first.report.set_nondeterminism(i);
                        }
                    }
                    scenarios::sweep::SeedLine::from_report(&first.report)
                });
                let result =
                    result.unwrap_or_else(|_| scenarios::sweep::SeedLine::crashed(seed, "internal panic".into()));
                let _ = writeln!(stdout, "{}", serde_json::to_string(&result).expect("line serialises"));
                let _ = stdout.flush();
            }
            ExitCode::SUCCESS
        }
        Command::Explain { scenario: name, seed, sets, sched, oracle } => {
            let (scenario, seed) = match load_seeded(&name, seed, &sets, &sched) {
                Ok(v) => v,
                Err(code) => return code,
            };
            if let Some(o) = oracle.as_deref().filter(|o| !scenarios::oracle::is_oracle(o)) {
                return bad_input(&format!("--oracle {o:?}: expected one of: {}", scenarios::oracle::names()));
            }
            let replay_args = replay_args(&sets, &sched, false);
            let Some(out) = run_caught(&scenario, seed, &replay_args) else { return ExitCode::from(exit::PANIC as u8) };
            for line in scenarios::explain::explain(out.trace.events(), &out.report, oracle.as_deref()) {
                println!("{line}");
            }
            if out.report.exit_code != exit::PASS {
                println!("replay: {}", out.report.replay);
            }
            ExitCode::from(out.report.exit_code as u8)
        }
        Command::Timeline { scenario: name, seed, sets, sched, out: path, from_s, to_s, oracle } => {
            let (scenario, seed) = match load_seeded(&name, seed, &sets, &sched) {
                Ok(v) => v,
                Err(code) => return code,
            };
            if let Some(o) = oracle.as_deref().filter(|o| !scenarios::oracle::is_oracle(o)) {
                return bad_input(&format!("--oracle {o:?}: expected one of: {}", scenarios::oracle::names()));
            }
            for (flag, v) in [("--from-s", from_s), ("--to-s", to_s)] {
                if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    return bad_input(&format!("{flag}: expected a non-negative number of seconds"));
                }
            }
            if let (Some(a), Some(b)) = (from_s, to_s) {
                if b <= a {
                    return bad_input("--to-s: expected a time after --from-s");
                }
            }
            if let Err(e) = std::fs::File::create(&path) {
                return bad_input(&format!("--out {}: cannot write: {}", path.display(), e.kind()));
            }
            let replay_args = replay_args(&sets, &sched, false);
            let Some(out) = run_caught(&scenario, seed, &replay_args) else { return ExitCode::from(exit::PANIC as u8) };
            let events = out.trace.events();
            let only = oracle.as_deref();
            let (a, b) = scenarios::timeline::window(&out.report, events, from_s, to_s, only);
            let html = scenarios::timeline::render(events, &out.report, a, b, only);
            if let Err(e) = std::fs::write(&path, html) {
                return bad_input(&format!("--out {}: {}", path.display(), e.kind()));
            }
            println!("wrote {} (t={a:.3}s..{b:.3}s; verdict: {})", path.display(), out.report.verdict);
            ExitCode::from(out.report.exit_code as u8)
        }
        Command::Run {
            scenario: name,
            seed,
            sets,
            sched,
            json,
            trace,
            trace_format,
            check_determinism,
            swarm,
            trace_filter,
            dump_at,
            logs,
        } => {
            let seed = match seed_from(seed) {
                Ok(s) => s,
                Err(e) => return bad_input(&e),
            };
            let (mut scenario, _) = match load_sched(&name, &sets, &sched) {
                Ok(s) => s,
                Err(e) => return bad_input(&e),
            };
            let drawn = if swarm { scenarios::swarm::apply(&mut scenario, seed) } else { Vec::new() };
            let filter = match trace_filter.as_deref().map(scenarios::trace_filter::TraceFilter::parse).transpose() {
                Ok(f) => f,
                Err(e) => return bad_input(&e),
            };
            if filter.is_some() && trace.is_none() {
                return bad_input("--trace-filter: needs --trace FILE");
            }
            if trace_format != scenarios::chrome_trace::TraceFormat::Jsonl && trace.is_none() {
                return bad_input("--trace-format: needs --trace FILE");
            }
            if let Some(dir) = &logs {
                if let Err(e) = scenarios::logs::prepare(dir) {
                    return bad_input(&e);
                }
            }
            if let Some(event) = dump_at {
                let dumped = std::panic::catch_unwind(|| scenarios::dump::dump_at(&scenario, seed, event));
                return match dumped {
                    Ok(Ok(text)) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Ok(Err(e)) => bad_input(&format!("--dump-at {event}: {e}")),
                    Err(_) => {
                        eprintln!("mmsim: internal panic while running {} --seed {seed}", scenario.name);
                        ExitCode::from(exit::PANIC as u8)
                    }
                };
            }
            if let Some(path) = &trace {
                if let Err(e) = std::fs::File::create(path) {
                    return bad_input(&format!("--trace {}: cannot write: {}", path.display(), e.kind()));
                }
            }
            let replay_args = replay_args(&sets, &sched, swarm);
            // The tools that show events keep them all; a run that only reports
            // keeps what the oracles read (the report is the same either way).
            let retention = if trace.is_some() || logs.is_some() || check_determinism {
                sim::Retention::ALL
            } else {
                scenarios::FOR_ORACLES
            };
            let outcome = std::panic::catch_unwind(|| {
                let first = scenarios::run_kept(&scenario, seed, &replay_args, retention);
                let second = check_determinism.then(|| scenarios::run_kept(&scenario, seed, &replay_args, retention));
                (first, second)
            });
            let (first, second) = match outcome {
                Ok(v) => v,
                Err(_) => {
                    eprintln!("mmsim: internal panic while running {} --seed {seed}", scenario.name);
                    return ExitCode::from(exit::PANIC as u8);
                }
            };
            if let Some(dir) = &logs {
                let hosts = scenario.world_config(seed).hosts;
                if let Err(e) = scenarios::logs::write(dir, first.trace.events(), &hosts) {
                    return bad_input(&format!("--logs {}: {}", dir.display(), e.kind()));
                }
            }
            let mut report: Report = first.report;
            report.swarm = drawn;
            if let Some(second) = second {
                let a = first.trace.line_hashes();
                let b = second.trace.line_hashes();
                if let Some(i) = sim::first_divergence(a, b) {
                    let line =
                        |t: &sim::Trace| t.events().get(i).map(|e| e.line()).unwrap_or_else(|| "(end of trace)".into());
                    eprintln!("mmsim: nondeterminism: the two runs diverge at event {i}");
                    eprintln!("  first:  {}", line(&first.trace));
                    eprintln!("  second: {}", line(&second.trace));
                    report.set_nondeterminism(i);
                }
            }
            // After the determinism check, so that a Chrome trace's verdict is the report's.
            if let Some(path) = &trace {
                let written = std::fs::File::create(path).and_then(|f| {
                    let mut w = std::io::BufWriter::new(f);
                    let events = first.trace.events();
                    let kept = filter.as_ref().map(|f| f.select(events));
                    let keep = |e: &sim::Event| kept.as_ref().is_none_or(|k| k[e.seq as usize]);
                    match trace_format {
                        scenarios::chrome_trace::TraceFormat::Jsonl => first.trace.write_jsonl(&mut w, &keep)?,
                        scenarios::chrome_trace::TraceFormat::Chrome => {
                            scenarios::chrome_trace::write(&mut w, events, &report, &keep)?
                        }
                    }
                    w.flush()
                });
                if let Err(e) = written {
                    return bad_input(&format!("--trace {}: {}", path.display(), e.kind()));
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            } else {
                print!("{}", report.render());
            }
            ExitCode::from(report.exit_code as u8)
        }
    }
}
