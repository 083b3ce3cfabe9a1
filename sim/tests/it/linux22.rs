//! The Linux 2.2 client's own rules (docs/semantics/linux-2.2-client.md): dentries
//! judged by their age against the parent's mtime, negative dentries, and an
//! open that sends no GETATTR. Each test runs the `linux-2.2` profile and, where
//! it tells the rule apart, the modern one on the same steps.

use sim::{ClientProfile, EventKind, MountOptions, ServerConfig};

use crate::harness::{at, config, host, push, ro, show, write_file, Bench};

const MIN_MS: u64 = 60_000;

fn l22() -> MountOptions {
    MountOptions::profile(ClientProfile::Linux22)
}

fn two_hosts(seed: u64, mount: MountOptions) -> Bench {
    Bench::new(config(
        seed,
        ServerConfig::default(),
        vec![host("h1", mount.clone(), &["one"]), host("h2", mount, &["two"])],
    ))
}

/// The procedures of the RPCs each call `op` on `args` sent, in call order.
fn rpcs_of(b: &Bench, op: &str, args: &str) -> Vec<Vec<&'static str>> {
    let trace = b.sim.world().trace();
    let events = trace.events();
    let spans: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Call { span, op: o, args: a, .. } if *o == op && a == args => Some(*span),
            _ => None,
        })
        .collect();
    spans
        .iter()
        .map(|s| {
            events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Rpc { span, proc, retransmit: 0, .. } if span == s => Some(*proc),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// h1 creates `d/f`, stats it twice soon after, then twice again once `d` has
/// been unchanged for 20 minutes.
fn last_name_run(mount: MountOptions) -> Vec<Vec<&'static str>> {
    let mut b = two_hosts(60, mount);
    b.program("one", |p, _log| async move {
        p.mkdir("d").await.unwrap();
        write_file(&p, "d/f", b"x").await;
        at(&p, 1000).await;
        p.stat("d/f").await.unwrap();
        at(&p, 1500).await;
        p.stat("d/f").await.unwrap();
        at(&p, 20 * MIN_MS).await;
        p.stat("d/f").await.unwrap();
        at(&p, 20 * MIN_MS + 500).await;
        p.stat("d/f").await.unwrap();
    });
    b.program("two", |_p, _log| async move {});
    b.run_until_done(30 * MIN_MS);
    rpcs_of(&b, "stat", "\"d/f\"")
}

#[test]
fn a_2_2_last_name_is_looked_up_again_on_every_use_while_its_directory_changed_recently() {
    let runs = last_name_run(l22());
    // Within 15 minutes of d's change each use of `f` sends a LOOKUP (timeout 0),
    // while `d` itself, not the last name, lives its attribute timeout.
    assert_eq!(runs[0], ["LOOKUP"], "{runs:?}");
    assert_eq!(runs[1], ["LOOKUP"], "{runs:?}");
    // 20 minutes on: the first use is past f's attribute timeout (and d's), the
    // second is answered by the dentry, as d's mtime is old.
    assert!(runs[2].contains(&"LOOKUP"), "{runs:?}");
    assert_eq!(runs[3], Vec::<&str>::new(), "{runs:?}");
    // The modern client trusts the dentry while d's attributes are fresh.
    let modern = last_name_run(MountOptions::default());
    assert_eq!(modern[1], Vec::<&str>::new(), "{modern:?}");
}

#[test]
fn a_2_2_dentry_whose_name_now_leads_to_another_file_is_dropped_and_the_name_looked_up_again() {
    let run = |mount: MountOptions| {
        let mut b = two_hosts(61, mount);
        b.program("one", |p, log| async move {
            p.mkdir("d").await.unwrap();
            write_file(&p, "d/f", b"old").await;
            at(&p, 2000).await;
            let fd = p.open("d/f", ro()).await.unwrap();
            push(&log, String::from_utf8_lossy(&p.read(fd, 10).await.unwrap()).to_string());
            p.close(fd).await.unwrap();
        });
        b.program("two", |p, _log| async move {
            at(&p, 1000).await;
            write_file(&p, "d/g", b"new").await;
            p.rename("d/g", "d/f").await.unwrap();
        });
        b.run_until_done(10_000);
        let c = b.sim.world().counters();
        (b.lines(), c.estale_retries + c.estale_returns, rpcs_of(&b, "open", "\"d/f\" RDONLY"))
    };
    let (lines, estale, opens) = run(l22());
    assert_eq!(lines, ["new"]);
    assert_eq!(estale, 0, "the revalidation LOOKUP found the new handle before any ESTALE");
    assert_eq!(opens, [["LOOKUP", "LOOKUP"]], "revalidation, then the lookup of the name afresh");
}

/// h1 looks `d/x` up while it is absent at `first_ms`; h2 creates it 300 ms later;
/// h1 looks again at each of `then_ms`.
fn negative_run(first_ms: u64, then_ms: &'static [u64]) -> Vec<String> {
    let mut b = two_hosts(62, l22());
    b.program("one", move |p, log| async move {
        p.mkdir("d").await.unwrap();
        at(&p, first_ms).await;
        push(&log, show(&p.stat("d/x").await));
        for t in then_ms {
            at(&p, *t).await;
            push(&log, format!("{}ms {}", t - first_ms, show(&p.stat("d/x").await)));
        }
    });
    b.program("two", move |p, _log| async move {
        at(&p, first_ms + 300).await;
        write_file(&p, "d/x", b"x").await;
    });
    b.run_until_done(first_ms + 60_000);
    let hits = b.sim.world().counters().negative_dentry_hits;
    let mut lines = b.lines();
    lines.push(format!("negative hits {hits}"));
    lines
}

#[test]
fn a_2_2_negative_dentry_is_trusted_for_1_s_then_revalidated() {
    assert_eq!(negative_run(100, &[600, 1200]), ["ENOENT", "500ms ENOENT", "1100ms ok", "negative hits 1"]);
}

#[test]
fn a_2_2_negative_dentry_in_a_directory_unchanged_for_5_minutes_is_trusted_for_30_s() {
    let t0 = 6 * MIN_MS;
    let then: &'static [u64] = &[6 * MIN_MS + 5000, 6 * MIN_MS + 31_000];
    assert_eq!(negative_run(t0, then), ["ENOENT", "5000ms ENOENT", "31000ms ok", "negative hits 1"]);
}

#[test]
fn a_2_2_open_sends_no_getattr() {
    let run = |mount: MountOptions| {
        let mut b = two_hosts(63, mount);
        b.program("one", |p, _log| async move {
            write_file(&p, "f", b"x").await;
            // Past every attribute timeout and the 15 minutes of the last-name rule.
            at(&p, 16 * MIN_MS).await;
            p.stat("f").await.unwrap();
            at(&p, 16 * MIN_MS + 500).await;
            let fd = p.open("f", ro()).await.unwrap();
            p.close(fd).await.unwrap();
        });
        b.program("two", |_p, _log| async move {});
        b.run_until_done(20 * MIN_MS);
        rpcs_of(&b, "open", "\"f\" RDONLY")
    };
    assert_eq!(run(l22()), [Vec::<&str>::new()]);
    assert_eq!(run(MountOptions::default()), [["GETATTR"]]);
}

#[test]
fn a_2_2_stale_handle_shows_at_read_not_at_open() {
    let run = |mount: MountOptions| {
        let mut b = two_hosts(64, mount);
        b.program("one", |p, log| async move {
            write_file(&p, "f", b"x").await;
            at(&p, 16 * MIN_MS).await;
            p.stat("f").await.unwrap();
            at(&p, 16 * MIN_MS + 1000).await;
            match p.open("f", ro()).await {
                Ok(fd) => {
                    push(&log, "open ok");
                    at(&p, 16 * MIN_MS + 5000).await;
                    push(&log, format!("read {}", show(&p.read(fd, 10).await)));
                    p.close(fd).await.unwrap();
                }
                Err(e) => push(&log, format!("open {}", show(&Err::<(), i32>(e)))),
            }
        });
        b.program("two", |p, _log| async move {
            at(&p, 16 * MIN_MS + 500).await;
            p.unlink("f").await.unwrap();
        });
        b.run_until_done(20 * MIN_MS);
        b.lines()
    };
    assert_eq!(run(l22()), ["open ok", "read ESTALE"]);
    assert_eq!(run(MountOptions::default()), ["open ENOENT"]);
}

#[test]
fn the_2_2_profile_reads_and_writes_in_4_kb_chunks() {
    let m = l22();
    assert_eq!((m.rsize, m.wsize), (4096, 4096));
    let mut b = two_hosts(65, m);
    b.program("one", |p, _log| async move {
        write_file(&p, "f", &[7u8; 10_000]).await;
    });
    b.program("two", |_p, _log| async move {});
    b.run_until_done(10_000);
    let writes = b.events("rpc").into_iter().filter(|l| l.contains(" WRITE ")).count();
    assert_eq!(writes, 3, "10000 bytes in 4096-byte WRITEs");
}
