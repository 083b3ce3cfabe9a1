//! The model on the real kernel, with real processes (`RealOs`, re-executing mmsim).

use std::process::Command;

fn lock_stress(dir: &std::path::Path, variant: &str) -> serde_json::Value {
    let out = crate::mmsim_command()
        .args(["real", "lock-stress", "--dir", dir.to_str().unwrap(), "--processes", "4", "--rounds", "200"])
        .args(["--retry-ms-spread", "20", "--hold-ms", "1", "--variant", variant, "--json"])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// flufl.lock never breaks a lock whose release time reads as missing, so on a
/// local filesystem four processes never overlap.
#[test]
fn four_real_processes_never_overlap_inside_one_flufl_lockfile() {
    let dir = tempfile::tempdir().unwrap();
    let r = lock_stress(dir.path(), "flufl");
    assert_eq!(r["acquisitions"], 800, "{r}");
    assert_eq!(r["overlaps"], 0, "{r}");
    assert_eq!(r["breaks"], 0, "{r}");
    assert_eq!(r["failed_processes"], 0, "{r}");
    assert!(r["waits"].as_u64().unwrap() > 0, "the processes contended: {r}");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("locks")).unwrap().collect();
    assert!(left.is_empty(), "every claim file was cleaned up and the lock is free: {left:?}");
}

/// Mailman 2.1's LockFile has R6 (docs/semantics/mailman-races.md): a waiter whose stat
/// finds the lock file gone reads the release time as -1 and breaks whatever
/// lock exists a moment later, possibly a third process's fresh one. On the real
/// kernel that happens too, now and then (the break may even read the fresh
/// holder's claim as the "winner"). No lock here lives long enough to expire,
/// so every break is an R6 break, and the claim for Mailman 2.1 is not "no
/// overlap" but "no overlap without such a break".
#[test]
fn four_real_processes_overlap_inside_a_mailman_2_1_lockfile_only_after_an_r6_break() {
    let dir = tempfile::tempdir().unwrap();
    let r = lock_stress(dir.path(), "mailman21");
    assert_eq!(r["acquisitions"], 800, "{r}");
    assert!(r["overlaps"].as_u64().unwrap() <= r["breaks"].as_u64().unwrap(), "an overlap with no break: {r}");
}

#[test]
fn the_log_check_finds_an_overlap() {
    let log = "enter a 0\nexit a 0\nenter b 0\nenter c 0\nexit b 0\nexit c 0\n";
    let check = scenarios::lock_worker::check_log(log);
    assert_eq!(check.sections, 3);
    assert_eq!(check.overlaps, 1);
    assert!(check.first_overlap.unwrap().contains("c entered while b"));
}

#[test]
fn real_lock_stress_refuses_bad_input() {
    for args in [
        &["real", "lock-stress", "--dir", "/nonexistent-dir"][..],
        &["real", "lock-stress", "--dir", "/tmp", "--variant", "posix"],
        &["real", "lock-stress", "--dir", "/tmp", "--processes", "0"],
        // Checked by lock-worker's own declaration before any worker starts.
        &["real", "lock-stress", "--dir", "/tmp", "--lifetime-s=-1"],
        &["real", "lock-stress", "--dir", "/tmp", "--lifetime-s=NaN"],
        &["real", "lock-stress", "--dir", "/tmp", "--hold-ms=99999999999"],
    ] {
        let out = crate::mmsim_command().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end().lines().count(), 1, "{args:?}");
    }
}

/// 300 posts queued in a real `qfiles/in`, two real IncomingRunner processes on
/// disjoint slices: each message is processed exactly once.
#[test]
fn two_real_runners_on_disjoint_slices_process_each_of_300_messages_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let exec = |args: &[&str]| {
        let mut c = crate::mmsim_command();
        c.args(["exec", "--root", root, "--host", "real"]).args(args);
        c
    };
    let ok = |mut c: Command| assert!(c.status().unwrap().success());
    ok(exec(&["install", "--profile=2.1.39", "--list=test", "--members=3"]));
    for i in 0..300 {
        let text = format!("From: a@example.org\nTo: test@lists.example.com\nSubject: post {i}\nMessage-Id: <r-{i}@real>\n\nbody {i}\n");
        ok(exec(&["post", "--profile=2.1.39", &format!("--stdin={text}"), "test"]));
    }
    let queued = |q: &str| std::fs::read_dir(dir.path().join("qfiles").join(q)).unwrap().count();
    assert_eq!(queued("in"), 300);
    // Short lock retry sleeps keep the test quick; nothing else is changed.
    let settings = r#"--settings={"list_store":{"lock":{"retry_sleep_spread_s":0.02}}}"#;
    let mut runners: Vec<std::process::Child> = (0..2)
        .map(|slice| {
            exec(&["qrunner", "--profile=2.1.39", settings, &format!("--runner=Incoming:{slice}:2")]).spawn().unwrap()
        })
        .collect();
    let deadline = std::time::Duration::from_secs(120);
    #[allow(clippy::disallowed_methods)] // a real test waits in real time
    let started = std::time::Instant::now();
    while queued("in") > 0 && started.elapsed() < deadline {
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(std::time::Duration::from_millis(300));
    for r in &mut runners {
        // SAFETY: sending SIGTERM to our own child.
        unsafe { libc::kill(r.id() as i32, libc::SIGTERM) };
        let _ = r.wait();
    }
    assert_eq!(queued("in"), 0, "the runners drained qfiles/in");
    assert_eq!(queued("shunt"), 0, "nothing was shunted");
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for entry in std::fs::read_dir(dir.path().join("qfiles/out")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let id = text.split("<r-").nth(1).and_then(|t| t.split('>').next()).unwrap().to_string();
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), 300, "every message reached qfiles/out");
    assert!(
        seen.values().all(|n| *n == 1),
        "each exactly once: {:?}",
        seen.iter().filter(|(_, n)| **n != 1).collect::<Vec<_>>()
    );
    // The final post_id is not asserted: two IncomingRunners contend for the
    // list lock, and Mailman 2.1's R6 can (rarely) let both hold it.
}

fn list_stress(dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let out = crate::mmsim_command()
        .args(["real", "list-stress", "--dir", dir.to_str().unwrap(), "--processes", "4", "--rounds", "150"])
        .args(["--retry-ms-spread", "20", "--members", "50", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code() == Some(1),
        r["lost_updates"].as_u64().unwrap() > 0,
        "exit 1 means a lost update: {r}"
    );
    r
}

/// Four real processes number posts as 2.0's IncomingRunner would: every Load
/// re-reads, so an update can only be lost when R6 broke a held lock.
#[test]
fn four_real_processes_numbering_posts_lose_no_update_without_a_lock_break_when_every_load_rereads() {
    let dir = tempfile::tempdir().unwrap();
    let r = list_stress(dir.path(), &["--load-shortcut", "none"]);
    let n = |k: &str| r[k].as_u64().unwrap();
    let (saved, refused) = (n("cycles"), n("saves_refused"));
    assert_eq!(saved + refused + n("lock_timeouts") + n("shunted"), 600, "every round ends one way: {r}");
    assert_eq!(n("shunted"), 0, "no error on a local directory: {r}");
    assert_eq!(r["failed_processes"], 0, "{r}");
    assert!(r["lost_updates"].as_u64().unwrap() <= r["breaks"].as_u64().unwrap(), "a lost update with no break: {r}");
    assert!(refused <= r["breaks"].as_u64().unwrap(), "a refused save with no break: {r}");
    // newlist saved post_id 1; a save builds on at most the highest number, so
    // each one that is not lost adds exactly one.
    assert_eq!(r["post_id_max"].as_u64().unwrap(), 1 + saved - r["lost_updates"].as_u64().unwrap(), "{r}");
}

/// A post log, then its (cycles, lost, refused, timeouts, shunted), then what the first lost update says.
type PostLogCase = (&'static str, (u64, u64, u64, u64, u64), Option<&'static str>);

#[test]
fn the_post_log_check_finds_a_lost_update_and_counts_refusals() {
    let cases: &[PostLogCase] = &[
        ("post a 0 1\npost b 0 2\npost a 1 3\n", (3, 0, 0, 0, 0), None),
        (
            "post a 0 1\npost b 0 2\npost a 1 2\npost b 1 3\n",
            (4, 1, 0, 0, 0),
            Some("line 3: a saved post_id 2, after line 2 where b had saved 2"),
        ),
        ("post a 0 1\nrefused b 0\ntimed-out c 0\nshunted d 0 ESTALE\npost b 1 2\n", (2, 0, 1, 1, 1), None),
        ("garbage\npost a x y\n\npost a 0 1\n", (1, 0, 0, 0, 0), None),
    ];
    for &(log, counts, first) in cases {
        let c = scenarios::list_worker::check_log(log);
        assert_eq!((c.cycles, c.lost_updates, c.saves_refused, c.lock_timeouts, c.shunted), counts, "{log:?}");
        match first {
            Some(needle) => assert!(c.first_lost_update.as_deref().unwrap().contains(needle), "{log:?}: {c:?}"),
            None => assert_eq!(c.first_lost_update, None, "{log:?}"),
        }
    }
}

#[test]
fn real_list_stress_refuses_bad_input() {
    let full = tempfile::tempdir().unwrap();
    std::fs::write(full.path().join("x"), "").unwrap();
    let full = full.path().to_str().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["real", "list-stress", "--dir", "/nonexistent-dir"], "not a directory"),
        (&["real", "list-stress", "--dir", full], "not empty"),
        (&["real", "list-stress", "--dir", empty, "--profile", "2.2"], "--profile=2.2"),
        (&["real", "list-stress", "--dir", empty, "--load-shortcut", "mtime"], "--load-shortcut=mtime"),
        (&["real", "list-stress", "--dir", empty, "--processes", "0"], "at least 1"),
        (&["real", "list-stress", "--dir", empty, "--members", "100001"], "expected 0..=100000 members"),
        (&["real", "list-stress", "--dir", empty, "--retry-ms-spread", "3600001"], "milliseconds"),
    ];
    for (args, needle) in cases {
        crate::check_bad_input(args, needle);
    }
    assert_eq!(std::fs::read_dir(empty).unwrap().count(), 0, "a refused run writes nothing");
}
