//! The model on the real kernel, with real processes (`RealOs`, re-executing mmsim).

use std::process::Command;

#[test]
fn four_real_processes_never_overlap_inside_one_mailman_lockfile() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .args(["real", "lock-stress", "--dir", dir.path().to_str().unwrap(), "--processes", "4", "--rounds", "200"])
        .args(["--retry-ms-spread", "20", "--hold-ms", "1", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["acquisitions"], 800, "{r}");
    assert_eq!(r["overlaps"], 0, "{r}");
    assert_eq!(r["failed_processes"], 0, "{r}");
    assert!(r["waits"].as_u64().unwrap() > 0, "the processes contended: {r}");
    // Every claim file was cleaned up, and the lock is free.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("locks")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
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
