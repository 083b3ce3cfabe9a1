//! Timestamps and clocks (docs/semantics/linux-nfs-client.md §12, §13): the exclusive-create verifier in mtime
//! until the follow-up SETATTR, and client versus server time in `utime`.

use std::time::Duration;

use sim::{ClientProfile, ClockConfig, Flags, MountOptions, ServerConfig, EPOCH_UNIX_S};

use crate::harness::{at, config, host, push, Bench};

#[test]
fn exclusive_create_shows_the_verifier_as_mtime_until_the_setattr() {
    let creator = MountOptions { compound_gap_ms_max: 2000, ..MountOptions::default() };
    let mut b = Bench::new(config(
        80,
        ServerConfig::default(),
        vec![host("h1", creator, &["one"]), host("h2", MountOptions::profile(ClientProfile::Noac), &["two"])],
    ));
    b.program("one", |p, _log| async move {
        at(&p, 100).await;
        let flags = Flags { write: true, create: true, exclusive: true, ..Default::default() };
        let fd = p.open("lock", flags).await.unwrap();
        p.close(fd).await.unwrap();
    });
    b.program("two", |p, log| async move {
        let (mut verifier_seen, mut final_seen) = (false, false);
        for _ in 0..400 {
            if let Ok(a) = p.stat("lock").await {
                // The verifier is `{jiffies, pid}`: far from the server's 2002 clock.
                let secs = a.attr.mtime / 1_000_000_000;
                if (secs - EPOCH_UNIX_S as i64).abs() > 3600 {
                    verifier_seen = true;
                } else {
                    final_seen = true;
                }
            }
            p.sleep(Duration::from_millis(10)).await;
        }
        push(&log, format!("verifier seen {verifier_seen}, server time seen {final_seen}"));
    });
    b.run_until_done(20_000);
    assert_eq!(b.lines(), ["verifier seen true, server time seen true"]);
}

#[test]
fn utime_with_a_time_stores_the_client_clock_and_without_one_the_server_clock() {
    let mut h1 = host("h1", MountOptions::default(), &["one"]);
    h1.clock = ClockConfig { offset_ms: -3_600_000, ..ClockConfig::default() };
    let mut b = Bench::new(config(81, ServerConfig::default(), vec![h1]));
    b.program("one", |p, log| async move {
        crate::harness::write_file(&p, "f", b"").await;
        let client_now = sim::from_system_time(p.now());
        p.set_times("f", Some(client_now)).await.unwrap();
        let explicit = p.stat("f").await.unwrap().attr.mtime;
        p.set_times("f", None).await.unwrap();
        p.sleep(Duration::from_secs(4)).await;
        let server = p.stat("f").await.unwrap().attr.mtime;
        push(&log, format!("explicit is client time {}", explicit == client_now));
        push(&log, format!("server time is an hour ahead {}", (server - explicit) / 1_000_000_000 >= 3599));
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["explicit is client time true", "server time is an hour ahead true"]);
}
