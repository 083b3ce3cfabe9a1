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

/// docs/semantics/ holds the rule behind every client and server switch a
/// scenario can set: each `mount.*` and `server.*` key is named there, and so
/// is every value an enumerated one accepts (read from the loader's own
/// refusal of a wrong value, so a new variant cannot go unwritten).
#[test]
fn every_mount_and_server_switch_and_value_is_in_docs_semantics() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/semantics");
    let mut docs = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        docs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let (_, canonical) = scenarios::scenario::load("smoke", &[]).unwrap();
    let tree: toml::Value = toml::from_str(&canonical).unwrap();
    let mut all = BTreeSet::new();
    for section in ["mount", "server"] {
        keys(section, &tree[section], &mut all);
    }
    assert!(all.len() > 20, "{all:?}");
    let mut missing = Vec::new();
    let mut enumerated = 0;
    for key in &all {
        if !docs.contains(&format!("`{key}`")) {
            missing.push(key.clone());
        }
        let refusal = match scenarios::scenario::load("smoke", &[format!("{key}=not-a-value")]) {
            Ok(_) => continue,
            Err(e) => e.to_string(),
        };
        let Some((_, expected)) = refusal.split_once("unknown variant `not-a-value`, expected ") else { continue };
        enumerated += 1;
        let expected = expected.split(": in").next().unwrap();
        for value in expected.split('`').skip(1).step_by(2) {
            if !docs.contains(&format!("`{value}`")) {
                missing.push(format!("{key} = {value:?}"));
            }
        }
    }
    assert!(enumerated >= 15, "only {enumerated} enumerated switches found: has the refusal's wording changed?");
    assert!(missing.is_empty(), "not in docs/semantics/: {missing:?}");
}
