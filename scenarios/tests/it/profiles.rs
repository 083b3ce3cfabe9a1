//! Two mail hosts, 50 posts through each, over the
//! simulated NFS, deliver every message to every member under each profile.

fn check_delivers_everything(profile: &str) {
    let (scenario, _) = scenarios::scenario::load("fifty-each", &[format!("mailman.profile={profile}")]).unwrap();
    let r = scenarios::run(&scenario, 1);
    let conservation = r.oracles.iter().find(|o| o.name == "message_conservation").unwrap();
    assert_eq!(conservation.status, scenarios::oracle::Status::Pass, "{profile}: {}", r.render());
    assert_eq!(conservation.tally.get("delivered"), Some(&100), "{profile}: {:?}", conservation.tally);
    assert!(matches!(r.ending, scenarios::Ending::Completed), "{profile}: {:?}", r.ending);
}

#[test]
fn fifty_posts_through_each_host_are_all_delivered_under_mailman_2_0() {
    check_delivers_everything("2.0");
}

#[test]
fn fifty_posts_through_each_host_are_all_delivered_under_mailman_2_1_early() {
    check_delivers_everything("2.1-early");
}

/// 2.1.39 keeps every message, but not every one reaches the members: the
/// `runner_errors` mechanism of the seed case (LockFile's `__read` lets an
/// ESTALE escape when the lock file it opened is removed before its READ;
/// README, "What mmsim found") shunts a message here too, and the shunt is
/// where the message is kept. Since the client fixes of 2026-12 seed 1 shows
/// it, twice.
#[test]
fn fifty_posts_through_each_host_are_delivered_or_shunted_for_an_estale_under_mailman_2_1_39() {
    let (scenario, _) = scenarios::scenario::load("fifty-each", &["mailman.profile=2.1.39".to_string()]).unwrap();
    let r = scenarios::run(&scenario, 1);
    let conservation = r.oracles.iter().find(|o| o.name == "message_conservation").unwrap();
    assert_eq!(conservation.status, scenarios::oracle::Status::Pass, "{}", r.render());
    let count = |k: &str| conservation.tally.get(k).copied().unwrap_or(0);
    assert_eq!(
        (count("delivered") + count("shunted"), count("duplicated_deliveries")),
        (100, 0),
        "{:?}",
        conservation.tally
    );
    let errors = r.oracles.iter().find(|o| o.name == "runner_errors").unwrap();
    assert_eq!(errors.violations.len() as u64, count("shunted"), "every shunt is a runner error: {}", r.render());
    assert!(errors.violations.iter().all(|v| v.contains("ESTALE")), "{}", r.render());
    assert!(matches!(r.ending, scenarios::Ending::Completed), "{:?}", r.ending);
}
