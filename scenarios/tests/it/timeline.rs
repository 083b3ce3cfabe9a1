//! `mmsim timeline`: the page renders in a real browser (headless Chromium),
//! with one lane per process and the first violation marked.
//!
//! `cargo xtask test`, the README's test command, installs Chromium when it is
//! missing; without it this test fails, on purpose.

use std::process::Command;

use super::explain::SMALL_2002;
use super::{mmsim, pin};

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success()) {
            return name.to_string();
        }
    }
    panic!("headless Chromium is required for the timeline test and is not installed: run the tests with cargo xtask test, which installs it, or apt-get install -y chromium");
}

/// Counts `needle` in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn timeline_renders_lanes_and_the_violation_marker_in_headless_chromium() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("run.html");
    let mut args = vec!["timeline"];
    args.extend_from_slice(SMALL_2002);
    args.extend_from_slice(&["--out", page.to_str().unwrap(), "--oracle", "no_missing_list"]);
    let out = mmsim(&args);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let profile = dir.path().join("profile");
    let dom = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<svg"), "Chromium rendered no SVG:\n{}", &dom[..dom.len().min(2000)]);
    let declared: usize = dom
        .split("data-lanes=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("the svg declares its lane count");
    assert!(declared >= 3, "expected the server and at least two processes, got {declared}");
    assert_eq!(count(&dom, "class=\"lane\""), declared);
    assert_eq!(count(&dom, "id=\"violation-marker\""), 1);
    assert!(dom.contains("first violation: no_missing_list"), "no violation label");
    assert!(dom.contains("class=\"call cache"), "no cache-served call drawn");
    assert!(dom.contains("class=\"lock\""), "no lock bar drawn");
    // What the page draws, pinned: its window, its lanes in order, and how
    // many of each kind of mark (from the page mmsim wrote, before a browser
    // touched it).
    let html = std::fs::read_to_string(&page).unwrap();
    pin("timeline-two-servers-2002-21early-small", &summary(&String::from_utf8_lossy(&out.stdout), &html));
}

/// The timeline page in a few lines: mmsim's own line, every lane label in
/// order, and the number of marks of each class.
fn summary(wrote: &str, html: &str) -> String {
    let mut s = String::new();
    let line = wrote.lines().next().unwrap_or("");
    // The page's path is a temporary directory: keep what follows it.
    s.push_str(line.split_once(" (").map_or(line, |(_, rest)| rest));
    s.push('\n');
    for label in html.split("class=\"lane-label\"").skip(1) {
        let text = label.split_once('>').and_then(|(_, t)| t.split_once('<')).map_or("", |(t, _)| t);
        s.push_str(&format!("lane {text}\n"));
    }
    let mut classes = std::collections::BTreeMap::<&str, usize>::new();
    for part in html.split("class=\"").skip(1) {
        let class = part.split('"').next().unwrap_or("");
        if !class.starts_with("lane") && !class.starts_with("axis") && class != "grid" {
            *classes.entry(class).or_default() += 1;
        }
    }
    for (class, n) in classes {
        s.push_str(&format!("{n:>6} {class}\n"));
    }
    if let Some(label) = html.split("first violation: ").nth(1) {
        s.push_str(&format!("first violation: {}\n", label.split('<').next().unwrap_or("")));
    }
    s
}
