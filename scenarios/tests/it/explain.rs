//! `mmsim explain`: the story of a failing seed names the errno, the file and
//! trace events; a passing seed says so and exits 0. Each story is pinned
//! whole (`snapshots/explain-*.snap`), so a change of wording or of the causal
//! chain it finds shows in review.

use super::{mmsim, pin};

/// A seed where a list appears missing: the 2002 setting on Mailman 2.1-early
/// (10 posts through each host), with the Linux 2.2 client's dentry and open
/// rules switched back to the modern ones (docs/semantics/linux-2.2-client.md):
/// the client trusts a dentry of `config.db` whose file the other host renamed
/// over, so `list_exists()` sees ESTALE and ENOENT. With the 2.2-era rules no
/// small seed of this setting shows the window.
pub const SMALL_2002: &[&str] = &[
    "two-servers-2002-21early",
    "--seed",
    "1",
    "--set",
    "load.posts=10",
    "--set",
    "mount.cto=cto",
    "--set",
    "mount.dentry_revalidate=parent-verifier",
    "--set",
    "mount.lookupcache=positive",
];

#[test]
fn explain_tells_the_missing_list_story_of_a_failing_2002_seed() {
    let mut args = vec!["explain"];
    args.extend_from_slice(SMALL_2002);
    args.extend_from_slice(&["--oracle", "no_missing_list"]);
    let out = mmsim(&args);
    let story = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{story}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(story.contains("no_missing_list"), "{story}");
    assert!(story.contains("ESTALE") || story.contains("ENOENT"), "no errno in:\n{story}");
    assert!(story.contains("config.db"), "no file in:\n{story}");
    assert!(story.contains("[ev "), "no event number in:\n{story}");
    // Every step names its event, and the event numbers are real: the provenance
    // of the failing call leads to the server or a cache.
    assert!(story.contains("answered by RPC") || story.contains("answered from"), "{story}");
    assert!(story.contains("concluded"), "{story}");
    pin("explain-two-servers-2002-21early-small-no_missing_list", &story);
}

#[test]
fn explain_on_a_passing_seed_says_no_violation_and_exits_0() {
    let out = mmsim(&["explain", "smoke", "--seed", "7"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no violation");
    assert_eq!(out.stderr, b"", "a passing seed writes nothing to stderr");
}

#[test]
fn explain_tells_who_held_and_who_broke_a_lock_when_two_held_it() {
    // One worker holds for 40 s, far past the 15 s lifetime: another breaks its lock.
    let out = mmsim(&[
        "explain",
        "lock-stress",
        "--seed",
        "1",
        "--set",
        "hosts.0.boot.1.args.4=--hold-ms=40000",
        "--set",
        "hosts.0.boot.1.args.2=--rounds=2",
    ]);
    let story = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{story}");
    assert!(story.contains("lock_exclusion failed"), "{story}");
    assert!(story.contains("broke locks/test.lock"), "{story}");
    assert!(story.contains("while the other holder still held it"), "{story}");
    assert!(story.contains("let go only at"), "{story}");
    pin("explain-lock-stress-seed-1-one-long-holder", &story);
}

#[test]
fn explain_refuses_an_unknown_oracle() {
    let out = mmsim(&["explain", "smoke", "--oracle", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end().lines().count(), 1);
}
