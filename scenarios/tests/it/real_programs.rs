//! Unmodified programs on the simulated mount through mmsim-shim
//! (docs/real-programs.md). These need `cargo xtask setup` (the README's test
//! command runs it): without the shim or the virtualenv they fail, naming it.

use std::path::PathBuf;

use crate::{check_bad_input, mmsim};

fn report(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = mmsim(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

fn oracle(report: &serde_json::Value, name: &str) -> (String, u64) {
    let o = report["oracles"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap();
    (o["status"].as_str().unwrap().to_string(), o["checked"].as_u64().unwrap())
}

/// A one-host scenario whose one program is `exec ARGS`, written to a temporary directory.
fn one_program(dir: &tempfile::TempDir, exec_args: &[&str]) -> PathBuf {
    let args: Vec<String> = exec_args.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        r#"name = "one-program"
description = "one external program"
[run]
duration_s_max = 120
wait_for = ["exec"]
[oracles]
enabled = []
[[hosts]]
name = "h1"
boot = [
  {{ program = "install", args = ["--profile=2.1.39", "--list=test", "--members=1"] }},
  {{ program = "exec", args = [{}], start_ms = 1000 }},
]
"#,
        args.join(", ")
    );
    let path = dir.path().join("one.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The program's standard output, from the trace's `stdout` notes.
fn stdout_of(scenario: &std::path::Path) -> (Option<i32>, Vec<String>) {
    let trace = scenario.with_extension("jsonl");
    let out = mmsim(&["run", scenario.to_str().unwrap(), "--seed", "1", "--trace", trace.to_str().unwrap()]);
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    let lines = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["note"]["log"] == "stdout")
        .map(|e| e["note"]["message"].as_str().unwrap().to_string())
        .collect();
    (out.status.code(), lines)
}

const SEES_THE_WORLD: &str = r#"
import os, time, socket
t0 = time.monotonic()
with open("/mm/a", "w") as f:
    f.write("12345")
os.link("/mm/a", "/mm/b")
os.rename("/mm/b", "/mm/c")
os.utime("/mm/c", (1000000000, 1000000000))
st = os.stat("/mm/c")
print("stat", st.st_size, st.st_nlink, int(st.st_mtime))
print("list", sorted(n for n in os.listdir("/mm") if n in ("a", "b", "c")))
try:
    os.open("/mm/a", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
except FileExistsError:
    print("excl EEXIST")
os.chdir("/mm/locks")
with open("rel", "w") as f:
    f.write("x")
print("cwd", os.getcwd(), os.path.exists("/mm/locks/rel"))
time.sleep(2.5)
print("slept", round(time.monotonic() - t0, 3) >= 2.5)
print("who", socket.gethostname(), os.getpid(), socket.getfqdn())
print("wall", int(time.time()) // 86400)
os.unlink("/mm/a")
print("gone", os.path.exists("/mm/a"))
"#;

#[test]
fn a_real_python_sees_the_simulated_mount_clock_and_identity() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = one_program(&dir, &["--", "python3", "-c", SEES_THE_WORLD]);
    let (code, lines) = stdout_of(&scenario);
    assert_eq!(code, Some(0), "{lines:?}");
    // Simulated time starts at 2002-01-15 (EPOCH_UNIX_S): day 11702 since 1970.
    let expected = [
        "stat 5 2 1000000000",
        "list ['a', 'c']",
        "excl EEXIST",
        "cwd /mm/locks True",
        "slept True",
        "who h1 2 h1",
        "wall 11702",
        "gone False",
    ];
    assert_eq!(lines, expected);
}

#[test]
fn a_call_the_shim_cannot_represent_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let scenario =
        one_program(&dir, &["--", "python3", "-c", "import os; open('/mm/x', 'w').close(); os.chmod('/mm/x', 0o600)"]);
    let (code, r) = report(&["run", scenario.to_str().unwrap(), "--seed", "1"]);
    assert_eq!(code, Some(2));
    let verdict = r["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("bad input: python3 called chmod"), "{verdict}");
}

#[test]
fn a_program_that_dies_before_its_first_call_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = one_program(&dir, &["--", "true"]);
    let (code, r) = report(&["run", scenario.to_str().unwrap(), "--seed", "1"]);
    assert_eq!(code, Some(2));
    assert!(r["verdict"].as_str().unwrap().contains("true exited (code 0) before its first call"), "{r}");
}

#[test]
fn exec_refuses_at_load_what_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = one_program(&dir, &["--", "no-such-program-anywhere"]);
    check_bad_input(&["run", missing.to_str().unwrap()], "a program installed on this machine");
    let setgid = one_program(&dir, &["--", "/usr/bin/dotlockfile", "-l", "/mm/locks/x"]);
    check_bad_input(&["run", setgid.to_str().unwrap()], "set-group-ID bit");
    let collides = one_program(&dir, &["--mount=/tmp", "--", "python3", "-c", "pass"]);
    check_bad_input(&["run", collides.to_str().unwrap()], "a mount point where no real path is");
    let text = std::fs::read_to_string(&collides).unwrap();
    let both = dir.path().join("both.toml");
    let entry = r#"{ program = "exec", args = ["--mount=/tmp", "--", "python3", "-c", "pass"], start_ms = 1000 }"#;
    std::fs::write(&both, text.replace(entry, r#"{ program = "cron", exec = ["python3"] }"#)).unwrap();
    check_bad_input(&["run", both.to_str().unwrap()], "`program` must be absent");
    let neither = dir.path().join("neither.toml");
    std::fs::write(&neither, text.replace(entry, r#"{ args = ["x"] }"#)).unwrap();
    check_bad_input(&["run", neither.to_str().unwrap()], "expected `program` or `exec`");
}

/// `exec = [...]` is `program = "exec"` with `args ++ ["--"] ++ exec`: the same run, hash for hash.
#[test]
fn the_exec_shorthand_is_the_exec_program() {
    let dir = tempfile::tempdir().unwrap();
    let long = one_program(&dir, &["--", "python3", "-c", "import time; time.sleep(0.5)"]);
    let text = std::fs::read_to_string(&long).unwrap();
    let short = dir.path().join("short.toml");
    let entry =
        r#"{ program = "exec", args = ["--", "python3", "-c", "import time; time.sleep(0.5)"], start_ms = 1000 }"#;
    assert!(text.contains(entry), "{text}");
    let shorthand = r#"{ exec = ["python3", "-c", "import time; time.sleep(0.5)"], start_ms = 1000 }"#;
    std::fs::write(&short, text.replace(entry, shorthand)).unwrap();
    let (_, a) = report(&["run", long.to_str().unwrap(), "--seed", "4"]);
    let (_, b) = report(&["run", short.to_str().unwrap(), "--seed", "4"]);
    assert_eq!(a["exit_code"], 0, "{}", a["verdict"]);
    assert_eq!(a["trace_hash"], b["trace_hash"]);
}

/// SIGTERM from one simulated process to an exec process reaches the real
/// program: here one real Python signals another through the world (`kill`
/// on a simulated pid), and the other's handler runs and exits 3.
#[test]
fn a_signal_to_an_exec_process_reaches_the_real_program() {
    let dir = tempfile::tempdir().unwrap();
    let victim = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: (print('term'), sys.exit(3)))\nwhile True: time.sleep(0.1)";
    let sender = "import os, signal, time\ntime.sleep(1)\nos.kill(2, signal.SIGTERM)\nprint('sent')";
    let scenario = one_program(&dir, &["--", "python3", "-c", victim]);
    let text = std::fs::read_to_string(&scenario).unwrap();
    let second = format!("  {{ exec = [\"python3\", \"-c\", {sender:?}], start_ms = 1000 }},\n]");
    std::fs::write(&scenario, text.replacen("\n]\n", &format!("\n{second}\n"), 1)).unwrap();
    let trace = scenario.with_extension("jsonl");
    let out = mmsim(&["run", scenario.to_str().unwrap(), "--seed", "1", "--trace", trace.to_str().unwrap()]);
    let events: Vec<serde_json::Value> =
        std::fs::read_to_string(&trace).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let said = |pid: u64, what: &str| {
        events.iter().any(|e| e["pid"] == pid && e["note"]["log"] == "stdout" && e["note"]["message"] == what)
    };
    assert!(said(3, "sent") && said(2, "term"), "{out:?}");
    let exit = events.iter().find(|e| e["kind"] == "exit" && e["pid"] == 2).expect("the victim exited");
    assert_eq!(exit["status"], "code=3");
}
#[test]
fn crashing_an_external_process_kills_the_real_child() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("mmsim-crash-marker-{}", std::process::id());
    let code = format!("import time\n# {marker}\nwhile True: time.sleep(1)");
    let scenario = one_program(&dir, &["--", "python3", "-c", &code]);
    let mut text = std::fs::read_to_string(&scenario).unwrap();
    text = text.replace("duration_s_max = 120", "duration_s_max = 30");
    text.push_str("[[faults]]\nkind = \"crash-process\"\nhost = \"h1\"\nprogram = \"exec\"\nat_s = 5\n");
    std::fs::write(&scenario, text).unwrap();
    let out = mmsim(&["run", scenario.to_str().unwrap(), "--seed", "1"]);
    assert!(out.status.code().is_some(), "{out:?}");
    let left = std::process::Command::new("pgrep").args(["-f", &marker]).output().unwrap();
    assert!(left.stdout.is_empty(), "a real child outlived its crash: {}", String::from_utf8_lossy(&left.stdout));
}

/// (scenario, workers × rounds) for the three real-program stress scenarios at 3 rounds.
const STRESS: [(&str, u64); 3] =
    [("flufl-lock-stress", 8 * 3), ("dotlockfile-stress", 6 * 3), ("lockfile-stress", 6 * 3)];

#[test]
fn the_real_lock_programs_run_under_the_oracles_and_replay_by_seed() {
    for (scenario, sections) in STRESS {
        let args = ["run", scenario, "--seed", "3", "--set", "vars.rounds=3"];
        let (code, first) = report(&args);
        let (_, second) = report(&args);
        assert_eq!(first["trace_hash"], second["trace_hash"], "{scenario} does not replay");
        assert_eq!(code, Some(0), "{scenario}: {}", first["verdict"]);
        let (status, checked) = oracle(&first, "append_conservation");
        assert_eq!((status.as_str(), checked), ("pass", 2 * sections), "{scenario}");
        let (status, _) = oracle(&first, "lock_exclusion");
        assert_eq!(status, "pass", "{scenario}");
        assert!(first["marks"]["lock_contended"].as_u64().unwrap() > 0, "{scenario}: {}", first["marks"]);
    }
}

/// flufl.lock's own tests on the simulated mount (docs/experiments/flufl-suite/results.md):
/// two that run and pass, one of them through multiprocessing, and one refused at `symlink`.
#[test]
fn flufl_locks_own_suite_runs_a_test_or_names_the_call_that_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let run = |test: &str| {
        report(&[
            "run",
            "flufl-suite",
            "--seed",
            "1",
            "--set",
            &format!("vars.test={test}"),
            "--trace",
            trace.to_str().unwrap(),
        ])
    };
    let (code, _) = run("tests/test_lock.py::test_read_retries");
    assert_eq!(code, Some(0));
    let text = std::fs::read_to_string(&trace).unwrap();
    let summary = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["note"]["log"] == "stdout")
        .filter_map(|e| e["note"]["message"].as_str().map(str::to_string))
        .next();
    // The test's retry sleeps are simulated: pytest's clock says 3 s went by.
    assert!(summary.as_deref().is_some_and(|s| s.starts_with("1 passed in 3.")), "{summary:?}");
    // A test whose child locker is a multiprocessing.Process that reports through a Queue:
    // fork, pipes, the Queue's named semaphores and its feeder thread, all in lockstep.
    let (code, r) = run("tests/test_lock.py::test_break_lock");
    assert_eq!(code, Some(0), "{}", r["verdict"]);
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.contains(r#""program":"forked""#), "no forked child in the trace");
    assert!(text.contains(r#""message":"1 passed in "#), "the test did not pass");
    // pytest's tmp_path makes a `current` symlink, which the world does not model.
    let (code, r) = run("tests/test_lock.py::test_nondefault_lifetime");
    assert_eq!(code, Some(2));
    assert!(r["verdict"].as_str().unwrap().contains("python3 called symlink"), "{}", r["verdict"]);
}

/// A shim that speaks another protocol version is refused, as bad input. The
/// program here is a Python without the library (MMSIM_SHIM names a file that is
/// no shared object, so ld.so preloads nothing) that writes a version-99 hello itself.
#[test]
fn a_shim_of_another_protocol_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // postcard: variant 0 (Hello), version 99, real_pid 1, behind a little-endian length.
    let code = "import os, struct\nfd = int(os.environ['MMSIM_SHIM_FD'])\nbody = bytes([0, 99, 1])\nos.write(fd, struct.pack('<I', len(body)) + body)\nos.read(fd, 4096)";
    let scenario = one_program(&dir, &["--", "python3", "-c", code]);
    let out = crate::mmsim_command()
        .args(["run", scenario.to_str().unwrap(), "--seed", "1", "--json"])
        .env("MMSIM_SHIM", &scenario)
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", r["verdict"]);
    let verdict = r["verdict"].as_str().unwrap();
    assert!(verdict.contains("speaks protocol 99, this mmsim speaks"), "{verdict}");
}

/// Forked children, pipes and waits (docs/real-programs.md, "fork and pipes"),
/// written without braces, which a scenario's arguments take for variables.
const FORK_AND_PIPES: &str = r#"import os, select, signal, sys
kids = []
for i in range(2):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, ("child %d pid=%d ppid=%d" % (i, os.getpid(), os.getppid())).encode())
        os._exit(10 + i)
    os.close(w)
    kids.append((pid, r))
print("nohang", os.waitpid(kids[1][0], os.WNOHANG) == (0, 0))
p = select.poll()
for pid, r in kids:
    p.register(r, select.POLLIN)
print("poll", len(p.poll()) > 0)
for pid, r in kids:
    chunks = []
    while True:
        c = os.read(r, 7)
        if not c:
            break
        chunks.append(c)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    print(b"".join(chunks).decode(), "exit", os.waitstatus_to_exitcode(status))
try:
    os.kill(kids[0][0], 0)
    print("reaped child alive")
except ProcessLookupError:
    print("reaped child gone")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    n = 0
    while True:
        c = os.read(r, 65536)
        if not c:
            break
        n += len(c)
    sys.exit(n % 251)
os.close(r)
print("big write", os.write(w, bytes(200000)))
os.close(w)
print("reader saw", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 200000 % 251)
r, w = os.pipe()
os.close(r)
try:
    os.write(w, b"x")
except BrokenPipeError:
    print("no reader EPIPE")
pid = os.fork()
if pid == 0:
    import time
    time.sleep(100)
    os._exit(0)
os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
print("killed", os.WIFSIGNALED(status), os.WTERMSIG(status))
pid = os.fork()
if pid == 0:
    raise SystemExit(7)
print("main returned", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"#;

#[test]
fn fork_pipes_and_waitpid_run_in_lockstep() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = one_program(&dir, &["--", "python3", "-u", "-c", FORK_AND_PIPES]);
    let (code, lines) = stdout_of(&scenario);
    assert_eq!(code, Some(0), "{lines:?}");
    let expected = [
        "nohang True",
        "poll True",
        "child 0 pid=3 ppid=2 exit 10",
        "child 1 pid=4 ppid=2 exit 11",
        "reaped child gone",
        // 200 000 bytes through a 64 KiB pipe: the writer blocks until the child reads.
        "big write 200000",
        "reader saw True",
        "no reader EPIPE",
        // The world's SIGKILL crashes the simulated child before its first call, and its real process with it.
        "killed True 9",
        // A child whose main returns reports that status (SystemExit).
        "main returned 7",
    ];
    assert_eq!(lines, expected);
    let trace = std::fs::read_to_string(scenario.with_extension("jsonl")).unwrap();
    let events: Vec<serde_json::Value> = trace.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let forked: Vec<_> = events.iter().filter(|e| e["kind"] == "start" && e["program"] == "forked").collect();
    assert_eq!(forked.len(), 5);
    assert!(forked.iter().all(|e| e["parent"] == 2), "{forked:?}");
    let reads = events.iter().filter(|e| e["op"] == "pipe_read" && e["pid"] == 5).count();
    assert!(reads >= 4, "the big write's reader read {reads} times");
    let (_, first) = report(&["run", scenario.to_str().unwrap(), "--seed", "1"]);
    let (_, second) = report(&["run", scenario.to_str().unwrap(), "--seed", "1"]);
    assert_eq!(first["trace_hash"], second["trace_hash"]);
}

/// Threads that sleep and hand items over through a queue, and a timer thread.
const THREADS: &str = r#"import threading, time, queue
out = []
q = queue.Queue()
def worker(n):
    for i in range(3):
        q.put((n, i))
        time.sleep(0.01 * (n + 1))
ts = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
items = []
while not q.empty():
    items.append(q.get())
print("items", items, flush=True)
ev = threading.Event()
threading.Timer(0.5, ev.set).start()
t0 = time.monotonic()
print("event", ev.wait(5), round(time.monotonic() - t0, 2), flush=True)
def short():
    time.sleep(0.1)
t = threading.Thread(target=short)
t0 = time.monotonic()
t.start()
time.sleep(0.3)
print("outlived", round(time.monotonic() - t0, 2), t.is_alive(), flush=True)
"#;

#[test]
fn threads_run_one_at_a_time_in_simulated_time() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = one_program(&dir, &["--", "python3", "-c", THREADS]);
    let (code, lines) = stdout_of(&scenario);
    assert_eq!(code, Some(0), "{lines:?}");
    // Worker n puts an item every 10·(n+1) ms of simulated time; at 20 ms both are due,
    // and the one whose sleep began first goes first. The timer fires after 0.5 s simulated.
    // A thread that ends while the main one sleeps hands the turn back at the main one's deadline.
    assert_eq!(
        lines,
        ["items [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]", "event True 0.5", "outlived 0.3 False"]
    );
}
