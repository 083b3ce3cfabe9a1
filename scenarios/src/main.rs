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
        /// Override any scenario key: `--set network.latency_ms=2`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write every event as JSON lines to FILE.
        #[arg(long, value_name = "FILE")]
        trace: Option<std::path::PathBuf>,
        /// Run twice in this process and compare the traces event by event.
        #[arg(long)]
        check_determinism: bool,
    },
    /// List the builtin scenarios, programs and oracles.
    List,
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
        /// Stop scheduling seeds after the first failure.
        #[arg(long)]
        stop_on_first: bool,
        /// Run each seed twice and fail with exit 5 on any difference.
        #[arg(long)]
        check_determinism: bool,
        /// Wall-clock seconds one seed may take before it counts as hung.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
    },
    /// Combine sweep outputs (shards) into one, in seed order.
    Merge {
        files: Vec<std::path::PathBuf>,
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Internal: a sweep worker; reads seeds on stdin, writes JSON lines.
    #[command(hide = true)]
    Worker {
        scenario: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long)]
        check_determinism: bool,
    },
}

fn bad_input(msg: &str) -> ExitCode {
    eprintln!("mmsim: {msg}");
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

fn main() -> ExitCode {
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
            return bad_input(&format!("{first} (see `mmsim --help`; commands: run, sweep, merge, list)"));
        }
    };
    match cli.command {
        Command::List => {
            println!("scenarios:");
            for (name, text) in scenario::BUILTIN {
                let description = scenario::parse(text, &[]).map(|(s, _)| s.description).unwrap_or_default();
                println!("  {name:<24} {description}");
            }
            println!("programs:");
            for (name, description) in scenarios::programs::PROGRAMS {
                println!("  {name:<24} {description}");
            }
            println!("marks:");
            for (name, description) in scenarios::marks::DESCRIPTIONS {
                println!("  {name:<24} {description}");
            }
            println!("oracles:");
            for (name, description) in scenarios::oracle::DESCRIPTIONS {
                println!("  {name:<24} {description}");
            }
            ExitCode::SUCCESS
        }
        Command::Sweep { scenario: name, seeds, jobs, shard, out, sets, stop_on_first, check_determinism, timeout_s } => {
            let range = match scenarios::sweep::parse_seed_range(&seeds) {
                Ok(r) => r,
                Err(e) => return bad_input(&e.to_string()),
            };
            let shard = match shard.as_deref().map(scenarios::sweep::parse_shard).transpose() {
                Ok(s) => s,
                Err(e) => return bad_input(&e.to_string()),
            };
            if let Err(e) = scenario::load(&name, &sets) {
                return bad_input(&e.to_string());
            }
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
            for s in &sets {
                worker_args.push("--set".into());
                worker_args.push(s.clone());
            }
            if check_determinism {
                worker_args.push("--check-determinism".into());
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
            };
            let lines = match scenarios::sweep::sweep(&opts) {
                Ok(lines) => lines,
                Err(e) => return bad_input(&format!("sweep: {}", e.kind())),
            };
            let replay_args: String = sets.iter().map(|s| format!(" --set {s}")).collect();
            eprint!("{}", scenarios::sweep::summary(&lines, &name, &replay_args));
            let worst = lines.iter().map(|l| l.exit_code).max().unwrap_or(0);
            ExitCode::from(worst as u8)
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
        Command::Worker { scenario: name, sets, check_determinism } => {
            let (scenario, _) = match scenario::load(&name, &sets) {
                Ok(s) => s,
                Err(e) => return bad_input(&e.to_string()),
            };
            let stdin = std::io::stdin();
            let mut stdout = std::io::stdout();
            let mut line = String::new();
            while { line.clear(); std::io::BufRead::read_line(&mut stdin.lock(), &mut line).unwrap_or(0) > 0 } {
                let Ok(seed) = line.trim().parse::<u64>() else { continue };
                // Test hook for the sweep's own crash handling (never set by mmsim itself).
                if std::env::var("MMSIM_WORKER_ABORT_ON_SEED").ok().and_then(|v| v.parse::<u64>().ok()) == Some(seed) {
                    std::process::abort();
                }
                let result = std::panic::catch_unwind(|| {
                    let first = scenarios::run_full(&scenario, seed, "");
                    let mut result = scenarios::sweep::SeedLine::from_report(&first.report);
                    if check_determinism {
                        let second = scenarios::run_full(&scenario, seed, "");
                        if let Some(i) = sim::first_divergence(first.trace.line_hashes(), second.trace.line_hashes()) {
                            result.exit_code = exit::NONDETERMINISM;
                            result.verdict = format!("nondeterminism at event {i}");
                        }
                    }
                    result
                });
                let result = result.unwrap_or_else(|_| scenarios::sweep::SeedLine::crashed(seed, "internal panic".into()));
                let _ = writeln!(stdout, "{}", serde_json::to_string(&result).expect("line serialises"));
                let _ = stdout.flush();
            }
            ExitCode::SUCCESS
        }
        Command::Run { scenario: name, seed, sets, json, trace, check_determinism } => {
            let seed = match seed_from(seed) {
                Ok(s) => s,
                Err(e) => return bad_input(&e),
            };
            let (scenario, _) = match scenario::load(&name, &sets) {
                Ok(s) => s,
                Err(e) => return bad_input(&e.to_string()),
            };
            if let Some(path) = &trace {
                if let Err(e) = std::fs::File::create(path) {
                    return bad_input(&format!("--trace {}: cannot write: {}", path.display(), e.kind()));
                }
            }
            let replay_args: String = sets.iter().map(|s| format!(" --set {s}")).collect();
            let outcome = std::panic::catch_unwind(|| {
                let first = scenarios::run_full(&scenario, seed, &replay_args);
                let second = check_determinism.then(|| scenarios::run_full(&scenario, seed, &replay_args));
                (first, second)
            });
            let (first, second) = match outcome {
                Ok(v) => v,
                Err(_) => {
                    eprintln!("mmsim: internal panic while running {} --seed {seed}", scenario.name);
                    return ExitCode::from(exit::PANIC as u8);
                }
            };
            if let Some(path) = &trace {
                let written = std::fs::File::create(path).and_then(|f| {
                    let mut w = std::io::BufWriter::new(f);
                    first.trace.write_jsonl(&mut w, &|_| true)?;
                    w.flush()
                });
                if let Err(e) = written {
                    return bad_input(&format!("--trace {}: {}", path.display(), e.kind()));
                }
            }
            let mut report: Report = first.report;
            if let Some(second) = second {
                let a = first.trace.line_hashes();
                let b = second.trace.line_hashes();
                if let Some(i) = sim::first_divergence(a, b) {
                    let line =
                        |t: &sim::Trace| t.events().get(i).map(|e| e.line()).unwrap_or_else(|| "(end of trace)".into());
                    eprintln!("mmsim: nondeterminism: the two runs diverge at event {i}");
                    eprintln!("  first:  {}", line(&first.trace));
                    eprintln!("  second: {}", line(&second.trace));
                    report.exit_code = exit::NONDETERMINISM;
                    report.verdict = format!("nondeterminism at event {i}");
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
