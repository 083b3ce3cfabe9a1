//! `cargo xtask test [ARGS…]`: the README's test command.
//!
//! The tests need one program that the Rust toolchain does not bring: headless
//! Chromium, which the timeline test renders a page in (a real browser, so the
//! test stays real). This task finds it, installs Debian's `chromium` with
//! apt-get when it is missing and apt-get is there to run, and then runs
//! `cargo test --workspace ARGS…`. Where it cannot install, it says so in one
//! line and fails before any test runs, so no test is skipped silently.
//! The convention is rust-analyzer's `xtask`; `.cargo/config.toml` holds the alias.
//!
//! `cargo xtask setup` installs what the real-program scenarios run
//! (docs/real-programs.md): Debian's `liblockfile-bin` and `procmail`, a
//! virtualenv at `target/mmsim-venv` with the pinned packages of
//! `scenarios/python/requirements.txt` and the workers of `scenarios/python/`,
//! copies of the set-group-ID lock programs without the bit (ld.so ignores
//! `LD_PRELOAD` for set-ID programs), and the interposition library in both
//! profiles. `cargo xtask test` runs it first.

use std::path::{Path, PathBuf};
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
        Some("test") => {
            setup()?;
            test(&args[1..])
        }
        Some("setup") => setup().map(|()| ExitCode::SUCCESS),
        Some(other) => bail!("unknown task {other:?}; tasks: test, setup"),
        None => bail!("no task given; tasks: test (cargo xtask test [cargo test arguments]), setup"),
    }
}

fn test(cargo_args: &[String]) -> Result<ExitCode> {
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
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .status()
            .with_context(|| format!("cannot run {}", argv.join(" ")))?;
        if !status.success() {
            bail!("`{}` failed ({status}): install chromium by hand, then run cargo xtask test again", argv.join(" "));
        }
    }
    if !BROWSERS.iter().any(|b| on_path(b)) {
        bail!("apt-get installed chromium but no browser named {} is on PATH", BROWSERS.join(", "));
    }
    Ok(())
}

/// The Debian packages the tests and the real-program scenarios need, by a program each provides.
const PACKAGES: [(&str, &str); 3] = [
    ("dotlockfile", "liblockfile-bin"),
    ("lockfile", "procmail"),
    ("/usr/lib/python3.11/ensurepip/__init__.py", "python3-venv"),
];

/// The set-group-ID programs the scenarios run, copied without the bit.
const SETID_PROGRAMS: [&str; 2] = ["/usr/bin/dotlockfile", "/usr/bin/lockfile"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("scenarios/xtask is two below the root")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn present(program: &str) -> bool {
    if program.starts_with('/') {
        Path::new(program).exists()
    } else {
        on_path(program)
    }
}

fn setup() -> Result<()> {
    ensure_browser()?;
    let missing: Vec<&str> = PACKAGES.iter().filter(|(p, _)| !present(p)).map(|(_, pkg)| *pkg).collect();
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    let target = target_dir();
    let venv = target.join("mmsim-venv");
    let requirements = root().join("scenarios/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).context("cannot read scenarios/python/requirements.txt")?;
    let stamp = venv.join("mmsim-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("xtask: building the real-program virtualenv at {}", venv.display());
        std::fs::create_dir_all(&target)?;
        succeed(Command::new("/usr/bin/python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
        succeed(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "--no-cache-dir", "-r"])
                .arg(&requirements),
        )?;
        std::fs::write(&stamp, &wanted)?;
    }
    // The workers are found through a .pth file, so an edit needs no reinstall.
    let site = std::fs::read_dir(venv.join("lib"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .context("the virtualenv has no site-packages")?;
    std::fs::write(site.join("mmsim-workers.pth"), format!("{}\n", root().join("scenarios/python").display()))?;
    for program in SETID_PROGRAMS {
        let copy = venv.join("bin").join(Path::new(program).file_name().expect("a file name"));
        std::fs::copy(program, &copy).with_context(|| format!("cannot copy {program}"))?;
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    for profile in [&[][..], &["--release"][..]] {
        succeed(
            Command::new(&cargo).args(["build", "--quiet", "-p", "mmsim-shim"]).args(profile).env_remove("RUSTFLAGS"),
        )?;
    }
    Ok(())
}

fn succeed(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if !on_path("apt-get") {
        bail!("the real-program scenarios need {} and there is no apt-get to install them", packages.join(", "));
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let prefix: &[&str] = if root { &[] } else { &["sudo", "-n"] };
    eprintln!("xtask: installing {} with apt-get", packages.join(", "));
    let install: Vec<&str> = ["apt-get", "install", "-y"].into_iter().chain(packages.iter().copied()).collect();
    for step in [&["apt-get", "update"][..], &install[..]] {
        let argv: Vec<&str> = prefix.iter().chain(step).copied().collect();
        succeed(Command::new(argv[0]).args(&argv[1..]))?;
    }
    Ok(())
}
