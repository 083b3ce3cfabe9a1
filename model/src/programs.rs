//! The model's entry points by name, as `Os::spawn` starts them.
//!
//! Every Mailman program takes the common options `--profile=NAME`
//! (`2.0`, `2.1-early`, `2.1.39`; default `2.1.39`) and `--settings=JSON`
//! (a partial override merged over the profile, unknown keys rejected).
//! Arguments are parsed strictly: an unknown option, a missing value or a
//! stray argument exits 2 with a usage line in the `stderr` log.

use std::collections::BTreeSet;

use crate::os::Os;
use crate::peers::{sender, smtp_sink, SenderSettings, SinkSettings};
use crate::post::{post, EntryScript};
use crate::profile::{settings_from, Settings};
use crate::runner::{
    mailmanctl, qrunner20, run_runner, virgin_runner, ArchRunner, BounceRunner, IncomingRunner, OutgoingRunner,
    RetryRunner,
};
use crate::slice::Slice;
use crate::syslog::syslog;

/// `(name, description)` of every program.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("mailmanctl", "2.1 master: takes locks/master-qrunner and runs one qrunner per configured slice [--profile= --settings=]"),
    ("qrunner", "2.1 queue runner: --runner=Name:slice:count (Arch, Bounce, Incoming, Outgoing, Retry, Virgin) [--profile= --settings=]"),
    ("qrunner20", "2.0 cron qrunner: one pass over qfiles/ under locks/qrunner.lock [--profile= --settings=]"),
    ("post", "MTA pipe target: --stdin=TEXT LISTNAME; enqueues a post (exit 0), 1 if the list is missing or on error"),
    ("bounces", "MTA pipe target for -bounces: --stdin=TEXT LISTNAME; enqueues to qfiles/bounces"),
    ("mta", "Exim-like MTA with the Mailman list router and pipe transport [--profile= --settings=]"),
    ("smtp-sink", "downstream SMTP sink: --port=N [--perm=a,b] [--temp=a,b] [--sessions=N]"),
    ("sender", "SMTP injector: --to=ADDR --count=N [--host=H --port=N --from=ADDR --connections=K --window-s=S --retry-delay-s=S --attempts-max=N --id-prefix=P]"),
];

const EX_USAGE: i32 = 2;

/// Runs `program` with `args` in the process `os`; returns its exit status.
pub async fn run<O: Os>(os: O, program: &str, args: &[String]) -> i32 {
    match dispatch(&os, program, args).await {
        Ok(code) => code,
        Err(usage) => {
            syslog(&os, "stderr", format!("{program}: {usage}"));
            EX_USAGE
        }
    }
}

/// Parsed `--key=value` options and positional arguments.
struct Args {
    options: Vec<(String, String)>,
    positional: Vec<String>,
}

fn split_args(args: &[String]) -> Result<Args, String> {
    let mut options = Vec::new();
    let mut positional = Vec::new();
    for a in args {
        if let Some(opt) = a.strip_prefix("--") {
            let (k, v) = opt.split_once('=').ok_or_else(|| format!("option --{opt} needs a value (--{opt}=...)"))?;
            if options.iter().any(|(x, _): &(String, String)| x == k) {
                return Err(format!("option --{k} given twice"));
            }
            options.push((k.to_string(), v.to_string()));
        } else {
            positional.push(a.clone());
        }
    }
    Ok(Args { options, positional })
}

impl Args {
    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.options.iter().position(|(k, _)| k == key)?;
        Some(self.options.remove(i).1)
    }

    fn parse<T: std::str::FromStr>(&mut self, key: &str, default: T) -> Result<T, String> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("bad value for --{key}: {v:?}")),
        }
    }

    fn require(&mut self, key: &str) -> Result<String, String> {
        self.take(key).ok_or_else(|| format!("missing --{key}="))
    }

    /// Takes the common options: the settings and the arguments that
    /// reproduce them for children.
    fn settings(&mut self) -> Result<(Settings, Vec<String>), String> {
        let profile = self.take("profile");
        let overrides = self.take("settings");
        let settings =
            settings_from(profile.as_deref().unwrap_or("2.1.39"), overrides.as_deref()).map_err(|e| e.to_string())?;
        let mut child = Vec::new();
        if let Some(p) = profile {
            child.push(format!("--profile={p}"));
        }
        if let Some(s) = overrides {
            child.push(format!("--settings={s}"));
        }
        Ok((settings, child))
    }

    /// Fails on anything left over.
    fn finish(&self, positional_max: usize) -> Result<(), String> {
        if let Some((k, _)) = self.options.first() {
            return Err(format!("unknown option --{k}"));
        }
        if self.positional.len() > positional_max {
            return Err(format!("unexpected argument {:?}", self.positional[positional_max]));
        }
        Ok(())
    }
}

fn address_set(v: Option<String>) -> BTreeSet<String> {
    v.map(|s| s.split(',').map(|a| a.trim().to_lowercase()).filter(|a| !a.is_empty()).collect()).unwrap_or_default()
}

async fn dispatch<O: Os>(os: &O, program: &str, args: &[String]) -> Result<i32, String> {
    let mut a = split_args(args)?;
    match program {
        "mailmanctl" => {
            let (settings, child) = a.settings()?;
            a.finish(0)?;
            Ok(mailmanctl(os, &settings, &child).await)
        }
        "qrunner" => {
            let (settings, _) = a.settings()?;
            let spec = a.require("runner")?;
            a.finish(0)?;
            let (name, slice) = parse_runner_spec(&spec)?;
            Ok(match name.as_str() {
                "Incoming" => run_runner(os, &settings, slice, IncomingRunner::new()).await,
                "Virgin" => run_runner(os, &settings, slice, virgin_runner()).await,
                "Outgoing" => run_runner(os, &settings, slice, OutgoingRunner::new()).await,
                "Retry" => run_runner(os, &settings, slice, RetryRunner).await,
                "Bounce" => run_runner(os, &settings, slice, BounceRunner::default()).await,
                "Arch" => run_runner(os, &settings, slice, ArchRunner).await,
                other => {
                    return Err(format!(
                        "unknown runner {other:?} (known: Arch, Bounce, Incoming, Outgoing, Retry, Virgin)"
                    ))
                }
            })
        }
        "qrunner20" => {
            let (settings, _) = a.settings()?;
            a.finish(0)?;
            Ok(qrunner20(os, &settings).await)
        }
        "post" | "bounces" => {
            let (settings, _) = a.settings()?;
            let text = a.require("stdin")?;
            a.finish(1)?;
            let list = a.positional.first().ok_or("missing LISTNAME")?.clone();
            let script = if program == "post" { EntryScript::Post } else { EntryScript::Bounces };
            Ok(post(os, &settings, script, &list, &text).await)
        }
        "mta" => {
            let (settings, child) = a.settings()?;
            a.finish(0)?;
            Ok(crate::mta::mta(os, &settings.mta, &child).await)
        }
        "smtp-sink" => {
            let s = SinkSettings {
                port: a.parse("port", 25)?,
                permanent_failures: address_set(a.take("perm")),
                temporary_failures: address_set(a.take("temp")),
                sessions_max: a.parse("sessions", 20)?,
            };
            a.finish(0)?;
            Ok(smtp_sink(os, &s).await)
        }
        "sender" => {
            let d = SenderSettings::default();
            let s = SenderSettings {
                to: a.require("to")?,
                count: a.parse("count", d.count)?,
                host: a.take("host").unwrap_or(d.host),
                port: a.parse("port", d.port)?,
                from: a.take("from").unwrap_or(d.from),
                connections: a.parse("connections", d.connections)?,
                window_s: a.parse("window-s", d.window_s)?,
                retry_delay_s: a.parse("retry-delay-s", d.retry_delay_s)?,
                attempts_max: a.parse("attempts-max", d.attempts_max)?,
                id_prefix: a.take("id-prefix").unwrap_or(d.id_prefix),
            };
            a.finish(0)?;
            Ok(sender(os, &s).await)
        }
        other => {
            let known: Vec<&str> = PROGRAMS.iter().map(|(n, _)| *n).collect();
            Err(format!("unknown program {other:?} (known: {})", known.join(", ")))
        }
    }
}

/// `Name:slice:count` → (name, slice), with `slice < count`.
pub fn parse_runner_spec(spec: &str) -> Result<(String, Slice), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || format!("bad --runner={spec} (want Name:slice:count)");
    match parts.as_slice() {
        [name] => Ok((name.to_string(), Slice::WHOLE)),
        [name, slice, count] => {
            let index: u32 = slice.parse().map_err(|_| bad())?;
            let count: u32 = count.parse().map_err(|_| bad())?;
            if count == 0 || index >= count {
                return Err(bad());
            }
            Ok((name.to_string(), Slice { index, count }))
        }
        _ => Err(bad()),
    }
}
