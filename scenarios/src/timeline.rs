//! `mmsim timeline`: a self-contained HTML page showing one window of a run.
//!
//! One lane per process (`host/pid program`), plus one for the NFS server's
//! applies. Lock holdings are bars from `LockAcquired` to the holder's
//! `LockReleasing` (or a `LockRefreshed { held: false }`, or the end of the
//! trace). File calls are ticks from their start to their return; a call that
//! no RPC answered (its `served_by` names only cache entries) is an orange
//! circle, a call that never reached NFS (`local`) is grey, a failed call is red. Every mark carries a `<title>` (the browser's hover text) with
//! the op, args, outcome, `served_by` and event number; clicking one copies it
//! to the details box. The first violation is a red vertical line.
//!
//! The page is static SVG: the script only adds the click handler, so what a
//! headless browser renders is what the file holds. No network access: no
//! external fonts, scripts or styles. The number of marks is capped
//! ([`TICKS_MAX`]); the page says when the cap cut the window short.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use sim::{Event, EventKind};

use crate::trace_query::{cache_served, outcome_text, Holding, Holdings, Index};
use crate::Report;

/// Marks drawn at most (calls, applies and notes together).
pub const TICKS_MAX: usize = 20_000;

const WIDTH: f64 = 1600.0;
const LABEL_W: f64 = 300.0;
const PLOT_X0: f64 = LABEL_W + 10.0;
const PLOT_X1: f64 = WIDTH - 40.0;
const LANE_H: f64 = 16.0;
const TOP: f64 = 56.0;
const SERVER_LANE: (&str, u32) = ("nfs", 0);

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first violation of a report (of oracle `only`, when given): oracle
/// name, first line, event.
pub fn first_violation<'a>(report: &'a Report, only: Option<&str>) -> Option<(&'a str, &'a str, u64)> {
    let o = report.first_failing(only)?;
    o.first_event.map(|e| (o.name.as_str(), o.violations.first().map(String::as_str).unwrap_or(""), e))
}

/// One lock holding: from `LockAcquired` to the holder's release (or the end of the trace).
pub(crate) struct LockBar {
    pub host: String,
    pub pid: u32,
    pub lock: String,
    pub claim: String,
    pub from: Duration,
    pub to: Duration,
    /// The `LockAcquired` event.
    pub seq: u64,
}

pub(crate) fn lock_bars(events: &[Event]) -> Vec<LockBar> {
    let end = events.last().map(|e| e.t).unwrap_or_default();
    let bar = |h: Holding, to: Duration| LockBar {
        host: h.host,
        pid: h.pid,
        lock: h.lock,
        claim: h.claim,
        from: h.since,
        to,
        seq: h.seq,
    };
    let mut holdings = Holdings::default();
    let mut done = Vec::new();
    for e in events {
        if let Some(ended) = holdings.observe(e) {
            done.push(bar(ended, e.t));
        }
    }
    done.extend(holdings.into_held().map(|h| bar(h, end)));
    done
}

/// A round axis step for a window of `span` seconds.
fn axis_step(span: f64) -> f64 {
    for s in [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]
    {
        if span / s <= 12.0 {
            return s;
        }
    }
    600.0
}

/// The window shown: `from_s..to_s` if given, else ±10 s around the first
/// violation, else the first 60 s.
pub fn window(
    report: &Report,
    events: &[Event],
    from_s: Option<f64>,
    to_s: Option<f64>,
    only: Option<&str>,
) -> (f64, f64) {
    let centre =
        first_violation(report, only).and_then(|(_, _, seq)| events.get(seq as usize)).map(|e| e.t.as_secs_f64());
    let (a, b) = match centre {
        Some(c) => ((c - 10.0).max(0.0), c + 10.0),
        None => (0.0, 60.0),
    };
    let from = from_s.unwrap_or(a).max(0.0);
    let to = to_s.unwrap_or(if from_s.is_some() && to_s.is_none() { from + (b - a) } else { b });
    (from, to.max(from + 0.001))
}

/// The page for `events` of the run `report`, showing `from_s..to_s` seconds.
pub fn render(events: &[Event], report: &Report, from_s: f64, to_s: f64, only: Option<&str>) -> String {
    let ix = Index::new(events);
    let from = Duration::from_secs_f64(from_s);
    let to = Duration::from_secs_f64(to_s);
    let x = |t: Duration| PLOT_X0 + (t.as_secs_f64() - from_s) / (to_s - from_s) * (PLOT_X1 - PLOT_X0);
    let bars: Vec<LockBar> = lock_bars(events).into_iter().filter(|b| b.to >= from && b.from <= to).collect();
    // The window's events; the lanes are the processes that appear in it.
    let lo = events.partition_point(|e| e.t < from);
    let hi = events.partition_point(|e| e.t <= to);
    let shown = &events[lo..hi];
    let mut lanes: BTreeMap<(String, u32), usize> = BTreeMap::new();
    for e in shown {
        let key = match &e.kind {
            EventKind::Apply { .. } | EventKind::Drc { .. } => (SERVER_LANE.0.to_string(), SERVER_LANE.1),
            k => match (k.host(), k.pid()) {
                (Some(h), Some(p)) => (h.to_string(), p),
                _ => continue,
            },
        };
        lanes.insert(key, 0);
    }
    for b in &bars {
        lanes.insert((b.host.clone(), b.pid), 0);
    }
    // The server lane first, then hosts in name order, pids in order.
    let mut order: Vec<(String, u32)> = lanes.keys().cloned().collect();
    order.sort_by_key(|(h, p)| (h != SERVER_LANE.0, h.clone(), *p));
    for (i, k) in order.iter().enumerate() {
        lanes.insert(k.clone(), i);
    }
    let y = |lane: usize| TOP + lane as f64 * LANE_H;
    let height = TOP + order.len() as f64 * LANE_H + 20.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" data-lanes="{}">"#,
        order.len()
    );
    // Axis.
    let step = axis_step(to_s - from_s);
    let mut tick = (from_s / step).ceil() * step;
    let decimals = if step >= 1.0 {
        0
    } else if step >= 0.1 {
        1
    } else {
        3
    };
    let _ = writeln!(svg, r#"<g class="axis">"#);
    while tick <= to_s + 1e-9 {
        let tx = x(Duration::from_secs_f64(tick.max(0.0)));
        let _ = writeln!(
            svg,
            r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{}" y2="{height}" class="grid"/><text x="{tx:.1}" y="{}" class="axis-label">{tick:.decimals$}s</text>"#,
            TOP - 6.0,
            TOP - 10.0
        );
        tick += step;
    }
    let _ = writeln!(svg, "</g>");
    // Lanes with labels.
    for (i, (host, pid)) in order.iter().enumerate() {
        let label = if (host.as_str(), *pid) == SERVER_LANE {
            "nfs server (applies)".to_string()
        } else {
            format!("{host}/{pid} {}", ix.program(host, *pid))
        };
        let ly = y(i);
        let _ = writeln!(
            svg,
            r#"<g class="lane" data-lane="{}"><rect class="lane-bg{}" x="0" y="{ly:.1}" width="{WIDTH}" height="{LANE_H}"/><text class="lane-label" x="4" y="{:.1}">{}</text></g>"#,
            esc(&format!("{host}/{pid}")),
            if i % 2 == 1 { " odd" } else { "" },
            ly + LANE_H - 4.0,
            esc(&label)
        );
    }
    // Lock bars.
    for b in &bars {
        let lane = lanes[&(b.host.clone(), b.pid)];
        let x0 = x(b.from.max(from));
        let x1 = x(b.to.min(to)).max(x0 + 1.0);
        let _ = writeln!(
            svg,
            r#"<rect class="lock" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            y(lane) + 2.0,
            x1 - x0,
            LANE_H - 4.0,
            esc(&format!(
                "holds {} (claim {}) from t={:.3}s to t={:.3}s [ev {}]",
                b.lock,
                b.claim,
                b.from.as_secs_f64(),
                b.to.as_secs_f64(),
                b.seq
            ))
        );
    }
    // Ticks.
    let total = shown
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Call { .. } | EventKind::Apply { .. } | EventKind::Note { .. }))
        .count();
    let mut drawn = 0usize;
    for e in shown {
        if drawn >= TICKS_MAX {
            break;
        }
        match &e.kind {
            EventKind::Call { host, pid, op, args, outcome, served_by, started, .. } => {
                drawn += 1;
                let lane = lanes[&(host.to_string(), *pid)];
                let result = outcome_text(outcome);
                let title = esc(&format!(
                    "{op} {args} -> {result}\nserved_by={served_by}\nt={:.6}s [ev {}]",
                    e.t.as_secs_f64(),
                    e.seq
                ));
                let err = if outcome.is_err() { " err" } else { "" };
                let cy = y(lane) + LANE_H / 2.0;
                let local = served_by == "local";
                if !local && cache_served(served_by) {
                    let _ = writeln!(
                        svg,
                        r#"<circle class="call cache{err}" cx="{:.1}" cy="{cy:.1}" r="3.5" data-ev="{}"><title>{title}</title></circle>"#,
                        x(e.t),
                        e.seq
                    );
                } else {
                    let x0 = x((*started).max(from));
                    let w = (x(e.t) - x0).max(2.0);
                    let _ = writeln!(
                        svg,
                        r#"<rect class="call {}{err}" x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" data-ev="{}"><title>{title}</title></rect>"#,
                        if local { "local" } else { "rpc" },
                        y(lane) + 3.0,
                        LANE_H - 6.0,
                        e.seq
                    );
                }
            }
            EventKind::Apply { client, xid, proc, args, status, .. } => {
                drawn += 1;
                let lane = lanes[&(SERVER_LANE.0.to_string(), SERVER_LANE.1)];
                let _ = writeln!(
                    svg,
                    r#"<rect class="apply" x="{:.1}" y="{:.1}" width="2" height="{:.1}" data-ev="{}"><title>{}</title></rect>"#,
                    x(e.t),
                    y(lane) + 3.0,
                    LANE_H - 6.0,
                    e.seq,
                    esc(&format!(
                        "server {proc} {args} {status}\nfor {client} x{xid}\nt={:.6}s [ev {}]",
                        e.t.as_secs_f64(),
                        e.seq
                    ))
                );
            }
            EventKind::Note { host, pid, text, .. } => {
                drawn += 1;
                let lane = lanes[&(host.to_string(), *pid)];
                let nx = x(e.t);
                let ny = y(lane) + 2.0;
                let _ = writeln!(
                    svg,
                    r#"<path class="note" d="M{nx:.1} {ny:.1} l3 5 l-3 5 l-3 -5 z" data-ev="{}"><title>{}</title></path>"#,
                    e.seq,
                    esc(&format!("{text}\nt={:.6}s [ev {}]", e.t.as_secs_f64(), e.seq))
                );
            }
            _ => {}
        }
    }
    // The first violation.
    let violation = first_violation(report, only);
    let mut violation_note = String::from("no violation in this run");
    if let Some((oracle, line, seq)) = violation {
        if let Some(e) = events.get(seq as usize) {
            if e.t >= from && e.t <= to {
                let vx = x(e.t);
                let label = format!("first violation: {oracle} at t={:.3}s [ev {seq}]", e.t.as_secs_f64());
                let anchor = if vx > WIDTH - 400.0 { "end" } else { "start" };
                let _ = writeln!(
                    svg,
                    r#"<g id="violation"><line id="violation-marker" x1="{vx:.1}" x2="{vx:.1}" y1="{}" y2="{height}"><title>{}</title></line><text class="violation-label" x="{:.1}" y="{}" text-anchor="{anchor}">{}</text></g>"#,
                    TOP - 24.0,
                    esc(line),
                    vx + if anchor == "end" { -4.0 } else { 4.0 },
                    TOP - 26.0,
                    esc(&label)
                );
                violation_note = format!("{label}: {line}");
            } else {
                violation_note = format!(
                    "the first violation ({oracle}, t={:.3}s [ev {seq}]) is outside this window",
                    e.t.as_secs_f64()
                );
            }
        }
    }
    let _ = writeln!(svg, "</svg>");

    let capped = if drawn < total {
        format!("showing the first {drawn} of {total} marks (cap {TICKS_MAX}); narrow the window with --from-s/--to-s")
    } else {
        format!("{total} marks")
    };
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mmsim timeline: {name} seed {seed}</title>
<style>
body {{ font: 12px/1.4 monospace; margin: 8px; background: #fff; color: #222; }}
h1 {{ font-size: 15px; margin: 0 0 4px; }}
.meta {{ margin: 0 0 6px; }}
.legend span {{ margin-right: 14px; }}
.lane-bg {{ fill: #fafafa; }} .lane-bg.odd {{ fill: #f0f0f4; }}
.lane-label {{ font: 11px monospace; fill: #333; }}
.grid {{ stroke: #ddd; stroke-width: 1; }}
.axis-label {{ font: 10px monospace; fill: #666; text-anchor: middle; }}
.lock {{ fill: #8fd19e; fill-opacity: 0.55; stroke: #2e8b57; stroke-width: 0.5; }}
.call.rpc {{ fill: #3b6fd4; }}
.call.cache {{ fill: #f39c12; stroke: #a0600a; stroke-width: 0.5; }}
.call.local {{ fill: #bbb; fill-opacity: 0.6; }}
.call.err {{ fill: #e03131; }}
.apply {{ fill: #777; }}
.note {{ fill: #9b59b6; }}
#violation-marker {{ stroke: #e00; stroke-width: 2; }}
.violation-label {{ font: bold 12px monospace; fill: #e00; }}
#details {{ white-space: pre-wrap; border: 1px solid #ccc; padding: 4px; min-height: 3em; }}
</style></head>
<body>
<h1>{name} --seed {seed}: {verdict}</h1>
<p class="meta">window t={from_s:.3}s..{to_s:.3}s; {lanes} lanes; {capped}. {violation}</p>
<p class="legend"><span style="color:#2e8b57">&#9644; lock held</span><span style="color:#3b6fd4">&#9646; call answered by RPC</span><span style="color:#f39c12">&#9679; call answered from a cache (no RPC)</span><span style="color:#e03131">&#9646; failed call</span><span style="color:#999">&#9646; local call (no NFS)</span><span style="color:#777">&#9646; server apply</span><span style="color:#9b59b6">&#9670; note</span></p>
<pre id="details">hover a mark for details; click one to copy them here</pre>
{svg}<script>
// Click a mark to keep its details in view.
document.getElementById('timeline').addEventListener('click', function (ev) {{
  var t = ev.target.querySelector && ev.target.querySelector('title');
  if (t) document.getElementById('details').textContent = t.textContent;
}});
</script>
</body></html>
"#,
        name = esc(&report.scenario),
        seed = report.seed,
        verdict = esc(&report.verdict),
        lanes = order.len(),
        violation = esc(&violation_note),
    );
    html
}
