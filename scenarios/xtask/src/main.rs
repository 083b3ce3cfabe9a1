//! `cargo xtask test [ARGS…]`: the README's test command.
//!
//! The tests need one program that the Rust toolchain does not bring: headless
//! Chromium, which the timeline test renders a page in (a real browser, so the
//! test stays real). This task finds it, installs Debian's `chromium` with
//! apt-get when it is missing and apt-get is there to run, and then runs
//! `cargo test --workspace ARGS…`. Where it cannot install, it says so in one
//! line and fails before any test runs, so no test is skipped silently.
//! The convention is rust-analyzer's `xtask`; `.cargo/config.toml` holds the alias.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

/// The names Chromium goes by, in the order the timeline test looks for them.
const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some(other) => bail!("unknown task {other:?}; tasks: test"),
        None => bail!("no task given; tasks: test (cargo xtask test [cargo test arguments])"),
    }
}

fn test(cargo_args: &[String]) -> Result<ExitCode> {
    ensure_browser()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["test", "--workspace"])
        .args(cargo_args)
        // A RUSTFLAGS variable would replace .cargo/config.toml's --cfg tokio_unstable.
        .env_remove("RUSTFLAGS")
        .status()
        .context("cannot run cargo test")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn on_path(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

fn ensure_browser() -> Result<()> {
    if BROWSERS.iter().any(|b| on_path(b)) {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!("headless Chromium is needed by the timeline test and is not installed, and there is no apt-get to install it: install chromium, then run cargo xtask test again");
    }
    // As root apt-get runs directly; otherwise through sudo when there is one.
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let prefix: &[&str] = if root { &[] } else { &["sudo", "-n"] };
    eprintln!("xtask: headless Chromium is missing; installing Debian's chromium with apt-get");
    for step in [&["apt-get", "update"][..], &["apt-get", "install", "-y", "chromium"][..]] {
        let argv: Vec<&str> = prefix.iter().chain(step).copied().collect();
        let status = Command::new(argv[0]).args(&argv[1..]).status().with_context(|| format!("cannot run {}", argv.join(" ")))?;
        if !status.success() {
            bail!("`{}` failed ({status}): install chromium by hand, then run cargo xtask test again", argv.join(" "));
        }
    }
    if !BROWSERS.iter().any(|b| on_path(b)) {
        bail!("apt-get installed chromium but no browser named {} is on PATH", BROWSERS.join(", "));
    }
    Ok(())
}
