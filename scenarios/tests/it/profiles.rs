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

#[test]
fn fifty_posts_through_each_host_are_all_delivered_under_mailman_2_1_39() {
    check_delivers_everything("2.1.39");
}
