//! A fuzzed front door: generated scenario files (mutations of the shipped
//! ones: dropped, duplicated and renamed keys, wrong types, huge and negative
//! numbers, hostile strings), `--set` strings and experiment files. Loading
//! never panics, and every refusal is one line. A few binary runs check the
//! same end to end: exit 2 and one stderr line.
//!
//! `cargo test` runs 64 cases of each in-process property and 6 of each binary
//! one; `PROPTEST_CASES=10000 cargo test -p scenarios --test it fuzz` is the
//! long mode of the in-process ones (README, "Tests").
//! Failures shrink to a minimal case that proptest records in
//! `fuzz.proptest-regressions` beside this file, which is committed and
//! replayed first.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use scenarios::experiment::Experiment;
use scenarios::scenario::{self, InputError};
use toml::Value;

use super::mmsim;

/// `cases` cases, or `PROPTEST_CASES` when `long` and it is set (the long mode).
fn config(cases: u32, long: bool) -> Config {
    let env = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok());
    Config {
        cases: if long { env.unwrap_or(cases) } else { cases },
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    }
}

/// A refusal as the CLI prints it: one line, not empty.
fn one_line(e: &InputError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(!text.is_empty());
    prop_assert!(!text.contains('\n') && !text.contains('\r'), "not one line: {text:?}");
    Ok(())
}

const HOSTILE: &[&str] = &[
    "",
    "../../etc",
    "a/b",
    "UPPER?",
    "..",
    ".",
    "/",
    "/etc/passwd",
    "\n",
    "x\ny",
    "\r\n",
    "\u{0}",
    "{posts}",
    "{profile}",
    "{nosuch}",
    "{",
    "}",
    "{}",
    "--",
    "-",
    "--count=-1",
    "--list=../../etc",
    "--settings={",
    "{\"outgoing\":{\"smtp_hots\":1}}",
    "über",
    "\u{202e}",
    "nan",
    "inf",
    "-0",
    "1e309",
    "99999999999",
    "18446744073709551616",
    "-1",
    "0",
    "true",
    "[1,2]",
    "{a=1}",
    "'''",
    "\"",
    "\\",
    "=",
    "a=b=c",
    "hosts.0",
    "mail1",
    "nfs",
];

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(HOSTILE).prop_map(str::to_string),
        2 => "\\PC{0,24}",
        2 => "[\\s\\S]{0,12}",
        1 => (1usize..20_000).prop_map(|n| "a".repeat(n)),
    ]
}

fn hostile_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        proptest::sample::select(vec![0, 1, -1, i64::MAX, i64::MIN, 99_999_999_999, 4_294_967_296, 65_536, 1_000_001]),
    ]
}

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        hostile_string().prop_map(Value::String),
        hostile_int().prop_map(Value::Integer),
        prop_oneof![
            any::<f64>(),
            proptest::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e308, -1.5])
        ]
        .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        Just(Value::Datetime("1979-05-27T07:32:00Z".parse().expect("a datetime"))),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every node of a tree but the root, as a path.
fn node_paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Table(t) => {
            for (k, child) in t {
                here.push(Seg::Key(k.clone()));
                out.push(here.clone());
                node_paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                here.push(Seg::Index(i));
                out.push(here.clone());
                node_paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut node = v;
    for seg in path {
        node = match (node, seg) {
            (Value::Table(t), Seg::Key(k)) => t.get_mut(k)?,
            (Value::Array(a), Seg::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// One edit of a TOML tree; the `u32` picks the node (modulo the node count).
#[derive(Clone, Debug)]
enum TreeEdit {
    Drop(u32),
    /// An array element twice, or a table entry under a second name.
    Duplicate(u32, String),
    Rename(u32, String),
    Replace(u32, Value),
    /// A leaf replaced by a value of its own type (an argument keeps its `--flag=`).
    Perturb(u32, Bundle),
}

/// A hostile value of every scalar type; a perturbation takes the leaf's.
#[derive(Clone, Debug)]
struct Bundle {
    int: i64,
    float: f64,
    string: String,
    boolean: bool,
    keep_flag: bool,
}

fn bundle() -> impl Strategy<Value = Bundle> {
    (hostile_int(), any::<f64>(), hostile_string(), any::<bool>(), any::<bool>())
        .prop_map(|(int, float, string, boolean, keep_flag)| Bundle { int, float, string, boolean, keep_flag })
}

impl Bundle {
    /// A value of `old`'s type; `None` for tables and arrays.
    fn like(&self, old: &Value) -> Option<Value> {
        Some(match old {
            Value::Integer(_) => Value::Integer(self.int),
            Value::Float(_) => Value::Float(self.float),
            Value::Boolean(_) => Value::Boolean(self.boolean),
            Value::String(s) => match s.split_once('=') {
                Some((flag, _)) if self.keep_flag && flag.starts_with("--") => {
                    Value::String(format!("{flag}={}", self.string))
                }
                _ => Value::String(self.string.clone()),
            },
            _ => return None,
        })
    }

    /// As `--set` value text.
    fn text_like(&self, old: &Value) -> String {
        match self.like(old) {
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
            None => self.string.clone(),
        }
    }
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    let name = prop_oneof![
        "[a-z_]{1,12}",
        proptest::sample::select(vec!["name", "hosts", "boot", "args", "latency_ms", "program", "posts", "vars"])
            .prop_map(str::to_string),
    ];
    prop_oneof![
        1 => any::<u32>().prop_map(TreeEdit::Drop),
        1 => (any::<u32>(), name.clone()).prop_map(|(i, n)| TreeEdit::Duplicate(i, n)),
        1 => (any::<u32>(), name).prop_map(|(i, n)| TreeEdit::Rename(i, n)),
        1 => (any::<u32>(), hostile_value()).prop_map(|(i, v)| TreeEdit::Replace(i, v)),
        3 => (any::<u32>(), bundle()).prop_map(|(i, b)| TreeEdit::Perturb(i, b)),
    ]
}

fn apply_edit(root: &mut Value, edit: &TreeEdit) {
    let mut paths = Vec::new();
    node_paths(root, &mut Vec::new(), &mut paths);
    if let TreeEdit::Perturb(i, b) = edit {
        // Only leaves: a perturbation keeps the tree's shape.
        paths.retain(|p| node_mut(root, p).is_some_and(|n| b.like(n).is_some()));
        let Some(path) = paths.get(*i as usize % paths.len().max(1)) else { return };
        let node = node_mut(root, path).expect("a leaf");
        *node = b.like(node).expect("a leaf");
        return;
    }
    let (TreeEdit::Drop(i) | TreeEdit::Duplicate(i, _) | TreeEdit::Rename(i, _) | TreeEdit::Replace(i, _)) = edit
    else {
        unreachable!()
    };
    let Some(path) = paths.get(*i as usize % paths.len().max(1)).cloned() else { return };
    if let TreeEdit::Replace(_, v) = edit {
        if let Some(node) = node_mut(root, &path) {
            *node = v.clone();
        }
        return;
    }
    let (last, parent_path) = path.split_last().expect("not the root");
    let Some(parent) = node_mut(root, parent_path) else { return };
    match (edit, parent, last) {
        (TreeEdit::Drop(_), Value::Table(t), Seg::Key(k)) => {
            t.remove(k);
        }
        (TreeEdit::Drop(_), Value::Array(a), Seg::Index(i)) => {
            a.remove(*i);
        }
        (TreeEdit::Duplicate(_, _), Value::Array(a), Seg::Index(i)) => {
            let copy = a[*i].clone();
            a.insert(*i, copy);
        }
        (TreeEdit::Duplicate(_, n), Value::Table(t), Seg::Key(k)) => {
            let copy = t[k].clone();
            t.insert(n.clone(), copy);
        }
        (TreeEdit::Rename(_, n), Value::Table(t), Seg::Key(k)) => {
            if let Some(v) = t.remove(k) {
                t.insert(n.clone(), v);
            }
        }
        _ => {}
    }
}

/// One edit of the text itself (duplicated keys are a text-level mistake).
#[derive(Clone, Debug)]
enum TextEdit {
    DuplicateLine(u32),
    DropLine(u32),
    Truncate(u32),
    Insert(u32, String),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        any::<u32>().prop_map(TextEdit::DuplicateLine),
        any::<u32>().prop_map(TextEdit::DropLine),
        any::<u32>().prop_map(TextEdit::Truncate),
        (any::<u32>(), hostile_string()).prop_map(|(i, s)| TextEdit::Insert(i, s)),
    ]
}

fn apply_text_edit(text: &str, edit: &TextEdit) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let at = |i: &u32| *i as usize % lines.len();
    match edit {
        TextEdit::DuplicateLine(i) => {
            let j = at(i);
            lines.insert(j, lines[j]);
            lines.join("\n")
        }
        TextEdit::DropLine(i) => {
            lines.remove(at(i));
            lines.join("\n")
        }
        TextEdit::Truncate(i) => text.chars().take(*i as usize % (text.chars().count() + 1)).collect(),
        TextEdit::Insert(i, s) => {
            let j = at(i);
            let line = format!("{}{s}", lines[j]);
            let mut owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            owned[j] = line;
            owned.join("\n")
        }
    }
}

fn builtin_names() -> Vec<String> {
    let mut names = Vec::new();
    for (name, text) in scenario::BUILTIN {
        names.push(name.to_string());
        let (s, _) = scenario::parse(text, &[]).expect("builtin");
        names.extend(s.variants.iter().map(|v| format!("{name}/{}", v.name)));
    }
    names
}

/// Every node of a builtin's defaulted tree (`name` may be `NAME/VARIANT`):
/// its `--set` key and its value.
fn nodes_of(name: &str) -> Vec<(String, Value)> {
    static NODES: OnceLock<std::collections::BTreeMap<String, Vec<(String, Value)>>> = OnceLock::new();
    let all = NODES.get_or_init(|| {
        let mut all = std::collections::BTreeMap::new();
        for name in builtin_names() {
            let (_, canonical) = scenario::load(&name, &[]).expect("builtin");
            let mut tree: Value = toml::from_str(&canonical).expect("canonical TOML");
            let mut paths = Vec::new();
            node_paths(&tree, &mut Vec::new(), &mut paths);
            let nodes = paths
                .iter()
                .map(|p| {
                    let key: Vec<String> = p
                        .iter()
                        .map(|s| match s {
                            Seg::Key(k) => k.clone(),
                            Seg::Index(i) => i.to_string(),
                        })
                        .collect();
                    (key.join("."), node_mut(&mut tree, p).expect("a node").clone())
                })
                .collect();
            all.insert(name, nodes);
        }
        all
    });
    all[name].clone()
}

fn keys_of(name: &str) -> Vec<String> {
    nodes_of(name).into_iter().map(|(k, _)| k).collect()
}

/// A builtin scenario (or variant) name, with `--set`s aimed at its own keys.
fn scenario_and_sets(count: std::ops::Range<usize>) -> impl Strategy<Value = (String, Vec<String>)> {
    proptest::sample::select(builtin_names())
        .prop_flat_map(move |name| (Just(name.clone()), proptest::collection::vec(set_string(&name), count.clone())))
}

/// Flags the shipped programs take, to build plausible hostile arguments.
const FLAGS: &[&str] = &[
    "--list=",
    "--members=",
    "--profile=",
    "--settings=",
    "--dirs=",
    "--count=",
    "--to=",
    "--from=",
    "--host=",
    "--port=",
    "--window-s=",
    "--id-prefix=",
    "--perm=",
    "--sessions=",
    "--every-s=",
    "--runs=",
    "--lock=",
    "--log=",
    "--rounds=",
    "--lifetime-s=",
    "--variant=",
    "--hold-ms=",
    "--runner=",
    "--stdin=",
    "--nosuch=",
    "",
];

fn set_string(name: &str) -> impl Strategy<Value = String> {
    // A key of this scenario with a hostile value of its own type: it gets past
    // the type check to validation (and to the programs' own checks).
    let typed =
        (proptest::sample::select(nodes_of(name)), bundle()).prop_map(|((k, v), b)| format!("{k}={}", b.text_like(&v)));
    let arg_keys: Vec<String> = keys_of(name).into_iter().filter(|k| k.contains(".args.")).collect();
    let arg_set = (proptest::sample::select(arg_keys), proptest::sample::select(FLAGS), hostile_string())
        .prop_map(|(k, f, s)| format!("{k}={f}{s}"));
    let key = prop_oneof![
        4 => proptest::sample::select(keys_of(name)),
        1 => "[a-z0-9_.]{0,24}",
        1 => hostile_string(),
        1 => (proptest::sample::select(keys_of(name)), 0usize..40).prop_map(|(k, i)| format!("{k}.{i}")),
    ];
    let value = prop_oneof![
        3 => hostile_string(),
        2 => hostile_value().prop_map(|v| v.to_string()),
        2 => (proptest::sample::select(FLAGS), hostile_string()).prop_map(|(f, s)| format!("{f}{s}")),
    ];
    prop_oneof![
        8 => typed,
        3 => arg_set,
        3 => (key, value).prop_map(|(k, v)| format!("{k}={v}")),
        1 => hostile_string(),
        1 => hostile_int().prop_map(|n| format!("load.posts={n}")),
    ]
}

type Grid = Vec<(String, Vec<Value>)>;

/// An experiment's scenario, fixed `set`s, grid and x-axis, aimed at the scenario's own keys.
fn experiment_core() -> impl Strategy<Value = (String, Vec<String>, Grid, Option<String>)> {
    let named = proptest::sample::select(builtin_names()).prop_flat_map(|name| {
        let axis = prop_oneof![
            // A key of the scenario and values of its own type.
            4 => (proptest::sample::select(nodes_of(&name)), proptest::collection::vec(bundle(), 1..4)).prop_map(
                |((k, v), bs)| (k, bs.iter().map(|b| b.like(&v).unwrap_or(Value::String(b.string.clone()))).collect())
            ),
            1 => (hostile_string(), proptest::collection::vec(leaf_value(), 0..4)),
        ];
        (
            Just(name.clone()),
            proptest::collection::vec(set_string(&name), 0..2),
            proptest::collection::vec(axis, 1..3),
            proptest::option::of(prop_oneof![proptest::sample::select(keys_of(&name)), hostile_string()]),
        )
    });
    prop_oneof![
        6 => named,
        1 => (hostile_string(), Just(Vec::new()), Just(vec![("load.posts".to_string(), vec![Value::Integer(1)])]), Just(None)),
    ]
}

/// After a successful load the world can be built from the scenario, and its
/// canonical text loads again.
fn accepted(s: &scenario::Scenario, canonical: &str) -> Result<(), TestCaseError> {
    let _ = s.world_config(1);
    for h in &s.hosts {
        for b in h.boot.iter().filter(|b| s.boots_under_profile(b)) {
            prop_assert!(scenarios::programs::check(&b.program, &s.boot_args(b).expect("expands")).is_ok());
        }
    }
    if let Err(e) = scenario::parse(canonical, &[]) {
        return Err(TestCaseError::fail(format!("the canonical text of an accepted scenario is refused: {e}")));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64, true))]

    /// Mutated shipped scenario files load or are refused in one line, never a panic.
    #[test]
    fn mutated_scenario_files_are_loaded_or_refused_in_one_line(
        file in 0..scenario::BUILTIN.len(),
        edits in proptest::collection::vec(tree_edit(), 1..4),
        text_edits in proptest::collection::vec(text_edit(), 0..2),
    ) {
        let (_, text) = scenario::BUILTIN[file];
        let mut tree: Value = toml::from_str(text).expect("builtin TOML");
        for e in &edits {
            apply_edit(&mut tree, e);
        }
        let Ok(mut text) = toml::to_string(&tree) else { return Ok(()) };
        for e in &text_edits {
            text = apply_text_edit(&text, e);
        }
        match scenario::parse(&text, &[]) {
            Ok((s, canonical)) => accepted(&s, &canonical)?,
            Err(e) => one_line(&e)?,
        }
    }

    /// Generated `--set` strings on every builtin and variant load or are refused in one line.
    #[test]
    fn generated_sets_are_applied_or_refused_in_one_line((name, sets) in scenario_and_sets(1..3)) {
        match scenario::load(&name, &sets) {
            Ok((s, canonical)) => accepted(&s, &canonical)?,
            Err(e) => one_line(&e)?,
        }
    }

    /// Generated experiment files are validated or refused in one line.
    #[test]
    fn generated_experiment_files_are_validated_or_refused_in_one_line(
        (scenario_name, set, grid, x) in experiment_core(),
        x_is_the_first_grid_key in any::<bool>(),
        seeds in prop_oneof![6 => 1i64..4, 1 => hostile_int()],
        seed_first in prop_oneof![6 => Just(0i64), 1 => hostile_int()],
        plot in proptest::option::of(proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(scenarios::experiment::METRICS.iter().map(|m| m.name.to_string()).collect::<Vec<_>>()),
                hostile_string(),
            ],
            0..3,
        )),
        oracle in proptest::option::of(prop_oneof![Just("any".to_string()), Just("lock_exclusion".to_string()), hostile_string()]),
        edits in prop_oneof![4 => Just(Vec::new()), 1 => proptest::collection::vec(tree_edit(), 1..3)],
    ) {
        let mut t = toml::Table::new();
        t.insert("name".into(), Value::String("fuzz".into()));
        t.insert("description".into(), Value::String("generated".into()));
        t.insert("scenario".into(), Value::String(scenario_name));
        t.insert("seeds".into(), Value::Integer(seeds));
        t.insert("seed_first".into(), Value::Integer(seed_first));
        t.insert("set".into(), Value::Array(set.into_iter().map(Value::String).collect()));
        let x = if x_is_the_first_grid_key { grid.first().map(|(k, _)| k.clone()) } else { x };
        let mut g = toml::Table::new();
        for (k, values) in grid {
            g.insert(k, Value::Array(values));
        }
        t.insert("grid".into(), Value::Table(g));
        if let Some(x) = x {
            t.insert("x".into(), Value::String(x));
        }
        if let Some(plot) = plot {
            t.insert("plot".into(), Value::Array(plot.into_iter().map(Value::String).collect()));
        }
        if let Some(o) = oracle {
            t.insert("oracle".into(), Value::String(o));
        }
        let mut tree = Value::Table(t);
        for e in &edits {
            apply_edit(&mut tree, e);
        }
        let Ok(text) = toml::to_string(&tree) else { return Ok(()) };
        // A base directory that does not exist: a relative scenario path is never found.
        if let Err(e) = Experiment::parse(&text, Path::new("/nonexistent-mmsim-fuzz"), Some(1)) {
            one_line(&e)?;
        }
    }

    /// The other bad-input parsers of the CLI: seed ranges, shards, bench scales.
    #[test]
    fn cli_value_parsers_refuse_in_one_line(s in hostile_string()) {
        for r in [
            scenarios::sweep::parse_seed_range(&s).map(drop),
            scenarios::sweep::parse_shard(&s).map(drop),
            scenarios::bench::parse_scales(&s).map(drop),
        ] {
            if let Err(e) = r {
                one_line(&e)?;
            }
        }
    }

    /// The door is at least as strict as the model: a name the model's own
    /// check refuses is never accepted for a new list.
    #[test]
    fn the_list_name_door_is_at_least_as_strict_as_the_model(name in prop_oneof![hostile_string(), "[-+_.=a-zA-Z0-9/]{0,6}"]) {
        if model::validate_list_name(&name).is_err() {
            prop_assert!(model::check_new_list_name(&name).is_err(), "{name:?}");
        }
        if model::check_new_list_name(&name).is_ok() {
            prop_assert!(name.chars().all(|c| model::ACCEPTABLE_LISTNAME_CHARACTERS.contains(c)), "{name:?}");
        }
    }
}

/// Bad inputs by construction, for the binary: a `--set` no scenario accepts.
fn bad_set() -> impl Strategy<Value = String> {
    let hostile_list = hostile_string()
        // No placeholder: `{posts}` expands to a good name.
        .prop_filter("a name the door refuses", |n| !n.contains('{') && model::check_new_list_name(n).is_err())
        .prop_map(|n| format!("hosts.0.boot.0.args.1=--list={n}"));
    let posts = prop_oneof![1_000_001i64..i64::MAX, i64::MIN..1].prop_map(|n| format!("load.posts={n}"));
    let count = prop_oneof![1_000_001u64..u64::MAX, Just(0)].prop_map(|n| format!("hosts.3.boot.0.args.3=--count={n}"));
    let flag = "[a-z]{1,10}"
        .prop_filter("not a sender flag", |f| {
            ![
                "to",
                "count",
                "host",
                "port",
                "from",
                "connections",
                "window-s",
                "retry-delay-s",
                "attempts-max",
                "id-prefix",
            ]
            .contains(&f.as_str())
        })
        .prop_map(|f| format!("hosts.3.boot.0.args.6=--{f}=1"));
    prop_oneof![hostile_list, posts, count, flag].prop_filter("no NUL in a process argument", |s| !s.contains('\0'))
}

proptest! {
    #![proptest_config(config(6, false))]

    /// End to end: the `mmsim` binary gets generated bad inputs and answers
    /// each with exit 2 and one stderr line, before any world runs.
    #[test]
    fn the_binary_refuses_generated_bad_input_with_exit_2_and_one_line(set in bad_set()) {
        let out = mmsim(&["run", "two-servers", "--set", &set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert_eq!(out.status.code(), Some(2), "{}: {}", set, stderr);
        prop_assert_eq!(stderr.trim_end().lines().count(), 1, "{}: {:?}", set, stderr);
        prop_assert!(stderr.starts_with("mmsim: ") && !stderr.contains("panicked"), "{:?}", stderr);
        prop_assert!(out.stdout.is_empty());
    }

    /// End to end with files: a scenario file with a required key dropped or a
    /// hostile value, and an experiment whose grid no scenario accepts.
    #[test]
    fn the_binary_refuses_generated_bad_files_with_exit_2_and_one_line(
        file in 0..scenario::BUILTIN.len(),
        drop_key in proptest::sample::select(vec!["name", "description", "hosts"]),
        posts in prop_oneof![1_000_001i64..i64::MAX, i64::MIN..1],
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, text) = scenario::BUILTIN[file];
        let mut tree: toml::Table = toml::from_str(text).expect("builtin");
        tree.remove(drop_key);
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml::to_string(&tree).expect("TOML")).expect("write");
        for args in [
            vec!["run".to_string(), path.display().to_string()],
            vec!["run".to_string(), scenario::BUILTIN[file].0.to_string(), "--set".into(), format!("load.posts={posts}")],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = mmsim(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            prop_assert_eq!(out.status.code(), Some(2), "{:?}: {}", args, stderr);
            prop_assert_eq!(stderr.trim_end().lines().count(), 1, "{:?}: {:?}", args, stderr);
        }
        let exp = dir.path().join("bad-experiment.toml");
        let out_dir = dir.path().join("out");
        std::fs::write(
            &exp,
            format!(
                "name = 'x'\ndescription = 'y'\nscenario = '{}'\nseeds = 1\n[grid]\n'load.posts' = [1, {posts}]\n",
                scenario::BUILTIN[file].0
            ),
        )
        .expect("write");
        let out = mmsim(&["experiment", exp.to_str().expect("utf-8"), "--out", out_dir.to_str().expect("utf-8")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert_eq!(out.status.code(), Some(2), "{}", stderr);
        prop_assert_eq!(stderr.trim_end().lines().count(), 1, "{:?}", stderr);
        prop_assert!(!out_dir.exists(), "a refused experiment wrote its output directory");
    }
}
