//! The model's entry points by name, as `Os::spawn` starts them.
//!
//! Every Mailman program takes the common options `--profile=NAME`
//! (`2.0`, `2.1-early`, `2.1.39`; default `2.1.39`) and `--settings=JSON`
//! (a partial override merged over the profile, unknown keys rejected).
//! Each program's arguments are declared once ([`SPECS`], `crate::args`):
//! [`plan`] parses them strictly against that declaration and builds what the
//! program runs with, without any I/O, so the arguments can be checked before
//! the program runs. An unknown option, a missing value, a stray argument or a
//! value out of range exits 2 with one line in the `stderr` log.

use std::collections::BTreeSet;

use crate::args::{comma_items, ArgDefault, ArgError, ArgKind, ArgSpec, Parsed, ProgramSpec};
use crate::os::Os;
use crate::peers::{sender, smtp_sink, SenderSettings, SinkSettings};
use crate::post::{post, EntryScript};
use crate::profile::{settings_from, Settings, PROFILE_NAMES};
use crate::runner::{
    mailmanctl, qrunner20, run_runner, virgin_runner, ArchRunner, BounceRunner, IncomingRunner, OutgoingRunner,
    RetryRunner,
};
use crate::slice::Slice;
use crate::syslog::syslog;

/// `--profile=`, common to every Mailman program.
pub const PROFILE: ArgSpec = ArgSpec {
    name: "profile",
    kind: ArgKind::Choice(PROFILE_NAMES),
    default: ArgDefault::Value("2.1.39"),
    help: "the Mailman version profile",
};

/// `--settings=`, common to every Mailman program.
pub const SETTINGS: ArgSpec = ArgSpec {
    name: "settings",
    kind: ArgKind::Json,
    default: ArgDefault::Absent,
    help: "a JSON object merged over the profile's settings (model::profile::Settings; unknown keys refused)",
};

/// The runners `qrunner --runner=` starts.
pub const RUNNER_NAMES: &[&str] = &["Arch", "Bounce", "Incoming", "Outgoing", "Retry", "Virgin"];

/// The most messages one sender injects (`--count`, and so `load.posts`).
pub const SENDER_COUNT_MAX: u64 = 1_000_000;

const PORT: ArgKind = ArgKind::UInt { min: 1, max: 65535, unit: "" };
/// A day: no timer of a sender is longer.
const DAY_S: f64 = 86_400.0;

fn check_runner_spec(v: &str) -> Result<(), String> {
    parse_runner_spec(v).map(drop)
}

/// The MTA pipe targets' arguments.
const POST_OPTIONS: &[ArgSpec] = &[
    PROFILE,
    SETTINGS,
    ArgSpec {
        name: "stdin",
        kind: ArgKind::Text,
        default: ArgDefault::Required,
        help: "the message, as the pipe transport writes it to the script's stdin",
    },
];
const POST_POSITIONAL: &[ArgSpec] =
    &[ArgSpec { name: "LISTNAME", kind: ArgKind::ListName, default: ArgDefault::Required, help: "the list" }];

/// Every program of the model, with its arguments.
pub static SPECS: &[ProgramSpec] = &[
    ProgramSpec {
        name: "mailmanctl",
        summary: "2.1 master: takes locks/master-qrunner and runs one qrunner per configured slice",
        options: &[PROFILE, SETTINGS],
        positional: &[],
        command: false,
    },
    ProgramSpec {
        name: "qrunner",
        summary: "2.1 queue runner: one runner on one slice of its queue",
        options: &[
            PROFILE,
            SETTINGS,
            ArgSpec {
                name: "runner",
                kind: ArgKind::Custom {
                    what: "Name[:slice:count], Name one of Arch, Bounce, Incoming, Outgoing, Retry, Virgin",
                    metavar: "NAME:SLICE:COUNT",
                    check: check_runner_spec,
                },
                default: ArgDefault::Required,
                help: "which runner, and which slice of how many",
            },
        ],
        positional: &[],
        command: false,
    },
    ProgramSpec {
        name: "qrunner20",
        summary: "2.0 cron qrunner: one pass over qfiles/ under locks/qrunner.lock",
        options: &[PROFILE, SETTINGS],
        positional: &[],
        command: false,
    },
    ProgramSpec {
        name: "post",
        summary: "MTA pipe target: enqueues a post (exit 0), 1 if the list is missing or on error",
        options: POST_OPTIONS,
        positional: POST_POSITIONAL,
        command: false,
    },
    ProgramSpec {
        name: "bounces",
        summary: "MTA pipe target for -bounces: enqueues to qfiles/bounces",
        options: POST_OPTIONS,
        positional: POST_POSITIONAL,
        command: false,
    },
    ProgramSpec {
        name: "mta",
        summary: "Exim-like MTA with the Mailman list router and pipe transport",
        options: &[PROFILE, SETTINGS],
        positional: &[],
        command: false,
    },
    ProgramSpec {
        name: "mta-deliver",
        summary: "the MTA's delivery process for one message's smarthost addresses: retries, then a bounce message",
        options: &[
            PROFILE,
            SETTINGS,
            ArgSpec {
                name: "from",
                kind: ArgKind::Text,
                default: ArgDefault::Value(""),
                help: "the envelope sender, who gets the bounce message (empty: none)",
            },
            ArgSpec {
                name: "to",
                kind: ArgKind::Addresses,
                default: ArgDefault::Required,
                help: "the addresses to deliver to",
            },
            ArgSpec {
                name: "stdin",
                kind: ArgKind::Text,
                default: ArgDefault::Required,
                help: "the message, as the spool holds it",
            },
        ],
        positional: &[],
        command: false,
    },
    ProgramSpec {
        name: "smtp-sink",
        summary: "downstream SMTP sink: records every delivery, refuses the listed recipients",
        options: &[
            ArgSpec { name: "port", kind: PORT, default: ArgDefault::Value("25"), help: "the port it listens on" },
            ArgSpec {
                name: "perm",
                kind: ArgKind::Addresses,
                default: ArgDefault::Absent,
                help: "recipients refused permanently (550)",
            },
            ArgSpec {
                name: "temp",
                kind: ArgKind::Addresses,
                default: ArgDefault::Absent,
                help: "recipients refused temporarily (451)",
            },
            ArgSpec {
                name: "sessions",
                kind: ArgKind::UInt { min: 1, max: 10_000, unit: "sessions" },
                default: ArgDefault::Value("20"),
                help: "concurrent SMTP sessions",
            },
        ],
        positional: &[],
        command: false,
    },
    ProgramSpec {
        name: "sender",
        summary: "SMTP injector: posts at seeded times over a few connections, with retries",
        options: &[
            ArgSpec {
                name: "to",
                kind: ArgKind::Address,
                default: ArgDefault::Required,
                help: "envelope and header recipient (the list address)",
            },
            ArgSpec {
                name: "count",
                kind: ArgKind::UInt { min: 1, max: SENDER_COUNT_MAX, unit: "messages" },
                default: ArgDefault::Value("1"),
                help: "messages to inject",
            },
            ArgSpec {
                name: "host",
                kind: ArgKind::Host,
                default: ArgDefault::Value("localhost"),
                help: "the MTA's host",
            },
            ArgSpec { name: "port", kind: PORT, default: ArgDefault::Value("25"), help: "the MTA's port" },
            ArgSpec {
                name: "from",
                kind: ArgKind::Address,
                default: ArgDefault::Value("poster@example.org"),
                help: "envelope and header sender",
            },
            ArgSpec {
                name: "connections",
                kind: ArgKind::UInt { min: 1, max: 1000, unit: "connections" },
                default: ArgDefault::Value("1"),
                help: "concurrent SMTP connections, one message at a time each",
            },
            ArgSpec {
                name: "window-s",
                kind: ArgKind::Float { min: 0.0, max: DAY_S, unit: "seconds" },
                default: ArgDefault::Value("0"),
                help: "injection times are uniform over this window after start",
            },
            ArgSpec {
                name: "retry-delay-s",
                kind: ArgKind::Float { min: 0.0, max: DAY_S, unit: "seconds" },
                default: ArgDefault::Value("60"),
                help: "wait before retrying a 4xx or a failed connection",
            },
            ArgSpec {
                name: "attempts-max",
                kind: ArgKind::UInt { min: 1, max: 1000, unit: "attempts" },
                default: ArgDefault::Value("5"),
                help: "attempts per message before it counts as bounced",
            },
            ArgSpec {
                name: "id-prefix",
                kind: ArgKind::Token,
                default: ArgDefault::Value("m"),
                help: "Message-Ids are <PREFIX-n@hostname>",
            },
        ],
        positional: &[],
        command: false,
    },
];

/// The declaration of program `name`.
pub fn spec(name: &str) -> Option<&'static ProgramSpec> {
    SPECS.iter().find(|s| s.name == name)
}

const EX_USAGE: i32 = 2;

/// What a program runs with: its arguments parsed and checked, nothing done yet.
#[derive(Clone, Debug)]
pub enum Plan {
    Mailmanctl { settings: Box<Settings>, child: Vec<String> },
    Qrunner { settings: Box<Settings>, runner: String, slice: Slice },
    Qrunner20 { settings: Box<Settings> },
    Post { settings: Box<Settings>, script: EntryScript, list: String, text: String },
    Mta { settings: Box<Settings>, child: Vec<String> },
    MtaDeliver { settings: Box<Settings>, child: Vec<String>, from: String, to: Vec<String>, text: String },
    Sink(SinkSettings),
    Sender(SenderSettings),
}

/// The settings of `--profile=` and `--settings=`, and the arguments that
/// reproduce them for children.
fn settings(p: &Parsed) -> Result<(Box<Settings>, Vec<String>), ArgError> {
    let profile = p.text("profile");
    let overrides = p.given("settings");
    let settings = settings_from(&profile, overrides)
        .map_err(|e| e.to_string())
        .and_then(|s| check_settings(&s).map(|()| s))
        .map_err(|e| ArgError::option("settings", overrides.unwrap_or(""), e))?;
    let mut child = Vec::new();
    if let Some(given) = p.given("profile") {
        child.push(format!("--profile={given}"));
    }
    if let Some(s) = overrides {
        child.push(format!("--settings={s}"));
    }
    Ok((Box::new(settings), child))
}

/// The most runners of one kind `mailmanctl.qrunners` may ask for.
pub const QRUNNER_COUNT_MAX: u32 = 256;

/// What serde cannot say about merged settings: the directories stay under
/// the Mailman prefix, the SMTP host is a host name, and every qrunner that
/// mailmanctl would start is one `qrunner --runner=` takes. `Err` names the
/// setting by its JSON path.
pub fn check_settings(s: &Settings) -> Result<(), String> {
    for (key, dir) in [
        ("queue.queue_dir", &s.queue.queue_dir),
        ("arch.private_archive_dir", &s.arch.private_archive_dir),
        ("outgoing.data_dir", &s.outgoing.data_dir),
        ("mailmanctl.lock_dir", &s.mailmanctl.lock_dir),
    ] {
        ArgKind::Path.check(dir).map_err(|e| format!("{key} {:?}: {e}", crate::args::shown(dir)))?;
    }
    ArgKind::Host
        .check(&s.outgoing.smtp_host)
        .map_err(|e| format!("outgoing.smtp_host {:?}: {e}", crate::args::shown(&s.outgoing.smtp_host)))?;
    if let Some(h) = &s.mta.smarthost {
        ArgKind::Host
            .check(&h.host)
            .map_err(|e| format!("mta.smarthost.host {:?}: {e}", crate::args::shown(&h.host)))?;
    }
    if !(1..=10_000).contains(&s.mta.remote_rcpts_max) {
        return Err("mta.remote_rcpts_max: expected 1..=10000 recipients".into());
    }
    s.mta.retry.check().map_err(|e| format!("mta.retry.{e}"))?;
    for (i, q) in s.mailmanctl.qrunners.iter().enumerate() {
        if !RUNNER_NAMES.contains(&q.name.as_str()) {
            return Err(format!(
                "mailmanctl.qrunners.{i}.name {:?}: expected one of: {}",
                crate::args::shown(&q.name),
                RUNNER_NAMES.join(", ")
            ));
        }
        if !(1..=QRUNNER_COUNT_MAX).contains(&q.count) {
            return Err(format!("mailmanctl.qrunners.{i}.count: expected 1..={QRUNNER_COUNT_MAX} slices"));
        }
    }
    Ok(())
}

fn address_set(v: Option<&str>) -> BTreeSet<String> {
    v.map(|s| comma_items(s).map(str::to_lowercase).collect()).unwrap_or_default()
}

/// Parses and checks `program`'s arguments and builds its plan. Pure: no I/O.
pub fn plan(program: &str, args: &[String]) -> Result<Plan, ArgError> {
    let Some(spec) = spec(program) else {
        let known: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        return Err(ArgError::new(
            format!("{:?}", crate::args::shown(program)),
            format!("unknown program; expected one of: {}", known.join(", ")),
        ));
    };
    let p = spec.parse(args)?;
    Ok(match program {
        "mailmanctl" => {
            let (settings, child) = settings(&p)?;
            Plan::Mailmanctl { settings, child }
        }
        "qrunner" => {
            let (settings, _) = settings(&p)?;
            let (runner, slice) = parse_runner_spec(&p.text("runner")).expect("checked when parsed");
            Plan::Qrunner { settings, runner, slice }
        }
        "qrunner20" => Plan::Qrunner20 { settings: settings(&p)?.0 },
        "post" | "bounces" => Plan::Post {
            settings: settings(&p)?.0,
            script: if program == "post" { EntryScript::Post } else { EntryScript::Bounces },
            list: p.positional(0).expect("required").to_string(),
            text: p.text("stdin"),
        },
        "mta" => {
            let (settings, child) = settings(&p)?;
            Plan::Mta { settings, child }
        }
        "mta-deliver" => {
            let (settings, child) = settings(&p)?;
            Plan::MtaDeliver {
                settings,
                child,
                from: p.text("from"),
                to: comma_items(&p.text("to")).map(str::to_string).collect(),
                text: p.text("stdin"),
            }
        }
        "smtp-sink" => Plan::Sink(SinkSettings {
            port: p.uint("port"),
            permanent_failures: address_set(p.value("perm")),
            temporary_failures: address_set(p.value("temp")),
            sessions_max: p.uint("sessions"),
        }),
        "sender" => Plan::Sender(SenderSettings {
            to: p.text("to"),
            count: p.uint("count"),
            host: p.text("host"),
            port: p.uint("port"),
            from: p.text("from"),
            connections: p.uint("connections"),
            window_s: p.float("window-s"),
            retry_delay_s: p.float("retry-delay-s"),
            attempts_max: p.uint("attempts-max"),
            id_prefix: p.text("id-prefix"),
        }),
        other => unreachable!("{other} is declared in SPECS but not planned"),
    })
}

/// Runs `program` with `args` in the process `os`; returns its exit status.
pub async fn run<O: Os>(os: O, program: &str, args: &[String]) -> i32 {
    match plan(program, args) {
        Ok(plan) => execute(&os, plan).await,
        Err(e) => {
            syslog(&os, "stderr", format!("{program}: {e}"));
            EX_USAGE
        }
    }
}

/// Runs a plan.
pub async fn execute<O: Os>(os: &O, plan: Plan) -> i32 {
    match plan {
        Plan::Mailmanctl { settings, child } => mailmanctl(os, &settings, &child).await,
        Plan::Qrunner { settings, runner, slice } => match runner.as_str() {
            "Incoming" => run_runner(os, &settings, slice, IncomingRunner::new()).await,
            "Virgin" => run_runner(os, &settings, slice, virgin_runner()).await,
            "Outgoing" => run_runner(os, &settings, slice, OutgoingRunner::new()).await,
            "Retry" => run_runner(os, &settings, slice, RetryRunner).await,
            "Bounce" => run_runner(os, &settings, slice, BounceRunner::default()).await,
            "Arch" => run_runner(os, &settings, slice, ArchRunner).await,
            other => unreachable!("runner {other} passed parse_runner_spec"),
        },
        Plan::Qrunner20 { settings } => qrunner20(os, &settings).await,
        Plan::Post { settings, script, list, text } => post(os, &settings, script, &list, &text).await,
        Plan::Mta { settings, child } => crate::mta::mta(os, &settings.mta, &child).await,
        Plan::MtaDeliver { settings, child, from, to, text } => {
            crate::mta::mta_deliver(os, &settings.mta, &child, &from, &to, &text).await
        }
        Plan::Sink(s) => smtp_sink(os, &s).await,
        Plan::Sender(s) => sender(os, &s).await,
    }
}

/// `Name[:slice:count]` → (name, slice), with `slice < count` and a known
/// name (`RUNNER_NAMES`); `Err` is the "expected …" text.
pub fn parse_runner_spec(spec: &str) -> Result<(String, Slice), String> {
    let bad = || "expected Name[:slice:count] with slice < count".to_string();
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, slice) = match parts.as_slice() {
        [name] => (*name, Slice::WHOLE),
        [name, slice, count] => {
            let index: u32 = slice.parse().map_err(|_| bad())?;
            let count: u32 = count.parse().map_err(|_| bad())?;
            if count == 0 || index >= count {
                return Err(bad());
            }
            (*name, Slice { index, count })
        }
        _ => return Err(bad()),
    };
    if !RUNNER_NAMES.contains(&name) {
        return Err(format!("expected a runner name, one of: {}", RUNNER_NAMES.join(", ")));
    }
    Ok((name.to_string(), slice))
}
