//! The front door: bad program arguments, list names and load sizes are
//! refused when the scenario loads (exit 2, one line naming host, program,
//! argument and what was expected), by the same declaration each program
//! parses its arguments with when it starts; `mmsim list` prints those
//! declarations.

use scenarios::programs;
use scenarios::scenario::{self, load};

use super::{check_bad_input, mmsim};

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The load error of `scenario` under `sets`.
fn refusal(scenario: &str, sets: &[&str]) -> String {
    let e = load(scenario, &args(sets)).map(drop).expect_err(&format!("{scenario} {sets:?} was accepted"));
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text:?}");
    text
}

#[test]
fn the_two_leaks_are_stopped_at_the_door() {
    // A hostile list name for install: the world used to run 113 s and end vacuous (exit 4).
    check_bad_input(
        &["run", "two-servers", "--set", "hosts.0.boot.0.args.1=--list=../../etc"],
        "hosts.0.boot.0 (install on mail1): --list=../../etc: expected a list name",
    );
    // A sender count no sender takes: the sender used to fail inside the world (exit 4).
    check_bad_input(
        &["run", "two-servers", "--set", "load.posts=99999999999"],
        "load.posts: expected 1..=1000000 posts, got 99999999999",
    );
    check_bad_input(
        &["run", "two-servers", "--set", "hosts.3.boot.0.args.3=--count=99999999999"],
        "hosts.3.boot.0 (sender on sender): --count=99999999999: expected 1..=1000000 messages",
    );
    check_bad_input(&["run", "two-servers", "--set", "load.posts=0"], "load.posts: expected 1..=1000000 posts");
    // A bench scale that takes a sender past its bound is refused before any seed runs.
    check_bad_input(&["bench", "--scale", "1,2000", "--seeds", "1"], "--scale 2000: load.posts: expected 1..=1000000");
}

/// One bad argument per program, reached through `--set` on a shipped
/// scenario: (scenario, set, what the line says).
const BAD_AT_LOAD: &[(&str, &str, &str)] = &[
    (
        "two-servers",
        "hosts.0.boot.0.args.2=--members=-1",
        "(install on mail1): --members=-1: expected 0..=100000 members",
    ),
    ("two-servers", "hosts.0.boot.0.args.0=--profile=3.0", "(install on mail1): --profile=3.0: expected one of"),
    ("two-servers", "hosts.0.boot.0.args.3=--dirs=../x", "(install on mail1): --dirs=../x: expected a relative path"),
    ("two-servers", "hosts.0.boot.0.args.3=--dirz=x", "(install on mail1): --dirz=x: unknown option"),
    ("two-servers", "hosts.0.boot.1.args.0=--profile=2.2", "hosts.0.boot.1 (mta on mail1): --profile=2.2"),
    (
        "two-servers",
        r#"hosts.0.boot.2.args.1=--settings={"outgoing":{"smtp_hots":"sink"}}"#,
        "hosts.0.boot.2 (mailmanctl on mail1): --settings=",
    ),
    (
        "two-servers",
        r#"hosts.0.boot.2.args.1=--settings={"outgoing":"#,
        "(mailmanctl on mail1): --settings={\"outgoing\":",
    ),
    (
        "two-servers",
        r#"hosts.0.boot.2.args.1=--settings={"mailmanctl":{"lock_dir":"../../etc"}}"#,
        "(mailmanctl on mail1): --settings={\"mailmanctl\":{\"lock_dir\":\"../../etc\"}}: mailmanctl.lock_dir",
    ),
    (
        "two-servers",
        r#"hosts.1.boot.1.args.1=--settings={"mailmanctl":{"qrunners":[{"name":"Incomin","count":2}]}}"#,
        "hosts.1.boot.1 (mailmanctl on mail2): --settings=",
    ),
    (
        "two-servers",
        "hosts.2.boot.0.args.0=--port=0",
        "hosts.2.boot.0 (smtp-sink on sink): --port=0: expected 1..=65535",
    ),
    (
        "two-servers",
        "hosts.2.boot.0.args.2=--sessions=many",
        "(smtp-sink on sink): --sessions=many: expected 1..=10000",
    ),
    ("two-servers", "hosts.3.boot.0.args.4=--connections=0", "(sender on sender): --connections=0: expected 1..=1000"),
    (
        "two-servers",
        "hosts.3.boot.0.args.5=--window-s=inf",
        "(sender on sender): --window-s=inf: expected 0..=86400 seconds",
    ),
    (
        "two-servers",
        "hosts.3.boot.0.args.2=--to=postmaster",
        "(sender on sender): --to=postmaster: expected an email address",
    ),
    ("two-servers", "hosts.3.boot.0.args.6=--id-prefix=", "(sender on sender): --id-prefix=: expected 1 to 64 letters"),
    ("two-servers", "hosts.3.boot.0.args.6=--verbose", "(sender on sender): --verbose: unknown option"),
    ("two-servers", "hosts.3.boot.0.args.6=stray", "(sender on sender): \"stray\": unexpected argument"),
    (
        "two-servers-2002",
        "hosts.0.boot.2.args.0=--every-s=0",
        "(cron on mail1): --every-s=0: expected 0.001..=86400 seconds",
    ),
    ("two-servers-2002", "hosts.0.boot.2.args.0=--every-s=60s", "(cron on mail1): --every-s=60s: expected 0.001..="),
    ("two-servers-2002", "hosts.0.boot.2.args.2=nosuch", "(cron on mail1): --: \"nosuch\": unknown program"),
    ("two-servers-2002", "hosts.0.boot.2.args.3=--profile=9", "(cron on mail1): --: --profile=9: expected one of"),
    ("two-servers-2002", "hosts.0.boot.2.args.2=cron", "(cron on mail1): -- cron: expected another program"),
    ("lock-stress", "vars.lifetime_s=-1", "hosts.0.boot.1 (lock-worker on lock1): --lifetime-s=-1: expected 0.001..="),
    ("lock-stress", "vars.rounds=x", "(lock-worker on lock1): --rounds=x: expected 0..=1000000 rounds"),
    ("lock-stress", "vars.variant=--variant=dotlock", "(lock-worker on lock1): --variant=dotlock: expected one of"),
    (
        "lock-stress",
        "hosts.0.boot.1.args.0=--lock=/etc/passwd",
        "(lock-worker on lock1): --lock=/etc/passwd: expected a relative",
    ),
    (
        "lock-stress",
        "hosts.0.boot.1.args.1=--log=a/../../b",
        "(lock-worker on lock1): --log=a/../../b: expected a relative",
    ),
    (
        "smoke",
        "hosts.0.boot.0.args.2=lots",
        "hosts.0.boot.0 (smoke-worker on client1): RECORDS \"lots\": expected 0..=1000000",
    ),
    ("smoke", "hosts.0.boot.0.args.0=../smoke.lock", "(smoke-worker on client1): LOCK-PATH \"../smoke.lock\""),
    ("smoke", "hosts.0.boot.0.args.3=a b", "(smoke-worker on client1): TAG \"a b\""),
    ("smoke", "hosts.0.boot.0.args=[\"x\"]", "(smoke-worker on client1): SHARED-PATH: required"),
    ("crash-recovery", "faults.0.program=qrunnerz", "faults.0.program: unknown program \"qrunnerz\""),
];

#[test]
fn a_bad_argument_of_every_program_is_refused_at_load_naming_host_program_and_argument() {
    let mut covered = std::collections::BTreeSet::new();
    for (scenario, set, needle) in BAD_AT_LOAD {
        let text = refusal(scenario, &[set]);
        assert!(text.contains(needle), "{scenario} --set {set}: {text:?} lacks {needle:?}");
        if let Some(program) = text.split(" (").nth(1).and_then(|t| t.split(" on ").next()) {
            covered.insert(program.to_string());
        }
    }
    for program in ["install", "mta", "mailmanctl", "smtp-sink", "sender", "cron", "lock-worker", "smoke-worker"] {
        assert!(covered.contains(program), "no load-time case for {program}");
    }
}

/// Bad arguments of every program, checked by `programs::check` (the plan each runs when it starts).
const BAD_ARGS: &[(&str, &[&str], &str)] = &[
    ("install", &["--list=test", "--members=1"], "--profile: required"),
    ("install", &["--profile=2.1.39", "--members=1"], "--list: required"),
    ("install", &["--profile=2.1.39", "--list=test"], "--members: required"),
    ("install", &["--profile=2.1.39", "--list=test", "--members=100001"], "expected 0..=100000 members"),
    ("install", &["--profile=2.1.39", "--list=test", "--members=1", "--host-name=a;b"], "expected a host name"),
    ("install", &["--profile=2.1.39", "--list=test", "--members=1", "--dirs=/abs"], "expected a relative path"),
    ("install", &["--profile=2.1.39", "--list=test", "--members=1", "x"], "unexpected argument"),
    ("cron", &["--", "qrunner20"], "--every-s: required"),
    ("cron", &["--every-s=60"], "expected -- PROGRAM"),
    ("cron", &["--every-s=60", "--"], "expected a program after --"),
    ("cron", &["--every-s=60", "--runs=-1", "--", "qrunner20"], "--runs=-1: expected 0..=1000000 runs"),
    ("cron", &["--every-s=NaN", "--", "qrunner20"], "--every-s=NaN"),
    ("cron", &["--every-s=60", "--", "qrunner20", "--bogus=1"], "--: --bogus=1: unknown option"),
    ("lock-worker", &["--log=l"], "--lock: required"),
    ("lock-worker", &["--lock=l", "--log=l", "--rounds=1000001"], "expected 0..=1000000 rounds"),
    ("lock-worker", &["--lock=l", "--log=l", "--hold-ms=3600001"], "expected 0..=3600000 milliseconds"),
    ("lock-worker", &["--lock=l", "--log=l", "--lifetime-s=0"], "--lifetime-s=0: expected 0.001..="),
    ("lock-worker", &["--lock=l", "--log=l", "--variant=flufl", "--variant=open2"], "given twice"),
    ("list-worker", &["--log=l"], "--list: required"),
    ("list-worker", &["--list=../x", "--log=l"], "--list=../x"),
    ("list-worker", &["--list=test", "--log=/abs"], "expected a relative path"),
    ("list-worker", &["--list=test", "--log=l", "--load-shortcut=always"], "expected one of"),
    ("list-worker", &["--list=test", "--log=l", "--profile=3.0"], "--profile=3.0"),
    ("smoke-worker", &["a", "b", "1"], "TAG: required"),
    ("smoke-worker", &["a", "b", "1", "t", "u"], "unexpected argument"),
    ("smoke-worker", &["a", "b", "-1", "t"], "RECORDS \"-1\""),
    ("smoke-worker", &["a", "b", "1", "t", "--x=1"], "--x=1: unknown option"),
    ("sender", &["--to=test@x", "--count=1000001"], "expected 1..=1000000 messages"),
    ("post", &["--stdin=x", "UPPER"], "expected a lower-case list name"),
    ("qrunner", &["--runner=Incoming:0"], "--runner=Incoming:0"),
    ("nosuch", &[], "\"nosuch\": unknown program; expected one of: mailmanctl"),
];

#[test]
fn a_table_of_bad_arguments_per_program_is_refused_by_each_programs_own_plan() {
    for (program, a, needle) in BAD_ARGS {
        let e = programs::check(program, &args(a)).expect_err(&format!("{program} {a:?}")).to_string();
        assert!(e.contains(needle), "{program} {a:?}: {e:?} lacks {needle:?}");
        assert!(!e.contains('\n'), "{e:?}");
    }
    // And the shipped arguments of every program pass.
    for (name, text) in scenario::BUILTIN {
        let (s, _) = scenario::parse(text, &[]).unwrap();
        for h in &s.hosts {
            for b in &h.boot {
                programs::check(&b.program, &s.boot_args(b).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
}

#[test]
fn hostile_list_names_are_refused_at_load_by_mailmans_rule() {
    for (name, needle) in [
        ("../../etc", "stays inside lists/"),
        ("a/b", "stays inside lists/"),
        ("", "got an empty one"),
        ("UPPER?", "lower-case"),
        ("upper?", "ACCEPTABLE_LISTNAME_CHARACTERS"),
        ("..", "stays inside lists/"),
        (".", "stays inside lists/"),
        ("a b", "ACCEPTABLE_LISTNAME_CHARACTERS"),
        ("x\ny", "ACCEPTABLE_LISTNAME_CHARACTERS"),
        ("über", "ACCEPTABLE_LISTNAME_CHARACTERS"),
        ("a+b", "'+' and '=' are refused too"),
        ("a=b", "'+' and '=' are refused too"),
    ] {
        let why = model::check_new_list_name(name).expect_err(name);
        assert!(why.contains(needle), "{name:?}: {why}");
        let set = format!("hosts.0.boot.0.args.1=--list={name}");
        let text = refusal("two-servers", &[&set]);
        assert!(text.starts_with("hosts.0.boot.0 (install on mail1): --list="), "{text}");
        assert!(text.contains(needle), "{name:?}: {text}");
    }
    for name in ["test", "a-b", "a_b", "a.b", "list2", "0"] {
        model::check_new_list_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        model::validate_list_name(name).unwrap();
        load("two-servers", &[format!("hosts.0.boot.0.args.1=--list={name}")]).unwrap();
    }
    // A post boot entry names a list too.
    let text = refusal("smoke", &[r#"hosts.0.boot=[{program="post",args=["--stdin=x","../../etc"]}]"#]);
    assert!(text.contains("(post on client1): LISTNAME \"../../etc\""), "{text}");
}

#[test]
fn only_entries_that_boot_under_the_profile_are_checked() {
    // The cron entry of two-servers-2002 boots only under 2.0; under 2.1.39 its
    // arguments are never used, so a mistake there waits until it would boot.
    let bad = "hosts.0.boot.2.args.0=--every-s=0";
    load("two-servers-2002", &args(&[bad, "mailman.profile=2.1.39"])).unwrap();
    refusal("two-servers-2002", &[bad]);
}

#[test]
fn mmsim_list_prints_every_programs_arguments_from_its_declaration() {
    let out = mmsim(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "--count=N  (integer 1..=1000000 messages; default 1)  messages to inject",
        "--to=ADDR  (email address; required)",
        "--list=LIST  (list name",
        "--every-s=X  (number 0.001..=86400 seconds; required)",
        "--variant=mailman21|mailman20|flufl|open2  (one of mailman21, mailman20, flufl, open2; default mailman21)",
        "RECORDS  (integer 0..=1000000 records; required)",
        "--settings=JSON  (JSON object; none)",
    ] {
        assert!(text.contains(line), "mmsim list lacks {line:?}");
    }
    for p in programs::programs() {
        assert!(text.contains(&format!("usage: {}", p.usage())), "{}", p.name);
        for a in p.options {
            assert!(
                text.contains(&format!("      {}  ({};", a.usage(false), a.kind.describe())),
                "{} --{}",
                p.name,
                a.name
            );
            assert!(text.contains(a.help), "{} --{}", p.name, a.name);
        }
        for a in p.positional {
            assert!(text.contains(&format!("      {}  (", a.name)), "{} {}", p.name, a.name);
        }
    }
}
