//! The scale-out lesson, run end to end (issue 23): HAProxy with
//! `send-proxy-v2` in front of two `tcp_server` processes that share one
//! port. The `scale_out` example does the work and checks what it sees;
//! these tests run it as a process, bounded in time, and check that every
//! process it started is gone afterwards, also when it fails.
//!
//! HAProxy comes from the system's packages. Without it the lesson's test
//! says SKIPPED, except under CI (`CI` set), where it fails: `.ci/run`
//! installs HAProxy, so CI always exercises the real balancer.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::example;

/// The whole lesson takes about a second; this is the bound.
const BOUND: Duration = Duration::from_secs(60);

/// What a run of the example printed, and how it ended.
struct Run {
    stdout: Vec<String>,
    success: bool,
}

impl Run {
    /// The pids the example reports for the processes it started.
    fn started(&self) -> Vec<u32> {
        self.stdout
            .iter()
            .filter_map(|l| l.split("(pid ").nth(1)?.strip_suffix(')')?.parse().ok())
            .collect()
    }

    /// Asserts every process the example started is gone (the example
    /// waited for each, so none is left even as a zombie).
    fn assert_nothing_left(&self) {
        let pids = self.started();
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        assert!(alive.is_empty(), "still running: {alive:?} of {pids:?}");
    }
}

/// Runs `scale_out` with `args`, bounded by `BOUND`: killed (and the test
/// failed) if it takes longer.
fn scale_out(args: &[&str]) -> Run {
    let mut child = example("scale_out")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("scale_out starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect();
        let _ = tx.send(lines);
    });
    // The pipe closes when the example and everything that shared its
    // stdout have exited (its children's output goes through pipes of its
    // own, so this is the example's exit).
    let stdout = match rx.recv_timeout(BOUND) {
        Ok(lines) => lines,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scale_out still running after {BOUND:?}");
        }
    };
    let status = child.wait().expect("wait");
    Run {
        stdout,
        success: status.success(),
    }
}

/// `haproxy` on PATH, as the example runs it.
fn haproxy_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("haproxy").is_file()))
}

#[test]
fn the_lesson_runs_through_a_real_haproxy() {
    if !haproxy_on_path() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but haproxy is not on PATH: the scale-out lesson must run \
             (.ci/run installs it: apt-get install -y haproxy)"
        );
        eprintln!("SKIPPED: needs haproxy on PATH (apt-get install haproxy)");
        return;
    }
    let run = scale_out(&["--clients", "40"]);
    let out = run.stdout.join("\n");
    assert!(run.success, "the lesson failed:\n{out}");
    assert!(out.contains("scale_out: all checks passed"), "{out}");
    // The seed's client went through the balancer (where python3 is).
    if !out.contains("the seed's client skipped") {
        assert!(out.contains("[seed client] 你好,Sarah"), "{out}");
    }
    // Each backend logged the real client of the burst, and neither the
    // balancer's address.
    for backend in ["[s1] 从127.0.0.2:", "[s2] 从127.0.0.2:"] {
        assert!(out.contains(backend), "no {backend:?} line:\n{out}");
    }
    assert!(!out.contains("从127.0.0.9:"), "{out}");
    // 40 from one address over two caps of 16: at most 32 welcomed, and
    // at least 16 (one backend got 20 or more of them); 127.0.0.3 served.
    let welcomed: usize = out
        .split(" of 40 clients from 127.0.0.2 welcomed; 127.0.0.3 welcomed")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of the burst:\n{out}"));
    assert!((16..=32).contains(&welcomed), "{welcomed} welcomed:\n{out}");
    assert!(
        out.contains(&format!(
            "refused {} over the per-address cap",
            40 - welcomed
        )),
        "{out}"
    );
    // A client that skips the balancer cannot pass for another.
    assert!(
        out.contains("skips the balancer, claiming 203.0.113.66: closed unserved"),
        "{out}"
    );
    assert!(!out.contains("从203.0.113.66:"), "{out}");
    assert_eq!(run.started().len(), 3, "s1, s2 and haproxy: {out}");
    run.assert_nothing_left();
}

#[test]
fn a_balancer_that_does_not_start_fails_the_lesson_and_leaves_nothing_running() {
    // One that is not there, and one that exits at once (`false`): both
    // after the two backends started, which must be stopped all the same.
    for haproxy in ["/nonexistent/haproxy", "false"] {
        let run = scale_out(&["--haproxy", haproxy]);
        let out = run.stdout.join("\n");
        assert!(!run.success, "{haproxy}: {out}");
        assert!(run.started().len() >= 2, "{haproxy}: {out}");
        run.assert_nothing_left();
    }
}

/// Backends that are not there: nothing is started, the error says so.
#[test]
fn a_missing_backend_program_fails_at_once() {
    let run = scale_out(&["--tcp-server", "/nonexistent/tcp_server"]);
    assert!(!run.success);
    assert!(run.started().is_empty(), "{:?}", run.stdout);
    // And clap's usage errors are usage errors.
    let status = example("scale_out")
        .args(["--clients", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("scale_out runs");
    assert_eq!(status.code(), Some(2));
}
