//! The inode store applies each procedure atomically with POSIX semantics.

use sim::nfs::proto::{Body, CreateMode, Fh, NfsStat, Reply, Request, Sattr, SetTime, Stable};
use sim::nfs::store::{ReaddirOrder, Store, ROOT};

fn store() -> Store {
    Store::new(1_000_000_000_000, 1_000_000, ReaddirOrder::Creation, 0)
}

fn handle(r: &Reply) -> Fh {
    match r.status {
        Ok(Body::Handle(fh)) => fh,
        ref other => panic!("expected a handle, got {other:?}"),
    }
}

fn create(s: &mut Store, name: &str) -> Fh {
    handle(&s.apply(&Request::Create { dir: ROOT, name: name.into(), mode: CreateMode::Guarded }, 2_000_000_000_000))
}

fn status(r: Reply) -> Result<(), NfsStat> {
    r.status.map(|_| ())
}

#[test]
fn link_raises_nlink_and_unlink_lowers_it() {
    let mut s = store();
    let a = create(&mut s, "a");
    let r = s.apply(&Request::Link { fh: a, dir: ROOT, name: "b".into() }, 0);
    assert_eq!(r.obj.map(|a| a.nlink), Some(2), "LINK returns the source's post-op attributes");
    assert_eq!(s.attrs_of("a").unwrap().nlink, 2);
    status(s.apply(&Request::Remove { dir: ROOT, name: "a".into() }, 0)).unwrap();
    assert_eq!(s.attrs_of("b").unwrap().nlink, 1);
}

#[test]
fn link_over_an_existing_name_is_eexist_and_still_returns_source_attributes() {
    let mut s = store();
    let a = create(&mut s, "a");
    create(&mut s, "b");
    let r = s.apply(&Request::Link { fh: a, dir: ROOT, name: "b".into() }, 0);
    assert_eq!(r.status, Err(NfsStat::Exist));
    assert_eq!(r.obj.map(|a| a.nlink), Some(1));
}

#[test]
fn a_freed_inode_makes_its_handle_stale() {
    let mut s = store();
    let a = create(&mut s, "a");
    status(s.apply(&Request::Remove { dir: ROOT, name: "a".into() }, 0)).unwrap();
    assert_eq!(s.apply(&Request::Getattr { fh: a }, 0).status, Err(NfsStat::Stale));
    // A new file of the same name is a new inode with a new generation.
    let a2 = create(&mut s, "a");
    assert_ne!(a, a2);
    assert_eq!(s.apply(&Request::Read { fh: a, offset: 0, count: 10 }, 0).status, Err(NfsStat::Stale));
}

#[test]
fn rename_over_an_existing_file_is_atomic_and_frees_the_target() {
    let mut s = store();
    let tmp = create(&mut s, "config.tmp");
    let old = create(&mut s, "config");
    status(s.apply(
        &Request::Rename { from_dir: ROOT, from_name: "config.tmp".into(), to_dir: ROOT, to_name: "config".into() },
        0,
    ))
    .unwrap();
    assert_eq!(s.resolve("config"), Some(tmp));
    assert_eq!(s.resolve("config.tmp"), None);
    assert_eq!(s.apply(&Request::Getattr { fh: old }, 0).status, Err(NfsStat::Stale));
}

#[test]
fn rename_keeps_an_old_inode_alive_through_another_link() {
    let mut s = store();
    let old = create(&mut s, "config");
    status(s.apply(&Request::Link { fh: old, dir: ROOT, name: "config.last".into() }, 0)).unwrap();
    create(&mut s, "tmp");
    status(s.apply(
        &Request::Rename { from_dir: ROOT, from_name: "tmp".into(), to_dir: ROOT, to_name: "config".into() },
        0,
    ))
    .unwrap();
    assert_eq!(s.apply(&Request::Getattr { fh: old }, 0).obj.map(|a| a.nlink), Some(1));
}

#[test]
fn replayed_non_idempotent_procedures_report_the_wrong_result() {
    let mut s = store();
    let a = create(&mut s, "a");
    let link = Request::Link { fh: a, dir: ROOT, name: "b".into() };
    status(s.apply(&link, 0)).unwrap();
    assert_eq!(s.apply(&link, 0).status, Err(NfsStat::Exist));
    let rename = Request::Rename { from_dir: ROOT, from_name: "b".into(), to_dir: ROOT, to_name: "c".into() };
    status(s.apply(&rename, 0)).unwrap();
    assert_eq!(s.apply(&rename, 0).status, Err(NfsStat::Noent));
    let remove = Request::Remove { dir: ROOT, name: "c".into() };
    status(s.apply(&remove, 0)).unwrap();
    assert_eq!(s.apply(&remove, 0).status, Err(NfsStat::Noent));
}

#[test]
fn exclusive_create_succeeds_on_replay_only_with_the_same_verifier() {
    let mut s = store();
    let req = |v| Request::Create { dir: ROOT, name: "lock".into(), mode: CreateMode::Exclusive(v) };
    let fh = handle(&s.apply(&req(0x1234_0000_0007), 0));
    assert_eq!(handle(&s.apply(&req(0x1234_0000_0007), 0)), fh);
    assert_eq!(s.apply(&req(0x1234_0000_0008), 0).status, Err(NfsStat::Exist));
    // knfsd's match also wants the file empty: once written (and its times put
    // back to the verifier's, so that only the size differs), a replay is EEXIST.
    s.apply(&Request::Write { fh, offset: 0, data: b"held".to_vec(), stable: Stable::FileSync }, 0);
    let verifier_times = Sattr {
        size: None,
        mtime: Some(SetTime::ClientTime(0x1234 * 1_000_000_000)),
        atime: Some(SetTime::ClientTime(7 * 1_000_000_000)),
    };
    assert!(s.apply(&Request::Setattr { fh, sattr: verifier_times }, 0).status.is_ok());
    assert_eq!(s.apply(&req(0x1234_0000_0007), 0).status, Err(NfsStat::Exist));
}

#[test]
fn readdir_lists_entries_in_creation_order_and_rmdir_refuses_a_non_empty_directory() {
    let mut s = store();
    let d = handle(&s.apply(&Request::Mkdir { dir: ROOT, name: "q".into() }, 0));
    for name in ["c", "a", "b"] {
        s.apply(&Request::Create { dir: d, name: name.into(), mode: CreateMode::Unchecked }, 0);
    }
    match s.apply(&Request::Readdir { dir: d }, 0).status {
        Ok(Body::Entries(names)) => assert_eq!(names, ["c", "a", "b"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.apply(&Request::Rmdir { dir: ROOT, name: "q".into() }, 0).status, Err(NfsStat::Notempty));
}

#[test]
fn timestamps_are_rounded_to_the_server_granularity() {
    let mut s = Store::new(0, 1_000_000_000, ReaddirOrder::Creation, 0);
    let r = s.apply(&Request::Create { dir: ROOT, name: "f".into(), mode: CreateMode::Unchecked }, 5_999_999_999);
    assert_eq!(r.obj.unwrap().mtime, 5_000_000_000);
}
