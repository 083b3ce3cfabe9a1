//! `mmsim real corrupt`: corrupt Mailman files on the real filesystem
//! (docs/semantics/mailman-corrupt-files.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use scenarios::corrupt::{BAD_PCK, BAD_PCK_BYTES, EMPTY_BAK};

fn corrupt(dir: &Path, cwd: &Path, json: bool) -> Output {
    let mut c = crate::mmsim_command();
    c.args(["real", "corrupt", "--dir", dir.to_str().unwrap()]).current_dir(cwd);
    if json {
        c.arg("--json");
    }
    c.output().unwrap()
}

fn case<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["cases"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no case {id}"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn logs(c: &serde_json::Value) -> Vec<(String, String)> {
    c["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["log"].as_str().unwrap().to_string(), e["message"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn real_corrupt_handles_each_case_as_mailman_2_1_39() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = corrupt(d, d, true);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["profile"], "2.1.39");
    let ids: Vec<&str> = r["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["config", "queue-entry", "bak", "lock"]);

    // 1. config.pck: fallback and the 2.1.5+ repair.
    let c = case(&r, "config");
    assert_eq!(c["outcome"], "fell back to config.pck.last, repaired (config.pck.corrupt kept)", "{c}");
    assert_eq!(c["as_release"], true);
    assert_eq!(c["call"], "MailList(\"test\").Load(): ok, post_id 7");
    let list = d.join("lists/test");
    assert_eq!(names(&list), ["config.pck", "config.pck.corrupt", "config.pck.last", "config.pck.safety"]);
    let last = std::fs::read(list.join("config.pck.last")).unwrap();
    assert_eq!(std::fs::read(list.join("config.pck")).unwrap(), last);
    assert_eq!(std::fs::read(list.join("config.pck.safety")).unwrap(), last);
    let corrupt = std::fs::read(list.join("config.pck.corrupt")).unwrap();
    assert!(corrupt.len() < last.len() && serde_json::from_slice::<serde_json::Value>(&corrupt).is_err());
    let l = logs(c);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0].0, "error");
    assert!(l[0].1.starts_with("couldn't load config file lists/test/config.pck\nEOF while parsing"), "{l:?}");
    assert_eq!(l[1], ("error".into(), "fixing corrupt config file, using: lists/test/config.pck.last".into()));

    // 2. The undecodable entry: dequeue's rename to .bak, then _oneloop's finish(preserve=True).
    let c = case(&r, "queue-entry");
    assert_eq!(c["outcome"], format!("undecodable: preserved in qfiles/bad/{BAD_PCK}.psv"), "{c}");
    assert_eq!(c["as_release"], true);
    assert_eq!(std::fs::read(d.join(format!("qfiles/bad/{BAD_PCK}.psv"))).unwrap(), BAD_PCK_BYTES);
    assert_eq!(
        logs(c),
        [
            (
                "error".to_string(),
                "Uncaught runner exception: cannot decode queue entry: expected value at line 1 column 1".to_string()
            ),
            ("error".to_string(), format!("Skipping and preserving unparseable message: {BAD_PCK}")),
        ]
    );

    // 3. The zero-length .bak: recover_backup_files preserves it at start-up.
    let c = case(&r, "bak");
    assert_eq!(c["outcome"], format!("not recovered to .pck: preserved in qfiles/bad/{EMPTY_BAK}.psv"), "{c}");
    assert_eq!(c["as_release"], true);
    assert_eq!(std::fs::read(d.join(format!("qfiles/bad/{EMPTY_BAK}.psv"))).unwrap(), b"");
    assert_eq!(
        logs(c),
        [(
            "error".to_string(),
            format!("Unpickling .bak exception: EOFError: empty entry\npreserving file: {EMPTY_BAK}")
        )]
    );
    assert!(names(&d.join("qfiles/in")).is_empty());
    assert_eq!(names(&d.join("qfiles/bad")), [format!("{BAD_PCK}.psv"), format!("{EMPTY_BAK}.psv")]);

    // 4. The garbage lock: linkcount 1, judged by its mtime, broken, acquired, released.
    let c = case(&r, "lock");
    assert_eq!(
        c["outcome"],
        "unexpected linkcount 1 (a file, not a claim's hard link), lifetime expired (mtime 3600 s old): broken, \
         then acquired and released",
        "{c}"
    );
    assert_eq!(c["as_release"], true);
    assert_eq!(c["call"], "MailList(\"other\").Lock(10): acquired; Unlock(): ok");
    assert_eq!(
        logs(c),
        [
            ("locks".to_string(), "other.lock unexpected linkcount: 1".to_string()),
            ("locks".to_string(), "other.lock lifetime has expired, breaking".to_string()),
        ]
    );
    assert!(names(&d.join("locks")).is_empty());
    // The model's own event lines say what the break read as the winner.
    let locks_log = std::fs::read_to_string(d.join("logs/locks")).unwrap();
    assert!(locks_log.contains(r##""kind":"lock_broken""##) && locks_log.contains("#garbage, not a claim 0xdeadbeef"));
}

/// Every file, directory and mtime below `root`, except `skip`.
fn tree(root: &Path, skip: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p == skip {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            out.insert(p.display().to_string(), (m.len(), m.modified().unwrap()));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    let m = std::fs::metadata(root).unwrap();
    out.insert(root.display().to_string(), (m.len(), m.modified().unwrap()));
    out
}

#[test]
fn real_corrupt_writes_nothing_outside_its_dir() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::write(parent.path().join("neighbour"), b"keep me").unwrap();
    std::fs::create_dir(parent.path().join("sibling")).unwrap();
    let d = parent.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let before = tree(parent.path(), &d);
    let out = corrupt(&d, cwd.path(), false);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tree(parent.path(), &d), before, "the parent of --dir changed");
    assert!(names(cwd.path()).is_empty(), "the working directory changed");
    assert_eq!(names(&d), ["lists", "locks", "logs", "qfiles"]);
}

#[test]
fn real_corrupt_text_report_is_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let out = corrupt(tmp.path(), tmp.path(), false);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap().replace(&tmp.path().display().to_string(), "[DIR]");
    insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("real-corrupt", text);
    });
}

#[test]
fn real_corrupt_refuses_a_bad_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let missing = tmp.path().join("missing");
    crate::check_bad_input(&["real", "corrupt", "--dir", file.to_str().unwrap()], "not a directory");
    crate::check_bad_input(&["real", "corrupt", "--dir", missing.to_str().unwrap(), "--json"], "not a directory");
    // A directory that already has the layout (a second run).
    std::fs::create_dir(tmp.path().join("logs")).unwrap();
    crate::check_bad_input(&["real", "corrupt", "--dir", tmp.path().to_str().unwrap()], "already holds logs/");
    assert!(!missing.exists());
    // Read-only: root writes anyway, so only the probe decides; skip the check as root.
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let ro = tmp.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        crate::check_bad_input(&["real", "corrupt", "--dir", ro.to_str().unwrap()], "not writable");
        assert!(names(&ro).is_empty());
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
