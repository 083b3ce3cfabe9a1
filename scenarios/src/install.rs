//! `install`: what an administrator does before the load starts. It creates
//! Mailman's directories (as Mailman's installer does: the model never creates
//! `locks/`, `data/`, `logs/` or the queue directories) and one list with its
//! members (`bin/newlist`). Written against `model::Os`, so it runs in the
//! simulation and on a real directory alike.

use model::args::{comma_items, ArgDefault, ArgError, ArgKind, ArgSpec, ProgramSpec};
use model::{errno, ListConfig, LockCounter, MailList, MailListSettings, Os};

/// `install`'s arguments.
pub static SPEC: ProgramSpec = ProgramSpec {
    name: "install",
    summary: "creates Mailman's directories and one list with N members (bin/newlist)",
    options: &[
        ArgSpec {
            name: "profile",
            kind: ArgKind::Choice(model::profile::PROFILE_NAMES),
            default: ArgDefault::Required,
            help: "the Mailman version whose directories and list store to create",
        },
        ArgSpec {
            name: "list",
            kind: ArgKind::ListName,
            default: ArgDefault::Required,
            help: "the list to create, as bin/newlist accepts it",
        },
        ArgSpec {
            name: "members",
            kind: ArgKind::UInt { min: 0, max: 100_000, unit: "members" },
            default: ArgDefault::Required,
            help: "members member0000@… to subscribe",
        },
        ArgSpec {
            name: "member-domain",
            kind: ArgKind::Host,
            default: ArgDefault::Value("example.net"),
            help: "the members' domain: downstream, outside the MTA's local domains",
        },
        ArgSpec {
            name: "host-name",
            kind: ArgKind::Host,
            default: ArgDefault::Value("lists.example.com"),
            help: "the list's host_name",
        },
        ArgSpec {
            name: "dirs",
            kind: ArgKind::Paths,
            default: ArgDefault::Absent,
            help: "site-specific directories to create too (one master-lock directory per host)",
        },
    ],
    positional: &[],
    command: false,
};

/// What `install` does, from its arguments.
pub struct Plan {
    pub profile: String,
    pub settings: MailListSettings,
    pub list: String,
    pub members: usize,
    pub host_name: String,
    pub member_domain: String,
    pub dirs: Vec<String>,
}

/// Parses and checks the arguments against [`SPEC`]. Pure: no I/O.
pub fn plan(args: &[String]) -> Result<Plan, ArgError> {
    let p = SPEC.parse(args)?;
    let profile = p.text("profile");
    Ok(Plan {
        settings: list_settings(&profile).expect("a declared profile"),
        profile,
        list: p.text("list"),
        members: p.uint("members"),
        host_name: p.text("host-name"),
        member_domain: p.text("member-domain"),
        dirs: p.value("dirs").map(|d| comma_items(d).map(str::to_string).collect()).unwrap_or_default(),
    })
}

/// The list store settings of a profile name.
pub fn list_settings(profile: &str) -> Option<MailListSettings> {
    match profile {
        "2.0" => Some(MailListSettings::mailman_2_0_13()),
        "2.1-early" => Some(MailListSettings::mailman_2_1_2()),
        "2.1.39" => Some(MailListSettings::mailman_2_1_39()),
        _ => None,
    }
}

pub async fn install<O: Os>(os: O, args: &[String]) -> i32 {
    let log = |os: &O, message: String| os.event(model::ModelEvent::Log { log: "error".into(), message });
    let Plan { profile, settings, list, members, host_name, member_domain, dirs: extra } = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            log(&os, format!("install: {e}"));
            return 2;
        }
    };
    let list = list.as_str();
    let mut dirs = vec!["lists", "locks", "logs", "data", "archives", "archives/private", "qfiles"];
    if profile != "2.0" {
        dirs.extend(["qfiles/in", "qfiles/out", "qfiles/commands", "qfiles/bounces", "qfiles/news", "qfiles/archive"]);
        dirs.extend(["qfiles/shunt", "qfiles/virgin", "qfiles/bad", "qfiles/retry"]);
    }
    // Site-specific directories, such as one master-lock directory per host.
    dirs.extend(extra.iter().map(String::as_str));
    for dir in dirs {
        match os.mkdir(dir).await {
            Err(e) if errno(&e) != libc::EEXIST => {
                log(&os, format!("install: mkdir {dir}: {e}"));
                return 1;
            }
            _ => {}
        }
    }
    let counter = LockCounter::default();
    let mut mlist = match MailList::new(&os, &counter, list, settings) {
        Ok(m) => m,
        Err(e) => {
            log(&os, format!("install: {e}"));
            return 2;
        }
    };
    let created = async {
        mlist.create(ListConfig::new(list, &host_name, &member_domain, members)).await?;
        mlist.save().await?;
        mlist.unlock().await
    }
    .await;
    if let Err(e) = created {
        log(&os, format!("install: newlist {list}: {e}"));
        return 1;
    }
    match mlist.finalize().await {
        Ok(()) => 0,
        Err(_) => 1,
    }
}
