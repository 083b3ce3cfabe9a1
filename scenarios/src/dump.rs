//! `mmsim run … --dump-at EVENT`: the world's state at one trace event.
//!
//! The seed is run again, step by step, and stepping stops as soon as the
//! trace holds event `EVENT`. The state shown is therefore the state at the end
//! of the 1 ms step in which that event was recorded: events of the same step
//! that came after it have happened too (they are listed). Stopping between two
//! events of one step would need a hook inside `sim` (a callback on
//! `World::record`), which this module does not have.
//!
//! Shown: the server namespace, each client's open files, live processes and
//! the lock holders (from the notes so far: a `LockAcquired` without its
//! `LockReleasing`). Not shown: the clients' dentry and attribute caches, which
//! `sim` keeps private (`World` exposes no client handle).
//!
//! The re-run is driven by `run::drive`, the same loop as `run::run_full`
//! (scheduled faults, process crashes, the drain), with a hook that stops it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use model::ModelEvent;

use crate::explain::{model_event, step, Index};
use crate::scenario::Scenario;

/// The world after stepping until the trace holds `event`, as text. `Err` when
/// the run ends (or its budget runs out) first.
pub fn dump_at(scenario: &Scenario, seed: u64, event: u64) -> Result<String, String> {
    #[allow(clippy::disallowed_methods)] // wall time is only reported by `run`, never used here
    let started = std::time::Instant::now();
    let driven = crate::run::drive(scenario, seed, started, sim::Retention::ALL, &mut |w| w.trace().len() as u64 > event);
    let simulation = driven.simulation;
    if let Some(ending) = driven.ending {
        return Err(format!(
            "the run ends ({ending:?}) with {} events; there is no event {event}",
            simulation.world().trace().len()
        ));
    }
    let world = simulation.world().clone();
    let elapsed = simulation.elapsed();
    let mut s = String::new();
    {
        let trace = world.trace();
        let events = trace.events();
        let ix = Index::new(events);
        let at = &events[event as usize];
        let _ = writeln!(s, "state at event {event} ({})", step(&ix, at));
        let _ = writeln!(
            s,
            "(stopped at the end of the 1 ms step ending t={:.3}s; {} later events of that step happened too)",
            elapsed.as_secs_f64(),
            events.len() as u64 - event - 1
        );
        for later in &events[event as usize + 1..] {
            let _ = writeln!(s, "  later: {}", step(&ix, later));
        }
        let _ = writeln!(s, "lock holders");
        let mut holders: BTreeMap<String, (String, String, u64)> = BTreeMap::new();
        for e in &events[..=event as usize] {
            let Some((host, pid, m)) = model_event(e) else { continue };
            match m {
                ModelEvent::LockAcquired { lock, claim } => {
                    holders.insert(claim.clone(), (lock.clone(), ix.who(host, pid), e.seq));
                }
                ModelEvent::LockReleasing { claim, .. } | ModelEvent::LockRefreshed { claim, held: false, .. } => {
                    holders.remove(claim);
                }
                _ => {}
            }
        }
        if holders.is_empty() {
            let _ = writeln!(s, "  (none)");
        }
        for (claim, (lock, who, seq)) in &holders {
            let _ = writeln!(s, "  {lock} held by {who} (claim {claim}) since [ev {seq}]");
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
    let _ = writeln!(s, "server namespace (path ino nlink size mtime_ns)");
    for e in world.with_server(|srv| srv.store.dump()) {
        let kind = if e.dir { "/" } else { "" };
        let _ =
            writeln!(s, "  {}{kind} ino={} nlink={} size={} mtime_ns={}", e.path, e.ino, e.nlink, e.size, e.mtime_ns);
    }
    let _ = writeln!(s, "client caches: not shown (sim exposes no dentry or attribute cache through World)");
    Ok(s)
}
