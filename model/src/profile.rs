//! Version profiles: one consistent, version-exact set of every variant
//! setting (docs/semantics/mailman-queues-runners.md §1), and the [`Settings`] struct that carries them.
//!
//! Models the three profiles the testbed replays: [`MailmanProfile::V2_0`]
//! (2.0.13), [`MailmanProfile::V2_1Early`] (exactly tag 2.1.2) and
//! [`MailmanProfile::V2_1_39`]. Every choice can be overridden: a JSON
//! object merged over the profile's settings is deserialised with
//! `deny_unknown_fields`, so a misspelt key is an error, not a silent default.
//!
//! The list store and its lock are configured by `mlist`'s own
//! [`MailListSettings`] (with its [`crate::LockSettings`]), built by the
//! version constructors `mailman_2_0_13()`, `mailman_2_1_2()` and
//! `mailman_2_1_39()`; the 2.0 qrunner's and mailmanctl's site locks use the
//! same lock variant with their own lifetimes. Each knob exists exactly once.

use serde::{Deserialize, Serialize};

use crate::list_access::{ConfigFormat, MailListSettings};
use crate::mta::MtaSettings;
use crate::post::{PostSettings, PostVariant};
use crate::runner::{
    ArchSettings, BounceRegistration, BounceSettings, DequeueErrors, ListCache, MailmanctlSettings, OutgoingSettings,
    PermFailures, PermFailuresOnCleanup, Qrunner20Settings, QrunnerSpec, RetrySettings, RetryWait, RunnerSettings,
    ShuntFailure, TempFailures,
};
use crate::slice::SliceRule;
use crate::switchboard::{BadMessages, BakRecovery, DequeueMode, KeyCollision, QueueFormat, SwitchboardSettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailmanProfile {
    /// 2.0.13.
    #[serde(rename = "2.0")]
    V2_0,
    /// Exactly tag 2.1.2.
    #[serde(rename = "2.1-early")]
    V2_1Early,
    /// 2.1.39.
    #[serde(rename = "2.1.39")]
    V2_1_39,
}

/// The profile names `--profile=` takes, in [`MailmanProfile::ALL`]'s order.
pub const PROFILE_NAMES: &[&str] = &["2.0", "2.1-early", "2.1.39"];

impl MailmanProfile {
    pub const ALL: [MailmanProfile; 3] = [MailmanProfile::V2_0, MailmanProfile::V2_1Early, MailmanProfile::V2_1_39];

    /// The profile's name as `--profile=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            MailmanProfile::V2_0 => "2.0",
            MailmanProfile::V2_1Early => "2.1-early",
            MailmanProfile::V2_1_39 => "2.1.39",
        }
    }

    pub fn from_name(name: &str) -> Option<MailmanProfile> {
        MailmanProfile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The profile's settings.
    pub fn settings(self) -> Settings {
        match self {
            MailmanProfile::V2_1_39 => Settings::default(),
            MailmanProfile::V2_1Early => v2_1_2(),
            MailmanProfile::V2_0 => v2_0(),
        }
    }
}

/// Every setting of the model; `Default` is 2.1.39.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub queue: SwitchboardSettings,
    /// The list config store and the list lock (docs/semantics/mailman-config-store.md,
    /// docs/semantics/mailman-lockfile.md).
    pub list_store: MailListSettings,
    pub runner: RunnerSettings,
    pub outgoing: OutgoingSettings,
    pub bounce: BounceSettings,
    pub retry: RetrySettings,
    pub arch: ArchSettings,
    pub qrunner20: Qrunner20Settings,
    pub mailmanctl: MailmanctlSettings,
    pub mta: MtaSettings,
    pub post: PostSettings,
}

/// Tag 2.1.2 (the 2.1-early profile).
#[allow(clippy::field_reassign_with_default)] // reads as a diff against 2.1.39
fn v2_1_2() -> Settings {
    let mut s = Settings::default();
    s.queue = SwitchboardSettings {
        format: QueueFormat::TwoFile21Early,
        dequeue_mode: DequeueMode::ReadThenUnlink,
        slice_rule: SliceRule::SliceZeroTakesAll,
        key_collision: KeyCollision::DropUntilNextPass,
        bak_recovery: BakRecovery::None,
        bad_messages: BadMessages::Preserve,
        ..SwitchboardSettings::default()
    };
    s.list_store = MailListSettings::mailman_2_1_2();
    s.runner.dequeue_errors = DequeueErrors::Escape;
    s.runner.shunt_failure = ShuntFailure::Escape;
    s.runner.list_cache = ListCache::KeptForever;
    s.outgoing.temp_failures = TempFailures::RequeueOutWithDeliverAfter;
    s.outgoing.perm_failures = PermFailures::InMemory;
    s.outgoing.deal_with_permfailures_every = 1;
    s.outgoing.perm_failures_on_cleanup = PermFailuresOnCleanup::Lost;
    s.bounce.registration = BounceRegistration::LockInDispose;
    // No retry queue before 2.1.3.
    s.retry.wait = RetryWait::IgnoreDeliverAfter;
    s.mailmanctl.qrunners.retain(|q: &QrunnerSpec| q.name != "Retry");
    s
}

/// 2.0.13.
fn v2_0() -> Settings {
    let mut s = v2_1_2();
    s.queue.format = QueueFormat::Flat20;
    s.list_store = MailListSettings::mailman_2_0_13();
    s.mta.require_file = ConfigFormat::Db20;
    s.post.variant = PostVariant::V20FullLoad;
    // 2.0 has no per-queue runners and no master: cron runs `qrunner20`,
    // which keeps its own list objects for one run.
    s.mailmanctl.qrunners.clear();
    s.runner.list_cache = ListCache::None;
    s
}

/// Errors from [`settings_from`].
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("unknown profile {0:?} (known: 2.0, 2.1-early, 2.1.39)")]
    UnknownProfile(String),
    #[error("bad settings override: {0}")]
    BadOverride(String),
}

/// The settings of `profile` with `overrides` (a JSON object, possibly
/// partial) merged over them.
///
/// Every process of a run is started with the same few `--settings` texts,
/// so a pure memo of the last few merges sits in front: the same texts
/// always give the same settings. Errors are not memoised.
pub fn settings_from(profile: &str, overrides: Option<&str>) -> Result<Settings, SettingsError> {
    MERGED.with(|memo| {
        let mut memo = memo.borrow_mut();
        let hit = memo.iter().position(|(p, o, _)| p == profile && o.as_deref() == overrides);
        if let Some(i) = hit {
            let entry = memo.remove(i).expect("position is in range");
            let settings = entry.2.clone();
            memo.push_front(entry);
            return Ok(settings);
        }
        let settings = merge_settings(profile, overrides)?;
        if memo.len() == MERGED_MAX {
            memo.pop_back();
        }
        memo.push_front((profile.to_string(), overrides.map(str::to_string), settings.clone()));
        Ok(settings)
    })
}

/// How many `(profile, overrides)` merges the memo keeps.
const MERGED_MAX: usize = 8;

thread_local! {
    /// Most recently used first.
    static MERGED: std::cell::RefCell<std::collections::VecDeque<(String, Option<String>, Settings)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

fn merge_settings(profile: &str, overrides: Option<&str>) -> Result<Settings, SettingsError> {
    let p = MailmanProfile::from_name(profile).ok_or_else(|| SettingsError::UnknownProfile(profile.to_string()))?;
    let base = p.settings();
    let Some(text) = overrides else {
        return Ok(base);
    };
    let patch: serde_json::Value = serde_json::from_str(text).map_err(|e| SettingsError::BadOverride(e.to_string()))?;
    let mut value = serde_json::to_value(&base).expect("settings always serialise");
    merge(&mut value, patch);
    serde_json::from_value(value).map_err(|e| SettingsError::BadOverride(e.to_string()))
}

/// Recursive object merge; non-objects replace.
fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}
