//! Os conformance: one table of cases runs against `RealOs` on a temp directory
//! and against the simulated filesystem from a single client with no faults.
//! Both must produce the same observations, line for line.
//!
//! Observations avoid what legitimately differs (inode numbers, the server's
//! "now"): they record link counts, errnos, contents, whether two names share an
//! inode, and times that were set explicitly.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use model::{errno_name, OpenFlags, Os, RealOs, SetTime};
use scenarios::SimOs;
use sim::{BootProgram, HostConfig, Proc, Simulation, WorldConfig};

type Log = Vec<String>;

fn outcome<T>(r: &std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(e.raw_os_error().unwrap_or(0)),
    }
}

async fn write_file<O: Os>(os: &O, path: &str, data: &[u8]) {
    let fd = os.open(path, OpenFlags::write_truncate()).await.unwrap();
    os.write(fd, data).await.unwrap();
    os.close(fd).await.unwrap();
}

async fn read_file<O: Os>(os: &O, path: &str) -> std::io::Result<String> {
    let fd = os.open(path, OpenFlags::read_only()).await?;
    let data = os.read(fd, 1 << 20).await?;
    os.close(fd).await?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

/// The table. `a` and `b` are two processes on one host.
async fn cases<O: Os>(a: &O, b: &O, log: &mut Log) {
    a.mkdir("t").await.unwrap();

    // Link counts after link and unlink.
    write_file(a, "t/a", b"x").await;
    log.push(format!("nlink new {}", a.stat("t/a").await.unwrap().nlink));
    log.push(format!("link a b {}", outcome(&a.link("t/a", "t/b").await)));
    let (sa, sb) = (a.stat("t/a").await.unwrap(), a.stat("t/b").await.unwrap());
    log.push(format!("nlink after link {} {} same_ino={}", sa.nlink, sb.nlink, sa.ino == sb.ino));
    log.push(format!("unlink a {}", outcome(&a.unlink("t/a").await)));
    log.push(format!("nlink after unlink {}", a.stat("t/b").await.unwrap().nlink));

    // Rename over an existing file.
    write_file(a, "t/new", b"new").await;
    write_file(a, "t/old", b"old").await;
    log.push(format!("rename over {}", outcome(&a.rename("t/new", "t/old").await)));
    log.push(format!(
        "after rename old={:?} new={}",
        read_file(a, "t/old").await.unwrap(),
        outcome(&a.stat("t/new").await)
    ));

    // EEXIST and ENOENT.
    log.push(format!("link onto existing {}", outcome(&a.link("t/b", "t/old").await)));
    log.push(format!("link from missing {}", outcome(&a.link("t/missing", "t/c").await)));
    log.push(format!("rename missing {}", outcome(&a.rename("t/missing", "t/c").await)));
    log.push(format!("unlink missing {}", outcome(&a.unlink("t/missing").await)));
    log.push(format!("mkdir existing {}", outcome(&a.mkdir("t").await)));
    log.push(format!("mkdir under missing {}", outcome(&a.mkdir("t/nodir/x").await)));
    log.push(format!("exclusive create existing {}", outcome(&a.open("t/old", OpenFlags::create_exclusive()).await)));
    let fd = a.open("t/excl", OpenFlags::create_exclusive()).await;
    log.push(format!("exclusive create new {}", outcome(&fd)));
    a.close(fd.unwrap()).await.unwrap();
    log.push(format!("open missing {}", outcome(&a.open("t/missing", OpenFlags::read_only()).await)));
    log.push(format!("rmdir non-empty {}", outcome(&a.rmdir("t").await)));
    log.push(format!("rmdir missing {}", outcome(&a.rmdir("t/missing").await)));
    log.push(format!("stat through a file {}", outcome(&a.stat("t/old/x").await)));

    // stat fields after set_times.
    let when = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    log.push(format!("utime explicit {}", outcome(&a.set_times("t/old", SetTime::Explicit(when)).await)));
    log.push(format!("mtime is the explicit time {}", a.stat("t/old").await.unwrap().mtime == when));
    log.push(format!("utime now {}", outcome(&a.set_times("t/old", SetTime::ServerNow).await)));
    log.push(format!("mtime moved on {}", a.stat("t/old").await.unwrap().mtime > when));
    log.push(format!("utime missing {}", outcome(&a.set_times("t/missing", SetTime::ServerNow).await)));

    // read_dir contents (sorted: order is the filesystem's business).
    let mut names: Vec<String> =
        a.read_dir("t").await.unwrap().into_iter().filter(|n| !n.starts_with(".nfs")).collect();
    names.sort();
    log.push(format!("read_dir {names:?}"));

    // Two processes on one host appending and reading.
    let fa = a.open("t/log", OpenFlags::append()).await.unwrap();
    let fb = b.open("t/log", OpenFlags::append()).await.unwrap();
    a.write(fa, b"from a\n").await.unwrap();
    b.write(fb, b"from b\n").await.unwrap();
    a.write(fa, b"a again\n").await.unwrap();
    a.close(fa).await.unwrap();
    b.close(fb).await.unwrap();
    log.push(format!("appends seen by a {:?}", read_file(a, "t/log").await.unwrap()));
    log.push(format!("appends seen by b {:?}", read_file(b, "t/log").await.unwrap()));
    log.push(format!("size {}", b.stat("t/log").await.unwrap().size));

    // Truncation at open, and reads past the end.
    write_file(a, "t/log", b"short").await;
    log.push(format!("after O_TRUNC rewrite {:?}", read_file(b, "t/log").await.unwrap()));

    // A file unlinked while this process holds it open stays readable (on NFS
    // through a silly rename, spec/nfs.md §8).
    write_file(a, "t/held", b"kept").await;
    let fd = a.open("t/held", OpenFlags::read_only()).await.unwrap();
    log.push(format!("unlink held file {}", outcome(&a.unlink("t/held").await)));
    log.push(format!("stat unlinked held file {}", outcome(&a.stat("t/held").await)));
    let data = a.read(fd, 100).await.unwrap();
    log.push(format!("read after unlink {:?}", String::from_utf8_lossy(&data)));
    a.close(fd).await.unwrap();
}

fn real_log() -> Log {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let a = RealOs::new(dir.path().to_path_buf(), "h".into());
    let b = RealOs::new(dir.path().to_path_buf(), "h".into());
    let mut log = Log::new();
    rt.block_on(cases(&a, &b, &mut log));
    log
}

fn sim_log() -> Log {
    let config = WorldConfig {
        seed: 11,
        latency_ms: 1,
        server: Default::default(),
        gate: Default::default(),
        sched: Default::default(),
        hosts: vec![HostConfig {
            name: "h".into(),
            clock: Default::default(),
            mount: Default::default(),
            link: Default::default(),
            boot: vec![
                BootProgram { program: "peer".into(), args: vec![], start_ms: 0 },
                BootProgram { program: "table".into(), args: vec![], start_ms: 0 },
            ],
        }],
    };
    let mut simulation = Simulation::new(config);
    let peer: Rc<RefCell<Option<SimOs>>> = Rc::default();
    let log: Rc<RefCell<Option<Log>>> = Rc::default();
    let slot = peer.clone();
    simulation.world().register_program(
        "peer",
        Rc::new(move |p: Proc, _| {
            let slot = slot.clone();
            Box::pin(async move {
                *slot.borrow_mut() = Some(SimOs::new(p.clone()));
                p.sleep(Duration::from_secs(3600)).await;
                0
            })
        }),
    );
    let out = log.clone();
    simulation.world().register_program(
        "table",
        Rc::new(move |p: Proc, _| {
            let (peer, out) = (peer.clone(), out.clone());
            Box::pin(async move {
                let a = SimOs::new(p);
                let b = peer.borrow_mut().take().expect("peer booted first");
                let mut log = Log::new();
                cases(&a, &b, &mut log).await;
                *out.borrow_mut() = Some(log);
                0
            })
        }),
    );
    for _ in 0..60_000 {
        simulation.step().unwrap();
        if log.borrow().is_some() {
            break;
        }
    }
    let result = log.borrow_mut().take().expect("the table finished within 60 simulated seconds");
    result
}

#[test]
fn the_simulated_filesystem_agrees_with_the_real_kernel_case_by_case() {
    let real = real_log();
    let sim = sim_log();
    for (i, (r, s)) in real.iter().zip(&sim).enumerate() {
        assert_eq!(r, s, "case line {i} differs (real vs sim)");
    }
    assert_eq!(real.len(), sim.len());
    insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("os-conformance", real.join("\n"));
    });
}
