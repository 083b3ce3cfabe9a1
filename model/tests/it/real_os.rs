//! `RealOs` on a temporary directory: each operation, with the errno values
//! the model branches on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::{errno, ExitStatus, FileType, ModelEvent, OpenFlags, Os, RealOs, SetTime, Signal, SpawnConfig};

fn real_os() -> (tempfile::TempDir, RealOs) {
    let dir = tempfile::tempdir().expect("temp dir");
    let os = RealOs::new(dir.path().to_path_buf(), "host1".to_string());
    (dir, os)
}

async fn write_file(os: &RealOs, path: &str, data: &[u8]) {
    let fd = os.open(path, OpenFlags::write_truncate()).await.unwrap();
    os.write(fd, data).await.unwrap();
    os.close(fd).await.unwrap();
}

async fn read_file(os: &RealOs, path: &str) -> Vec<u8> {
    let fd = os.open(path, OpenFlags::read_only()).await.unwrap();
    let mut out = Vec::new();
    loop {
        let chunk = os.read(fd, 3).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        out.extend(chunk);
    }
    os.close(fd).await.unwrap();
    out
}

#[tokio::test]
async fn written_bytes_read_back_in_small_chunks() {
    let (_dir, os) = real_os();
    write_file(&os, "a", b"hello world").await;
    assert_eq!(read_file(&os, "a").await, b"hello world");
}

#[tokio::test]
async fn seek_set_len_and_fstat_act_on_the_descriptor() {
    let (_dir, os) = real_os();
    let fd = os.open("a", OpenFlags::write_truncate()).await.unwrap();
    os.write(fd, b"0123456789").await.unwrap();
    os.seek(fd, 2).await.unwrap();
    os.write(fd, b"ab").await.unwrap();
    os.set_len(fd, 6).await.unwrap();
    os.fsync(fd).await.unwrap();
    let meta = os.fstat(fd).await.unwrap();
    assert_eq!((meta.size, meta.nlink, meta.file_type), (6, 1, FileType::File));
    os.close(fd).await.unwrap();
    assert_eq!(read_file(&os, "a").await, b"01ab45");
}

#[tokio::test]
async fn append_writes_at_the_end() {
    let (_dir, os) = real_os();
    write_file(&os, "a", b"one").await;
    let fd = os.open("a", OpenFlags::append()).await.unwrap();
    os.write(fd, b"two").await.unwrap();
    os.close(fd).await.unwrap();
    assert_eq!(read_file(&os, "a").await, b"onetwo");
}

#[tokio::test]
async fn write_truncate_empties_an_existing_file_in_place() {
    let (_dir, os) = real_os();
    write_file(&os, "a", b"long contents").await;
    let ino = os.stat("a").await.unwrap().ino;
    write_file(&os, "a", b"x").await;
    let meta = os.stat("a").await.unwrap();
    assert_eq!((meta.ino, meta.size), (ino, 1));
}

#[tokio::test]
async fn exclusive_create_of_an_existing_file_fails_with_eexist() {
    let (_dir, os) = real_os();
    let fd = os.open("a", OpenFlags::create_exclusive()).await.unwrap();
    os.close(fd).await.unwrap();
    let e = os.open("a", OpenFlags::create_exclusive()).await.unwrap_err();
    assert_eq!(errno(&e), libc::EEXIST);
}

#[tokio::test]
async fn opening_a_missing_file_for_reading_fails_with_enoent() {
    let (_dir, os) = real_os();
    let e = os.open("missing", OpenFlags::read_only()).await.unwrap_err();
    assert_eq!(errno(&e), libc::ENOENT);
}

#[tokio::test]
async fn closed_or_unknown_descriptors_fail_with_ebadf() {
    let (_dir, os) = real_os();
    let fd = os.open("a", OpenFlags::write_truncate()).await.unwrap();
    os.close(fd).await.unwrap();
    assert_eq!(errno(&os.write(fd, b"x").await.unwrap_err()), libc::EBADF);
    assert_eq!(errno(&os.close(fd).await.unwrap_err()), libc::EBADF);
}

#[tokio::test]
async fn link_raises_nlink_and_unlink_lowers_it() {
    let (_dir, os) = real_os();
    write_file(&os, "claim", b"claim").await;
    os.link("claim", "lock").await.unwrap();
    let (claim, lock) = (os.stat("claim").await.unwrap(), os.stat("lock").await.unwrap());
    assert_eq!((claim.nlink, lock.nlink), (2, 2));
    assert_eq!(claim.ino, lock.ino);
    os.unlink("lock").await.unwrap();
    assert_eq!(os.stat("claim").await.unwrap().nlink, 1);
}

#[tokio::test]
async fn link_onto_an_existing_name_fails_with_eexist() {
    let (_dir, os) = real_os();
    write_file(&os, "a", b"a").await;
    write_file(&os, "b", b"b").await;
    assert_eq!(errno(&os.link("a", "b").await.unwrap_err()), libc::EEXIST);
}

#[tokio::test]
async fn link_from_a_missing_name_fails_with_enoent() {
    let (_dir, os) = real_os();
    assert_eq!(errno(&os.link("missing", "b").await.unwrap_err()), libc::ENOENT);
}

#[tokio::test]
async fn rename_over_an_existing_file_replaces_it() {
    let (_dir, os) = real_os();
    write_file(&os, "tmp", b"new").await;
    write_file(&os, "config", b"old").await;
    let new_ino = os.stat("tmp").await.unwrap().ino;
    os.rename("tmp", "config").await.unwrap();
    assert_eq!(read_file(&os, "config").await, b"new");
    assert_eq!(os.stat("config").await.unwrap().ino, new_ino);
    assert_eq!(errno(&os.stat("tmp").await.unwrap_err()), libc::ENOENT);
}

#[tokio::test]
async fn rename_and_unlink_of_missing_names_fail_with_enoent() {
    let (_dir, os) = real_os();
    assert_eq!(errno(&os.rename("missing", "b").await.unwrap_err()), libc::ENOENT);
    assert_eq!(errno(&os.unlink("missing").await.unwrap_err()), libc::ENOENT);
}

#[tokio::test]
async fn mkdir_of_an_existing_directory_fails_with_eexist() {
    let (_dir, os) = real_os();
    os.mkdir("lists").await.unwrap();
    assert_eq!(os.stat("lists").await.unwrap().file_type, FileType::Dir);
    assert_eq!(errno(&os.mkdir("lists").await.unwrap_err()), libc::EEXIST);
}

#[tokio::test]
async fn rmdir_removes_only_empty_directories() {
    let (_dir, os) = real_os();
    os.mkdir("d").await.unwrap();
    write_file(&os, "d/f", b"").await;
    assert_eq!(errno(&os.rmdir("d").await.unwrap_err()), libc::ENOTEMPTY);
    os.unlink("d/f").await.unwrap();
    os.rmdir("d").await.unwrap();
    assert_eq!(errno(&os.stat("d").await.unwrap_err()), libc::ENOENT);
}

#[tokio::test]
async fn read_dir_lists_names_without_dot_entries() {
    let (_dir, os) = real_os();
    os.mkdir("q").await.unwrap();
    for name in ["b", "a", "c"] {
        write_file(&os, &format!("q/{name}"), b"").await;
    }
    let mut names = os.read_dir("q").await.unwrap();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(errno(&os.read_dir("missing").await.unwrap_err()), libc::ENOENT);
}

#[tokio::test]
async fn explicit_set_times_reads_back_through_stat() {
    let (_dir, os) = real_os();
    write_file(&os, "a", b"").await;
    let t = UNIX_EPOCH + Duration::new(1_000_000_123, 456_000_000);
    os.set_times("a", SetTime::Explicit(t)).await.unwrap();
    assert_eq!(os.stat("a").await.unwrap().mtime, t);
    let before_epoch = UNIX_EPOCH - Duration::new(5, 250_000_000);
    os.set_times("a", SetTime::Explicit(before_epoch)).await.unwrap();
    assert_eq!(os.stat("a").await.unwrap().mtime, before_epoch);
}

#[tokio::test]
async fn server_now_set_times_stores_the_current_time() {
    let (_dir, os) = real_os();
    write_file(&os, "a", b"").await;
    os.set_times("a", SetTime::Explicit(UNIX_EPOCH)).await.unwrap();
    let before = os.now() - Duration::from_secs(1);
    os.set_times("a", SetTime::ServerNow).await.unwrap();
    let mtime = os.stat("a").await.unwrap().mtime;
    assert!(mtime >= before && mtime <= os.now() + Duration::from_secs(1), "{mtime:?}");
}

#[tokio::test]
async fn set_times_of_a_missing_file_fails_with_enoent() {
    let (_dir, os) = real_os();
    let e = os.set_times("missing", SetTime::Explicit(SystemTime::UNIX_EPOCH)).await.unwrap_err();
    assert_eq!(errno(&e), libc::ENOENT);
}

#[tokio::test]
async fn identity_clock_and_random_come_from_the_real_process() {
    let (_dir, os) = real_os();
    assert_eq!(os.hostname(), "host1");
    assert_eq!(os.pid(), std::process::id());
    assert!(os.now() > UNIX_EPOCH + Duration::from_secs(1_600_000_000));
    let draws: Vec<f64> = (0..100).map(|_| os.random()).collect();
    assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
    assert!(draws.windows(2).any(|w| w[0] != w[1]));
    assert!(os.alive(os.pid()).await);
}

#[tokio::test]
async fn spawn_without_a_spawn_config_fails_with_enosys() {
    let (_dir, os) = real_os();
    assert_eq!(errno(&os.spawn("qrunner", &[]).await.unwrap_err()), libc::ENOSYS);
}

#[tokio::test]
async fn spawned_children_report_their_exit_code() {
    let (dir, os) = real_os();
    let os = os.with_spawn(SpawnConfig { exe: "/bin/sh".into(), args_prefix: vec!["-c".into()] });
    // `sh -c <program> <args...>`: the program is the script, the first arg is $0.
    let pid = os.spawn("exit 7", &["child".to_string()]).await.unwrap();
    assert_eq!(os.wait(pid).await.unwrap(), ExitStatus::Code(7));
    assert_eq!(errno(&os.wait(pid).await.unwrap_err()), libc::ECHILD);
    drop(dir);
}

#[tokio::test]
async fn killed_children_report_the_signal() {
    let (_dir, os) = real_os();
    let os = os.with_spawn(SpawnConfig { exe: "/bin/sleep".into(), args_prefix: vec![] });
    let pid = os.spawn("30", &[]).await.unwrap();
    assert!(os.alive(pid).await);
    os.kill(pid, Signal::Term).await.unwrap();
    assert_eq!(os.wait(pid).await.unwrap(), ExitStatus::Signaled(Signal::Term));
    let pid = os.spawn("30", &[]).await.unwrap();
    os.kill(pid, Signal::Kill).await.unwrap();
    assert_eq!(os.wait(pid).await.unwrap(), ExitStatus::Signaled(Signal::Kill));
}

#[tokio::test]
async fn a_caught_hup_is_taken_once() {
    let (_dir, os) = real_os();
    assert_eq!(os.take_signal(), None);
    os.kill(os.pid(), Signal::Hup).await.unwrap();
    let mut taken = None;
    for _ in 0..100 {
        taken = os.take_signal();
        if taken.is_some() {
            break;
        }
        os.sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(taken, Some(Signal::Hup));
    assert_eq!(os.take_signal(), None);
}

#[tokio::test]
async fn tcp_bytes_travel_from_connect_to_accept() {
    let (_dir, os) = real_os();
    let listener = os.tcp_listen(0).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (client, server) = tokio::join!(os.tcp_connect("127.0.0.1", port), os.tcp_accept(&listener));
    let (mut client, (mut server, peer)) = (client.unwrap(), server.unwrap());
    assert!(peer.local, "a connection from 127.0.0.1 is from this host: {peer:?}");
    os.tcp_write(&mut client, b"HELO host1\r\n").await.unwrap();
    drop(client);
    let mut got = Vec::new();
    let mut buf = [0u8; 4];
    loop {
        let n = os.tcp_read(&mut server, &mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"HELO host1\r\n");
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_with_econnrefused() {
    let (_dir, os) = real_os();
    let port = {
        let listener = os.tcp_listen(0).await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let e = os.tcp_connect("127.0.0.1", port).await.unwrap_err();
    assert_eq!(errno(&e), libc::ECONNREFUSED);
}

#[tokio::test]
async fn events_append_mailman_style_lines_to_log_files() {
    let (dir, os) = real_os();
    os.event(ModelEvent::LockAcquired { lock: "locks/l.lock".into(), claim: "locks/l.lock.host1.1.0".into() });
    os.event(ModelEvent::Log { log: "error".into(), message: "couldn't load config file".into() });
    os.event(ModelEvent::ListSaved { list: "l".into(), file: "lists/l/config.pck".into(), post_id: 3 });
    let locks = std::fs::read_to_string(dir.path().join("logs/locks")).unwrap();
    let error = std::fs::read_to_string(dir.path().join("logs/error")).unwrap();
    let saved = std::fs::read_to_string(dir.path().join("logs/list_saved")).unwrap();
    let pid_host = format!("({:05}) host1: ", std::process::id());
    assert_eq!(locks.lines().count(), 1);
    assert!(locks.contains(&pid_host) && locks.contains(r#""kind":"lock_acquired""#), "{locks}");
    assert!(error.ends_with(&format!("{pid_host}couldn't load config file\n")), "{error}");
    assert!(saved.contains(r#""post_id":3"#), "{saved}");
    // `%b %d %H:%M:%S %Y`: "Nov 28 21:42:12 2026".
    let stamp: Vec<&str> = error.split(' ').take(4).collect();
    assert_eq!(stamp[0].len(), 3);
    assert_eq!(stamp[2].len(), 8);
    assert!(stamp[3].parse::<u32>().unwrap() >= 2024);
}

/// A name read from a file (a lock's claim) can be absolute or climb out with
/// `..`: every operation on it fails with EACCES and nothing outside the root
/// is touched.
#[tokio::test]
async fn paths_that_leave_the_root_fail_with_eacces_and_touch_nothing() {
    let outer = tempfile::tempdir().expect("temp dir");
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let victim = outer.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    let os = RealOs::new(root, "host1".to_string());
    let absolute = victim.display().to_string();
    for path in [absolute.as_str(), "../victim", "a/../../victim"] {
        assert_eq!(os.unlink(path).await.map_err(|e| errno(&e)), Err(libc::EACCES), "{path}");
        assert_eq!(os.stat(path).await.map(|_| ()).map_err(|e| errno(&e)), Err(libc::EACCES), "{path}");
        assert_eq!(
            os.open(path, OpenFlags::write_truncate()).await.map(|_| ()).map_err(|e| errno(&e)),
            Err(libc::EACCES),
            "{path}"
        );
        assert_eq!(os.rename("x", path).await.map_err(|e| errno(&e)), Err(libc::EACCES), "{path}");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}
