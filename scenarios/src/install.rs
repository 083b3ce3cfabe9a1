//! `install`: what an administrator does before the load starts. It creates
//! Mailman's directories (as Mailman's installer does: the model never creates
//! `locks/`, `data/`, `logs/` or the queue directories) and one list with its
//! members (`bin/newlist`). Written against `model::Os`, so it runs in the
//! simulation and on a real directory alike.

use model::{errno, ListConfig, LockCounter, MailList, MailListSettings, Os};

pub const USAGE: &str = "install --profile=2.0|2.1-early|2.1.39 --list=NAME --members=N [--host-name=H] [--dirs=D1,D2]";

/// The list store settings of a profile name.
pub fn list_settings(profile: &str) -> Option<MailListSettings> {
    match profile {
        "2.0" => Some(MailListSettings::mailman_2_0_13()),
        "2.1-early" => Some(MailListSettings::mailman_2_1_2()),
        "2.1.39" => Some(MailListSettings::mailman_2_1_39()),
        _ => None,
    }
}

fn option<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter().find_map(|a| a.strip_prefix(&format!("--{key}=")))
}

pub async fn install<O: Os>(os: O, args: &[String]) -> i32 {
    let log = |os: &O, message: String| os.event(model::ModelEvent::Log { log: "error".into(), message });
    let (Some(profile), Some(list), Some(members)) =
        (option(args, "profile"), option(args, "list"), option(args, "members"))
    else {
        log(&os, format!("usage: {USAGE}"));
        return 2;
    };
    let (Some(settings), Ok(members)) = (list_settings(profile), members.parse::<usize>()) else {
        log(&os, format!("usage: {USAGE}"));
        return 2;
    };
    let host_name = option(args, "host-name").unwrap_or("lists.example.com").to_string();
    let mut dirs = vec!["lists", "locks", "logs", "data", "archives", "archives/private", "qfiles"];
    if profile != "2.0" {
        dirs.extend(["qfiles/in", "qfiles/out", "qfiles/commands", "qfiles/bounces", "qfiles/news", "qfiles/archive"]);
        dirs.extend(["qfiles/shunt", "qfiles/virgin", "qfiles/bad", "qfiles/retry"]);
    }
    // Site-specific directories, such as one master-lock directory per host.
    let extra: Vec<&str> =
        option(args, "dirs").map(|d| d.split(',').filter(|s| !s.is_empty()).collect()).unwrap_or_default();
    dirs.extend(extra);
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
        mlist.create(ListConfig::new(list, &host_name, members)).await?;
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
