//! A red team of issue 18's spawn rewrite (branch w18s at 93e7460; the
//! findings re-checked at 27ac6c5, which drops `CLONE_VFORK`): the
//! init started with `clone(CLONE_VM|CLONE_NEWPID|CLONE_NEWIPC)` on a
//! static stack, the command with `clone(CLONE_VM|CLONE_VFORK)` executing
//! itself, and a command's first 20 ms served in the handler's thread.
//!
//! Each finding is a test that failed on that code, committed `#[ignore]`d
//! with its number; each thing that held is a test that passes. Findings
//! 2 to 4 are mended and their tests run; finding 1 is mended for the
//! environment and stays ignored for the memory. Servers
//! are `cmd_server` processes (or a handler in this process), on loopback
//! only; every process a command leaves behind has arguments of its own
//! (`sleep 49.11`), so a test counts exactly what it started and kills by
//! pid whatever it finds left before it fails. Every loop is bounded and
//! every wait has a deadline. Where a test counts the server's threads,
//! descriptors and children, it does so from `/proc` before and after.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_back_to, children_of, cmd_server, example, figures, framed, is_root, kill_all,
    namespaces_here, namespaces_or_skip, pids, scratch, serve_commands, start_server, within,
};
use socketserver::command::{CommandConfig, CommandError, Reply};

/// The pids of `pid`'s children.
fn children_pids(pid: u32) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .map(|(child, _)| child)
        .collect()
}

/// `program` run as an unprivileged user: `nobody` through setpriv when
/// the test runs as root, else as the test's own user. `None` where that
/// user cannot execute it.
fn unprivileged(program: &std::ffi::OsStr) -> Option<Command> {
    if !is_root() {
        return Some(Command::new(program));
    }
    let args = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
    let reachable = Command::new("setpriv")
        .args(args)
        .args(["test", "-x"])
        .arg(program)
        .status()
        .is_ok_and(|s| s.success());
    if !reachable {
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(args).arg(program);
    Some(c)
}

// ------------------------------------------------------------- findings

/// What a process of the server's user runs to catch a relay in the
/// moment it is dumpable: it guesses the next pid (`ns_last_pid` + 1),
/// tries to open its `/proc` files until they open, and then reads them
/// at leisure (the permission is checked at `open` only).
const POLLER: &str = r#"
import os, sys, time
until = time.monotonic() + float(sys.argv[1])
def last():
    with open("/proc/sys/kernel/ns_last_pid") as f:
        return int(f.read())
while time.monotonic() < until:
    p = last() + 1
    end = time.monotonic() + 0.003
    while time.monotonic() < end:
        try:
            env = os.open(f"/proc/{p}/environ", os.O_RDONLY)
        except OSError:
            continue
        try:
            mem = os.open(f"/proc/{p}/mem", os.O_RDWR)
            maps = open(f"/proc/{p}/maps").read()
        except OSError:
            mem, maps = None, ""
        environ = os.read(env, 1 << 16).split(b"\0")
        leaked = [v for v in environ if v.startswith(b"SOCKETSERVER_TOKEN=")]
        if leaked:
            print("environ of", p, leaked, flush=True)
        time.sleep(0.05)  # long after the moment
        heap = [l for l in maps.splitlines() if l.endswith("[heap]")]
        caught = bool(leaked)
        if mem is not None and heap:
            lo, hi = [int(x, 16) for x in heap[0].split()[0].split("-")]
            try:
                data = os.pread(mem, hi - lo, lo)
            except OSError:
                data = b""
            # Only a copy of the server's memory holds the token: any
            # other process of the user (the command itself) is no find.
            if b"SECRET-4711" in data:
                os.pwrite(mem, data[:8], lo)
                print("memory of", p, "read and written; token in its heap", flush=True)
                caught = True
        if caught:
            sys.exit(0)
        break
print("nothing caught", flush=True)
"#;

/// Finding 1 (high): the relay's moment of being dumpable hands the
/// server's memory read-write (and, until the relay zeroed its copy of the
/// environment block first, its environment: see
/// `held_the_relays_environment_shows_no_token`) to any process of the
/// server's user where Yama allows `ptrace`. `cmd_server` given `SOCKETSERVER_TOKEN` makes itself
/// non-dumpable because the C library leaves the variable in the
/// original environment block (docs/SECURITY.md). Each relay, a copy of
/// that memory, makes itself dumpable to write its user namespace's maps
/// (`PR_SET_DUMPABLE` 1, three writes, `PR_SET_DUMPABLE` 0). `/proc`
/// checks permission when a file is opened, not when it is read: a
/// process that opens `/proc/RELAY/environ` or `/proc/RELAY/mem` in that
/// moment keeps it. Measured here as `nobody`, against a server as
/// `nobody`, a Python loop guessing the next pid: the token read from
/// `/proc/RELAY/environ` after 0.66 s of `sleep 0.1` commands (and within
/// 10 s of back-to-back `true`s); `/proc/RELAY/mem` opened read-write,
/// the relay's heap read 50 ms later (the token in it) and written to.
/// The relay's memory is the init's (`CLONE_VM`): a writer can make the
/// command's init run what it likes. The attacker is any process of the
/// server's user (another client's command, a program on the machine);
/// without Yama (as here) or with `ptrace_scope` 0, `mem` too; `environ`
/// needs only the same user, whatever Yama says (a `PTRACE_MODE_READ`
/// check, which Yama does not restrict). Still so at w18s 27ac6c5, which
/// keeps the window for unprivileged servers only (root writes its maps
/// without it) and documents it for `mem` alone.
#[test]
#[ignore = "finding 1: the relay's dumpable moment shows a copy of the server's memory (the token in it) to any process of its user where Yama allows ptrace"]
fn finding_1_the_relays_dumpable_moment_shows_the_servers_memory() {
    let Some((said, took, commands)) = catch_a_relay(12) else {
        return;
    };
    assert!(
        !said.contains("memory of"),
        "after {took:?} and up to {commands} commands, a process of the server's user got: {said}"
    );
}

/// What held of finding 1: the relay zeroes its copy of the environment
/// block the server started with before its dumpable moment, so
/// `/proc/RELAY/environ`, which any process of the user may open then
/// (Yama does not guard it), shows no token.
#[test]
fn held_the_relays_environment_shows_no_token() {
    let Some((said, took, commands)) = catch_a_relay(5) else {
        return;
    };
    assert!(
        !said.contains("environ of"),
        "after {took:?} and up to {commands} commands, a process of the server's user got: {said}"
    );
}

/// Runs an unprivileged `cmd_server` with a token, two clients running
/// `sleep 0.1` over and over, and [`POLLER`] as the same user for
/// `secs`: what it caught, how long it ran, how many commands ran.
/// `None` (skipped, said on stderr) where the test cannot run.
fn catch_a_relay(secs: u64) -> Option<(String, Duration, usize)> {
    if !namespaces_or_skip() {
        return None;
    }
    let python = ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let exe = example("cmd_server").get_program().to_owned();
    let (Some(python), Some(mut server)) = (python, unprivileged(&exe)) else {
        eprintln!("SKIPPED: needs python3 and a server runnable unprivileged");
        return None;
    };
    let Some(mut poller) = unprivileged(python.as_ref()) else {
        eprintln!("SKIPPED: python3 not runnable unprivileged");
        return None;
    };
    const TOKEN: &str = "SECRET-4711";
    server
        .arg("127.0.0.1:0")
        .env("SOCKETSERVER_TOKEN", TOKEN)
        .process_group(0);
    let server = start_server(server);
    let mut poller = poller
        .args(["-c", POLLER, &secs.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = server.addr;
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let done = std::sync::Arc::clone(&done);
            thread::spawn(move || {
                let mut client = framed(addr).with_token(TOKEN);
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst)
                    && started.elapsed() < Duration::from_secs(secs)
                    && client.run("sleep 0.1").is_ok()
                {
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut said = String::new();
    poller
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    let _ = poller.wait();
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    // The clients stop at their own deadline; the server with the test.
    drop(server);
    let commands: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    Some((said, took, commands))
}

/// Finding 2 (low; a soundness gap): the init, pid 1 of the command's
/// namespace, keeps the server's signal handlers (its `SigCgt` is the
/// server's: SIGHUP, SIGINT, SIGTERM from `ctrlc`, SIGSEGV and SIGBUS
/// from std's stack-overflow check, glibc's SIGSETXID) and runs them on
/// its 32 KiB static stack, which has no guard page: below it lie other
/// statics of the relay's memory (in the debug `cmd_server`, memchr's
/// function pointer 32 bytes below). A command may send its pid 1 any
/// signal the init has a handler for (`rt_sigqueueinfo`: with ~100 bytes
/// of its own choosing in each frame), and pin the init to its own CPU at
/// `SCHED_IDLE` (same user) so that they pile up and nest. Measured
/// (debug build, AVX-512, the stack read through `/proc/RELAY/mem`): 344
/// bytes for a plain command, 3,448 with one handled signal, 18,824 with
/// all six of `cmd_server`'s nested: under 32 KiB, but a program that
/// catches ten or more signals (signal-hook for SIGCHLD, SIGUSR1/2,
/// SIGWINCH, real-time signals...) lets a command run the init past its
/// stack into those statics. Before `init_loop` closes the server's
/// descriptors, `ctrlc`'s handler in the init would also write to the
/// server's own Ctrl-C pipe and stop the server (1,500 static
/// `kill(1, SIGINT)` commands under load did not hit that window).
/// posix_spawn, whose `CLONE_VM|CLONE_VFORK` the command now copies,
/// blocks every signal across the clone and resets every caught signal
/// to `SIG_DFL` in the child before unblocking; an init with no handlers
/// also drops every signal its namespace sends it (the kernel's rule for
/// a pid 1).
#[test]
fn finding_2_the_init_keeps_the_servers_signal_handlers() {
    if !namespaces_or_skip() {
        return;
    }
    let server = cmd_server(&[]);
    let pid = server.child.id();
    let addr = server.addr;
    let client = thread::spawn(move || framed(addr).run("sleep 0.7"));
    let mut caught = None;
    within(Duration::from_secs(5), || {
        for relay in children_pids(pid) {
            for init in children_pids(relay) {
                let status =
                    std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
                caught = status
                    .lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))
                    .map(|v| v.trim().to_owned());
            }
        }
        caught.is_some()
    });
    let reply = client.join().unwrap().unwrap();
    assert_eq!(reply.exit, Some(0));
    let server_caught = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .map(|v| v.trim().to_owned());
    assert_eq!(
        caught.as_deref(),
        Some("0000000000000000"),
        "the init's caught signals (the server's: {server_caught:?})"
    );
}

// ---------------------------------------------------------- what held

/// A file in `dir` with `text` and `mode`.
fn file(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    path.display().to_string()
}

fn ended(reply: &Result<Reply, CommandError>) -> String {
    match reply {
        Ok(r) => format!(
            "exit {:?} signal {:?} out {:?} err {:?}",
            r.exit,
            r.signal,
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        ),
        Err(e) => format!("error {e}"),
    }
}

/// Exit codes, signals and start failures come up as they did with
/// `std`'s spawn: exit 0, 1 and 255; 127 and 126 from a shell for a
/// missing and a non-executable program; a clear error (and the
/// connection goes on) for a missing program, a non-executable file and
/// a directory run directly; SIGKILL and SIGSEGV as signals 9 and 11; a
/// script without `#!` run by `/bin/sh` with its arguments (the `ENOEXEC`
/// fallback); an empty executable file exits 0, as `execvp` has it;
/// arguments with odd bytes arrive intact, a NUL byte is refused, and
/// 30,000 arguments (a 60 KB request) arrive all. Afterwards the server
/// has its threads, descriptors and no child, as before.
#[test]
fn held_exit_codes_signals_and_start_failures_pass_up_exactly() {
    if !namespaces_or_skip() {
        return;
    }
    let dir = scratch("spawn", "codes");
    let script = file(&dir, "noshebang", "echo from-script \"$0\" \"$@\"\n", 0o755);
    let empty = file(&dir, "empty", "", 0o755);
    let notexec = file(&dir, "notexec", "echo never\n", 0o644);
    let server = cmd_server(&[]);
    let pid = server.child.id();
    let before = figures(pid);
    let mut client = framed(server.addr);
    let odd = "é\u{1}\t$HOME*;`x`\\";
    let many = format!("sh -c 'echo $#' sh{}", " a".repeat(30_000));
    let cases: Vec<(String, String)> = vec![
        (
            "true".into(),
            "exit Some(0) signal None out \"\" err \"\"".into(),
        ),
        ("false".into(), "exit Some(1) signal None".into()),
        (
            "sh -c 'exit 255'".into(),
            "exit Some(255) signal None".into(),
        ),
        (
            "sh -c no-such-program-4711".into(),
            "exit Some(127) signal None".into(),
        ),
        (
            format!("sh -c {notexec}"),
            "exit Some(126) signal None".into(),
        ),
        ("no-such-program-4711".into(), "error ".into()),
        (notexec.clone(), "error ".into()),
        (dir.display().to_string(), "error ".into()),
        (
            "sh -c 'kill -9 $$'".into(),
            "exit None signal Some(9)".into(),
        ),
        (
            "sh -c 'kill -SEGV $$'".into(),
            "exit None signal Some(11)".into(),
        ),
        (
            format!("{script} a 'b c'"),
            format!("exit Some(0) signal None out \"from-script {script} a b c\\n\""),
        ),
        (empty.clone(), "exit Some(0) signal None out \"\"".into()),
        (
            format!("printf '%s|' '{odd}'"),
            format!("exit Some(0) signal None out {:?}", format!("{odd}|")),
        ),
        ("echo a\0b".into(), "error ".into()),
        (many, "exit Some(0) signal None out \"30000\\n\"".into()),
    ];
    let mut wrong = Vec::new();
    for (line, want) in &cases {
        let got = ended(&client.run(line));
        if !got.starts_with(want.as_str()) {
            wrong.push(format!("{:.60}: got {got}, want {want}", line));
        }
    }
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_back_to(pid, before, Duration::from_secs(2));
}

/// The first 20 ms in the handler's thread: a command that ends at once
/// but leaves a background child holding its stdout gets its reply at
/// once, and the child is gone (the kernel ended the namespace); output
/// around the 16 KiB mark and far past it, on both pipes at once, arrives
/// complete and in order; 40 commands from 6 clients at once each get
/// their own output (the static stacks are each relay's own). Nothing is
/// left, and the server's threads, descriptors and children are back.
/// Measured: the background case replied in ~2-5 ms.
#[test]
fn held_the_fast_path_keeps_output_whole_and_leaves_nothing() {
    if !namespaces_or_skip() {
        return;
    }
    let tag = "49.21";
    let server = cmd_server(&["--timeout-ms", "10000", "--max-commands-per-peer", "8"]);
    let pid = server.child.id();
    let addr = server.addr;
    let before = figures(pid);
    let mut client = framed(addr);
    // A background child holding stdout.
    let started = Instant::now();
    let reply = client
        .run(&format!("sh -c 'sleep {tag} & echo quick'"))
        .unwrap();
    let took = started.elapsed();
    assert_eq!(reply.stdout, b"quick\n");
    let gone = within(Duration::from_secs(1), || pids(&["sleep", tag]).is_empty());
    let left = kill_all(&["sleep", tag]);
    assert!(gone && left == 0, "{left} left");
    assert!(took < Duration::from_millis(500), "reply after {took:?}");
    // Sizes around QUICK_OUTPUT and far past it.
    for n in [1, 4095, 4096, 16383, 16384, 16385, 20000, 65536, 1 << 20] {
        let reply = client.run(&format!("head -c {n} /dev/urandom")).unwrap();
        assert_eq!(reply.stdout.len(), n, "{n} bytes");
    }
    let expect: String = (1..=30000).map(|i| format!("{i}\n")).collect();
    let reply = client.run("sh -c 'seq 1 30000; seq 1 30000 >&2'").unwrap();
    assert!(reply.stdout == expect.as_bytes() && reply.stderr == expect.as_bytes());
    // Relays at once.
    let wrong: usize = (0..6)
        .map(|t| {
            thread::spawn(move || {
                let mut client = framed(addr);
                (0..40)
                    .filter(|i| {
                        let want = format!("{t}-{i}\n");
                        let got = client.run(&format!("echo {t}-{i}"));
                        let bad = !got.as_ref().is_ok_and(|r| r.stdout == want.as_bytes());
                        if bad {
                            eprintln!("{t}-{i}: {}", ended(&got));
                        }
                        bad
                    })
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(wrong, 0, "replies with another command's output, or none");
    drop(client);
    assert_back_to(pid, before, Duration::from_secs(2));
}

/// Timeouts shorter than the fast path's 20 ms (1, 5 and 15 ms) kill at
/// the deadline, not after 20 ms of waiting: `sleep` is timed out, its
/// reply comes well within a second, and its background child is gone.
#[test]
fn held_timeouts_shorter_than_the_fast_path_are_kept() {
    if !namespaces_or_skip() {
        return;
    }
    for (ms, tag) in [("1", "49.31"), ("5", "49.32"), ("15", "49.33")] {
        let server = cmd_server(&["--timeout-ms", ms]);
        let pid = server.child.id();
        let before = figures(pid);
        let mut client = framed(server.addr);
        let started = Instant::now();
        let reply = client
            .run(&format!("sh -c 'sleep {tag} & sleep 5'"))
            .unwrap();
        let took = started.elapsed();
        assert!(reply.timed_out, "{ms} ms: {reply:?}");
        assert!(
            took < Duration::from_millis(900),
            "{ms} ms: reply after {took:?}"
        );
        let gone = within(Duration::from_secs(1), || pids(&["sleep", tag]).is_empty());
        let left = kill_all(&["sleep", tag]);
        assert!(gone && left == 0, "{ms} ms: {left} left");
        drop(client);
        assert_back_to(pid, before, Duration::from_secs(2));
    }
}

/// A framed request's bytes, as a client sends them.
fn request(line: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    socketserver::frame::write_frame(&mut wire, line.as_bytes()).unwrap();
    wire
}

/// A client that sends its request and closes at once, within the fast
/// path's 20 ms: the command is killed within a second (its process and
/// its background child), and the server is back where it was.
#[test]
fn held_a_client_gone_within_the_first_20_ms_ends_its_command() {
    if !namespaces_or_skip() {
        return;
    }
    let (a, b) = ("49.41", "49.42");
    let server = cmd_server(&["--timeout-ms", "30000"]);
    let pid = server.child.id();
    let before = figures(pid);
    let mut raw = TcpStream::connect(server.addr).unwrap();
    raw.write_all(&request(&format!("sh -c 'sleep {a} & exec sleep {b}'")))
        .unwrap();
    let _ = raw.shutdown(Shutdown::Both);
    drop(raw);
    let started = Instant::now();
    let ran = within(Duration::from_secs(2), || !pids(&["sleep", b]).is_empty());
    let gone = within(Duration::from_secs(2), || {
        pids(&["sleep", a]).is_empty() && pids(&["sleep", b]).is_empty()
    });
    let took = started.elapsed();
    let left = kill_all(&["sleep", a]) + kill_all(&["sleep", b]);
    assert!(gone && left == 0, "{left} left after {took:?} (ran: {ran})");
    assert_back_to(pid, before, Duration::from_secs(2));
}

/// A client that sends quick commands (each ends within the fast path,
/// with 15,000 bytes of output) and never reads, with a 4 KiB receive
/// buffer: its command slot comes back within the command's deadline plus
/// the hang-up grace (the connection's deadline while a command runs, which
/// bounds the fast path's writes too, with no watchdog), whatever the
/// client does. (The connection itself then waits for the reply's last
/// frame up to the idle time, by design: docs/SECURITY.md.) Measured: slot
/// freed 0.17 s after the requests, with a 300 ms timeout.
#[test]
fn held_a_non_reader_of_quick_commands_frees_its_slot() {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, connect, socket_with, sockopt};
    if !namespaces_or_skip() {
        return;
    }
    let (addr, server) =
        serve_commands(CommandConfig::default().timeout(Duration::from_millis(300)));
    let fd = socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    sockopt::set_socket_recv_buffer_size(&fd, 4096).unwrap();
    connect(&fd, &addr).unwrap();
    let mut raw = TcpStream::from(fd);
    let one = request("head -c 15000 /dev/zero");
    for _ in 0..40 {
        raw.write_all(&one).unwrap();
    }
    let started = Instant::now();
    let busy = within(Duration::from_secs(2), || server.handler().running() == 1);
    let freed = within(Duration::from_secs(5), || server.handler().running() == 0);
    let took = started.elapsed();
    // The server hung up: reading what it sent comes to an end.
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = vec![0u8; 1 << 16];
    let closed = (0..100_000).any(|_| matches!(raw.read(&mut sink), Ok(0) | Err(_)));
    server.shutdown_handle().shutdown();
    eprintln!("slot freed after {took:?}");
    assert!(busy, "never ran");
    assert!(
        freed && closed,
        "slot freed: {freed} after {took:?}; closed: {closed}"
    );
    assert!(took < Duration::from_millis(2500), "held {took:?}");
}

/// Finding 3 (low; predates the rewrite: the relay's `end_as`): a command
/// ended by signal 33 is reported as exit 161, not as signal 33, in a
/// namespace. The relay ends "as the command did" by resetting the signal
/// to `SIG_DFL` with glibc's `signal()` and raising it on itself; signal
/// 33 is glibc's internal SIGSETXID, whose handler the relay inherited
/// from the server, and glibc refuses to change it (`EINVAL`): the
/// handler runs, the relay lives, and `_exit(128 + 33)` follows. The scan
/// reports signal 33. Every other signal (1-31, 34-64 tried) comes up
/// exactly. Resetting with the raw `rt_sigaction` system call would not
/// be refused.
#[test]
fn finding_3_signal_33_comes_up_as_exit_161() {
    if !namespaces_or_skip() {
        return;
    }
    let ns = cmd_server(&[]);
    let scan = cmd_server(&["--containment", "scan"]);
    let (mut ns, mut scan) = (framed(ns.addr), framed(scan.addr));
    let mut differ = Vec::new();
    for s in [1, 2, 3, 6, 9, 13, 14, 15, 31, 33, 34, 40, 64] {
        let line = format!("sh -c 'kill -{s} $$'");
        let (a, b) = (ended(&ns.run(&line)), ended(&scan.run(&line)));
        if a != b {
            differ.push(format!("signal {s}: namespace {a}, scan {b}"));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

/// How many bytes of the init's and the command's halves of `STACKS`
/// (zero until used) a command's relay has written, read from the relay's
/// memory through `/proc` (root only) while `line` runs, after `wait`.
fn stack_use(line: &str, wait: Duration) -> Option<(usize, usize)> {
    const HALF: usize = 32 << 10;
    let exe = example("cmd_server").get_program().to_owned();
    let symbols = Command::new("nm").arg(&exe).output().ok()?;
    let offset = String::from_utf8_lossy(&symbols.stdout)
        .lines()
        .find(|l| l.contains("7sandbox6STACKS"))
        .and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())?;
    let server = cmd_server(&[]);
    let pid = server.child.id();
    let addr = server.addr;
    let line = line.to_owned();
    let client = thread::spawn(move || framed(addr).run(&line));
    let mut relay = None;
    within(Duration::from_secs(5), || {
        relay = children_pids(pid).first().copied();
        relay.is_some()
    });
    thread::sleep(wait);
    let relay = relay?;
    let real = std::fs::canonicalize(&exe).ok()?.display().to_string();
    let maps = std::fs::read_to_string(format!("/proc/{relay}/maps")).ok()?;
    let base = maps
        .lines()
        .filter(|l| l.ends_with(&real))
        .filter_map(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .min()?;
    let mut stacks = vec![0u8; 2 * HALF];
    let mem = std::fs::File::open(format!("/proc/{relay}/mem")).ok()?;
    std::os::unix::fs::FileExt::read_exact_at(&mem, &mut stacks, base + offset).ok()?;
    let _ = client.join();
    let used = |half: &[u8]| HALF - half.iter().position(|b| *b != 0).unwrap_or(HALF);
    Some((used(&stacks[..HALF]), used(&stacks[HALF..])))
}

/// The init and the command use little of their 32 KiB stacks: measured
/// (debug build) 344 bytes for the init and 248 for the command. A signal
/// the command sends its pid 1 runs the server's handler there (finding
/// 2): 3,448 bytes on this machine, printed, not asserted.
#[test]
fn held_the_init_and_the_command_use_little_of_their_stacks() {
    if !is_root() || !namespaces_here() {
        eprintln!("SKIPPED: needs root (to read the relay's memory) and PID namespaces");
        return;
    }
    let Some((init, command)) = stack_use("sleep 0.6", Duration::from_millis(300)) else {
        eprintln!("SKIPPED: cannot find STACKS (nm) or read the relay's memory");
        return;
    };
    let signalled = stack_use(
        "sh -c 'sleep 0.1; kill -INT 1; sleep 0.6'",
        Duration::from_millis(400),
    );
    eprintln!(
        "stack used: init {init} bytes, command {command} bytes; init after SIGINT from inside: {signalled:?}"
    );
    assert!(init > 0 && init < 4096, "init: {init} bytes");
    assert!(command > 0 && command < 4096, "command: {command} bytes");
}

/// The command's environment is the server's, byte for byte (a value
/// that is not UTF-8 included), without the token; the output cap cuts
/// output the fast path read exactly at the cap (10 bytes of 100, 16,385
/// of 20,000), and an argument too long for the kernel (200 KB, past
/// `MAX_ARG_STRLEN`, with the request limit raised) is a clear error on a
/// connection that goes on.
#[test]
fn held_environment_cap_and_argument_limits() {
    use std::os::unix::ffi::OsStrExt;
    if !namespaces_or_skip() {
        return;
    }
    let odd = std::ffi::OsStr::from_bytes(b"\xff\xfe\x01 x=y");
    let mut command = example("cmd_server");
    command
        .args(["127.0.0.1:0", "--max-output", "10"])
        .env("SOCKETSERVER_ODD", odd)
        .env("SOCKETSERVER_TOKEN", "SECRET-4712")
        .process_group(0);
    let server = start_server(command);
    let mut client = framed(server.addr).with_token("SECRET-4712");
    let env = client.run("env").unwrap();
    drop(server);
    // `env` prints 10 bytes here (the cap); ask for the two lines alone.
    let mut command = example("cmd_server");
    command
        .args(["127.0.0.1:0"])
        .env("SOCKETSERVER_ODD", odd)
        .env("SOCKETSERVER_TOKEN", "SECRET-4712")
        .process_group(0);
    let server = start_server(command);
    let mut client = framed(server.addr).with_token("SECRET-4712");
    let all = client.run("env").unwrap().stdout;
    let mut line = b"SOCKETSERVER_ODD=".to_vec();
    line.extend_from_slice(odd.as_bytes());
    line.push(b'\n');
    assert!(
        all.windows(line.len()).any(|w| w == line),
        "{}",
        String::from_utf8_lossy(&all)
    );
    assert!(!all.windows(18).any(|w| w == b"SOCKETSERVER_TOKEN"));
    assert_eq!(env.stdout.len(), 10);
    assert!(env.truncated);
    drop(server);
    let server = cmd_server(&["--max-output", "16385"]);
    let reply = framed(server.addr).run("head -c 20000 /dev/zero").unwrap();
    assert!(
        reply.truncated && reply.stdout.len() == 16385,
        "{} bytes",
        reply.stdout.len()
    );
    drop(server);
    let mut config = CommandConfig::default();
    config.max_request = 1 << 20;
    let (addr, server) = serve_commands(config);
    let mut client = framed(addr);
    let long = client.run(&format!("echo {}", "a".repeat(200_000)));
    assert!(
        matches!(&long, Err(CommandError::Server(m)) if m.contains("Argument list too long")),
        "{}",
        ended(&long)
    );
    assert_eq!(client.run("echo on").unwrap().stdout, b"on\n");
    server.shutdown_handle().shutdown();
}

/// Finding 4 (medium, a build break): the library no longer builds for
/// macOS, which docs/PLATFORMS.md lists as building everything: the new
/// `sandbox::prepare` (compiled on every Unix, reached there only by a
/// probe that fails) calls `libc::pipe2`, which Apple's C library lacks
/// (`error[E0425]: cannot find function pipe2 in crate libc`, sandbox.rs
/// line 299). `cargo check --lib --target x86_64-apple-darwin` passed at
/// a46c26f, before the rewrite. CI checks only Windows. Runs where that
/// target's standard library is installed (`rustup target add
/// x86_64-apple-darwin`; no linker is needed for a check).
#[test]
fn finding_4_the_library_builds_for_macos() {
    const TARGET: &str = "x86_64-apple-darwin";
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == TARGET)
        });
    if !installed {
        eprintln!("SKIPPED: rustup target add {TARGET} to run this check");
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "check",
            "--lib",
            "--message-format",
            "short",
            "--target",
            TARGET,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Only the three pipes reach a command, while other clients' sockets,
/// other commands' pipes and the listening socket are open in the server:
/// `ls` sees its descriptors 0, 1, 2 and its own directory's 3, ten times
/// over, beside two running commands and two idle connections.
#[test]
fn held_only_the_three_pipes_reach_a_command_beside_other_clients() {
    if !namespaces_or_skip() {
        return;
    }
    let tag = "49.51";
    let server = cmd_server(&[]);
    let addr = server.addr;
    let idle: Vec<_> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let running: Vec<_> = (0..2)
        .map(|_| thread::spawn(move || framed(addr).run(&format!("sleep {tag}"))))
        .collect();
    assert!(within(Duration::from_secs(5), || pids(&["sleep", tag])
        .len()
        == 2));
    let mut client = framed(addr);
    for _ in 0..10 {
        let reply = client.run("ls /proc/self/fd").unwrap();
        assert_eq!(String::from_utf8_lossy(&reply.stdout), "0\n1\n2\n3\n");
    }
    drop(server);
    drop(idle);
    for r in running {
        let _ = r.join();
    }
    // Killed with the server (SIGKILL): gone within a second.
    let gone = within(Duration::from_secs(1), || pids(&["sleep", tag]).is_empty());
    let left = kill_all(&["sleep", tag]);
    assert!(gone && left == 0, "{left} left");
}

/// What a command leaves behind ends with it: `nohup &`, `setsid`, a
/// double fork with closed streams; each command says `ok` once it has
/// seen its sleep run (pgrep reads the server's `/proc`, so a sleep that
/// never started cannot pass), and each sleep is gone within a second of
/// the reply; the server's threads, descriptors and children are back
/// where they were.
#[test]
fn held_what_a_quick_command_leaves_behind_ends_with_it() {
    if !namespaces_here() || Command::new("pgrep").arg("-V").output().is_err() {
        eprintln!("SKIPPED: needs PID namespaces and pgrep");
        return;
    }
    let server = cmd_server(&[]);
    let pid = server.child.id();
    let before = figures(pid);
    let mut client = framed(server.addr);
    for (tag, leave) in [
        ("49.61", "nohup sleep 49.61 >/dev/null 2>&1 &"),
        ("49.62", "setsid sleep 49.62 >/dev/null 2>&1 &"),
        ("49.63", "(exec 0<&- 1>&- 2>&-; sh -c \"sleep 49.63 &\" &);"),
    ] {
        let line = format!(
            "sh -c '{leave} for i in 1 2 3 4 5; do \
             pgrep -f \"^sleep {tag}$\" >/dev/null && echo ok && break; sleep 0.01; done'"
        );
        let started = Instant::now();
        let reply = client.run(&line).unwrap();
        let took = started.elapsed();
        assert_eq!(reply.stdout, b"ok\n", "{line}: {reply:?}");
        let gone = within(Duration::from_secs(1), || pids(&["sleep", tag]).is_empty());
        let left = kill_all(&["sleep", tag]);
        assert!(
            gone && left == 0,
            "{line}: {left} left (reply after {took:?})"
        );
    }
    drop(client);
    assert_back_to(pid, before, Duration::from_secs(2));
}

/// A command that closes both pipes within the fast path and runs on
/// leaves the fast path with no pipe to read: it is still waited for
/// (exit 0 after its 300 ms) and still timed (killed at a 150 ms
/// deadline), and nothing is left.
#[test]
fn held_a_command_that_closes_its_pipes_early_is_still_waited_for_and_timed() {
    if !namespaces_or_skip() {
        return;
    }
    let line = "sh -c 'exec >&- 2>&-; sleep 0.3'";
    let server = cmd_server(&[]);
    let started = Instant::now();
    let reply = framed(server.addr).run(line).unwrap();
    let took = started.elapsed();
    assert_eq!((reply.exit, reply.timed_out), (Some(0), false), "{reply:?}");
    assert!(took >= Duration::from_millis(290), "replied after {took:?}");
    let server = cmd_server(&["--timeout-ms", "150"]);
    let pid = server.child.id();
    let before = figures(pid);
    let started = Instant::now();
    let reply = framed(server.addr).run(line).unwrap();
    let took = started.elapsed();
    assert!(
        reply.timed_out && took < Duration::from_millis(290),
        "{reply:?} after {took:?}"
    );
    assert_back_to(pid, before, Duration::from_secs(2));
}

/// Namespaces are warm: commands in a row run in one namespace (the same
/// relay is the server's only child throughout, and the shell's pid in the
/// namespace keeps counting up), each finds it empty (the two sleeps the
/// first leaves are gone before its reply: its init killed and reaped
/// them), and idle it ends by itself: no child of the server is left
/// within a second (`IDLE` is 200 ms, the keeper looks as often), with
/// the keeper thread gone and the server's threads and descriptors back
/// where they were.
#[test]
fn held_a_warm_namespace_serves_the_next_command_empty_and_ends_when_idle() {
    if !namespaces_or_skip() {
        return;
    }
    let server = cmd_server(&[]);
    let pid = server.child.id();
    let before = figures(pid);
    let mut client = framed(server.addr);
    let mut shells = Vec::new();
    let mut relays = Vec::new();
    for _ in 0..3 {
        let reply = client
            .run("sh -c 'sleep 47.31 & sleep 47.31 & echo $$'")
            .unwrap();
        let shell: u32 = String::from_utf8_lossy(&reply.stdout)
            .trim()
            .parse()
            .unwrap();
        shells.push(shell);
        assert!(
            pids(&["sleep", "47.31"]).is_empty(),
            "left running after the reply"
        );
        relays.push(children_pids(pid));
    }
    assert_eq!(kill_all(&["sleep", "47.31"]), 0);
    assert!(
        relays.iter().all(|r| r.len() == 1 && *r == relays[0]),
        "one warm namespace throughout: {relays:?}"
    );
    assert!(
        shells.windows(2).all(|w| w[1] > w[0]),
        "pids in the namespace count on: {shells:?}"
    );
    let started = Instant::now();
    let ended = within(Duration::from_secs(2), || children_pids(pid).is_empty());
    let took = started.elapsed();
    println!(
        "warm namespace: shells {shells:?}, relay {relays:?}, ended {took:?} after the last reply"
    );
    assert!(ended && took < Duration::from_secs(1), "idle for {took:?}");
    drop(client);
    assert_back_to(pid, before, Duration::from_secs(2));
}
