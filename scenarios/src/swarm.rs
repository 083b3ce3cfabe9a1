//! Swarm testing (TigerBeetle's VOPR): each seed also draws which fault kinds
//! are on and how hard each one bites.
//!
//! Every kind is switched off entirely with probability 1/2; the kinds that are
//! on get rates drawn log-uniformly over wide ranges, so some seeds barely
//! perturb the run and others hammer one mechanism. The draw comes from the
//! stream `swarm` of the run seed, so it is part of what the seed replays
//! (`mmsim run NAME --seed N --swarm`), and it is printed.

use sim::Rng;

use crate::scenario::{FaultSpec, Scenario};

fn log_uniform(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    let (l, h) = ((lo.max(1) as f64).ln(), (hi as f64).ln());
    (l + (h - l) * rng.unit_f64()).exp().round() as u64
}

/// Draws this seed's faults into `s`; returns one line per fault kind turned on.
pub fn apply(s: &mut Scenario, seed: u64) -> Vec<String> {
    let mut rng = Rng::stream(seed, "swarm");
    let mut drawn = Vec::new();
    let clients: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
    let window_s = (s.run.duration_s_max as f64 / 4.0).clamp(10.0, 300.0);
    let on = |rng: &mut Rng| rng.below(2) == 1;
    if on(&mut rng) {
        let f = &mut s.network.faults;
        f.drop_request_ppm = log_uniform(&mut rng, 10, 50_000) as u32;
        f.drop_reply_ppm = log_uniform(&mut rng, 10, 50_000) as u32;
        drawn.push(format!("rpc loss: request {} ppm, reply {} ppm", f.drop_request_ppm, f.drop_reply_ppm));
    }
    if on(&mut rng) {
        s.network.faults.duplicate_ppm = log_uniform(&mut rng, 10, 50_000) as u32;
        drawn.push(format!("rpc duplicates: {} ppm", s.network.faults.duplicate_ppm));
    }
    if on(&mut rng) {
        s.network.faults.delay_ppm = log_uniform(&mut rng, 1_000, 500_000) as u32;
        s.network.faults.delay_us_max = log_uniform(&mut rng, 1, 200) * 1000;
        drawn
            .push(format!("rpc delay: {} ppm, up to {} us", s.network.faults.delay_ppm, s.network.faults.delay_us_max));
    }
    if on(&mut rng) {
        s.gate.stall_ppm = log_uniform(&mut rng, 10, 20_000) as u32;
        s.gate.stall_ms_median = log_uniform(&mut rng, 1, 200);
        s.gate.stall_ms_max = log_uniform(&mut rng, 1_000, 60_000);
        drawn.push(format!(
            "stalls: {} ppm, median {} ms, max {} ms",
            s.gate.stall_ppm, s.gate.stall_ms_median, s.gate.stall_ms_max
        ));
    }
    if on(&mut rng) {
        for h in &mut s.hosts {
            h.clock.offset_ms = rng.between(0, 2 * 30_000) as i64 - 30_000;
            h.clock.drift_ppm = rng.between(0, 400) as i64 - 200;
        }
        drawn.push("clock skew: every host ±30 s, ±200 ppm".into());
    }
    if on(&mut rng) && !clients.is_empty() {
        let host = clients[rng.below(clients.len() as u64) as usize].clone();
        let at_s = 5.0 + window_s * rng.unit_f64();
        let len_s = log_uniform(&mut rng, 1, 60) as f64;
        drawn.push(format!("partition: {host} from nfs at {at_s:.1} s for {len_s} s"));
        s.faults.push(FaultSpec::Partition { at_s, a: host, b: sim::SERVER_HOST.into(), window_s: len_s });
    }
    if on(&mut rng) {
        let at_s = 5.0 + window_s * rng.unit_f64();
        let down_s = log_uniform(&mut rng, 1, 30) as f64;
        drawn.push(format!("server reboot at {at_s:.1} s, down {down_s} s"));
        s.faults.push(FaultSpec::RebootServer { at_s, down_s });
    }
    if on(&mut rng) {
        // Crash a runner-like process: the first boot program of a host that is not the installer.
        let targets: Vec<(String, String)> = s
            .hosts
            .iter()
            .flat_map(|h| {
                h.boot.iter().filter(|b| b.program != "install").map(move |b| (h.name.clone(), b.program.clone()))
            })
            .collect();
        if !targets.is_empty() {
            let (host, program) = targets[rng.below(targets.len() as u64) as usize].clone();
            let at_s = 5.0 + window_s * rng.unit_f64();
            drawn.push(format!("crash {program} on {host} at {at_s:.1} s"));
            s.faults.push(FaultSpec::CrashProcess { at_s, host, program });
        }
    }
    if drawn.is_empty() {
        drawn.push("no faults drawn".into());
    }
    drawn
}
