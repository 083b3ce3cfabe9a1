//! `two-servers-safe`: the seed case with the MTA's router checking the list
//! directory. On a seed where stock `two-servers` bounces messages because
//! the list appeared missing (seed 1 at full load since the client fixes of
//! 2026-12: the MTA's `require_files` stat of `config.pck` is answered by a
//! negative dentry filled in a silly-rename gap of the other host's Save), the
//! safe setting bounces none and its MTA never finds the list missing. What
//! the safe setting does not promise is the runner side: a runner's `Load`
//! can still meet two gaps in a row (`config.pck` absent through a negative
//! dentry, then `.last` between the other host's unlink and link; README,
//! "What mmsim found"), so `no_missing_list` is checked here for the MTA's
//! places only. The ≥ 3000-seed sweep is in the README; this is its
//! regression test.

use scenarios::mail::MailFigures;

fn run(scenario: &str, seed: &str) -> (serde_json::Value, MailFigures) {
    let out = crate::mmsim(&["run", scenario, "--seed", seed, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mail = serde_json::from_value(report["figures"]["mail"].clone()).unwrap();
    (report, mail)
}

fn oracle_status<'a>(report: &'a serde_json::Value, name: &str) -> &'a str {
    let oracles = report["oracles"].as_array().unwrap();
    let o = oracles.iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("no oracle {name}"));
    o["status"].as_str().unwrap()
}

#[test]
fn the_safe_setting_loses_no_list_on_a_seed_where_the_stock_one_does() {
    let (stock, stock_mail) = run("two-servers", "1");
    assert_eq!(oracle_status(&stock, "no_missing_list"), "fail", "the stock seed no longer shows the window");
    assert!(stock_mail.bounced_list_missing > 0, "{stock_mail:?}");
    let (safe, mail) = run("two-servers-safe", "1");
    for oracle in ["message_conservation", "liveness"] {
        assert_eq!(oracle_status(&safe, oracle), "pass", "{oracle}");
    }
    assert_eq!((mail.injected, mail.bounced), (2000, 0), "{mail:?}");
    let mta: Vec<_> = mail.missing.keys().filter(|place| !place.starts_with("runner_")).collect();
    assert!(mta.is_empty(), "the MTA found the list missing: {mta:?} in {mail:?}");
}
