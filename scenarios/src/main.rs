//! `mmsim`: run scenarios under seeds and report verdicts.
//!
//! This file is the table of contents: it parses the command line
//! (`cli/flags.rs`) and hands each subcommand to the file named after it in
//! `cli/`. A subcommand that stops early returns a `CliError`, which carries
//! its exit code (README, "Exit codes").

use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::flags::{Cli, Command};
use cli::CliError;

fn main() -> ExitCode {
    // Die quietly when stdout is a closed pipe (`mmsim run … | head`), as CLI tools do.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return refused(e),
    };
    let ran = match cli.command {
        Command::Run(cmd) => cmd.run(),
        Command::Bench(cmd) => cmd.run(),
        Command::Explain(cmd) => cmd.run(),
        Command::Timeline(cmd) => cmd.run(),
        Command::List(cmd) => cmd.run(),
        Command::Show(cmd) => cmd.run(),
        Command::Sweep(cmd) => cmd.run(),
        Command::Experiment(cmd) => cmd.run(),
        Command::Real { command } => command.run(),
        Command::Shrink(cmd) => cmd.run(),
        Command::Merge(cmd) => cmd.run(),
        Command::Exec(cmd) => cmd.run(),
        Command::Worker(cmd) => cmd.run(),
    };
    ran.unwrap_or_else(CliError::report)
}

/// What clap refused: help and version are printed (exit 0); anything else
/// is bad input, in one line.
fn refused(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
    CliError::bad_input(format!(
        "{first} (see `mmsim --help`; commands: run, explain, timeline, sweep, experiment, merge, list)"
    ))
    .report()
}
