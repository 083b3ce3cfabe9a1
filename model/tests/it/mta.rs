//! The MTA's list router, pipe transport and the `post` script
//! (spec/mailman.md §5).

use model::mta::{pipe_outcome, route, MtaSettings, PipeOutcome, Route};
use model::post::{post, EntryScript};
use model::profile::{MailmanProfile, Settings};
use model::{ExitStatus, ModelEvent, Signal};

use crate::support::{args, block_on, make_list as newlist, TestOs};

async fn make_list(os: &TestOs, s: &Settings) {
    newlist(os, &s.list_store, "test", &[]).await;
}

#[test]
fn router_accepts_a_list_whose_config_file_exists() {
    let os = TestOs::new(1);
    let s = Settings::default();
    block_on(async {
        make_list(&os, &s).await;
        assert_eq!(
            route(&os, &s.mta, "Test@lists.example.com").await,
            Route::Pipe { list: "test".into(), program: "post" }
        );
        assert_eq!(
            route(&os, &s.mta, "test-bounces+bob=example.org@lists.example.com").await,
            Route::Pipe { list: "test".into(), program: "bounces" }
        );
    });
}

#[test]
fn router_skips_on_enoent_so_the_address_is_unrouteable() {
    let os = TestOs::new(1);
    let s = Settings::default();
    block_on(async {
        assert_eq!(
            route(&os, &s.mta, "nolist@x").await,
            Route::Unrouteable { list: "nolist".into(), errno: libc::ENOENT }
        );
    });
}

#[test]
fn router_defers_on_estale() {
    let os = TestOs::new(1);
    let s = Settings::default();
    block_on(async {
        make_list(&os, &s).await;
        os.world.stat_faults.borrow_mut().insert("lists/test/config.pck".into(), libc::ESTALE);
        assert_eq!(route(&os, &s.mta, "test@x").await, Route::Defer { list: "test".into(), errno: libc::ESTALE });
    });
}

#[test]
fn router_of_2_0_requires_config_db() {
    let os = TestOs::new(1);
    let s = Settings::default();
    let s20 = MailmanProfile::V2_0.settings();
    block_on(async {
        make_list(&os, &s).await;
        assert!(matches!(route(&os, &s20.mta, "test@x").await, Route::Unrouteable { errno: libc::ENOENT, .. }));
    });
}

#[test]
fn hostile_list_names_are_refused_without_touching_the_filesystem() {
    let os = TestOs::new(1);
    let s = MtaSettings::default();
    block_on(async {
        for addr in ["../etc@x", "a/b@x", "..@x", "te..st@x", "a b@x", "@x"] {
            assert!(matches!(route(&os, &s, addr).await, Route::Unrouteable { errno: 0, .. }), "{addr}");
        }
    });
    assert!(os.world.stat_log.borrow().is_empty());
}

#[test]
fn pipe_exit_codes_map_as_exim_does() {
    let t = [75, 73];
    assert_eq!(pipe_outcome(&Ok(ExitStatus::Code(0)), &t), PipeOutcome::Delivered);
    assert_eq!(pipe_outcome(&Ok(ExitStatus::Code(75)), &t), PipeOutcome::Deferred);
    assert_eq!(pipe_outcome(&Ok(ExitStatus::Code(73)), &t), PipeOutcome::Deferred);
    assert_eq!(pipe_outcome(&Ok(ExitStatus::Code(1)), &t), PipeOutcome::Bounced);
    assert_eq!(pipe_outcome(&Ok(ExitStatus::Code(2)), &t), PipeOutcome::Bounced);
    assert_eq!(pipe_outcome(&Ok(ExitStatus::Signaled(Signal::Kill)), &t), PipeOutcome::Bounced);
}

#[test]
fn post_exits_1_for_a_missing_list_and_0_after_enqueueing() {
    let os = TestOs::new(1);
    let s = Settings::default();
    block_on(async {
        assert_eq!(post(&os, &s, EntryScript::Post, "nolist", "Subject: x\n\nb\n").await, 1);
        make_list(&os, &s).await;
        assert_eq!(post(&os, &s, EntryScript::Post, "test", "Subject: x\nMessage-Id: <p@x>\n\nb\n").await, 0);
        assert_eq!(os.names("qfiles/in").len(), 1);
    });
    let codes: Vec<i32> = os
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::PostExited { exit_code, .. } => Some(exit_code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![1, 0]);
}

#[test]
fn post_of_2_0_loads_the_list_and_writes_a_flat_entry() {
    let os = TestOs::new(1);
    let s = MailmanProfile::V2_0.settings();
    block_on(async {
        std::fs::create_dir_all(os.path("qfiles")).unwrap();
        assert_eq!(post(&os, &s, EntryScript::Post, "test", "Subject: x\n\nb\n").await, 1);
        newlist(&os, &s.list_store, "test", &[]).await;
        // One save, so no `.last` to fall back to: MMCorruptListDatabaseError.
        std::fs::write(os.path("lists/test/config.db"), b"{\"post_id\": ").unwrap();
        assert_eq!(post(&os, &s, EntryScript::Post, "test", "Subject: x\n\nb\n").await, 1);
        std::fs::remove_file(os.path("lists/test/config.db")).unwrap();
        newlist(&os, &s.list_store, "test", &[]).await;
        assert_eq!(post(&os, &s, EntryScript::Post, "test", "Subject: x\n\nb\n").await, 0);
        assert_eq!(os.names("qfiles").len(), 2);
    });
}

fn start_mta(os: &TestOs) {
    let mta = os.fork();
    tokio::task::spawn_local(async move { model::programs::run(mta, "mta", &[]).await });
}

#[test]
fn sender_posts_through_the_mta_into_the_in_queue() {
    let os = TestOs::new(7);
    let s = Settings::default();
    block_on(async {
        make_list(&os, &s).await;
        start_mta(&os);
        tokio::task::yield_now().await;
        let a = args(&["--to=test@lists.example.com", "--count=3", "--connections=2", "--window-s=10"]);
        assert_eq!(model::programs::run(os.fork(), "sender", &a).await, 0);
        assert_eq!(os.names("qfiles/in").len(), 3);
    });
    let accepted = os.events().iter().filter(|e| matches!(e, ModelEvent::SenderAccepted { .. })).count();
    assert_eq!(accepted, 3);
    assert!(os.events().iter().any(|e| matches!(e, ModelEvent::MtaPiped { exit_code: 0, .. })));
}

#[test]
fn mail_to_a_missing_list_bounces_at_rcpt_with_enoent() {
    let os = TestOs::new(7);
    block_on(async {
        start_mta(&os);
        tokio::task::yield_now().await;
        let a = args(&["--to=nolist@lists.example.com", "--count=1"]);
        assert_eq!(model::programs::run(os.fork(), "sender", &a).await, 0);
    });
    let events = os.events();
    assert!(events.iter().any(|e| matches!(e, ModelEvent::MtaRouted { decision, errno, .. }
        if decision == "bounced_unknown_list" && errno == "ENOENT")));
    assert!(events.iter().any(|e| matches!(e, ModelEvent::SenderBounced { code: 550, .. })));
}

#[test]
fn an_estale_stat_defers_and_the_sender_retries() {
    let os = TestOs::new(7);
    let s = Settings::default();
    block_on(async {
        make_list(&os, &s).await;
        os.world.stat_faults.borrow_mut().insert("lists/test/config.pck".into(), libc::ESTALE);
        start_mta(&os);
        tokio::task::yield_now().await;
        let a = args(&["--to=test@lists.example.com", "--count=1", "--attempts-max=2", "--retry-delay-s=5"]);
        assert_eq!(model::programs::run(os.fork(), "sender", &a).await, 1);
    });
    let deferred = os.events().iter().filter(|e| matches!(e, ModelEvent::SenderDeferred { code: 451, .. })).count();
    assert_eq!(deferred, 1);
}
