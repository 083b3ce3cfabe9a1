//! The MTA's routers and transports (docs/semantics/exim.md) and the `post`
//! script.

use std::time::Duration;

use model::mta::{pipe_outcome, route, ListCheck, MtaSettings, PipeOutcome, RetryRule, RetryState, Route};
use model::post::{post, EntryScript};
use model::profile::{MailmanProfile, Settings};
use model::smtp::{SmtpClient, SmtpError};
use model::{ExitStatus, ModelEvent, Os, RouteStage, Signal};

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
            route(&os, &s.mta, "Test@lists.example.com", RouteStage::Verify).await,
            Route::Pipe { list: "test".into(), program: "post" }
        );
        assert_eq!(
            route(&os, &s.mta, "test-bounces+bob=example.org@lists.example.com", RouteStage::Verify).await,
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
            route(&os, &s.mta, "nolist@x", RouteStage::Verify).await,
            Route::Unrouteable { list: "nolist".into(), errno: libc::ENOENT }
        );
    });
}

/// docs/semantics/exim.md, "The list check": the directory and the
/// config-or-last checks route a list whose `config.pck` is absent for a
/// moment (as in Save's silly-rename window, `.last` present); the stock check
/// does not. ESTALE defers under `require_files` but makes `exists` false.
#[test]
fn the_list_check_routes_by_directory_or_by_config_or_last() {
    let os = TestOs::new(1);
    let s = Settings::default();
    let with = |list_check| MtaSettings { list_check, ..s.mta.clone() };
    let pipe = || Route::Pipe { list: "test".into(), program: "post" };
    let gone = |errno| Route::Unrouteable { list: "test".into(), errno };
    block_on(async {
        make_list(&os, &s).await;
        os.rename("lists/test/config.pck", "lists/test/config.pck.last").await.unwrap();
        let cases = [
            (ListCheck::RequireFilesConfig, gone(libc::ENOENT)),
            (ListCheck::RequireFilesDirectory, pipe()),
            (ListCheck::ExistsConfigOrLast, pipe()),
        ];
        for (check, expected) in cases {
            assert_eq!(route(&os, &with(check), "test@x", RouteStage::Verify).await, expected, "{check:?}");
        }
        os.unlink("lists/test/config.pck.last").await.unwrap();
        assert_eq!(
            route(&os, &with(ListCheck::ExistsConfigOrLast), "test@x", RouteStage::Verify).await,
            gone(libc::ENOENT)
        );
        assert_eq!(route(&os, &with(ListCheck::RequireFilesDirectory), "test@x", RouteStage::Verify).await, pipe());
        assert_eq!(
            route(&os, &with(ListCheck::RequireFilesDirectory), "nolist@x", RouteStage::Verify).await,
            Route::Unrouteable { list: "nolist".into(), errno: libc::ENOENT }
        );
        os.world.stat_faults.borrow_mut().insert("lists/test/config.pck".into(), libc::ESTALE);
        os.world.stat_faults.borrow_mut().insert("lists/test/config.pck.last".into(), libc::ESTALE);
        assert_eq!(
            route(&os, &with(ListCheck::ExistsConfigOrLast), "test@x", RouteStage::Verify).await,
            gone(libc::ESTALE)
        );
        assert_eq!(
            route(&os, &with(ListCheck::RequireFilesConfig), "test@x", RouteStage::Verify).await,
            Route::Defer { list: "test".into(), errno: libc::ESTALE }
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
        assert_eq!(
            route(&os, &s.mta, "test@x", RouteStage::Verify).await,
            Route::Defer { list: "test".into(), errno: libc::ESTALE }
        );
    });
}

#[test]
fn router_of_2_0_requires_config_db() {
    let os = TestOs::new(1);
    let s = Settings::default();
    let s20 = MailmanProfile::V2_0.settings();
    block_on(async {
        make_list(&os, &s).await;
        assert!(matches!(
            route(&os, &s20.mta, "test@x", RouteStage::Verify).await,
            Route::Unrouteable { errno: libc::ENOENT, .. }
        ));
    });
}

#[test]
fn hostile_list_names_are_refused_without_touching_the_filesystem() {
    let os = TestOs::new(1);
    let s = MtaSettings::default();
    block_on(async {
        for addr in ["../etc@x", "a/b@x", "..@x", "te..st@x", "a b@x", "@x"] {
            assert!(
                matches!(route(&os, &s, addr, RouteStage::Verify).await, Route::Unrouteable { errno: 0, .. }),
                "{addr}"
            );
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
        let a = args(&["--host=mx", "--to=test@lists.example.com", "--count=3", "--connections=2", "--window-s=10"]);
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
        let a = args(&["--host=mx", "--to=nolist@lists.example.com", "--count=1"]);
        assert_eq!(model::programs::run(os.fork(), "sender", &a).await, 0);
    });
    let events = os.events();
    assert!(events.iter().any(|e| matches!(e, ModelEvent::MtaRouted { decision, errno, .. }
        if *decision == model::RouteDecision::BouncedUnknownList && errno == "ENOENT")));
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
        let a =
            args(&["--host=mx", "--to=test@lists.example.com", "--count=1", "--attempts-max=2", "--retry-delay-s=5"]);
        assert_eq!(model::programs::run(os.fork(), "sender", &a).await, 1);
    });
    let deferred = os.events().iter().filter(|e| matches!(e, ModelEvent::SenderDeferred { code: 451, .. })).count();
    assert_eq!(deferred, 1);
}

fn start_mta_with(os: &TestOs, settings: &str) {
    let mta = os.fork();
    let a = args(&[&format!("--settings={settings}")]);
    tokio::task::spawn_local(async move { model::programs::run(mta, "mta", &a).await });
}

fn start_sink(os: &TestOs, extra: &[&str]) {
    let sink = os.fork();
    let mut a = vec!["--port=2525"];
    a.extend_from_slice(extra);
    let a = args(&a);
    tokio::task::spawn_local(async move { model::programs::run(sink, "smtp-sink", &a).await });
}

const SMARTHOST: &str = r#"{"mta":{"smarthost":{"host":"sink","port":2525}}}"#;
const POST: &str = "From: a@example.org\nSubject: hi\nMessage-Id: <m1@x>\n\nbody\n";

/// Exim routes an address twice: a list config that vanishes between RCPT
/// (verified) and DATA (routed again for delivery) makes the address
/// unrouteable at delivery, and the message bounces.
#[test]
fn the_delivery_routes_again_so_a_config_gone_after_rcpt_bounces() {
    let os = TestOs::new(7);
    let s = Settings::default();
    let reply = block_on(async {
        make_list(&os, &s).await;
        start_mta(&os);
        tokio::task::yield_now().await;
        os.world.stat_log.borrow_mut().clear();
        let mut c = SmtpClient::connect(&os, "mx", 25).await.unwrap();
        assert_eq!(c.command("HELO client").await.unwrap().code, 250);
        assert_eq!(c.command("MAIL FROM:<a@example.org>").await.unwrap().code, 250);
        assert_eq!(c.command("RCPT TO:<test@lists.example.com>").await.unwrap().code, 250);
        std::fs::remove_file(os.path("lists/test/config.pck")).unwrap();
        c.data(POST).await
    });
    assert!(matches!(reply, Err(SmtpError::Response { code: 550, .. })), "{reply:?}");
    let stages: Vec<(RouteStage, model::RouteDecision)> = os
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::MtaRouted { stage, decision, .. } => Some((stage, decision)),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        vec![
            (RouteStage::Verify, model::RouteDecision::Accepted),
            (RouteStage::Delivery, model::RouteDecision::BouncedUnknownList)
        ]
    );
    assert_eq!(os.world.stat_log.borrow().len(), 2, "one require_files stat per routing");
    assert!(os.names("qfiles/in").is_empty());
}

/// The default ACL refuses relaying for a client elsewhere.
#[test]
fn a_client_elsewhere_may_not_relay() {
    let os = TestOs::new(7);
    let code = block_on(async {
        start_mta_with(&os, SMARTHOST);
        tokio::task::yield_now().await;
        let mut c = SmtpClient::connect(&os, "mx", 25).await.unwrap();
        c.command("HELO client").await.unwrap();
        c.command("MAIL FROM:<a@example.org>").await.unwrap();
        c.command("RCPT TO:<member0001@example.net>").await.unwrap().code
    });
    assert_eq!(code, 550);
    assert!(os.world.stat_log.borrow().is_empty());
}

/// Mailman's `SMTPHOST = 'localhost'`: the MTA accepts the members' addresses
/// from this host without routing them, a delivery process carries them to
/// the smarthost, and the one the smarthost refuses comes back to the list's
/// `-bounces` address as a bounce message, through the Mailman router, into
/// `qfiles/bounces` with its `X-Failed-Recipients`.
#[test]
fn relayed_mail_reaches_the_smarthost_and_a_refusal_bounces_to_the_list() {
    let os = TestOs::new(7);
    let s = Settings::default();
    let refused = block_on(async {
        make_list(&os, &s).await;
        start_sink(&os, &["--perm=member0007@example.net"]);
        start_mta_with(&os, SMARTHOST);
        tokio::task::yield_now().await;
        let mut c = SmtpClient::connect(&os, "localhost", 25).await.unwrap();
        let rcpts: Vec<String> = (0..150).map(|i| format!("member{i:04}@example.net")).collect();
        let refused = c.sendmail("mail1", "test-bounces@lists.example.com", &rcpts, POST).await.unwrap();
        c.quit().await;
        os.wait_children().await;
        refused
    });
    assert!(refused.is_empty(), "the MTA accepts every relayed address: {refused:?}");
    let events = os.events();
    let received = events.iter().filter(|e| matches!(e, ModelEvent::SinkReceived { .. })).count();
    assert_eq!(received, 149);
    let remote: Vec<(u32, Vec<String>)> = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::MtaRemote { delivered, failed, deferred, .. } => {
                assert!(deferred.is_empty());
                Some((*delivered, failed.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(remote, vec![(149, vec!["member0007@example.net".to_string()])]);
    // No RCPT of a relayed address was routed; only the bounce message was.
    let routed: Vec<(RouteStage, String)> = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::MtaRouted { stage, recipient, .. } => Some((*stage, recipient.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(routed, vec![(RouteStage::Delivery, "test-bounces@lists.example.com".to_string())]);
    let bounces = os.names("qfiles/bounces");
    assert_eq!(bounces.len(), 1, "{bounces:?}");
}

/// 150 addresses, in transactions of at most `max_rcpt` (100), all in the first attempt.
#[test]
fn the_smtp_transport_delivers_more_than_max_rcpt_in_one_attempt() {
    let os = TestOs::new(7);
    block_on(async {
        start_sink(&os, &[]);
        tokio::task::yield_now().await;
        let mta = os.fork();
        let to: Vec<String> = (0..150).map(|i| format!("m{i}@example.net")).collect();
        let a = args(&[
            &format!("--settings={SMARTHOST}"),
            "--from=",
            &format!("--to={}", to.join(",")),
            &format!("--stdin={POST}"),
        ]);
        assert_eq!(model::programs::run(mta, "mta-deliver", &a).await, 0);
    });
    let events = os.events();
    assert_eq!(events.iter().filter(|e| matches!(e, ModelEvent::SinkReceived { .. })).count(), 150);
    let attempts: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::MtaRemote { attempt, delivered, .. } => Some((*attempt, *delivered)),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![(1, 150)]);
}

/// Exim's smtp transport pipelines when the peer offers PIPELINING: per
/// transaction one write carries `MAIL FROM`, every `RCPT TO` and `DATA`
/// (they fit Exim's 4096-byte buffer), and the server answers the group in
/// one write, because it holds its replies until it must read again.
#[test]
fn the_smtp_transport_pipelines_and_the_server_answers_each_group_in_one_write() {
    let os = TestOs::new(7);
    let (sink_pid, deliver_pid) = (os.world_next_pid(), os.world_next_pid() + 1);
    block_on(async {
        start_sink(&os, &["--perm=m7@example.net"]);
        tokio::task::yield_now().await;
        let mta = os.fork();
        let to: Vec<String> = (0..150).map(|i| format!("m{i}@example.net")).collect();
        let a = args(&[
            &format!("--settings={SMARTHOST}"),
            "--from=",
            &format!("--to={}", to.join(",")),
            &format!("--stdin={POST}"),
        ]);
        model::programs::run(mta, "mta-deliver", &a).await;
    });
    let writes = os.world.tcp_writes.borrow();
    let by = |pid| -> Vec<String> {
        writes
            .iter()
            .filter(|(p, _)| *p == pid)
            .map(|(_, bytes)| {
                let text = String::from_utf8_lossy(bytes);
                let lines: Vec<&str> = text.split_terminator("\r\n").collect();
                format!("{} .. {} ({} lines)", lines[0], lines[lines.len() - 1], lines.len())
            })
            .collect()
    };
    assert_eq!(
        by(deliver_pid)[..6],
        [
            "EHLO host1 .. EHLO host1 (1 lines)",
            "MAIL FROM:<> .. DATA (102 lines)",
            "From: a@example.org .. . (7 lines)",
            "MAIL FROM:<> .. DATA (52 lines)",
            "From: a@example.org .. . (7 lines)",
            "QUIT .. QUIT (1 lines)",
        ]
    );
    let sink = by(sink_pid);
    assert_eq!(
        sink[..5],
        [
            "220 host1 ESMTP mmsim .. 220 host1 ESMTP mmsim (1 lines)",
            "250-host1 Hello host1 .. 250 PIPELINING (2 lines)",
            "250 OK .. 354 Enter message, ending with \".\" on a line by itself (102 lines)",
            "250 OK queued .. 250 OK queued (1 lines)",
            "250 OK .. 354 Enter message, ending with \".\" on a line by itself (52 lines)",
        ]
    );
    let refused = os.events().into_iter().find_map(|e| match e {
        ModelEvent::MtaRemote { delivered, failed, .. } => Some((delivered, failed)),
        _ => None,
    });
    assert_eq!(refused, Some((149, vec!["m7@example.net".to_string()])), "a refused RCPT in a group still fails alone");
}

/// A 4xx defers the address; it is tried again on the retry rule's schedule
/// and, past its last cutoff, fails and is bounced (here to a sender
/// elsewhere, through the smarthost).
#[test]
fn a_deferred_address_is_retried_on_schedule_then_fails() {
    let os = TestOs::new(7);
    let t0 = os.now();
    block_on(async {
        start_sink(&os, &["--temp=m1@example.net"]);
        tokio::task::yield_now().await;
        let mta = os.fork();
        let a = args(&[
            &format!("--settings={SMARTHOST}"),
            "--from=poster@example.org",
            "--to=m0@example.net,m1@example.net",
            &format!("--stdin={POST}"),
        ]);
        assert_eq!(model::programs::run(mta, "mta-deliver", &a).await, 0);
    });
    let attempts: Vec<(u32, u32, usize, usize)> = os
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::MtaRemote { attempt, delivered, failed, deferred, .. } => {
                Some((attempt, delivered, failed.len(), deferred.len()))
            }
            _ => None,
        })
        .collect();
    // F,2h,15m: tries at 0, 15 m, …, 1 h 45 m (8); G,16h,1h,1.5 from 2 h: 1, 1.5,
    // 2.25, 3.375, 5.06 h (to 15.2 h), 7.6 h more passes 16 h; F,4d,6h from
    // there until 96 h; then the address fails.
    let rule = RetryRule::default();
    let mut state = RetryState::default();
    let mut elapsed = Duration::ZERO;
    let mut expected = 1;
    while let Some(w) = rule.next_wait(elapsed, &mut state) {
        elapsed += w;
        expected += 1;
    }
    assert_eq!(attempts.len(), expected);
    assert_eq!(attempts[0], (1, 1, 0, 1));
    assert!(attempts[1..attempts.len() - 1].iter().all(|a| a.1 == 0 && a.2 == 0 && a.3 == 1));
    assert_eq!(attempts.last().map(|a| (a.2, a.3)), Some((0, 1)), "the last try still defers");
    let waited = os.now().duration_since(t0).unwrap();
    assert!(waited >= Duration::from_secs(96 * 3600), "{waited:?}");
    // The bounce message went to the sender through the smarthost.
    assert!(os
        .events()
        .iter()
        .any(|e| matches!(e, ModelEvent::SinkReceived { recipient, .. } if recipient == "poster@example.org")));
}

#[test]
fn the_default_retry_rule_is_exims() {
    let rule = RetryRule::default();
    let mut state = RetryState::default();
    let mut elapsed = Duration::ZERO;
    let mut waits_min = Vec::new();
    while let Some(w) = rule.next_wait(elapsed, &mut state) {
        waits_min.push(w.as_secs_f64() / 60.0);
        elapsed += w;
    }
    assert_eq!(&waits_min[..8], &[15.0; 8]);
    // The geometric step lasts while less than 16 h have passed: its last wait
    // starts at 15.2 h.
    assert_eq!(&waits_min[8..14], &[60.0, 90.0, 135.0, 202.5, 303.75, 455.625]);
    assert!(waits_min[14..].iter().all(|w| *w == 360.0), "{waits_min:?}");
    assert!(elapsed >= Duration::from_secs(96 * 3600) && elapsed < Duration::from_secs(102 * 3600));
    for bad in [
        r#"{"steps":[{"fixed":{"until_s":3600,"every_s":0}}]}"#,
        r#"{"steps":[{"fixed":{"until_s":3600,"every_s":60}},{"fixed":{"until_s":60,"every_s":60}}]}"#,
        r#"{"steps":[{"geometric":{"until_s":3600,"first_s":60,"factor":0.5}}]}"#,
    ] {
        let rule: RetryRule = serde_json::from_str(bad).unwrap();
        assert!(rule.check().is_err(), "{bad}");
    }
}
