//! Containment the kernel guarantees (issue 18): a command that hides in
//! the server's own process group, and commands of a server that is
//! stopped (SIGINT, SIGTERM) or killed (SIGKILL) while they run.
//!
//! Each test runs `cmd_server` as a process of its own, in a process group
//! of its own, so the escape has a group to aim at and the test can count
//! the server's children (zombies too) from `/proc`. Every escaping `sleep`
//! has arguments of its own (`sleep 43.11`), so the tests count exactly
//! what they started; whatever is still found at the end is killed by pid
//! before the test fails. Every wait is bounded.
#![cfg(target_os = "linux")]

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::{children, cmd_server, namespaces_here, pids, within};
use socketserver::command::{Client, Protocol};

/// Fails if any process runs `argv` (after killing them, so a failing
/// test leaves nothing behind).
fn assert_gone(argv: &[&str], what: &str) {
    let left = pids(argv);
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    assert!(left.is_empty(), "{what}: {argv:?} outlived it: {left:?}");
}

fn framed(addr: SocketAddr) -> Client {
    Client::connect(addr, Protocol::Framed).unwrap()
}

/// The escape from the issue: fork twice, join the server's own process
/// group, close the command's streams, clear the environment, exec sleep.
fn escapes(server_group: u32, tag: &str) -> [(&'static str, String); 2] {
    [
        (
            "perl",
            format!(
                "perl -e 'exit if fork; exit if fork; setpgrp(0, {server_group}); \
                 close STDIN; close STDOUT; close STDERR; %ENV = (); \
                 exec \"sleep\", \"{tag}1\"'"
            ),
        ),
        (
            "python",
            format!(
                "python3 -c 'import os\n\
                 if os.fork(): os._exit(0)\n\
                 if os.fork(): os._exit(0)\n\
                 try: os.setpgid(0, {server_group})\n\
                 except OSError: pass\n\
                 [os.close(fd) for fd in (0, 1, 2)]\n\
                 os.execve(\"/bin/sleep\", [\"sleep\", \"{tag}2\"], {{}})'"
            ),
        ),
    ]
}

fn the_servers_own_group_is_no_hiding_place(containment: &str, tag: &str) {
    let server = cmd_server(&["--containment", containment, "--timeout-ms", "2000"]);
    let pid = server.child.id();
    let mut client = framed(server.addr);
    for (what, line) in escapes(pid, tag) {
        let started = Instant::now();
        let reply = client.run(&line).unwrap();
        let argv = [
            "sleep",
            &format!("{tag}{}", if what == "perl" { 1 } else { 2 }),
        ];
        // Gone within a second of the reply (which comes as soon as the
        // command's main process has exited, long before its timeout).
        let gone = within(Duration::from_secs(1), || pids(&argv).is_empty());
        assert!(
            gone || pids(&argv).is_empty(),
            "{containment}, {what}: reply after {:?}",
            started.elapsed()
        );
        assert_gone(&argv, &format!("{containment}, {what}"));
        assert_eq!(reply.stderr, b"", "{containment}, {what}");
    }
    // No zombie of the server either.
    assert!(
        within(Duration::from_secs(1), || children(pid) == 0),
        "{containment}: {} children (zombies) left",
        children(pid)
    );
}

#[test]
fn a_command_cannot_hide_in_the_servers_process_group_in_a_namespace() {
    if !namespaces_here() {
        eprintln!("no PID namespaces here: the scan's test below still runs");
        return;
    }
    the_servers_own_group_is_no_hiding_place("namespace", "43.1");
}

#[test]
fn a_command_cannot_hide_in_the_servers_process_group_under_the_scan() {
    // Commands run in a session of their own: the kernel refuses to move
    // a process into a group of another session (EPERM), so the escapee
    // stays in the command's group, where the scan finds it.
    the_servers_own_group_is_no_hiding_place("scan", "43.2");
}

/// Starts `sh -c 'sleep A & exec sleep B'` on `server` and returns once
/// both sleeps run; the client's thread returns what it got.
fn mid_command(server: &common::Running, a: &str, b: &str) -> thread::JoinHandle<String> {
    let addr = server.addr;
    let line = format!("sh -c 'sleep {a} & exec sleep {b}'");
    let client = thread::spawn(move || match framed(addr).run(&line) {
        Ok(reply) => format!("reply: exit {:?} signal {:?}", reply.exit, reply.signal),
        Err(e) => format!("error: {e}"),
    });
    assert!(
        within(Duration::from_secs(10), || {
            pids(&["sleep", a]).len() == 1 && pids(&["sleep", b]).len() == 1
        }),
        "the command never started"
    );
    client
}

fn commands_end_with_the_server(containment: &str, signal: &str, tag: &str) {
    let (a, b) = (format!("{tag}1"), format!("{tag}2"));
    let mut server = cmd_server(&[
        "--containment",
        containment,
        "--shell",
        "--timeout-ms",
        "30000",
    ]);
    let client = mid_command(&server, &a, &b);
    let pid = server.child.id();
    let sent = Instant::now();
    let killed = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopped = within(Duration::from_secs(5), || {
        matches!(server.child.try_wait(), Ok(Some(_)))
    });
    let took = sent.elapsed();
    assert!(
        stopped,
        "{containment}, SIG{signal}: the server did not stop"
    );
    let gone = within(Duration::from_secs(1), || {
        pids(&["sleep", &a]).is_empty() && pids(&["sleep", &b]).is_empty()
    });
    let what = format!("{containment}, SIG{signal} after {took:?}");
    assert_gone(&["sleep", &a], &what);
    assert_gone(&["sleep", &b], &what);
    assert!(gone);
    let got = client.join().unwrap();
    if signal != "KILL" {
        let status = server.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{what}: a graceful stop");
        assert!(took < Duration::from_secs(1), "{what}");
        assert!(
            got.contains("shutting down"),
            "{what}: the client got {got}"
        );
    }
}

#[test]
fn sigint_and_sigterm_end_every_running_command_with_the_server() {
    let containment = if namespaces_here() {
        "namespace"
    } else {
        "scan"
    };
    commands_end_with_the_server(containment, "INT", "44.1");
    commands_end_with_the_server(containment, "TERM", "44.2");
    commands_end_with_the_server("scan", "INT", "44.3");
}

#[test]
fn sigkill_of_the_server_ends_every_running_command_in_a_namespace() {
    if !namespaces_here() {
        eprintln!("no PID namespaces here: SIGKILL of the server is not covered by the scan");
        return;
    }
    commands_end_with_the_server("namespace", "KILL", "44.4");
}

/// In a namespace the command's process executes the program itself, not
/// `std`: it must start programs as `std` (`execvp`) did. A file without
/// a `#!` line runs under `/bin/sh` with its arguments; a file that cannot
/// be executed is "no such program", as a missing one; a command that
/// ends at once (no reader or watchdog thread: see `exec::quick`) keeps
/// its two streams apart and its exit code; one that outlives its first
/// 20 ms keeps what it wrote before and after, in order; and a timeout
/// shorter than those 20 ms still holds.
#[test]
fn a_command_in_a_namespace_starts_as_execvp_would_start_it() {
    use socketserver::command::{self, CommandConfig, CommandError, Containment};
    use std::os::unix::fs::PermissionsExt;
    if !namespaces_here() {
        eprintln!("SKIPPED: no PID namespaces here");
        return;
    }
    let dir = std::env::temp_dir().join(format!("w18s-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("no-shebang");
    std::fs::write(&script, "echo \"script $0 $1 $2\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "echo never\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let serve = |config: CommandConfig| {
        let server =
            command::bind("127.0.0.1:0", config.containment(Containment::Namespace)).unwrap();
        let addr = server.local_addr().unwrap();
        thread::spawn(move || server.serve_forever());
        addr
    };
    let addr = serve(CommandConfig::default().shell(false));
    let mut client = framed(addr);

    let reply = client.run(&format!("{} a b", script.display())).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply.stdout),
        format!("script {} a b\n", script.display())
    );
    assert_eq!(reply.exit, Some(0));

    // A file without an x bit: the kernel refuses it (EACCES), root or not.
    match client.run(&plain.display().to_string()) {
        Err(CommandError::Server(msg)) => assert!(msg.contains("no such program"), "{msg}"),
        other => panic!("expected no such program, got {other:?}"),
    }

    let reply = client
        .run("sh -c 'echo out; echo err >&2; exit 3'")
        .unwrap();
    assert_eq!(
        (&reply.stdout[..], &reply.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(reply.exit, Some(3));

    let reply = client
        .run("sh -c 'echo early; echo early-err >&2; sleep 0.2; echo late'")
        .unwrap();
    assert_eq!(reply.stdout, b"early\nlate\n");
    assert_eq!(reply.stderr, b"early-err\n");
    assert_eq!(reply.exit, Some(0));

    let short = serve(CommandConfig::default().timeout(Duration::from_millis(5)));
    let started = Instant::now();
    let reply = framed(short).run("sleep 30").unwrap();
    assert!(reply.timed_out, "{reply:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    std::fs::remove_dir_all(&dir).unwrap();
}
