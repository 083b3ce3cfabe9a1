//! Client profiles (docs/semantics/linux-nfs-client.md §14), and the guard against caches inventing
//! anomalies: one host's own operations behave like a local filesystem.

use std::time::Duration;

use sim::{ClientProfile, Flags, MountOptions, ServerConfig, ServerProfile};

use crate::harness::{at, config, host, push, read_file, show, Bench, Log};

fn excl() -> Flags {
    Flags { read: true, write: true, create: true, exclusive: true, ..Default::default() }
}

fn append() -> Flags {
    Flags { write: true, create: true, append: true, ..Default::default() }
}

async fn stat_line(p: &sim::Proc, log: &Log, path: &str) {
    let line = match p.stat(path).await {
        Ok(a) => format!("stat {path} nlink={} size={}", a.attr.nlink, a.attr.size),
        Err(e) => format!("stat {path} {}", sim::errno_name(e)),
    };
    push(log, line);
}

/// Process `a` acts; process `b` on the same host observes right after each step.
fn local_run(profile: ClientProfile, server: ServerConfig) -> Vec<String> {
    let mut b = Bench::new(config(60, server, vec![host("h", MountOptions::profile(profile), &["b", "a"])]));
    b.program("b", |p, log| async move {
        let step = |n: u64| 1000 + n * 5000;
        at(&p, step(0) + 2500).await;
        stat_line(&p, &log, "t/f").await;
        push(&log, format!("b reads {:?}", read_file(&p, "t/f").await));
        at(&p, step(1) + 2500).await;
        push(&log, format!("b reads {:?}", read_file(&p, "t/f").await));
        stat_line(&p, &log, "t/g").await;
        at(&p, step(2) + 2500).await;
        stat_line(&p, &log, "t/f").await;
        stat_line(&p, &log, "t/g").await;
        at(&p, step(3) + 2500).await;
        stat_line(&p, &log, "t/g").await;
        stat_line(&p, &log, "t/h").await;
        push(&log, format!("b lists {:?}", sorted(p.read_dir("t").await)));
        push(&log, format!("b excl h {}", show(&p.open("t/h", excl()).await)));
        at(&p, step(4) + 2500).await;
        push(&log, format!("b lists {:?}", sorted(p.read_dir("t").await)));
        stat_line(&p, &log, "t/h").await;
        push(&log, format!("b reads {:?}", read_file(&p, "t/h").await));
        // 40 s later every cache has expired at least once.
        at(&p, step(12)).await;
        push(&log, format!("b lists {:?}", sorted(p.read_dir("t").await)));
        stat_line(&p, &log, "t/h").await;
        push(&log, format!("b reads {:?}", read_file(&p, "t/h").await));
    });
    b.program("a", |p, log| async move {
        let step = |n: u64| 1000 + n * 5000;
        p.mkdir("t").await.unwrap();
        push(&log, format!("a stat missing {}", show(&p.stat("t/f").await)));
        at(&p, step(0)).await;
        let fd = p.open("t/f", append()).await.unwrap();
        p.write(fd, b"abc").await.unwrap();
        at(&p, step(1)).await;
        p.write(fd, b"def").await.unwrap();
        p.link("t/f", "t/g").await.unwrap();
        at(&p, step(2)).await;
        p.close(fd).await.unwrap();
        p.unlink("t/f").await.unwrap();
        at(&p, step(3)).await;
        p.rename("t/g", "t/h").await.unwrap();
        at(&p, step(4)).await;
        p.mkdir("t/d").await.unwrap();
        let fd = p.open("t/h", Flags { write: true, ..Default::default() }).await.unwrap();
        p.set_len(fd, 2).await.unwrap();
        p.close(fd).await.unwrap();
        let fd = p.open("t/new", excl()).await.unwrap();
        p.close(fd).await.unwrap();
        p.unlink("t/new").await.unwrap();
        p.sleep(Duration::from_millis(1)).await;
    });
    b.run_until_done(120_000);
    b.lines()
}

fn sorted(r: Result<Vec<String>, i32>) -> Vec<String> {
    let mut v = r.unwrap();
    v.sort();
    v
}

const LOCAL: [&str; 20] = [
    "a stat missing ENOENT",
    "stat t/f nlink=1 size=3",
    "b reads Ok(\"abc\")",
    "b reads Ok(\"abcdef\")",
    "stat t/g nlink=2 size=6",
    "stat t/f ENOENT",
    "stat t/g nlink=1 size=6",
    "stat t/g ENOENT",
    "stat t/h nlink=1 size=6",
    "b lists [\"h\"]",
    "b excl h EEXIST",
    "b lists [\"d\", \"h\"]",
    "stat t/h nlink=1 size=2",
    "b reads Ok(\"ab\")",
    "b lists [\"d\", \"h\"]",
    "stat t/h nlink=1 size=2",
    "b reads Ok(\"ab\")",
    "",
    "",
    "",
];

#[test]
fn every_profile_behaves_like_a_local_filesystem_for_the_operations_of_one_host() {
    let want: Vec<&str> = LOCAL.iter().copied().filter(|l| !l.is_empty()).collect();
    for profile in ClientProfile::ALL {
        for server in [ServerProfile::LinuxModern, ServerProfile::Linux22] {
            let got = local_run(profile, ServerConfig::profile(server));
            assert_eq!(got, want, "{profile:?} against a {server:?} server");
        }
    }
}

fn exclusive_race(profile: ClientProfile) -> Vec<String> {
    let mount = MountOptions::profile(profile);
    let mut b = Bench::new(config(
        61,
        ServerConfig::default(),
        vec![host("h1", mount.clone(), &["racer"]), host("h2", mount, &["racer"])],
    ));
    b.program("racer", |p, log| async move {
        at(&p, 1000).await;
        let r = p.open("lock", excl()).await;
        push(&log, show(&r));
    });
    b.run_until_done(10_000);
    let mut lines = b.lines();
    lines.sort();
    lines
}

#[test]
fn linux_2_2_exclusive_create_is_not_atomic_across_clients() {
    assert_eq!(exclusive_race(ClientProfile::LinuxModern), ["EEXIST", "ok"]);
    assert_eq!(exclusive_race(ClientProfile::Linux22), ["ok", "ok"]);
}

#[test]
fn profiles_have_kebab_case_names_and_start_from_the_linux_defaults() {
    let names: Vec<String> = ClientProfile::ALL.iter().map(|p| serde_json::to_string(p).unwrap()).collect();
    assert_eq!(
        names,
        [
            "\"linux-modern\"",
            "\"linux-2.2\"",
            "\"noac\"",
            "\"lookupcache-none\"",
            "\"lookupcache-positive\"",
            "\"actimeo-0\""
        ]
    );
    let m = MountOptions::profile(ClientProfile::LinuxModern);
    assert_eq!((m.acregmin_s, m.acregmax_s, m.acdirmin_s, m.acdirmax_s), (3, 60, 30, 60));
    assert_eq!(m, MountOptions::default());
    let old: MountOptions =
        serde_json::from_str(r#"{"dentry_revalidate": "parent-mtime", "cto": "none", "estale_retry": "never"}"#)
            .unwrap();
    let l22 = MountOptions::profile(ClientProfile::Linux22);
    assert_eq!((old.dentry_revalidate, old.cto), (l22.dentry_revalidate, l22.cto));
    assert!(serde_json::from_str::<MountOptions>(r#"{"no_such_key": 1}"#).is_err());
    assert_eq!(ServerConfig::profile(ServerProfile::Linux22).timestamp_granularity_ms, 1000);
}

/// docs/semantics/linux-modern-mount.md §1: a modern mount negotiates 1 MiB
/// transfers with knfsd, so a 34 KB `config.pck` goes in one WRITE and comes
/// back in one READ; the same file at the UDP-era 8 KiB takes five of each.
#[test]
fn the_modern_profile_reads_and_writes_a_34_kb_file_in_one_rpc() {
    let run = |mount: MountOptions| {
        let mut b = Bench::new(config(
            66,
            ServerConfig::default(),
            vec![host("h1", mount.clone(), &["one"]), host("h2", mount, &["two"])],
        ));
        b.program("one", |p, _log| async move {
            crate::harness::write_file(&p, "f", &[7u8; 34_000]).await;
        });
        b.program("two", |p, log| async move {
            at(&p, 5_000).await;
            push(&log, format!("read {} bytes", read_file(&p, "f").await.map(|s| s.len()).unwrap_or(0)));
        });
        b.run_until_done(10_000);
        let rpcs = b.events("rpc");
        let count = |proc: &str| rpcs.iter().filter(|l| l.contains(&format!(" {proc} "))).count();
        (b.lines(), count("WRITE"), count("READ"))
    };
    let modern = MountOptions::profile(ClientProfile::LinuxModern);
    assert_eq!((modern.rsize, modern.wsize), (sim::RWSIZE_NEGOTIATED, sim::RWSIZE_NEGOTIATED));
    for (mount, writes, reads) in [(modern.clone(), 1, 1), (MountOptions { rsize: 8192, wsize: 8192, ..modern }, 5, 5)]
    {
        let rsize = mount.rsize;
        assert_eq!(run(mount), (vec!["read 34000 bytes".to_string()], writes, reads), "rsize = wsize = {rsize}");
    }
}
