//! `cron`: runs a program at the start of every period, as the crontab line
//! `* * * * * qrunner` did for Mailman 2.0 (spec/mailman.md §4.9).
//!
//! Like cron, it does not wait for the previous run to end: overlapping runs are
//! possible, and the 2.0 qrunner's own `qrunner.lock` keeps them apart.
//! Infrastructure, not Mailman: it lives beside `install`.

use std::time::Duration;

use model::Os;

pub const USAGE: &str = "cron --every-s=S [--runs=N] -- PROGRAM [ARGS...]";

pub async fn cron<O: Os>(os: O, args: &[String]) -> i32 {
    let usage = |os: &O| {
        os.event(model::ModelEvent::Log { log: "error".into(), message: format!("usage: {USAGE}") });
        2
    };
    let Some(split) = args.iter().position(|a| a == "--") else { return usage(&os) };
    let (options, command) = (&args[..split], &args[split + 1..]);
    let Some((program, program_args)) = command.split_first() else { return usage(&os) };
    let mut every_s: Option<f64> = None;
    let mut runs: Option<u64> = None;
    for o in options {
        if let Some(v) = o.strip_prefix("--every-s=") {
            every_s = v.parse().ok().filter(|s: &f64| *s > 0.0);
        } else if let Some(v) = o.strip_prefix("--runs=") {
            runs = v.parse().ok();
        } else {
            return usage(&os);
        }
    }
    let Some(every_s) = every_s else { return usage(&os) };
    let period = Duration::from_secs_f64(every_s);
    let mut started = 0u64;
    while runs.is_none_or(|n| started < n) {
        if let Err(e) = os.spawn(program, program_args).await {
            os.event(model::ModelEvent::Log { log: "cron".into(), message: format!("cannot run {program}: {e}") });
        }
        started += 1;
        if os.take_signal() == Some(model::Signal::Term) {
            break;
        }
        os.sleep(period).await;
    }
    0
}
