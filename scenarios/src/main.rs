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
            return bad_input(&format!("{first} (see `mmsim --help`; commands: run, list)"));
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
            println!("oracles:");
            for (name, description) in scenarios::oracle::DESCRIPTIONS {
                println!("  {name:<24} {description}");
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
