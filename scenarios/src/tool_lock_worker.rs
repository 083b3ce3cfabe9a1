//! `tool-lock-worker`: lock-worker's rounds with a real command-line lock
//! program, as a shell script uses one (docs/real-programs.md).
//!
//! Each round spawns the tool through the world's own spawn (no shell in
//! between) as an `exec` process: `dotlockfile -l -r -1 LOCK` (Debian's
//! liblockfile-bin) or `lockfile -1 -r -1 LOCK` (procmail's). Once it exits 0
//! the worker holds the lock: it notes `LockAcquired`, appends `enter WHO N` to
//! the shared log, holds, appends `exit WHO N`, notes `LockReleasing`, and
//! releases as scripts do: `dotlockfile -u LOCK`, or for `lockfile`, which has
//! no unlock, `rm -f LOCK` (an unlink). The tools' own contention shows as
//! `lock_contended` (their link onto the lock finding it taken).

use std::time::Duration;

use model::args::{ArgDefault, ArgError, ArgKind, ArgSpec, ProgramSpec};
use model::{ExitStatus, ModelEvent, Os};

use crate::lock_worker::{append, HOLD_MS, LOCK, LOG, ROUNDS, THINK_MS};

/// The tools `--tool=` names.
pub const TOOLS: &[&str] = &["dotlockfile", "lockfile"];

/// `tool-lock-worker`'s arguments.
pub static SPEC: ProgramSpec = ProgramSpec {
    name: "tool-lock-worker",
    summary: "rounds of a real lock program (dotlockfile, procmail's lockfile) / append enter+exit marks / unlock",
    options: &[
        ArgSpec {
            name: "tool",
            kind: ArgKind::Choice(TOOLS),
            default: ArgDefault::Required,
            help: "which program takes the lock",
        },
        LOCK,
        LOG,
        ROUNDS,
        HOLD_MS,
        THINK_MS,
    ],
    positional: &[],
    command: false,
};

pub struct Plan {
    tool: String,
    lock: String,
    log: String,
    rounds: u32,
    hold: Duration,
    think: Duration,
}

/// Parses the arguments, and checks that the tool's `exec` would start (the program is installed).
pub fn plan(args: &[String]) -> Result<Plan, ArgError> {
    let p = SPEC.parse(args)?;
    let plan = Plan {
        tool: p.text("tool"),
        lock: p.text("lock"),
        log: p.text("log"),
        rounds: p.uint("rounds"),
        hold: Duration::from_millis(p.uint("hold-ms")),
        think: Duration::from_millis(p.uint("think-ms")),
    };
    crate::external::plan(&plan.exec_args(&plan.lock_argv()))?;
    Ok(plan)
}

/// Where the tools see the simulated mount.
const MOUNT: &str = "/mm";

impl Plan {
    fn lock_argv(&self) -> Vec<String> {
        let path = format!("{MOUNT}/{}", self.lock);
        match self.tool.as_str() {
            // -r -1: retry indefinitely, the sleeps growing by 5 s up to 60 s (dotlockfile(1)).
            "dotlockfile" => vec!["dotlockfile".into(), "-l".into(), "-r".into(), "-1".into(), path],
            // -1: one second between attempts; -r -1: retry for ever (procmail's lockfile(1)).
            _ => vec!["lockfile".into(), "-1".into(), "-r".into(), "-1".into(), path],
        }
    }

    fn exec_args(&self, argv: &[String]) -> Vec<String> {
        let mut args = vec![format!("--mount={MOUNT}"), format!("--lock={}", self.lock), "--".into()];
        args.extend_from_slice(argv);
        args
    }
}

/// Appends one mark line, and notes it `Appended` once its close returned.
async fn mark<O: Os>(os: &O, log: &str, line: String) -> std::io::Result<()> {
    append(os, log, &format!("{line}\n")).await?;
    os.event(ModelEvent::Appended { path: log.to_string(), record: line });
    Ok(())
}

async fn run_tool<O: Os>(os: &O, plan: &Plan, argv: Vec<String>) -> Result<(), String> {
    let shown = argv.join(" ");
    let pid = os.spawn("exec", &plan.exec_args(&argv)).await.map_err(|e| format!("spawn {shown}: {e}"))?;
    match os.wait(pid).await {
        Ok(ExitStatus::Code(0)) => Ok(()),
        Ok(status) => Err(format!("{shown}: {status:?}")),
        Err(e) => Err(format!("wait for {shown}: {e}")),
    }
}

pub async fn tool_lock_worker<O: Os>(os: O, args: &[String]) -> i32 {
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            os.event(ModelEvent::Log { log: "error".into(), message: format!("tool-lock-worker: {e}") });
            return 2;
        }
    };
    let who = format!("{}.{}", os.hostname(), os.pid());
    let note = |text: String| os.event(ModelEvent::Log { log: "error".into(), message: format!("{who}: {text}") });
    for round in 0..plan.rounds {
        if let Err(e) = run_tool(&os, &plan, plan.lock_argv()).await {
            note(e);
            return 1;
        }
        os.event(ModelEvent::LockAcquired { lock: plan.lock.clone(), claim: who.clone() });
        let section = async {
            mark(&os, &plan.log, format!("enter {who} {round}")).await?;
            if !plan.hold.is_zero() {
                os.sleep(plan.hold).await;
            }
            mark(&os, &plan.log, format!("exit {who} {round}")).await
        }
        .await;
        os.event(ModelEvent::LockReleasing { lock: plan.lock.clone(), claim: who.clone() });
        if let Err(e) = section {
            note(format!("log: {e}"));
        }
        let released = match plan.tool.as_str() {
            "dotlockfile" => {
                run_tool(&os, &plan, vec!["dotlockfile".into(), "-u".into(), format!("{MOUNT}/{}", plan.lock)]).await
            }
            // `rm -f LOCK`: a lock already gone is no error.
            _ => match os.unlink(&plan.lock).await {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(format!("rm -f {}: {e}", plan.lock)),
                _ => Ok(()),
            },
        };
        if let Err(e) = released {
            note(e);
            return 1;
        }
        if !plan.think.is_zero() {
            os.sleep(plan.think).await;
        }
    }
    0
}
