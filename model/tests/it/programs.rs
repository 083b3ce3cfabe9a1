//! Program dispatch and strict argument parsing.

use model::programs::{parse_runner_spec, run, PROGRAMS};
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
fn every_program_has_a_description() {
    for name in ["mailmanctl", "qrunner", "qrunner20", "post", "mta", "smtp-sink", "sender"] {
        assert!(PROGRAMS.iter().any(|(n, d)| *n == name && !d.is_empty()), "{name}");
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
    let exited =
        events.iter().filter(|e| matches!(e, ModelEvent::RunnerExited { reason, .. } if reason == "sigterm")).count();
    assert_eq!(exited, 6);
    assert!(!os.exists("locks/master-qrunner"));
}
