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
//!
//! `cargo xtask flufl-suite` runs every test of flufl.lock's own suite through
//! the `flufl-suite` scenario, one `mmsim run` each, and writes what became of
//! each (passed; failed, with pytest's error line; not runnable, with the call
//! that stopped it) to `docs/experiments/flufl-suite/results.md`.

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
        Some("flufl-suite") => {
            setup()?;
            flufl_suite().map(|()| ExitCode::SUCCESS)
        }
        Some(other) => bail!("unknown task {other:?}; tasks: test, setup, flufl-suite"),
        None => bail!("no task given; tasks: test (cargo xtask test [cargo test arguments]), setup, flufl-suite"),
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

/// flufl.lock's sdist, whose tests/ `cargo xtask flufl-suite` runs (the version of requirements.txt).
const FLUFL_SDIST: &str = "flufl.lock==10.0.0";
const FLUFL_SDIST_FILE: &str = "flufl_lock-10.0.0.tar.gz";

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
        // flufl.lock's own test suite, from the same release's sdist.
        let src = venv.join("src");
        std::fs::create_dir_all(&src)?;
        succeed(
            Command::new(venv.join("bin/pip"))
                .args(["download", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-binary", ":all:"])
                .arg(FLUFL_SDIST)
                .arg("-d")
                .arg(&src),
        )?;
        succeed(Command::new("tar").arg("-xzf").arg(src.join(FLUFL_SDIST_FILE)).arg("-C").arg(&src))?;
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

/// One test of flufl.lock's suite under mmsim.
enum Outcome {
    Passed,
    Failed(String),
    NotRunnable(String),
}

fn flufl_suite() -> Result<()> {
    let venv = target_dir().join("mmsim-venv");
    let sdist = venv.join("src/flufl_lock-10.0.0");
    let collected = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_lock.py",
            "tests/test_api.py",
        ])
        .current_dir(&sdist)
        .output()
        .context("cannot collect flufl.lock's tests")?;
    let ids: Vec<String> =
        String::from_utf8_lossy(&collected.stdout).lines().filter(|l| l.contains("::")).map(str::to_string).collect();
    if ids.is_empty() {
        bail!("pytest collected no tests in {}", sdist.display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    succeed(Command::new(&cargo).args(["build", "--quiet", "--release", "-p", "scenarios"]).env_remove("RUSTFLAGS"))?;
    let mmsim = target_dir().join("release/mmsim");
    let trace = target_dir().join("flufl-suite-trace.jsonl");
    let mut rows = Vec::new();
    for id in &ids {
        let out = Command::new(&mmsim)
            .args(["run", "flufl-suite", "--seed", "1", "--json", "--set"])
            .arg(format!("vars.test={id}"))
            .arg("--trace")
            .arg(&trace)
            .output()
            .context("cannot run mmsim")?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{id}: mmsim printed no report: {}", String::from_utf8_lossy(&out.stderr)))?;
        let verdict = report["verdict"].as_str().unwrap_or_default().to_string();
        let stdout: Vec<String> = std::fs::read_to_string(&trace)?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["note"]["log"] == "stdout")
            .filter_map(|e| e["note"]["message"].as_str().map(str::to_string))
            .collect();
        let outcome = if report["exit_code"] == 2 {
            let call = verdict.split(" called ").nth(1).unwrap_or(&verdict);
            Outcome::NotRunnable(call.split(", which").next().unwrap_or(call).to_string())
        } else if stdout.last().is_some_and(|l| l.starts_with("1 passed")) {
            Outcome::Passed
        } else {
            let error = stdout.iter().find(|l| l.starts_with("E ")).cloned().unwrap_or_else(|| verdict.clone());
            Outcome::Failed(error.trim_start_matches("E ").trim().to_string())
        };
        rows.push((id.clone(), outcome, report["trace_hash"].as_str().unwrap_or_default().to_string()));
    }
    let count = |f: fn(&Outcome) -> bool| rows.iter().filter(|(_, o, _)| f(o)).count();
    let passed = count(|o| matches!(o, Outcome::Passed));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let blocked = count(|o| matches!(o, Outcome::NotRunnable(_)));
    let mut md = format!(
        "# flufl.lock 10.0.0's own suite on the simulated mount\n\n\
         `cargo xtask flufl-suite` writes this file: every test of the sdist's `tests/test_lock.py` and\n\
         `tests/test_api.py`, each run alone by the real pytest through `mmsim run flufl-suite --seed 1\n\
         --set vars.test=ID` (docs/real-programs.md), its temporary directories on the simulated mount.\n\n\
         {} tests: **{passed} passed, {failed} failed, {blocked} not runnable**.\n\n\
         | test | outcome | trace hash |\n|---|---|---|\n",
        rows.len()
    );
    for (id, outcome, hash) in &rows {
        let shown = match outcome {
            Outcome::Passed => "passed".to_string(),
            Outcome::Failed(e) => format!("failed: `{e}`"),
            Outcome::NotRunnable(call) => format!("not runnable: calls {call}"),
        };
        md.push_str(&format!("| `{id}` | {shown} | `{hash}` |\n"));
    }
    let dir = root().join("docs/experiments/flufl-suite");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("results.md"), &md)?;
    eprintln!(
        "xtask: {} tests: {passed} passed, {failed} failed, {blocked} not runnable ({})",
        rows.len(),
        dir.join("results.md").display()
    );
    Ok(())
}
