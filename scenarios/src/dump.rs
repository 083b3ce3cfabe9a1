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
//! The driving loop repeats the parts of `run::run_full` that change the world
//! (scheduled faults and process crashes) so that the re-run is the same run;
//! it does not judge or drain.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use model::ModelEvent;
use sim::Simulation;

use crate::explain::{model_event, step, Index};
use crate::programs;
use crate::scenario::{FaultSpec, Scenario};

/// Whether every non-terminal queue directory on the server is empty (as `run` decides).
fn queues_empty(world: &sim::World) -> bool {
    world.with_server(|s| {
        s.store.dump().iter().all(|e| {
            let (dir, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
            e.dir || name.starts_with(".nfs") || !crate::oracle::is_draining_queue(dir, name)
        })
    })
}

/// The world after stepping until the trace holds `event`, as text. `Err` when
/// the run ends (or its budget runs out) first.
pub fn dump_at(scenario: &Scenario, seed: u64, event: u64) -> Result<String, String> {
    let mut simulation = Simulation::new(scenario.world_config(seed));
    programs::register(simulation.world());
    let budget = Duration::from_secs(scenario.run.duration_s_max);
    let mut crashes: Vec<(Duration, String, String)> = Vec::new();
    for f in &scenario.faults {
        let at = Duration::from_secs_f64(f.at_s());
        let fault = match f {
            FaultSpec::Partition { a, b, window_s, .. } => {
                sim::Fault::Partition { a: a.clone(), b: b.clone(), window: Duration::from_secs_f64(*window_s) }
            }
            FaultSpec::RebootServer { down_s, .. } => {
                sim::Fault::RebootServer { down_for: Duration::from_secs_f64(*down_s) }
            }
            FaultSpec::CrashHost { host, .. } => sim::Fault::CrashHost { host: host.clone() },
            FaultSpec::RestartHost { host, .. } => sim::Fault::RestartHost { host: host.clone() },
            FaultSpec::CrashProcess { host, program, .. } => {
                crashes.push((at, host.clone(), program.clone()));
                continue;
            }
        };
        simulation.schedule(at, fault);
    }
    crashes.sort_by_key(|c| c.0);
    let mut crashes = crashes.into_iter().peekable();
    let wait_for: Vec<&str> = scenario.run.wait_for.iter().map(String::as_str).collect();
    let quiet = Duration::from_secs(scenario.run.drain_quiet_s);
    let wait_from = Duration::from_millis(
        scenario
            .hosts
            .iter()
            .flat_map(|h| &h.boot)
            .filter(|b| wait_for.contains(&b.program.as_str()))
            .map(|b| b.start_ms)
            .max()
            .unwrap_or(0),
    );
    let mut drained_since: Option<Duration> = None;
    while simulation.world().trace().len() as u64 <= event {
        simulation.step().map_err(|e| format!("the run failed before event {event}: {e}"))?;
        if let Some(why) = simulation.world().livelock() {
            return Err(format!("the run livelocked before event {event}: {why}"));
        }
        while let Some((_, host, program)) = crashes.next_if(|(at, _, _)| simulation.elapsed() >= *at) {
            let victim = simulation.world().live_processes().into_iter().find(|(h, _, p)| *h == host && *p == program);
            match victim {
                Some((_, pid, _)) => {
                    simulation.crash_process(&host, pid);
                }
                None => simulation.world().fault(format!("crash-process: no live {program} on {host}")),
            }
        }
        // The same ending as `run::run_full`, so that an event after the end is refused.
        let mut ended = simulation.elapsed() >= budget;
        if !wait_for.is_empty()
            && simulation.steps() % 100 == 0
            && simulation.elapsed() > wait_from
            && !simulation.world().any_live(&wait_for)
        {
            if !scenario.run.drain {
                ended = true;
            } else if queues_empty(simulation.world()) {
                let since = *drained_since.get_or_insert(simulation.elapsed());
                ended |= simulation.elapsed() >= since + quiet;
            } else {
                drained_since = None;
            }
        }
        if ended && simulation.world().trace().len() as u64 <= event {
            return Err(format!(
                "the run ends with {} events; there is no event {event}",
                simulation.world().trace().len()
            ));
        }
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
