//! The list's stored state: the public attributes `Save()` writes to
//! `config.pck`/`config.db` (docs/semantics/mailman-config-store.md §4 step 2).
//!
//! Models a realistic subset of Mailman's attributes: identity, posting
//! counters, members with their per-member dictionaries, and bounce records,
//! so that the file has Mailman's size and shape. A list of 200 members
//! serialises to about 32 KiB, four 8 KiB writes. Leaves out the several
//! hundred other configuration variables, whose only effect here would be size.
//!
//! Pickle and marshal are replaced by serde JSON. What matters is kept: the
//! encoding is one stream written front to back, and a truncated or partial
//! file fails to decode, which is Mailman's "corrupt" path (mailman-config-store.md §5).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::member_map::{MemberMap, Span};

/// One entry of `bounce_info` (Mailman's `_BounceInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BounceRecord {
    pub score: f64,
    /// Date of the last bounce as `(year, month, day)`, as Mailman stores it.
    pub date: (i32, u32, u32),
    pub notices_left: u32,
    pub last_notice: (i32, u32, u32),
    pub cookie: String,
}

/// The public attributes of one `MailList`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListConfig {
    /// The list's name as Mailman stores it (`real_name`).
    pub real_name: String,
    pub host_name: String,
    pub web_page_url: String,
    pub description: String,
    pub info: String,
    pub owner: Vec<String>,
    pub moderator: Vec<String>,
    /// `"[%s %d] "`-style: the `%d` is replaced by `post_id` when a message is
    /// posted (CookHeaders).
    pub subject_prefix: String,
    /// The next post's number; the lost-update races repeat a value.
    pub post_id: u64,
    /// `time.time()` of the last post, seconds since the epoch.
    pub last_post_time: f64,
    pub created_at: f64,
    /// Regular members' addresses.
    pub members: Vec<String>,
    pub digest_members: Vec<String>,
    /// The per-member dictionaries: payload whose only effect here is the
    /// file's size, kept in a form that decodes cheaply (`member_map`).
    pub passwords: MemberMap<Span>,
    pub user_options: MemberMap<u32>,
    pub language: MemberMap<Span>,
    pub usernames: MemberMap<Span>,
    pub bounce_info: BTreeMap<String, BounceRecord>,
    /// Whether posts go to the archive (ToArchive, ArchRunner).
    pub archive: bool,
    /// Whether BounceRunner registers bounces at all.
    pub bounce_processing: bool,
}

impl ListConfig {
    /// A list named `real_name` with `member_count` regular members named
    /// `member0000@<member_domain>`, …; every tenth member has a bounce record.
    /// Deterministic: the same arguments give the same bytes.
    pub fn new(real_name: &str, host_name: &str, member_domain: &str, member_count: usize) -> Self {
        let members: Vec<String> = (0..member_count).map(|i| format!("member{i:04}@{member_domain}")).collect();
        let per_member = |f: &dyn Fn(usize) -> String| -> MemberMap<Span> {
            let values: Vec<String> = (0..members.len()).map(f).collect();
            members.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect()
        };
        let bounce_info = members
            .iter()
            .step_by(10)
            .enumerate()
            .map(|(i, m)| {
                let record = BounceRecord {
                    score: 1.0,
                    date: (2002, 1, 15),
                    notices_left: 3,
                    last_notice: (2002, 1, 1),
                    cookie: format!("{:040x}", i),
                };
                (m.clone(), record)
            })
            .collect();
        ListConfig {
            real_name: real_name.to_string(),
            host_name: host_name.to_string(),
            web_page_url: format!("http://{host_name}/mailman/"),
            description: format!("The {real_name} mailing list"),
            info: String::new(),
            owner: vec![format!("{real_name}-admin@{host_name}")],
            moderator: Vec::new(),
            subject_prefix: format!("[{real_name} %d] "),
            post_id: 1,
            last_post_time: 0.0,
            created_at: 1_000_000_000.0,
            passwords: per_member(&|i| format!("pw{i:06}")),
            user_options: members.iter().map(|m| (m.as_str(), 0)).collect(),
            language: per_member(&|_| "en".to_string()),
            usernames: per_member(&|i| format!("Member {i}")),
            members,
            digest_members: Vec::new(),
            bounce_info,
            archive: true,
            bounce_processing: true,
        }
    }

    /// Decodes a stored config, as `cPickle.load`/`marshal.load` does in
    /// `__load`. A pure memo sits in front of the decoder: the same bytes
    /// always give the same value, so a file read again unchanged (every
    /// qrunner loads the list for every message) shares the last decode of
    /// those bytes instead of parsing them again; a caller that changes its
    /// copy clones it first (`Rc::make_mut`). Errors are not memoised.
    pub fn decode(bytes: &[u8]) -> Result<Rc<ListConfig>, serde_json::Error> {
        DECODED.with(|memo| {
            let mut memo = memo.borrow_mut();
            if let Some(i) = memo.iter().position(|(b, _)| **b == *bytes) {
                let entry = memo.remove(i).expect("position is in range");
                let config = entry.1.clone();
                memo.push_front(entry);
                return Ok(config);
            }
            let config: Rc<ListConfig> = Rc::new(serde_json::from_slice(bytes)?);
            if memo.len() == DECODED_MAX {
                memo.pop_back();
            }
            memo.push_front((bytes.into(), config.clone()));
            Ok(config)
        })
    }

    /// Encodes a config for `Save()`, and tells the decode memo that these
    /// bytes decode to this config, so that the next `Load()` of the file,
    /// here or on another host, shares it. That is pure because the JSON
    /// round trip is exact (docs/semantics/mailman-config-store.md, tested by `a_saved_config_decodes_to_itself` in
    /// `model/tests/it/mlist.rs`).
    pub fn encode(config: &Rc<ListConfig>) -> Vec<u8> {
        let bytes = serde_json::to_vec(&**config).expect("ListConfig serialises");
        DECODED.with(|memo| {
            let mut memo = memo.borrow_mut();
            if let Some(i) = memo.iter().position(|(b, _)| **b == *bytes) {
                memo.remove(i);
            }
            if memo.len() == DECODED_MAX {
                memo.pop_back();
            }
            memo.push_front((bytes.as_slice().into(), config.clone()));
        });
        bytes
    }

    /// `registerBounce(member, msg, weight=1.0, day)` reduced to the score: the
    /// first bounce makes a record; a second bounce on the same `day` is
    /// ignored ("only one bounce per day counts"); a later one adds 1 to the
    /// score. Leaves out the membership and delivery-status checks, stale
    /// information resets, and the disable/notice actions.
    pub fn register_bounce(&mut self, address: &str, day: (i64, u32, u32)) {
        let day = (i32::try_from(day.0).unwrap_or(i32::MAX), day.1, day.2);
        match self.bounce_info.get_mut(address) {
            Some(record) if record.date == day => {}
            Some(record) => {
                record.score += 1.0;
                record.date = day;
            }
            None => {
                let record = BounceRecord {
                    score: 1.0,
                    date: day,
                    notices_left: 3,
                    last_notice: (1970, 1, 1),
                    cookie: String::new(),
                };
                self.bounce_info.insert(address.to_string(), record);
            }
        }
    }

    /// The Subject prefix of the next post, as CookHeaders renders it.
    pub fn rendered_subject_prefix(&self) -> String {
        self.subject_prefix.replace("%d", &self.post_id.to_string())
    }
}

/// How many distinct config encodings the decode memo keeps: a few versions
/// of a few lists are in flight at once.
const DECODED_MAX: usize = 8;

/// One memo entry: a config's encoded bytes and what they decode to.
type Decoded = (Box<[u8]>, Rc<ListConfig>);

thread_local! {
    /// Most recently used first.
    static DECODED: RefCell<VecDeque<Decoded>> = const { RefCell::new(VecDeque::new()) };
}
