//! Close-to-open and write-back (docs/semantics/linux-nfs-client.md §6, §8), and the readdir cache
//! (§7).

use sim::{MountOptions, ServerConfig};

use crate::harness::{at, config, host, push, read_file, ro, write_file, Bench};

fn bench(seed: u64) -> Bench {
    Bench::new(config(
        seed,
        ServerConfig::default(),
        vec![host("h1", MountOptions::default(), &["one"]), host("h2", MountOptions::default(), &["two"])],
    ))
}

#[test]
fn another_client_sees_a_short_file_until_the_writer_closes() {
    let mut b = bench(10);
    b.program("one", |p, _log| async move {
        let fd = p.open("f", crate::harness::rw()).await.unwrap();
        p.write(fd, b"hello").await.unwrap();
        at(&p, 2000).await;
        p.close(fd).await.unwrap();
    });
    b.program("two", |p, log| async move {
        at(&p, 1000).await;
        push(&log, format!("1s {:?}", read_file(&p, "f").await));
        at(&p, 3000).await;
        push(&log, format!("3s {:?}", read_file(&p, "f").await));
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["1s Ok(\"\")", "3s Ok(\"hello\")"]);
    assert!(b.sim.world().counters().flushes >= 1);
}

#[test]
fn open_revalidates_even_when_attributes_are_fresh_but_stat_does_not() {
    let mut b = bench(11);
    b.program("one", |p, _log| async move {
        write_file(&p, "f", b"v1").await;
        at(&p, 1000).await;
        write_file(&p, "f", b"v2 longer").await;
    });
    b.program("two", |p, log| async move {
        at(&p, 500).await;
        push(&log, format!("{:?}", read_file(&p, "f").await));
        at(&p, 1500).await;
        push(&log, format!("stat size={}", p.stat("f").await.unwrap().attr.size));
        push(&log, format!("{:?}", read_file(&p, "f").await));
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["Ok(\"v1\")", "stat size=2", "Ok(\"v2 longer\")"]);
}

#[test]
fn an_already_open_file_is_read_from_the_page_cache_while_its_attributes_are_fresh() {
    let mut b = bench(12);
    b.program("one", |p, _log| async move {
        write_file(&p, "f", b"v1").await;
        at(&p, 1000).await;
        write_file(&p, "f", b"v2").await;
    });
    b.program("two", |p, log| async move {
        at(&p, 500).await;
        let fd = p.open("f", ro()).await.unwrap();
        let read = |label: &'static str| {
            let p = p.clone();
            let log = log.clone();
            async move {
                p.seek(fd, 0).await.unwrap();
                let d = p.read(fd, 100).await.unwrap();
                push(&log, format!("{label} {}", String::from_utf8_lossy(&d)));
            }
        };
        read("0.5s").await;
        at(&p, 1500).await;
        read("1.5s").await;
        at(&p, 5000).await;
        read("5s").await;
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["0.5s v1", "1.5s v1", "5s v2"]);
    assert!(b.served_by("read", "fd=3 n=100")[1].contains("page-cache(ev "));
}

#[test]
fn readdir_listing_is_reused_until_the_directory_changes() {
    let mut b = bench(13);
    b.program("one", |p, log| async move {
        p.mkdir("d").await.unwrap();
        write_file(&p, "d/a", b"").await;
        push(&log, format!("{:?}", p.read_dir("d").await.unwrap()));
        push(&log, format!("{:?}", p.read_dir("d").await.unwrap()));
        at(&p, 2000).await;
        push(&log, format!("{:?}", p.read_dir("d").await.unwrap()));
    });
    b.program("two", |p, _log| async move {
        at(&p, 1000).await;
        write_file(&p, "d/b", b"").await;
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["[\"a\"]", "[\"a\"]", "[\"a\", \"b\"]"]);
    let served = b.served_by("readdir", "\"d\"");
    assert!(served[1].contains("readdir-cache(ev "), "{served:?}");
    assert!(!served[2].contains("readdir-cache"), "{served:?}");
}
