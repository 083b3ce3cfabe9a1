//! `mmsim run … --dump-at EVENT`: the world's state right after one trace event.
//!
//! The seed is run again with a probe on `sim::World` (`probe_at`): the moment
//! event `EVENT` is recorded, between it and the next event of the same 1 ms
//! step, the probe renders the state and the drive stops after that step.
//!
//! Shown: the lock holders (from the notes so far: a `LockAcquired` without its
//! `LockReleasing`), live processes, each client's open files, lookup (dentry)
//! cache and attribute cache, and the server namespace. Cache entries name
//! inodes by their path on the server at that instant, or `(unlinked)`.
//!
//! The re-run is driven by `run::drive`, the same loop as `run::run_full`
//! (scheduled faults, process crashes, the drain).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use crate::scenario::Scenario;
use crate::trace_query::{step, Holdings, Index};

/// The world right after event `event`, as text. `Err` when the run ends (or
/// its budget runs out) first.
pub fn dump_at(scenario: &Scenario, seed: u64, event: u64) -> Result<String, String> {
    #[allow(clippy::disallowed_methods)] // wall time is only reported by `run`, never used here
    let started = std::time::Instant::now();
    let dumped: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let mut armed = false;
    let driven = crate::run::drive(scenario, seed, started, sim::Retention::ALL, None, &mut |w| {
        if !armed {
            armed = true;
            let out = dumped.clone();
            w.probe_at(event, Box::new(move |w| *out.borrow_mut() = Some(render(w, event))));
        }
        dumped.borrow().is_some()
    });
    if let Some(ending) = driven.ending {
        return Err(format!(
            "the run ends ({ending:?}) with {} events; there is no event {event}",
            driven.simulation.world().trace().len()
        ));
    }
    let text = dumped.borrow_mut().take();
    text.ok_or_else(|| format!("event {event} was never recorded"))
}

fn render(world: &sim::World, event: u64) -> String {
    let mut s = String::new();
    {
        let trace = world.trace();
        let events = trace.events();
        let ix = Index::new(events);
        let at = trace.get(event).expect("the probe runs right after its event");
        let _ = writeln!(s, "state at event {event} ({})", step(&ix, at));
        let _ = writeln!(s, "(right after the event: later events of its 1 ms step have not happened)");
        let _ = writeln!(s, "lock holders");
        let mut holders = Holdings::default();
        for e in events {
            holders.observe(e);
        }
        if holders.held().next().is_none() {
            let _ = writeln!(s, "  (none)");
        }
        for h in holders.held() {
            let _ =
                writeln!(s, "  {} held by {} (claim {}) since [ev {}]", h.lock, ix.who(&h.host, h.pid), h.claim, h.seq);
        }
    }
    let _ = writeln!(s, "live processes");
    for (host, pid, program) in world.live_processes() {
        let _ = writeln!(s, "  {host}/{pid} {program}");
    }
    let _ = writeln!(s, "open files");
    let open = world.open_files();
    if open.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for (host, pid, fd, path) in open {
        let _ = writeln!(s, "  {host}/{pid} fd {fd} {path}");
    }
    let namespace = world.with_server(|srv| srv.store.dump());
    // An inode with several links (a lock file and its claim) shows every name.
    let mut paths: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for e in &namespace {
        paths.entry(e.ino).or_default().push(e.path.as_str());
    }
    let root = sim::nfs::store::ROOT.ino;
    let path_of = |ino: u64| match ino {
        ino if ino == root => "/".to_string(),
        ino => paths.get(&ino).map_or_else(|| format!("ino {ino} (unlinked)"), |p| p.join(" + ")),
    };
    for (host, caches) in world.client_caches() {
        let _ = writeln!(s, "client {host}: lookup cache (directory/name -> inode, filled by)");
        if caches.dentries.is_empty() {
            let _ = writeln!(s, "  (empty)");
        }
        for d in &caches.dentries {
            let name = if d.dir == root { d.name.clone() } else { format!("{}/{}", path_of(d.dir), d.name) };
            let target = match d.target {
                Some((ino, gen)) => format!("ino {ino}.{gen} = {}", path_of(ino)),
                None => "negative".to_string(),
            };
            let _ = writeln!(s, "  {name} -> {target} [ev {}]", d.filled_by_ev);
        }
        let _ = writeln!(s, "client {host}: attribute cache (inode nlink size mtime_ns, fresh for, filled by)");
        if caches.attrs.is_empty() {
            let _ = writeln!(s, "  (empty)");
        }
        for a in &caches.attrs {
            let fresh = if a.fresh_for.is_zero() {
                "expired".to_string()
            } else {
                format!("fresh {:.3}s", a.fresh_for.as_secs_f64())
            };
            let _ = writeln!(
                s,
                "  {} (ino {}.{}) nlink={} size={} mtime_ns={} {fresh} [ev {}]",
                path_of(a.ino),
                a.ino,
                a.gen,
                a.nlink,
                a.size,
                a.mtime_ns,
                a.filled_by_ev
            );
        }
    }
    let _ = writeln!(s, "server namespace (path ino nlink size mtime_ns)");
    for e in &namespace {
        let kind = if e.dir { "/" } else { "" };
        let _ =
            writeln!(s, "  {}{kind} ino={} nlink={} size={} mtime_ns={}", e.path, e.ino, e.nlink, e.size, e.mtime_ns);
    }
    s
}
