//! Scenario files: a deployment, a workload and a budget, in TOML.
//!
//! A scenario is loaded by name (the files shipped in `scenarios/files/`) or
//! from a path. Unknown keys are errors (`deny_unknown_fields`). `--set
//! key=value` edits the fully defaulted scenario tree, so it can reach any key
//! that exists, whether or not the file spells it out, and refuses any key that
//! does not. Every error is one line that names the key and what was expected.
//! The format is documented key by key in `docs/scenario-format.md`.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::programs;

/// Scenarios shipped with mmsim: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("smoke", include_str!("../files/smoke.toml")),
    ("two-servers", include_str!("../files/two-servers.toml")),
    ("two-servers-safe", include_str!("../files/two-servers-safe.toml")),
    ("slices-two-hosts", include_str!("../files/slices-two-hosts.toml")),
    ("fifty-each", include_str!("../files/fifty-each.toml")),
    ("two-servers-2002", include_str!("../files/two-servers-2002.toml")),
    ("two-servers-2002-21early", include_str!("../files/two-servers-2002-21early.toml")),
    ("lock-stress", include_str!("../files/lock-stress.toml")),
    ("flufl-lock-stress", include_str!("../files/flufl-lock-stress.toml")),
    ("dotlockfile-stress", include_str!("../files/dotlockfile-stress.toml")),
    ("lockfile-stress", include_str!("../files/lockfile-stress.toml")),
    ("flufl-suite", include_str!("../files/flufl-suite.toml")),
    ("list-stress", include_str!("../files/list-stress.toml")),
    ("crash-recovery", include_str!("../files/crash-recovery.toml")),
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub run: RunSettings,
    #[serde(default)]
    pub network: NetworkSettings,
    #[serde(default)]
    pub gate: sim::GateConfig,
    /// Which scheduler orders calls at the sim gate: `default` or `pct`.
    #[serde(default)]
    pub sched: sim::SchedConfig,
    #[serde(default)]
    pub server: sim::ServerConfig,
    /// Mount options of every client host (a host may override them).
    #[serde(default)]
    pub mount: sim::MountOptions,
    pub hosts: Vec<HostSpec>,
    #[serde(default)]
    pub oracles: OracleSettings,
    /// The NFS profiles that `mount` and `server` start from.
    #[serde(default)]
    pub nfs: NfsProfiles,
    #[serde(default)]
    pub mailman: MailmanSettings,
    #[serde(default)]
    pub load: LoadSettings,
    /// Faults at fixed simulated times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
    /// Named variants, run as `NAME/VARIANT`: each switches one thing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// Scenario variables: `{name}` in a boot argument is replaced by the
    /// value, and `--set vars.name=value` changes it (an experiment grid axis).
    /// `posts` and `profile` are reserved: they are `load.posts` and
    /// `mailman.profile`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub vars: std::collections::BTreeMap<String, toml::Value>,
}

/// A fault at a fixed simulated time, `at_s` seconds from the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultSpec {
    /// Cut the link between hosts `a` and `b` (either may be `nfs`) both ways.
    Partition { at_s: f64, a: String, b: String, window_s: f64 },
    /// The NFS server crashes and serves again after `down_s`.
    RebootServer { at_s: f64, down_s: f64 },
    /// A client host crashes: its processes and its NFS client state are lost.
    CrashHost { at_s: f64, host: String },
    /// A crashed host boots again and runs its boot programs.
    RestartHost { at_s: f64, host: String },
    /// SIGKILL to the oldest live process running `program` on `host`.
    CrashProcess { at_s: f64, host: String, program: String },
}

impl FaultSpec {
    pub fn at_s(&self) -> f64 {
        match self {
            FaultSpec::Partition { at_s, .. }
            | FaultSpec::RebootServer { at_s, .. }
            | FaultSpec::CrashHost { at_s, .. }
            | FaultSpec::RestartHost { at_s, .. }
            | FaultSpec::CrashProcess { at_s, .. } => *at_s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub description: String,
    /// `key=value` overrides, as `--set` takes them.
    pub set: Vec<String>,
}

/// The Mailman version the hosts run. Boot arguments may say `{profile}`, and
/// a boot entry may be limited to some profiles, so one file can describe the
/// same deployment under every version (`--set mailman.profile=2.0`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailmanSettings {
    /// `2.0`, `2.1-early` or `2.1.39`.
    pub profile: String,
}

impl Default for MailmanSettings {
    fn default() -> Self {
        MailmanSettings { profile: "2.1.39".into() }
    }
}

pub const MAILMAN_PROFILES: &[&str] = model::profile::PROFILE_NAMES;

/// The most posts a sender injects: its `--count`'s bound.
pub const LOAD_POSTS_MAX: u64 = model::programs::SENDER_COUNT_MAX;

/// The size of the load. Boot arguments may say `{posts}`, so one key scales a
/// scenario (`--set load.posts=20` for a quick run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSettings {
    /// Posts each sender injects.
    pub posts: u64,
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings { posts: 1000 }
    }
}

/// One program a host starts at boot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootSpec {
    /// A program of the table (`mmsim list`); empty when `exec` names an external one.
    #[serde(default)]
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// An external program and its arguments, run through `mmsim-shim`
    /// (docs/real-programs.md): shorthand for `program = "exec"` with
    /// `args` (exec's own options) followed by `--` and these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    /// Simulated milliseconds after boot at which it starts.
    #[serde(default)]
    pub start_ms: u64,
    /// Start it only under these Mailman profiles (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<String>>,
}

/// Which named bundles of NFS settings the scenario starts from. Every key of
/// `mount` (and each host's `mount`) and of `server` then overrides a single
/// setting of its profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NfsProfiles {
    /// `linux-modern`, `linux-2.2`, `noac`, `lookupcache-none`, `lookupcache-positive` or `actimeo-0`.
    pub client: sim::ClientProfile,
    /// `linux-modern` or `linux-2.2`.
    pub server: sim::ServerProfile,
}

impl Default for NfsProfiles {
    fn default() -> Self {
        NfsProfiles { client: sim::ClientProfile::LinuxModern, server: sim::ServerProfile::LinuxModern }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Simulated-time budget. Exhausting it is a liveness verdict.
    pub duration_s_max: u64,
    /// The run is complete when no process running one of these programs is alive.
    pub wait_for: Vec<String>,
    /// Coverage marks the run must hit; a run that misses one is vacuous (exit 4).
    pub require_marks: Vec<String>,
    /// After the awaited programs exit, keep running until every queue has
    /// been empty for `drain_quiet_s` (the liveness phase).
    pub drain: bool,
    pub drain_quiet_s: u64,
    /// When the fault phase ends and the heal begins (`Simulation::heal`), in
    /// simulated seconds; 0: when the awaited programs have exited and every
    /// scheduled fault has fired, if the run drains (a run that does not drain
    /// ends there, unhealed). Liveness and the drain are judged only after it.
    pub heal_at_s: f64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            duration_s_max: 3600,
            wait_for: Vec::new(),
            require_marks: Vec::new(),
            drain: false,
            drain_quiet_s: 5,
            heal_at_s: 0.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// Which engine runs the world: `events` (nanosecond time) or `turmoil` (1 ms steps).
    pub engine: sim::EngineKind,
    /// The link profile (`docs/engines.md`): `lan-modern`, `lan-2002` or `whole-ms`.
    pub profile: sim::LinkProfile,
    /// One-way latency between hosts, in microseconds (the profile's unless set).
    pub latency_us: u64,
    /// Link bandwidth in Mbit/s, 0 for unlimited (the profile's unless set).
    pub bandwidth_mbit_s: u64,
    /// One-way loopback latency, in microseconds (the profile's unless set).
    pub loopback_latency_us: u64,
    /// Fault rates of every client's link to the NFS server (a host may override them).
    pub faults: sim::LinkFaults,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings::from_profile(sim::LinkProfile::default())
    }
}

impl NetworkSettings {
    /// A profile's figures as keys.
    pub fn from_profile(profile: sim::LinkProfile) -> NetworkSettings {
        let net = profile.net_config();
        NetworkSettings {
            engine: sim::EngineKind::default(),
            profile,
            latency_us: net.lan.latency_ns / 1000,
            bandwidth_mbit_s: net.lan.bandwidth_bit_s / 1_000_000,
            loopback_latency_us: net.loopback.latency_ns / 1000,
            faults: sim::LinkFaults::default(),
        }
    }

    /// The link timing these keys describe.
    pub fn net_config(&self) -> sim::NetConfig {
        sim::NetConfig {
            lan: sim::LinkTiming {
                latency_ns: self.latency_us.saturating_mul(1000),
                bandwidth_bit_s: self.bandwidth_mbit_s.saturating_mul(1_000_000),
            },
            loopback: sim::LinkTiming { latency_ns: self.loopback_latency_us.saturating_mul(1000), bandwidth_bit_s: 0 },
        }
    }
}

/// Fills the link keys a scenario leaves out from its `network.profile`
/// (after `--set network.profile=…`, which applies first, as `nfs.` sets do).
fn expand_network(raw: &mut toml::Table, profile_sets: &[&String]) -> Result<(), InputError> {
    let network = raw.entry("network").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(network) = network else { return Err(bad("network: expected a table")) };
    if !profile_sets.is_empty() {
        // The same value parsing as every other `--set`, on a tree of just this table.
        network.entry("profile").or_insert_with(|| toml::Value::String(sim::LinkProfile::default().name().into()));
        let mut tree = toml::Value::Table(toml::Table::from_iter([(
            "network".to_string(),
            toml::Value::Table(std::mem::take(network)),
        )]));
        for set in profile_sets {
            apply_set(&mut tree, set)?;
        }
        if let toml::Value::Table(mut t) = tree {
            if let Some(toml::Value::Table(n)) = t.remove("network") {
                *network = n;
            }
        }
    }
    let profile: sim::LinkProfile = match network.get("profile") {
        None => sim::LinkProfile::default(),
        Some(v) => v.clone().try_into().map_err(|_| {
            bad(format!("network.profile: unknown profile {v}; expected one of: lan-modern, lan-2002, whole-ms"))
        })?,
    };
    let defaults = NetworkSettings::from_profile(profile);
    for (key, value) in [
        ("latency_us", defaults.latency_us),
        ("bandwidth_mbit_s", defaults.bandwidth_mbit_s),
        ("loopback_latency_us", defaults.loopback_latency_us),
    ] {
        network.entry(key).or_insert(toml::Value::Integer(value as i64));
    }
    Ok(())
}

/// Keys that were renamed when time became nanosecond-resolution: (old, new).
const RETIRED_KEYS: &[(&str, &str)] = &[("latency_ms", "latency_us"), ("delay_ms_max", "delay_us_max")];

/// Refuses a retired key, naming its replacement, and a table that mixes both forms.
fn check_retired(table: &toml::Table, path: &str) -> Result<(), InputError> {
    for (key, value) in table {
        let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        if let Some((old, new)) = RETIRED_KEYS.iter().find(|(old, _)| old == key) {
            if table.contains_key(*new) {
                return Err(bad(format!("{here}: mixes {old} and {new} for one setting; keep only {new}")));
            }
            return Err(bad(format!("{here}: this key is gone; use {new} (microseconds: 1 ms = 1000)")));
        }
        match value {
            toml::Value::Table(t) => check_retired(t, &here)?,
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item {
                        check_retired(t, &format!("{here}.{i}"))?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_retired_set(set: &str) -> Result<(), InputError> {
    let key = set.split_once('=').map_or(set, |(k, _)| k).trim();
    let last = key.rsplit('.').next().unwrap_or(key);
    match RETIRED_KEYS.iter().find(|(old, _)| *old == last) {
        Some((_, new)) => Err(bad(format!("--set {key}: this key is gone; use {new} (microseconds: 1 ms = 1000)"))),
        None => Ok(()),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: String,
    #[serde(default)]
    pub clock: sim::ClockConfig,
    #[serde(default)]
    pub boot: Vec<BootSpec>,
    #[serde(default)]
    pub mount: Option<sim::MountOptions>,
    #[serde(default)]
    pub faults: Option<sim::LinkFaults>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OracleSettings {
    /// Oracles to run, by name (`mmsim list` shows them).
    pub enabled: Vec<String>,
}

impl Default for OracleSettings {
    fn default() -> Self {
        OracleSettings { enabled: crate::oracle::ORACLES.iter().map(|o| o.name.to_string()).collect() }
    }
}

/// A bad-input error: one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    /// Always one line: a control character that a message repeats from the
    /// input (a newline in a `--set` key) is written escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(&self.0))
    }
}

/// `s` with every control character escaped (`\n`), so that it is one line.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

impl std::error::Error for InputError {}

fn bad(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// Loads a scenario by builtin name or path, applies `--set` overrides and validates it.
///
/// `NAME/VARIANT` loads a variant: the scenario with the variant's `set` list
/// applied before the caller's `--set`s, under the name `NAME/VARIANT`.
pub fn load(name_or_path: &str, sets: &[String]) -> Result<(Scenario, String), InputError> {
    if let Some((base, variant)) = name_or_path.rsplit_once('/').filter(|(b, _)| BUILTIN.iter().any(|(n, _)| n == b)) {
        let (scenario, _) = load(base, &[])?;
        let Some(v) = scenario.variants.iter().find(|v| v.name == variant) else {
            let names: Vec<String> = scenario.variants.iter().map(|v| format!("{base}/{}", v.name)).collect();
            return Err(bad(format!("unknown variant {name_or_path:?}; expected one of: {}", names.join(", "))));
        };
        let mut all = v.set.clone();
        all.push(format!("name={name_or_path}"));
        all.extend_from_slice(sets);
        return load(base, &all);
    }
    let text = if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        text.to_string()
    } else if name_or_path.ends_with(".toml") || Path::new(name_or_path).exists() {
        read_input_file(Path::new(name_or_path))
            .map_err(|e| bad(format!("cannot read scenario file {name_or_path:?}: {e}")))?
    } else {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return Err(bad(format!(
            "unknown scenario {name_or_path:?}; expected one of: {} (or a path to a .toml file)",
            names.join(", ")
        )));
    };
    parse(&text, sets)
}

/// The largest scenario or experiment file read: the shipped ones are a few KiB.
pub const INPUT_FILE_BYTES_MAX: u64 = 4 << 20;

/// Reads a scenario or experiment file as UTF-8 text, at most
/// [`INPUT_FILE_BYTES_MAX`] bytes (so `/dev/zero` is refused, not read forever).
/// `Err` is a short reason.
pub fn read_input_file(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.kind().to_string())?;
    let mut bytes = Vec::new();
    file.take(INPUT_FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(|e| e.kind().to_string())?;
    if bytes.len() as u64 > INPUT_FILE_BYTES_MAX {
        return Err(format!("larger than {INPUT_FILE_BYTES_MAX} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

/// Overlays `over` on `base`, table by table; `over` wins.
fn overlay(base: &mut toml::Value, over: &toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<toml::Value, InputError> {
    toml::Value::try_from(v).map_err(|e| bad(format!("scenario: {e}")))
}

/// Expands the NFS profiles: `mount`, each host's `mount` and `server` become
/// the profile's full settings with the file's keys laid over them.
fn expand_profiles(raw: &mut toml::Table) -> Result<(), InputError> {
    let profiles: NfsProfiles = match raw.get("nfs") {
        Some(v) => {
            v.clone().try_into().map_err(|e: toml::de::Error| bad(format!("nfs: {}", one_line(&e.to_string()))))?
        }
        None => NfsProfiles::default(),
    };
    let mut mount = to_value(&sim::MountOptions::profile(profiles.client))?;
    if let Some(over) = raw.get("mount") {
        overlay(&mut mount, over);
    }
    let mut server = to_value(&sim::ServerConfig::profile(profiles.server))?;
    if let Some(over) = raw.get("server") {
        overlay(&mut server, over);
    }
    if let Some(toml::Value::Array(hosts)) = raw.get_mut("hosts") {
        for host in hosts.iter_mut() {
            let toml::Value::Table(h) = host else { continue };
            if let Some(over) = h.get("mount").cloned() {
                let mut m = mount.clone();
                overlay(&mut m, &over);
                h.insert("mount".into(), m);
            }
        }
    }
    raw.insert("mount".into(), mount);
    raw.insert("server".into(), server);
    Ok(())
}

/// Parses TOML text, applies overrides, validates. Returns the scenario and its
/// canonical TOML (what the scenario hash covers).
///
/// `--set nfs.…` overrides apply first, because they choose the profiles that
/// every other key overrides; the other sets apply to the expanded tree.
pub fn parse(text: &str, sets: &[String]) -> Result<(Scenario, String), InputError> {
    let mut raw: toml::Table =
        toml::from_str(text).map_err(|e| bad(format!("scenario: {}", one_line(&e.to_string()))))?;
    check_retired(&raw, "")?;
    for set in sets {
        check_retired_set(set)?;
    }
    let (profile_sets, sets): (Vec<&String>, Vec<&String>) =
        sets.iter().partition(|s| s.trim_start().starts_with("network.profile="));
    expand_network(&mut raw, &profile_sets)?;
    let (nfs_sets, other_sets): (Vec<&String>, Vec<&String>) =
        sets.into_iter().partition(|s| s.trim_start().starts_with("nfs."));
    if !nfs_sets.is_empty() {
        let mut nfs = to_value(&NfsProfiles::default())?;
        if let Some(file_nfs) = raw.get("nfs") {
            overlay(&mut nfs, file_nfs);
        }
        let mut tree = toml::Value::Table(toml::Table::from_iter([("nfs".to_string(), nfs)]));
        for set in nfs_sets {
            apply_set(&mut tree, set)?;
        }
        if let toml::Value::Table(mut t) = tree {
            raw.insert("nfs".into(), t.remove("nfs").expect("nfs"));
        }
    }
    expand_profiles(&mut raw)?;
    let mut scenario: Scenario = toml::Value::Table(raw)
        .try_into()
        .map_err(|e: toml::de::Error| bad(format!("scenario: {}", one_line(&e.to_string()))))?;
    expand_exec(&mut scenario)?;
    let mut tree = to_value(&scenario)?;
    for set in other_sets {
        apply_set(&mut tree, set)?;
    }
    let scenario: Scenario =
        tree.clone().try_into().map_err(|e: toml::de::Error| bad(format!("--set: {}", one_line(&e.to_string()))))?;
    validate(&scenario)?;
    let canonical = toml::to_string(&scenario).map_err(|e| bad(format!("scenario: {e}")))?;
    Ok((scenario, canonical))
}

/// Rewrites each `exec = [...]` boot entry as the `exec` program with
/// `args ++ ["--"] ++ exec`, so that `--set` indexes and validation see one form.
fn expand_exec(s: &mut Scenario) -> Result<(), InputError> {
    for (i, h) in s.hosts.iter_mut().enumerate() {
        for (j, b) in h.boot.iter_mut().enumerate() {
            if b.exec.is_empty() {
                if b.program.is_empty() {
                    return Err(bad(format!("hosts.{i}.boot.{j}: expected `program` or `exec`")));
                }
                continue;
            }
            if !b.program.is_empty() && b.program != "exec" {
                return Err(bad(format!(
                    "hosts.{i}.boot.{j}: `exec` runs an external program, so `program` must be absent (got {:?})",
                    b.program
                )));
            }
            b.program = "exec".to_string();
            b.args.push("--".to_string());
            b.args.append(&mut b.exec);
        }
    }
    Ok(())
}

/// A TOML error as one line (its caret diagram dropped), for the one-line bad-input contract.
pub(crate) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Applies one `key=value`. The key is a dotted path into the defaulted tree;
/// array elements are addressed by index (`hosts.0.clock.offset_ms`).
fn apply_set(tree: &mut toml::Value, set: &str) -> Result<(), InputError> {
    let Some((key, raw)) = set.split_once('=') else {
        return Err(bad(format!("--set {set:?}: expected key=value")));
    };
    let key = key.trim();
    let mut node = &mut *tree;
    let mut walked = Vec::new();
    for part in key.split('.') {
        walked.push(part);
        let here = walked.join(".");
        // `[vars]` is open: setting a new name defines it (validation then
        // requires that some boot argument uses it, which catches typos).
        let fresh = match walked[..] {
            ["vars"] => Some(toml::Value::Table(toml::Table::new())),
            ["vars", _] => Some(toml::Value::String(String::new())),
            _ => None,
        };
        if let (Some(fresh), toml::Value::Table(t)) = (fresh, &mut *node) {
            t.entry(part.to_string()).or_insert(fresh);
        }
        node = match node {
            toml::Value::Table(t) => {
                let known: Vec<String> = t.keys().cloned().collect();
                t.get_mut(part)
                    .ok_or_else(|| bad(format!("--set {here}: no such key; expected one of: {}", known.join(", "))))?
            }
            toml::Value::Array(a) => {
                let len = a.len();
                let i: usize = part.parse().map_err(|_| bad(format!("--set {here}: expected an index below {len}")))?;
                a.get_mut(i).ok_or_else(|| bad(format!("--set {here}: expected an index below {len}")))?
            }
            _ => return Err(bad(format!("--set {here}: {} is not a table", walked[..walked.len() - 1].join(".")))),
        };
    }
    let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("v"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let expected = type_name(node);
    let value = match (&*node, parsed) {
        // A variable takes whatever scalar it is given: it only ever becomes text.
        (old, v) if key.starts_with("vars.") && !old.is_table() && !old.is_array() => v,
        (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (toml::Value::String(_), v @ toml::Value::String(_)) => v,
        // A string key keeps the raw text, so `--set x=linux-2.2` works unquoted.
        (toml::Value::String(_), _) => toml::Value::String(raw.trim().to_string()),
        (old, v) if std::mem::discriminant(old) == std::mem::discriminant(&v) => v,
        (_, v) => return Err(bad(format!("--set {key}: expected {expected}, got {} {raw:?}", type_name(&v)))),
    };
    *node = value;
    Ok(())
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !s.starts_with('-')
}

fn validate(s: &Scenario) -> Result<(), InputError> {
    if s.hosts.is_empty() {
        return Err(bad("hosts: expected at least one host"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, h) in s.hosts.iter().enumerate() {
        if !valid_name(&h.name) || h.name == sim::SERVER_HOST {
            return Err(bad(format!(
                "hosts.{i}.name: expected letters, digits and '-' (not {:?}, and not the server's name {:?})",
                h.name,
                sim::SERVER_HOST
            )));
        }
        if !seen.insert(h.name.clone()) {
            return Err(bad(format!("hosts.{i}.name: duplicate host {:?}", h.name)));
        }
        for (j, b) in h.boot.iter().enumerate() {
            if !programs::is_program(&b.program) {
                return Err(bad(format!(
                    "hosts.{i}.boot.{j}.program: unknown program {:?}; expected one of: {}",
                    b.program,
                    program_names()
                )));
            }
        }
        if let Some(m) = &h.mount {
            validate_mount(&format!("hosts.{i}.mount"), m)?;
        }
        if let Some(f) = &h.faults {
            validate_faults(&format!("hosts.{i}.faults"), f)?;
        }
    }
    for (name, value) in &s.vars {
        if RESERVED_VARS.contains(&name.as_str()) {
            return Err(bad(format!(
                "vars.{name}: reserved; {{{name}}} always means {}",
                if name == "posts" { "load.posts" } else { "mailman.profile" }
            )));
        }
        if !valid_var_name(name) {
            return Err(bad(format!("vars.{name}: expected a name of letters, digits and '_'")));
        }
        if value.is_table() || value.is_array() || value.is_datetime() {
            return Err(bad(format!("vars.{name}: expected a string, a number or true/false")));
        }
    }
    let args: Vec<(String, &String)> = s
        .hosts
        .iter()
        .enumerate()
        .flat_map(|(i, h)| {
            h.boot.iter().enumerate().flat_map(move |(j, b)| {
                b.args.iter().enumerate().map(move |(k, a)| (format!("hosts.{i}.boot.{j}.args.{k}"), a))
            })
        })
        .collect();
    for (key, a) in &args {
        s.expand(a).map_err(|e| bad(format!("{key}: {e}")))?;
    }
    for name in s.vars.keys() {
        let placeholder = format!("{{{name}}}");
        if !args.iter().any(|(_, a)| a.contains(&placeholder)) {
            return Err(bad(format!("vars.{name}: no such variable; no boot argument says {placeholder}")));
        }
    }
    if !MAILMAN_PROFILES.contains(&s.mailman.profile.as_str()) {
        return Err(bad(format!(
            "mailman.profile: unknown profile {:?}; expected one of: {}",
            s.mailman.profile,
            MAILMAN_PROFILES.join(", ")
        )));
    }
    if !(1..=LOAD_POSTS_MAX).contains(&s.load.posts) {
        return Err(bad(format!("load.posts: expected 1..={LOAD_POSTS_MAX} posts, got {}", s.load.posts)));
    }
    // Every program that will boot, with its arguments as it will get them:
    // the same `plan` that parses them when the program starts.
    for (i, h) in s.hosts.iter().enumerate() {
        for (j, b) in h.boot.iter().enumerate() {
            if !s.boots_under_profile(b) {
                continue;
            }
            let args = s.boot_args(b).map_err(|e| bad(format!("hosts.{i}.boot.{j}.args: {e}")))?;
            programs::check(&b.program, &args)
                .map_err(|e| bad(format!("hosts.{i}.boot.{j} ({} on {}): {e}", b.program, h.name)))?;
        }
    }
    if s.run.duration_s_max == 0 {
        return Err(bad("run.duration_s_max: expected a positive number of seconds"));
    }
    for p in &s.run.wait_for {
        if !programs::is_program(p) {
            return Err(bad(format!("run.wait_for: unknown program {p:?}; expected one of: {}", program_names())));
        }
    }
    for m in &s.run.require_marks {
        if !crate::marks::is_mark(m) {
            return Err(bad(format!(
                "run.require_marks: unknown mark {m:?}; expected one of: {}",
                crate::marks::names()
            )));
        }
    }
    for o in &s.oracles.enabled {
        if !crate::oracle::is_oracle(o) {
            return Err(bad(format!(
                "oracles.enabled: unknown oracle {o:?}; expected one of: {}",
                crate::oracle::names()
            )));
        }
    }
    if !(s.run.heal_at_s >= 0.0 && s.run.heal_at_s.is_finite()) {
        return Err(bad("run.heal_at_s: expected a non-negative number of seconds (0: when the load ends)"));
    }
    let hosts: Vec<&str> = s.hosts.iter().map(|h| h.name.as_str()).collect();
    for (i, f) in s.faults.iter().enumerate() {
        if !(f.at_s() >= 0.0 && f.at_s().is_finite()) {
            return Err(bad(format!("faults.{i}.at_s: expected a non-negative number of seconds")));
        }
        if s.run.heal_at_s > 0.0 && f.at_s() >= s.run.heal_at_s {
            return Err(bad(format!(
                "faults.{i}.at_s: {} s is not before run.heal_at_s ({} s); the heal ends every fault",
                f.at_s(),
                s.run.heal_at_s
            )));
        }
        let known = |h: &str, key: &str, server_ok: bool| {
            if hosts.contains(&h) || (server_ok && h == sim::SERVER_HOST) {
                Ok(())
            } else {
                Err(bad(format!("faults.{i}.{key}: unknown host {h:?}; expected one of: {}", hosts.join(", "))))
            }
        };
        match f {
            FaultSpec::Partition { a, b, window_s, .. } => {
                known(a, "a", true)?;
                known(b, "b", true)?;
                if !(*window_s > 0.0 && window_s.is_finite()) {
                    return Err(bad(format!("faults.{i}.window_s: expected a positive number of seconds")));
                }
            }
            FaultSpec::RebootServer { down_s, .. } if !(*down_s >= 0.0 && down_s.is_finite()) => {
                return Err(bad(format!("faults.{i}.down_s: expected a non-negative number of seconds")));
            }
            FaultSpec::RebootServer { .. } => {}
            FaultSpec::CrashHost { host, .. } | FaultSpec::RestartHost { host, .. } => known(host, "host", false)?,
            FaultSpec::CrashProcess { host, program, .. } => {
                known(host, "host", false)?;
                if !programs::is_program(program) {
                    return Err(bad(format!(
                        "faults.{i}.program: unknown program {program:?}; expected one of: {}",
                        program_names()
                    )));
                }
            }
        }
    }
    validate_network(&s.network)?;
    validate_faults("network.faults", &s.network.faults)?;
    validate_mount("mount", &s.mount)?;
    if s.gate.ops_per_step_max == 0 {
        return Err(bad("gate.ops_per_step_max: expected a positive count"));
    }
    validate_sched(&s.sched)?;
    if s.server.timestamp_granularity_ms == 0 {
        return Err(bad("server.timestamp_granularity_ms: expected a positive number of milliseconds"));
    }
    if s.server.sync_metadata_us > 10_000_000 {
        return Err(bad("server.sync_metadata_us: expected at most 10000000 µs (10 s) of disk time per commit"));
    }
    Ok(())
}

fn validate_sched(c: &sim::SchedConfig) -> Result<(), InputError> {
    if c.kind == sim::SchedKind::Default {
        // The pct keys mean nothing to the default scheduler: a changed one is a mistake.
        if *c != (sim::SchedConfig { kind: sim::SchedKind::Default, ..sim::SchedConfig::default() }) {
            return Err(bad("sched: depth, horizon_calls and defer_ms_max apply only with sched.kind = \"pct\""));
        }
        return Ok(());
    }
    if c.depth > sim::DEPTH_MAX {
        return Err(bad(format!("sched.depth: expected 0..={} change points, got {}", sim::DEPTH_MAX, c.depth)));
    }
    if c.horizon_calls == 0 {
        return Err(bad("sched.horizon_calls: expected a positive number of calls"));
    }
    if c.defer_ms_max > sim::DEFER_MS_MAX_MAX {
        return Err(bad(format!(
            "sched.defer_ms_max: expected 0..={} milliseconds, got {}",
            sim::DEFER_MS_MAX_MAX,
            c.defer_ms_max
        )));
    }
    Ok(())
}

/// An hour: no latency in a LAN simulation is longer; a larger value is a typo.
const LATENCY_US_MAX: u64 = 3_600_000_000;

fn validate_network(n: &NetworkSettings) -> Result<(), InputError> {
    for (key, v) in [("latency_us", n.latency_us), ("loopback_latency_us", n.loopback_latency_us)] {
        if v > LATENCY_US_MAX {
            return Err(bad(format!("network.{key}: expected 0..={LATENCY_US_MAX} microseconds (an hour)")));
        }
    }
    if n.bandwidth_mbit_s > 1_000_000 {
        return Err(bad("network.bandwidth_mbit_s: expected 0..=1000000 Mbit/s (0: unlimited)"));
    }
    let net = n.net_config();
    if n.engine == sim::EngineKind::Turmoil && net.lan.latency_ns == 0 {
        return Err(bad(
            "network.latency_us: the turmoil engine cannot represent a zero latency (its quantum is 1 ms); use 1..",
        ));
    }
    Ok(())
}

fn validate_faults(key: &str, f: &sim::LinkFaults) -> Result<(), InputError> {
    for (name, v) in [
        ("drop_request_ppm", f.drop_request_ppm),
        ("drop_reply_ppm", f.drop_reply_ppm),
        ("duplicate_ppm", f.duplicate_ppm),
        ("delay_ppm", f.delay_ppm),
    ] {
        if v > 1_000_000 {
            return Err(bad(format!("{key}.{name}: expected 0..=1000000 parts per million, got {v}")));
        }
    }
    if f.delay_us_max > 60_000_000 {
        return Err(bad(format!("{key}.delay_us_max: expected 0..=60000000 microseconds (a minute)")));
    }
    Ok(())
}

fn validate_mount(key: &str, m: &sim::MountOptions) -> Result<(), InputError> {
    for (name, v) in [("rsize", m.rsize), ("wsize", m.wsize)] {
        if !(512..=sim::RWSIZE_MAX).contains(&v) {
            return Err(bad(format!("{key}.{name}: expected 512..={} bytes, got {v}", sim::RWSIZE_MAX)));
        }
    }
    if m.transport.timeo_ms == 0 || m.transport.timeo_ms > m.transport.timeo_max_ms {
        return Err(bad(format!("{key}.transport.timeo_ms: expected 1..=timeo_max_ms milliseconds")));
    }
    Ok(())
}

fn program_names() -> String {
    programs::programs().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// Placeholders that are not `[vars]`: `{posts}` is `load.posts`, `{profile}` is `mailman.profile`.
pub const RESERVED_VARS: &[&str] = &["posts", "profile"];

fn valid_var_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The text a variable's value stands for: a string as it is, anything else as TOML writes it.
fn var_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Scenario {
    /// Replaces every `{name}` in a boot argument, in one pass (a value is
    /// never expanded again). A placeholder is `{` + letters, digits and `_`
    /// + `}`, so JSON such as `{"outgoing":{}}` passes through untouched.
    pub fn expand(&self, arg: &str) -> Result<String, String> {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            let name = &after[..name_len];
            if name.is_empty() || !after[name_len..].starts_with('}') {
                out.push('{');
                rest = after;
                continue;
            }
            let value = match name {
                "posts" => self.load.posts.to_string(),
                "profile" => self.mailman.profile.clone(),
                _ => match self.vars.get(name) {
                    Some(v) => var_text(v),
                    None => {
                        let known: Vec<&str> =
                            RESERVED_VARS.iter().copied().chain(self.vars.keys().map(String::as_str)).collect();
                        return Err(format!("undefined variable {{{name}}}; defined: {}", known.join(", ")));
                    }
                },
            };
            out.push_str(&value);
            rest = &after[name_len + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Whether a boot entry starts under this scenario's `mailman.profile`.
    pub fn boots_under_profile(&self, b: &BootSpec) -> bool {
        b.profiles.as_ref().is_none_or(|p| p.contains(&self.mailman.profile))
    }

    /// A boot entry's arguments as its program gets them: every placeholder
    /// expanded, and an argument that expands to nothing left out, as an
    /// unquoted empty shell variable is (a variable can switch a flag off
    /// without changing the other arguments).
    pub fn boot_args(&self, b: &BootSpec) -> Result<Vec<String>, String> {
        let mut args = Vec::with_capacity(b.args.len());
        for a in &b.args {
            let expanded = self.expand(a)?;
            if a.is_empty() || !expanded.is_empty() {
                args.push(expanded);
            }
        }
        Ok(args)
    }

    /// The world this scenario describes, under `seed`.
    pub fn world_config(&self, seed: u64) -> sim::WorldConfig {
        sim::WorldConfig {
            seed,
            engine: self.network.engine,
            net: self.network.net_config(),
            server: self.server.clone(),
            gate: self.gate.clone(),
            sched: self.sched.clone(),
            hosts: self
                .hosts
                .iter()
                .map(|h| sim::HostConfig {
                    name: h.name.clone(),
                    clock: h.clock.clone(),
                    mount: h.mount.clone().unwrap_or_else(|| self.mount.clone()),
                    link: h.faults.clone().unwrap_or_else(|| self.network.faults.clone()),
                    boot: h
                        .boot
                        .iter()
                        .filter(|b| self.boots_under_profile(b))
                        .map(|b| sim::BootProgram {
                            program: b.program.clone(),
                            args: self.boot_args(b).expect("validated when the scenario was loaded"),
                            start_ms: b.start_ms,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
