//! Program dispatch and strict argument parsing.

use model::programs::{parse_runner_spec, plan, run, Plan, SPECS};
use model::slice::Slice;
use model::ModelEvent;

use crate::support::{args, block_on, TestOs};

#[test]
fn an_unknown_program_exits_2_with_a_message() {
    let os = TestOs::new(1);
    assert_eq!(block_on(run(os.clone(), "sendmail", &[])), 2);
    assert!(os.events().iter().any(
        |e| matches!(e, ModelEvent::Log { log, message } if log == "stderr" && message.contains("unknown program"))
    ));
}

#[test]
fn unknown_options_and_bad_runner_specs_exit_2() {
    let os = TestOs::new(1);
    assert_eq!(block_on(run(os.clone(), "qrunner", &args(&["--runner=Incoming:2:2"]))), 2);
    assert_eq!(block_on(run(os.clone(), "qrunner", &args(&["--runner=Nope:0:1"]))), 2);
    assert_eq!(block_on(run(os.clone(), "post", &args(&["--stdin=x", "--frob=1", "test"]))), 2);
    assert_eq!(block_on(run(os.clone(), "post", &args(&["--profile=3.0", "--stdin=x", "test"]))), 2);
    assert_eq!(block_on(run(os.clone(), "post", &args(&["--settings={\"nope\":1}", "--stdin=x", "test"]))), 2);
}

#[test]
fn runner_specs_parse_as_name_slice_count() {
    assert_eq!(parse_runner_spec("Incoming:1:4").unwrap(), ("Incoming".to_string(), Slice { index: 1, count: 4 }));
    assert_eq!(parse_runner_spec("Outgoing").unwrap(), ("Outgoing".to_string(), Slice::WHOLE));
    assert!(parse_runner_spec("Incoming:1").is_err());
}

#[test]
fn every_program_declares_its_arguments() {
    for name in ["mailmanctl", "qrunner", "qrunner20", "post", "bounces", "mta", "mta-deliver", "smtp-sink", "sender"] {
        let spec = SPECS.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}"));
        assert!(!spec.summary.is_empty(), "{name}");
        for a in spec.options.iter().chain(spec.positional) {
            assert!(!a.help.is_empty(), "{name} --{}", a.name);
        }
    }
}

#[test]
fn the_declared_defaults_are_the_settings_defaults() {
    // The sender's defaults live in its declaration; SenderSettings::default() must agree.
    let Plan::Sender(s) = plan("sender", &args(&["--to=test@lists.example.com"])).unwrap() else { panic!() };
    assert_eq!(s, model::peers::SenderSettings::default());
    let Plan::Sink(s) = plan("smtp-sink", &[]).unwrap() else { panic!() };
    assert_eq!((s.port, s.sessions_max), (25, 20));
    assert!(s.permanent_failures.is_empty() && s.temporary_failures.is_empty());
}

/// Bad arguments of each model program: (program, args, what the one-line error says).
const BAD: &[(&str, &[&str], &str)] = &[
    ("mailmanctl", &["--profile=3.0"], "--profile=3.0: expected one of: 2.0, 2.1-early, 2.1.39"),
    ("mailmanctl", &["--settings={\"nope\":1}"], "unknown field `nope`"),
    ("mailmanctl", &["--settings={"], "--settings={: expected a JSON object"),
    ("mailmanctl", &["--settings=[1]"], "expected a JSON object"),
    ("mailmanctl", &["--frob=1"], "--frob=1: unknown option"),
    ("mailmanctl", &["extra"], "unexpected argument"),
    ("qrunner", &[], "--runner: required"),
    ("qrunner", &["--runner=Incoming:2:2"], "slice < count"),
    ("qrunner", &["--runner=Nope:0:1"], "expected a runner name"),
    ("qrunner20", &["--profile"], "expected --profile="),
    ("post", &["test"], "--stdin: required"),
    ("post", &["--stdin=x"], "LISTNAME: required"),
    ("post", &["--stdin=x", "../../etc"], "LISTNAME \"../../etc\""),
    ("post", &["--stdin=x", "--frob=1", "test"], "unknown option"),
    ("bounces", &["--stdin=x", "a/b"], "stays inside lists/"),
    ("mta", &["--settings={\"mta\":{\"smtp_port\":\"x\"}}"], "--settings="),
    (
        "mailmanctl",
        &["--settings={\"mailmanctl\":{\"lock_dir\":\"../../etc\"}}"],
        "mailmanctl.lock_dir \"../../etc\": expected a relative path",
    ),
    (
        "mailmanctl",
        &["--settings={\"mailmanctl\":{\"qrunners\":[{\"name\":\"Nope\",\"count\":1}]}}"],
        "mailmanctl.qrunners.0.name \"Nope\": expected one of",
    ),
    (
        "mailmanctl",
        &["--settings={\"mailmanctl\":{\"qrunners\":[{\"name\":\"Arch\",\"count\":0}]}}"],
        "mailmanctl.qrunners.0.count: expected 1..=256",
    ),
    ("qrunner", &["--runner=Arch", "--settings={\"queue\":{\"queue_dir\":\"/var/spool\"}}"], "queue.queue_dir"),
    ("post", &["--stdin=x", "--settings={\"outgoing\":{\"smtp_host\":\"a b\"}}", "test"], "outgoing.smtp_host"),
    ("smtp-sink", &["--port=0"], "--port=0: expected 1..=65535"),
    ("smtp-sink", &["--port=70000"], "expected 1..=65535"),
    ("smtp-sink", &["--sessions=0"], "expected 1..=10000 sessions"),
    ("smtp-sink", &["--perm=not an address"], "expected an email address"),
    ("sender", &[], "--to: required"),
    ("sender", &["--to=test@x", "--count=99999999999"], "--count=99999999999: expected 1..=1000000 messages"),
    ("sender", &["--to=test@x", "--count=0"], "expected 1..=1000000 messages"),
    ("sender", &["--to=test@x", "--count=-1"], "expected 1..=1000000 messages"),
    ("sender", &["--to=nobody"], "expected an email address"),
    ("sender", &["--to=a@b\r\nRCPT TO:<x@y>"], "expected an email address"),
    ("sender", &["--to=test@x", "--window-s=NaN"], "expected 0..=86400 seconds"),
    ("sender", &["--to=test@x", "--retry-delay-s=-1"], "expected 0..=86400 seconds"),
    ("sender", &["--to=test@x", "--connections=0"], "expected 1..=1000 connections"),
    ("sender", &["--to=test@x", "--host=a b"], "expected a host name"),
    ("sender", &["--to=test@x", "--id-prefix=a/b"], "--id-prefix=a/b"),
    ("sender", &["--to=test@x", "--count=5", "--count=6"], "given twice"),
    ("nosuch", &[], "unknown program"),
];

#[test]
fn bad_arguments_are_refused_by_plan_in_one_line_and_exit_2_when_run() {
    for (program, a, needle) in BAD {
        let e = plan(program, &args(a)).expect_err(&format!("{program} {a:?}")).to_string();
        assert!(e.contains(needle), "{program} {a:?}: {e:?} lacks {needle:?}");
        assert!(!e.contains('\n'), "{program} {a:?}: {e:?}");
        let os = TestOs::new(1);
        assert_eq!(block_on(run(os.clone(), program, &args(a))), 2, "{program} {a:?}");
        assert!(
            os.events()
                .iter()
                .any(|e| matches!(e, ModelEvent::Log { log, message } if log == "stderr" && message.contains(needle))),
            "{program} {a:?}"
        );
        assert!(
            os.world.stat_log.borrow().is_empty() && os.names("").is_empty(),
            "{program} {a:?}: refused before any I/O"
        );
    }
}

#[test]
fn settings_overrides_merge_over_the_profile() {
    let s = model::profile::settings_from("2.1-early", Some(r#"{"outgoing":{"deal_with_permfailures_every":10}}"#))
        .unwrap();
    assert_eq!(s.outgoing.deal_with_permfailures_every, 10);
    assert_eq!(s.queue.format, model::switchboard::QueueFormat::TwoFile21Early);
    assert!(model::profile::settings_from("2.1.39", Some(r#"{"queue":{"fromat":"one_pck"}}"#)).is_err());
}

#[test]
fn mailmanctl_starts_runners_and_stops_them_on_sigterm() {
    let os = TestOs::new(1);
    let master = os.fork();
    let master_pid = master.pid;
    std::fs::create_dir_all(os.path("locks")).unwrap();
    let code = block_on(async {
        let h = tokio::task::spawn_local(async move { run(master, "mailmanctl", &[]).await });
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        os.send_signal(master_pid, model::Signal::Term);
        h.await.unwrap()
    });
    assert_eq!(code, 0);
    let events = os.events();
    let spawned = events.iter().filter(|e| matches!(e, ModelEvent::RunnerSpawned { .. })).count();
    assert_eq!(spawned, 6);
    let exited = events
        .iter()
        .filter(|e| matches!(e, ModelEvent::RunnerExited { reason: model::RunnerExit::Sigterm, .. }))
        .count();
    assert_eq!(exited, 6);
    assert!(!os.exists("locks/master-qrunner"));
}

/// The master's wait loop (2.1 `bin/mailmanctl`, docs/semantics/mailman-queues-runners.md §14):
/// a child that exits with status 2 (its SIGINT handler) is restarted and not
/// counted; any other exit but SIGTERM's counts, and past `MAX_RESTARTS` the
/// child stays down ("reached maximum restart limit").
#[test]
fn mailmanctl_restarts_sigint_exits_without_counting_them_and_gives_up_after_max_restarts() {
    let spawned_of = |os: &TestOs| -> Vec<u32> {
        os.events()
            .iter()
            .filter_map(|e| match e {
                ModelEvent::RunnerSpawned { restarts, .. } => Some(*restarts),
                _ => None,
            })
            .collect()
    };
    let one_incoming = r#"--settings={"mailmanctl":{"qrunners":[{"name":"Incoming","count":1}]}}"#;
    // SIGINT twelve times: twelve restarts, none counted, though MAX_RESTARTS is 10.
    let os = TestOs::new(1);
    let master = os.fork();
    let master_pid = master.pid;
    std::fs::create_dir_all(os.path("locks")).unwrap();
    let child_args = args(&["--profile=2.1.39", one_incoming]);
    let code = block_on(async {
        let h = tokio::task::spawn_local(async move { run(master, "mailmanctl", &child_args).await });
        for _ in 0..13 {
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            os.send_signal(master_pid, model::Signal::Int);
        }
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        os.send_signal(master_pid, model::Signal::Term);
        h.await.unwrap()
    });
    assert_eq!(code, 0);
    assert_eq!(spawned_of(&os), vec![0; 14], "the first start and 13 restarts, none counted");

    // A runner that dies at once on a corrupt entry (2.1.2 lets the dequeue
    // exception escape): one start and ten counted restarts, then it stays down.
    let os = TestOs::new(1);
    let master = os.fork();
    let s = model::profile::MailmanProfile::V2_1Early.settings();
    let code = block_on(async {
        std::fs::create_dir_all(os.path("locks")).unwrap();
        crate::support::make_list(&os, &s.list_store, "test", &[]).await;
        model::post::post(&os, &s, model::post::EntryScript::Post, "test", "From: a@b\nSubject: x\n\nbody\n").await;
        let db = os.names("qfiles/in").into_iter().find(|n| n.ends_with(".db")).unwrap();
        std::fs::write(os.path(&format!("qfiles/in/{db}")), b"{\"listna").unwrap();
        run(master, "mailmanctl", &args(&["--profile=2.1-early", one_incoming])).await
    });
    assert_eq!(code, 0, "the master ends when no child is left");
    assert_eq!(spawned_of(&os), (0..=10).collect::<Vec<u32>>());
    assert!(os.events().iter().any(|e| matches!(e, ModelEvent::Log { message, .. }
        if message == "Qrunner Incoming reached maximum restart limit of 10, not restarting.")));
}
