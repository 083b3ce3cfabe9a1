//! The operator's figures (`mail.rs`) on hand-made histories, and on runs.

use std::rc::Rc;
use std::time::Duration;

use model::{ModelEvent, RouteStage};
use scenarios::mail::{MailFigures, MailLedger};
use sim::{Event, EventKind};

fn note(host: &str, pid: u32, m: ModelEvent) -> EventKind {
    EventKind::Note { host: host.into(), pid, text: String::new(), payload: Rc::new(m) }
}

fn call(host: &str, pid: u32, path: &str, errno: Option<i32>, served_by: &str) -> EventKind {
    EventKind::Call {
        span: 1,
        host: host.into(),
        pid,
        op: "stat",
        args: format!("{path:?}"),
        outcome: match errno {
            Some(e) => Err(e),
            None => Ok(String::new()),
        },
        served_by: served_by.into(),
        started: Duration::ZERO,
    }
}

fn figures(kinds: Vec<EventKind>) -> MailFigures {
    let mut ledger = MailLedger::default();
    for (seq, kind) in kinds.into_iter().enumerate() {
        ledger.observe(&Event { seq: seq as u64, t: Duration::from_millis(seq as u64), kind });
    }
    ledger.finish()
}

fn saved() -> EventKind {
    note("mail1", 6, ModelEvent::ListSaved { list: "test".into(), file: "lists/test/config.pck".into(), post_id: 1 })
}

fn injected(id: &str) -> EventKind {
    note("sender", 1, ModelEvent::SenderInjected { message_id: id.into(), recipient: "test@lists".into() })
}

fn accepted(id: &str) -> EventKind {
    note("sender", 1, ModelEvent::SenderAccepted { message_id: id.into(), recipient: "test@lists".into(), code: 250 })
}

fn bounced(id: &str, code: u16) -> EventKind {
    note("sender", 1, ModelEvent::SenderBounced { message_id: id.into(), recipient: "test@lists".into(), code })
}

fn addressed(id: &str, rcpt: &str) -> EventKind {
    note(
        "mail1",
        7,
        ModelEvent::SmtpRecipient {
            list: "test".into(),
            message_id: id.into(),
            recipient: rcpt.into(),
            code: 250,
            outcome: model::RecipientOutcome::Delivered,
        },
    )
}

fn received(id: &str, rcpt: &str) -> EventKind {
    note(
        "sink",
        1,
        ModelEvent::SinkReceived {
            recipient: rcpt.into(),
            message_id: id.into(),
            post_number: None,
            subject: String::new(),
        },
    )
}

fn routed(host: &str, pid: u32, recipient: &str, stage: RouteStage) -> EventKind {
    note(
        host,
        pid,
        ModelEvent::MtaRouted {
            list: "test".into(),
            recipient: recipient.into(),
            decision: model::RouteDecision::BouncedUnknownList,
            errno: "ENOENT".into(),
            stage,
        },
    )
}

/// Deliveries: a message counts once every recipient Mailman addressed got a
/// copy (duplicates change nothing) or failed permanently downstream; one
/// recipient short is undelivered, and a shunted message is shunted.
#[test]
fn delivered_means_every_addressed_member_reached_or_failed_permanently() {
    let f = figures(vec![
        saved(),
        injected("m1"),
        accepted("m1"),
        addressed("m1", "a@x"),
        addressed("m1", "b@x"),
        received("m1", "a@x"),
        received("m1", "a@x"),
        note(
            "mail2",
            9,
            ModelEvent::MtaRemote {
                message_id: "m1".into(),
                sender: "test-bounces@lists".into(),
                attempt: 1,
                delivered: 0,
                failed: vec!["b@x".into()],
                deferred: vec![],
            },
        ),
        injected("m2"),
        accepted("m2"),
        addressed("m2", "a@x"),
        addressed("m2", "b@x"),
        received("m2", "b@x"),
        injected("m3"),
        accepted("m3"),
        note(
            "mail1",
            8,
            ModelEvent::Shunted {
                queue: "in".into(),
                filebase: "f".into(),
                message_id: "m3".into(),
                list: "test".into(),
                reason: model::DropReason::Raised("Stale file handle (os error 116)".into()),
                errno: "ESTALE".into(),
            },
        ),
        injected("m4"),
        bounced("m4", 451),
    ]);
    assert_eq!(
        (f.injected, f.accepted, f.delivered, f.undelivered, f.shunted, f.bounced, f.bounced_list_missing),
        (4, 3, 1, 1, 1, 1, 0)
    );
    assert_eq!(
        f.mail_line().unwrap(),
        "injected 4, accepted 3, delivered to every member 1, shunted 1, undelivered 1, bounced 1 of 4 (0 list-missing, 1 other)"
    );
    assert_eq!(f.missing_line(), "a list never appeared missing");
}

/// Each place and each answer: a stat at RCPT answered by a negative dentry,
/// one at delivery answered NOENT by the server, `list_exists()` followed by
/// `post`'s exit 1 (one appearance, one bounce), a 2.0 `post` whose open got
/// ESTALE, and the router's verdict on a `-bounces` address (an appearance that
/// bounces no sender's message). A verdict before the list was first saved is
/// not an appearance.
#[test]
fn appearances_are_counted_once_by_place_and_by_what_answered() {
    let f = figures(vec![
        routed("mail1", 3, "test@lists", RouteStage::Verify),
        saved(),
        call("mail2", 3, "lists/test/config.pck", Some(libc::ENOENT), "pos-dentry(ev 0)+neg-dentry(ev 2)"),
        routed("mail2", 3, "test@lists", RouteStage::Verify),
        call("mail1", 4, "lists/test/config.pck", Some(libc::ENOENT), "pos-dentry(ev 0)+x17"),
        routed("mail1", 4, "test@lists", RouteStage::Delivery),
        call("mail1", 5, "lists/test/config.pck", Some(libc::ENOENT), "x18"),
        call("mail1", 5, "lists/test/config.pck.last", Some(libc::ENOENT), "neg-dentry(ev 3)"),
        note(
            "mail1",
            5,
            ModelEvent::ListMissing {
                list: "test".into(),
                files: vec!["lists/test/config.pck".into(), "lists/test/config.pck.last".into()],
                errnos: vec!["ENOENT".into(), "ENOENT".into()],
            },
        ),
        note(
            "mail1",
            5,
            ModelEvent::PostExited {
                list: "test".into(),
                message_id: "m3".into(),
                exit_code: 1,
                reason: "no such list".into(),
            },
        ),
        call("mail2", 6, "lists/test/config.db", None, "x19"),
        call("mail2", 6, "lists/test/config.db", Some(libc::ESTALE), "pos-dentry(ev 4)+x20"),
        note(
            "mail2",
            6,
            ModelEvent::PostExited {
                list: "test".into(),
                message_id: "m4".into(),
                exit_code: 1,
                reason: "ESTALE".into(),
            },
        ),
        call("mail2", 7, "lists/test/config.pck", Some(libc::ENOENT), "x21"),
        routed("mail2", 7, "test-bounces@lists", RouteStage::Delivery),
        injected("m1"),
        bounced("m1", 550),
        injected("m2"),
        bounced("m2", 550),
        injected("m3"),
        bounced("m3", 550),
        injected("m4"),
        bounced("m4", 550),
        injected("m5"),
        bounced("m5", 0),
    ]);
    let missing: Vec<(&str, u64)> = f.missing.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        missing,
        [("delivery_server", 2), ("post_server", 1), ("post_stale_handle", 1), ("rcpt_negative_dentry", 1)]
    );
    assert_eq!((f.appearances(), f.bounced, f.bounced_list_missing, f.bounced_other()), (5, 5, 4, 1));
    assert_eq!(
        f.missing_line(),
        "a list appeared missing 5 times: 1 rcpt: negative dentry, 2 delivery: server, 1 post: server, 1 post: stale handle"
    );
}

/// On a run: the figures add up, and the report, `--json` and the sweep line
/// carry the same ones.
#[test]
fn a_runs_mail_figures_add_up_and_reach_the_json_and_the_sweep_line() {
    let out = crate::mmsim(&["run", "two-servers", "--seed", "1", "--set", "load.posts=20", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mail: MailFigures = serde_json::from_value(report["figures"]["mail"].clone()).unwrap();
    assert_eq!(mail.injected, 40);
    assert_eq!(mail.accepted + mail.bounced, mail.injected, "{mail:?}");
    assert_eq!(mail.delivered + mail.shunted + mail.undelivered, mail.accepted, "{mail:?}");
    assert_eq!(mail.bounced_list_missing, 0, "{mail:?}");
    let text = crate::mmsim(&["run", "two-servers", "--seed", "1", "--set", "load.posts=20"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text.lines().find(|l| l.starts_with("mail ")).expect("a mail line");
    assert!(line.ends_with(&mail.mail_line().unwrap()), "{line}");
    assert!(text.lines().any(|l| l == format!("missing     {}", mail.missing_line())), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("r.jsonl");
    let sweep = crate::mmsim(&[
        "sweep",
        "two-servers",
        "--seeds",
        "1..2",
        "--set",
        "load.posts=20",
        "--out",
        jsonl.to_str().unwrap(),
    ]);
    let summary = String::from_utf8_lossy(&sweep.stderr);
    let line: scenarios::sweep::SeedLine =
        serde_json::from_str(std::fs::read_to_string(&jsonl).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(line.figures.mail, mail);
    assert!(line.rpcs > 0);
    assert!(summary.contains(&format!("  mail: {}; ", mail.mail_line().unwrap())), "{summary}");
}
