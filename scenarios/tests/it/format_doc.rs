//! docs/scenario-format.md documents every key the parser accepts.

use std::collections::BTreeSet;

/// Every leaf key of a TOML tree, arrays written `[]`.
fn keys(prefix: &str, v: &toml::Value, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                keys(&p, v, out);
            }
        }
        toml::Value::Array(a) if a.iter().any(|e| e.is_table()) => {
            for e in a {
                keys(&format!("{prefix}[]"), e, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[test]
fn every_scenario_key_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/scenario-format.md")).unwrap();
    let mut all = BTreeSet::new();
    for (name, _) in scenarios::scenario::BUILTIN {
        let (_, canonical) = scenarios::scenario::load(name, &[]).unwrap();
        keys("", &toml::from_str::<toml::Value>(&canonical).unwrap(), &mut all);
    }
    // Keys only some files use: a host-level mount and faults, every fault kind, actimeo.
    let extra = r#"
        name = "x"
        description = "x"
        [[hosts]]
        name = "a"
        mount = { actimeo_s = 1 }
        faults = { delay_ppm = 1 }
        [[faults]]
        kind = "partition"
        at_s = 1
        a = "a"
        b = "nfs"
        window_s = 1
        [[faults]]
        kind = "reboot-server"
        at_s = 1
        down_s = 1
        [[faults]]
        kind = "crash-process"
        at_s = 1
        host = "a"
        program = "mta"
    "#;
    let (_, canonical) = scenarios::scenario::parse(extra, &[]).unwrap();
    keys("", &toml::from_str::<toml::Value>(&canonical).unwrap(), &mut all);
    // A host's mount and faults take the same keys as the scenario-wide ones.
    let all: BTreeSet<String> = all
        .into_iter()
        .map(|k| k.replace("hosts[].mount.", "mount.").replace("hosts[].faults.", "network.faults."))
        // Variables are named by each scenario; one row documents them all.
        .map(|k| if k.starts_with("vars.") { "vars.<name>".to_string() } else { k })
        .collect();
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| {
            !doc.contains(&format!("`{k}`")) && !doc.contains(&format!("`{k} /")) && !doc.contains(&format!("/ `{k}`"))
        })
        .collect();
    assert!(missing.is_empty(), "undocumented scenario keys: {missing:?}");
}
