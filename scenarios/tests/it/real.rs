//! The model on the real kernel, with real processes (`RealOs`, re-executing mmsim).

use std::process::Command;

fn lock_stress(dir: &std::path::Path, variant: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mmsim"))
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

/// Mailman 2.1's LockFile has R6 (spec/mailman.md §6): a waiter whose stat
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
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mmsim")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
