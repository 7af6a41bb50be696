//! A red team of the warm namespaces (4e553da): one PID namespace (in a
//! user namespace of its own) serving one command after another, its
//! init killing and reaping everything between two commands, kept idle
//! for 200 ms, started by a keeper thread.
//!
//! What is attacked is the reuse: what one command can leave in its
//! namespace for the next (another client's), what it can do to the init
//! that serves them both, and whether the server's books (threads,
//! descriptors, children) come back when commands race their deadlines,
//! come all at once, or the server is stopped. Each finding is a test
//! that failed on that code: committed `#[ignore]`d with its number where
//! it is left open, running (renamed `held_...`, its doc saying what was
//! measured before and after) where it is mended. Mended: 1 (a root
//! server's command set its user namespace's limits, `pid_max` and user
//! keyring for the next: each such command now has a user namespace of
//! its own), 2 (a namespace whose init could not start a command was
//! reused), 3 (a stopped idle init hung the next command for good), 4 (a
//! command whose init was killed was reported as exit 0), 6 (limits,
//! nice, CPUs, policy, I/O class set on the init were inherited by every
//! later command), 7 (a session keyring handed to the init was every
//! later command's), 5 (a watchdog kill reported without "timed out").
//! Each thing that held is a test that passes. Servers are `cmd_server`
//! processes (or a handler in this process where only answers are looked
//! at), on loopback only; every process a command leaves has arguments
//! of its own (`sleep 53.11`), so a test counts exactly what it started
//! and kills by pid whatever it finds left before it fails. Every loop is
//! bounded and every wait has a deadline.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Running, children_of, cmd_server, figures, framed, have, is_root, kill_all, namespaces_here,
    namespaces_or_skip, pids, scratch, serve_commands, within,
};
use socketserver::command::{CommandConfig, CommandError, Reply};

/// A `cmd_server` running lines with `sh -c`, every command slot open to
/// one address (the tests' clients all come from 127.0.0.1).
fn shell_server(args: &[&str]) -> Running {
    let mut all = vec!["--shell", "--max-commands-per-peer", "8"];
    all.extend_from_slice(args);
    cmd_server(&all)
}

/// Runs `line` on a new connection, the reply or the error as text if it
/// takes more than `wait` (the client thread is then left to end with
/// the server).
fn run_within(
    addr: std::net::SocketAddr,
    line: &str,
    wait: Duration,
) -> Option<Result<Reply, CommandError>> {
    let (tx, rx) = mpsc::channel();
    let line = line.to_owned();
    thread::spawn(move || {
        let reply =
            socketserver::command::Client::connect(addr, socketserver::command::Protocol::Framed)
                .map_err(CommandError::Io)
                .and_then(|mut c| c.run(&line));
        let _ = tx.send(reply);
    });
    rx.recv_timeout(wait).ok()
}

/// The command's standard output as text.
fn out(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.stdout).into_owned()
}

/// The namespaces' relays (the server's children) and their inits (each
/// relay's child), from `/proc`.
fn relays_and_inits(server: u32) -> Vec<(u32, u32)> {
    children_of(server)
        .into_iter()
        .filter_map(|(relay, _)| Some((relay, children_of(relay).first()?.0)))
        .collect()
}

/// Compiles a small C program into `dir`; `None` without a C compiler.
fn cc(dir: &Path, name: &str, source: &str) -> Option<PathBuf> {
    let src = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&src, source).unwrap();
    Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success())
        .then_some(exe)
}

/// The line that prints a command's PID namespace, first thing.
const PIDNS: &str = "readlink /proc/self/ns/pid";

/// Runs `first` then `second` on one connection until both ran in the
/// same namespace (each prints its namespace first, [`PIDNS`]), at most 5
/// times: the second reply's output without that line, and how many
/// tries it took. `None` if it never happened (the namespace retired).
fn in_turn(addr: std::net::SocketAddr, first: &str, second: &str) -> Option<(Reply, Reply, usize)> {
    let mut client = framed(addr);
    for attempt in 1..=5 {
        let a = client.run(&format!("{PIDNS}; {first}")).unwrap();
        let mut b = client.run(&format!("{PIDNS}; {second}")).unwrap();
        let (na, nb) = (out(&a), out(&b));
        let (na, nb) = (na.lines().next(), nb.lines().next());
        if na.is_some() && na == nb {
            let rest = out(&b)
                .split_once('\n')
                .map_or(String::new(), |(_, r)| r.to_owned());
            b.stdout = rest.into_bytes();
            return Some((a, b, attempt));
        }
    }
    None
}

// ------------------------------------------------------- what is left

/// What a command leaves: a double fork into a new session, a stopped
/// process, a traced one and its tracer, one in a nested user and PID
/// namespace, a subreaper with an orphan of its own, a System V segment
/// and queue, a POSIX message queue. Each `sleep` has a tag of its own.
const LEAVE: &str = r#"setsid sh -c 'sleep 53.11 </dev/null >/dev/null 2>&1 &'
sleep 53.12 </dev/null >/dev/null 2>&1 & kill -STOP $!
if command -v strace >/dev/null; then strace -o /dev/null sleep 53.13 </dev/null >/dev/null 2>&1 & fi
if command -v unshare >/dev/null; then unshare -Urpf --mount-proc sleep 53.14 </dev/null >/dev/null 2>&1 & fi
python3 -c '
import ctypes, os
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
if os.fork() == 0:
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "53.15"])
    os._exit(0)
os.execvp("sleep", ["sleep", "53.16"])
' </dev/null >/dev/null 2>&1 &
ipcmk -M 4096 >/dev/null; ipcmk -Q >/dev/null
python3 -c '
import ctypes, os
rt = ctypes.CDLL("librt.so.1", use_errno=True)
print("mq made" if rt.mq_open(b"/socketserver-warm", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0 else "no mq")
'
sleep 0.3; echo left"#;

/// What the next command looks at: the processes of its PID namespace
/// (all of them are in the server's `/proc`, their `ns/pid` links
/// readable by the same user) other than its own, and the System V
/// objects and the POSIX queue of the IPC namespace it is in.
const LOOK: &str = r#"python3 -c '
import ctypes, os
me = os.readlink("/proc/self/ns/pid")
# /proc is the server'\''s: pids there are the host'\''s.
mine, p = set(), int(os.readlink("/proc/self"))
while p > 1 and str(p) not in mine:
    mine.add(str(p))
    p = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
others = []
for p in os.listdir("/proc"):
    if not p.isdigit() or p in mine:
        continue
    try:
        if os.readlink(f"/proc/{p}/ns/pid") == me:
            others.append(open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode())
    except OSError:
        pass
print("others:", others)
ipc = [len(open(f"/proc/sysvipc/{k}").read().splitlines()) - 1 for k in ("shm", "msg")]
print("sysv:", ipc)
rt = ctypes.CDLL("librt.so.1", use_errno=True)
fd = rt.mq_open(b"/socketserver-warm", os.O_RDONLY, 0, None)
print("mq:", "OPEN" if fd >= 0 else os.strerror(ctypes.get_errno()))
'"#;

/// The tags of [`LEAVE`]'s sleeps.
const LEFT_TAGS: [&str; 6] = ["53.11", "53.12", "53.13", "53.14", "53.15", "53.16"];

fn left_behind() -> Vec<(&'static str, usize)> {
    LEFT_TAGS
        .iter()
        .map(|t| (*t, pids(&["sleep", t]).len()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Nothing a command leaves reaches the next command in its namespace
/// (another client's): when the first reply comes, every process it left
/// (double-forked into a session, stopped, traced, in a nested user and
/// PID namespace, under a subreaper of its own) is gone already, and the
/// next command, in the same PID namespace, sees no process of it and
/// none of its System V objects or POSIX queue (each command has an IPC
/// namespace of its own). The server has no zombie. For a root server
/// and an unprivileged one.
#[test]
fn held_nothing_a_command_leaves_reaches_the_next_in_its_namespace() {
    if !namespaces_here() || !have("python3") || !have("ipcmk") {
        eprintln!("SKIPPED: needs PID namespaces, python3 and ipcmk");
        return;
    }
    leave_and_look(&shell_server(&[]));
    match common::unprivileged_server(&["--shell", "--max-commands-per-peer", "8"]) {
        Some(server) => leave_and_look(&server),
        None => eprintln!("SKIPPED (unprivileged part): cannot run cmd_server unprivileged"),
    }
}

/// [`LEAVE`] on one connection, then [`LOOK`] on another, until both ran
/// in one namespace (at most 5 times), and what must hold of it.
fn leave_and_look(server: &Running) {
    let pid = server.child.id();
    let mut first = framed(server.addr);
    let mut second = framed(server.addr);
    let mut seen = None;
    for _ in 0..5 {
        let a = first.run(&format!("{PIDNS}; {LEAVE}")).unwrap();
        let at_reply = left_behind();
        let b = second.run(&format!("{PIDNS}; {LOOK}")).unwrap();
        let (a, b) = (out(&a), out(&b));
        if a.lines().next() == b.lines().next() {
            seen = Some((a, b, at_reply));
            break;
        }
    }
    let zombies = children_of(pid).iter().filter(|(_, s)| *s == 'Z').count();
    let killed: usize = LEFT_TAGS.iter().map(|t| kill_all(&["sleep", t])).sum();
    let Some((a, b, at_reply)) = seen else {
        panic!("never twice in one namespace in 5 tries");
    };
    eprintln!("first: {a}\nsecond: {b}");
    assert!(a.ends_with("left\n"), "{a}");
    assert!(a.contains("mq made"), "{a}");
    assert_eq!(
        at_reply,
        vec![],
        "alive when the first reply came ({killed} killed now)"
    );
    assert!(b.contains("others: []"), "{b}");
    assert!(b.contains("sysv: [0, 0]"), "{b}");
    assert!(b.contains("mq: No such file or directory"), "{b}");
    assert_eq!(zombies, 0);
}

/// A process that moves to a new pid all the time (forks, and the parent
/// exits): what a `kill(-1)` that walks the process list might miss.
const HOPPER: &str = r#"
#include <unistd.h>
int main(void) {
    for (;;) {
        pid_t p = fork();
        if (p > 0) _exit(0);
    }
}
"#;

/// A parent stuck in `vfork` (its child sleeps instead of executing).
const VFORK: &str = r#"
#include <unistd.h>
int main(void) {
    if (vfork() == 0) { sleep(60); _exit(0); }
    return 0;
}
"#;

/// Four pid hoppers (each forking and exiting in a tight loop while the
/// init kills) and a parent stuck in `vfork`: the reply comes, nothing is
/// left when it does, and the next command in the namespace runs.
/// Measured: reply in ~0.35 s (0.3 s of it the command's own sleep), 0
/// left.
#[test]
fn held_pid_hoppers_and_a_vfork_end_before_the_reply() {
    if !namespaces_here() || !have("cc") {
        eprintln!("SKIPPED: needs PID namespaces and a C compiler");
        return;
    }
    let dir = scratch("warm", "hoppers");
    let (Some(hopper), Some(vfork)) = (cc(&dir, "hopper", HOPPER), cc(&dir, "vfork", VFORK)) else {
        eprintln!("SKIPPED: the C helpers do not build");
        return;
    };
    let (hopper, vfork) = (hopper.display().to_string(), vfork.display().to_string());
    let server = shell_server(&["--timeout-ms", "20000"]);
    let pid = server.child.id();
    let line = format!(
        "for i in 1 2 3 4; do {hopper} 53.21 </dev/null >/dev/null 2>&1 & done; \
         {vfork} 53.22 </dev/null >/dev/null 2>&1 & sleep 0.3; echo hopping"
    );
    let mut client = framed(server.addr);
    let started = Instant::now();
    let reply = client.run(&line).unwrap();
    let took = started.elapsed();
    let left = pids(&[&hopper, "53.21"]).len() + pids(&[&vfork, "53.22"]).len();
    let next = client.run("echo next").unwrap();
    let zombies = children_of(pid).iter().filter(|(_, s)| *s == 'Z').count();
    let killed = kill_all(&[&hopper, "53.21"]) + kill_all(&[&vfork, "53.22"]);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("reply after {took:?}, {left} left");
    assert_eq!(out(&reply), "hopping\n", "{reply:?}");
    assert_eq!(
        (left, killed, zombies),
        (0, 0, 0),
        "left at the reply, killed now, zombies"
    );
    assert_eq!(out(&next), "next\n");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

// ------------------------------------------- what a root command can set

/// Limits of the user namespace (`/proc/sys/user`) and of the PID
/// namespace (`pid_max`, per namespace since Linux 6.14) that a command of
/// a root server could set, as root in the warm namespace's user
/// namespace (which owns its PID namespace), and a key in its user
/// keyring (one per user namespace).
const SET_LIMITS: &str = r#"for f in max_inotify_instances max_user_namespaces max_mnt_namespaces; do
     echo 0 > /proc/sys/user/$f; done; echo 1000 > /proc/sys/kernel/pid_max
python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall(248, b"user", b"socketserver-warm", b"s3cret", 6, -4)
'
cat /proc/sys/user/max_inotify_instances /proc/sys/kernel/pid_max"#;
const READ_LIMITS: &str = r#"cat /proc/sys/user/max_inotify_instances /proc/sys/user/max_user_namespaces \
     /proc/sys/user/max_mnt_namespaces /proc/sys/kernel/pid_max
python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(250, 10, -4, b"user", b"socketserver-warm", 0)
print("key:", "FOUND" if r >= 0 else os.strerror(ctypes.get_errno()))
'"#;

/// Finding 1 (medium, mended; root servers): a command of a root server
/// was root in its warm namespace's user namespace, with every
/// capability there, and that namespace (with its PID namespace) now
/// outlives it: whatever it set of them, the next commands in that
/// namespace (any client's) lived with. Measured: `max_inotify_instances`,
/// `max_user_namespaces` and `max_mnt_namespaces` set to 0 and `pid_max`
/// to 1000 by one command; the next command, another client's in the
/// same namespace, read 0, 0, 0 and 1000 (its `inotifywait`, `unshare -U`
/// and `unshare -m` would fail), and found the key the first had put in
/// its user keyring. (`max_ipc_namespaces` at 0 made every later command
/// fail: finding 2.) Mended: a root server's command runs in a user
/// namespace of its own inside the warm one (the same maps), where its
/// capabilities hold and which ends with it; `pid_max`, which the
/// namespace's root user may set without them, is among what the init
/// checks before each command (finding 6). Measured after: the next
/// command reads what a fresh one reads and finds no key.
#[test]
fn held_a_root_command_sets_no_limit_for_the_next_command() {
    if !is_root() || !namespaces_here() || !have("python3") {
        eprintln!("SKIPPED: needs root, PID namespaces and python3");
        return;
    }
    let server = shell_server(&[]);
    let fresh = out(&framed(server.addr).run(READ_LIMITS).unwrap());
    assert!(
        fresh.ends_with("key: Required key not available\n"),
        "{fresh}"
    );
    for _ in 0..3 {
        let set = framed(server.addr).run(SET_LIMITS).unwrap();
        let read = framed(server.addr).run(READ_LIMITS).unwrap();
        eprintln!(
            "fresh:\n{fresh}set:\n{}read after:\n{}",
            out(&set),
            out(&read)
        );
        assert_eq!(out(&set), "0\n1000\n", "the first command set nothing");
        assert_eq!(out(&read), fresh);
    }
}

/// Finding 2 (medium, mended; root servers): a command that sets its
/// user namespace's `max_ipc_namespaces` to 0 (or `pid_max` below the
/// pids in use) makes the init's `clone` of every later command in that
/// namespace fail; the init answered so and served on, and the server put
/// the namespace back as the idle one used next. Measured: 5 of 5
/// commands after it, on the same connection, failed with "no process for
/// the command: No space left on device", for as long as commands came
/// within 200 ms of each other. Mended twice: a namespace whose init
/// cannot start a command is ended (a fresh one is taken for that command
/// once); and since finding 1's mending the command's write lands in a
/// user namespace of its own, which ends with it.
#[test]
fn held_a_namespace_that_cannot_start_a_command_is_not_reused() {
    if !is_root() || !namespaces_here() {
        eprintln!("SKIPPED: needs root and PID namespaces");
        return;
    }
    let server = shell_server(&[]);
    let mut client = framed(server.addr);
    let set = client
        .run("echo 0 > /proc/sys/user/max_ipc_namespaces && echo set")
        .unwrap();
    assert_eq!(out(&set), "set\n", "{set:?}");
    let after: Vec<String> = (0..5)
        .map(|_| match client.run("echo ran") {
            Ok(reply) => out(&reply),
            Err(e) => e.to_string(),
        })
        .collect();
    assert!(after.iter().all(|r| r == "ran\n"), "{after:?}");
}

// ------------------------------------------- the init, from outside

/// Makes `n` namespaces of `server` idle (as many commands at once) and
/// returns their relays and inits.
fn idle_namespaces(server: &Running, n: usize) -> Vec<(u32, u32)> {
    let addr = server.addr;
    let running: Vec<_> = (0..n)
        .map(|_| thread::spawn(move || framed(addr).run("sleep 0.4")))
        .collect();
    for r in running {
        r.join().unwrap().unwrap();
    }
    relays_and_inits(server.child.id())
}

/// Finding 3 (low, mended): an idle init stopped from outside its
/// namespace (SIGSTOP, which a namespace's pid 1 takes from an ancestor
/// namespace: any process of the server's user, a debugger) hangs the
/// next command handed to it for good: the handler waits for the init's
/// "started" answer without a deadline (the command's watchdog starts
/// after it), so neither the command's timeout nor its client's leaving
/// ends it, and its command slot stays taken. Measured: with both idle
/// inits stopped and `--timeout-ms 1000`, 2 of 2 commands without a reply
/// after 30 s. (A command cannot do it: it sees no pid outside its
/// namespace, and `pidfd_send_signal` on a `/proc/PID` directory outside
/// it is refused; see [`held_the_init_is_out_of_a_commands_reach`].)
/// Mended: the answer is awaited as long as a new namespace's first
/// answer (10 s); past it the namespace is ended and the command tried
/// once in a new one. Measured: both replies after 10.1 s. And no longer
/// than the command may run: with `--timeout-ms 1000` (the second
/// round), both are told the command timed out (it never ran) after
/// about 1 s, where before they were told only after the 10 s.
#[test]
fn held_a_stopped_idle_init_delays_the_next_command_boundedly() {
    if !namespaces_or_skip() {
        return;
    }
    // The command's deadline bounds the wait.
    let (took, replies) = two_commands_on_stopped_inits("1000");
    eprintln!("deadline 1 s: after {took:?}: {replies:?}");
    let timed_out = |r: &Option<Result<Reply, CommandError>>| matches!(r, Some(Ok(reply)) if reply.timed_out && reply.stdout.is_empty());
    assert!(replies.iter().all(timed_out), "{replies:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Within 10 s, the command runs in a new namespace.
    let (took, replies) = two_commands_on_stopped_inits("15000");
    eprintln!("after {took:?}: {replies:?}");
    for reply in &replies {
        match reply {
            Some(Ok(r)) => assert_eq!(out(r), "ran\n", "{r:?}"),
            other => panic!("no reply within 30 s: {other:?}"),
        }
    }
    assert!(took < Duration::from_secs(25), "{took:?}");
}

/// Two `echo ran` at once on a shell server with `--timeout-ms
/// timeout_ms` whose two idle namespaces' inits were stopped (SIGSTOP):
/// how long both replies took, and the replies (`None`: none in 30 s).
fn two_commands_on_stopped_inits(
    timeout_ms: &str,
) -> (Duration, Vec<Option<Result<Reply, CommandError>>>) {
    let server = shell_server(&["--timeout-ms", timeout_ms]);
    let inits = idle_namespaces(&server, 2);
    assert_eq!(inits.len(), 2, "{inits:?}");
    for (_, init) in &inits {
        let _ = Command::new("kill")
            .args(["-STOP", &init.to_string()])
            .status();
    }
    let addr = server.addr;
    let started = Instant::now();
    let replies: Vec<_> = (0..2)
        .map(|_| thread::spawn(move || run_within(addr, "echo ran", Duration::from_secs(30))))
        .collect();
    let replies = replies.into_iter().map(|r| r.join().unwrap()).collect();
    (started.elapsed(), replies)
}

/// Finding 4 (medium, mended): a command whose namespace's init is killed
/// from outside (the OOM killer, which sees a copy of the server's memory
/// in the init and its relay; any process of the server's user) is
/// reported as having exited with code 0: the relay ends with 0 whatever
/// ended its init, and the handler takes the relay's status for the
/// command's. Measured: `sleep 53.41; echo done` whose init got SIGKILL
/// once the sleep ran: reply `exit: Some(0)`, no output, not timed out.
/// Mended: a relay
/// whose init did not end on the server's word dies of SIGKILL, so the
/// reply says the command was killed.
#[test]
fn held_a_command_whose_init_is_killed_is_reported_killed() {
    if !namespaces_or_skip() {
        return;
    }
    let server = shell_server(&[]);
    let addr = server.addr;
    let pid = server.child.id();
    let victim = thread::spawn(move || framed(addr).run("sleep 53.41; echo done"));
    let mut init = None;
    assert!(
        within(Duration::from_secs(5), || {
            init = pids(&["sleep", "53.41"])
                .first()
                .and_then(|_| relays_and_inits(pid).first().map(|(_, init)| *init));
            init.is_some()
        }),
        "the victim's sleep never ran"
    );
    let init = init.unwrap();
    let _ = Command::new("kill")
        .args(["-KILL", &init.to_string()])
        .status();
    let reply = victim.join().unwrap().unwrap();
    let left = kill_all(&["sleep", "53.41"]);
    eprintln!("{reply:?}");
    assert_eq!(left, 0);
    assert_eq!((reply.exit, reply.signal), (None, Some(9)), "{reply:?}");
}

/// What a command tries on the init that serves it and the next command,
/// and on its relay: its own descriptors (the init's socket is not among
/// them), ptrace of pid 1, the init's and the relay's descriptors, memory,
/// environment, maps and PID namespace link through the server's /proc,
/// a signal through a `/proc/PID` directory of the init's (a pidfd to
/// `pidfd_send_signal`), the init's host pid with `kill`, and SIGKILL and
/// SIGSTOP to its pid 1.
const REACH: &str = r#"python3 -c '
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def err(r):
    return "ok" if r >= 0 else os.strerror(ctypes.get_errno())
print("fds:", sorted(int(f) for f in os.listdir("/proc/self/fd")))
p, init, relay = int(os.readlink("/proc/self")), None, None
while p > 1:
    st = open(f"/proc/{p}/status").read().splitlines()
    nspid = [l.split()[1:] for l in st if l.startswith("NSpid")][0]
    ppid = int([l.split()[1] for l in st if l.startswith("PPid")][0])
    if nspid[-1] == "1":
        init, relay = p, ppid
        break
    p = ppid
print("init found:", init is not None)
print("ptrace 1:", err(libc.ptrace(16, 1, 0, 0)))
for who, pid in (("init", init), ("relay", relay)):
    for f in ("fd", "mem", "environ", "maps", "ns/pid"):
        path = f"/proc/{pid}/{f}"
        try:
            if f == "fd":
                print(who, "fd numbers listed:", len(os.listdir(path)))
                continue
            elif f == "ns/pid":
                os.readlink(path)
            else:
                open(path, "rb").read(16)
            print(who, f, "READ")
        except OSError as e:
            print(who, f, e.strerror)
for fd in os.listdir(f"/proc/{init}/fd") if os.access(f"/proc/{init}/fd", os.R_OK) else []:
    try:
        os.readlink(f"/proc/{init}/fd/{fd}")
        print("init fd link READ")
    except OSError as e:
        print("init fd link", e.strerror)
def stopped(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T"
server = int(open(f"/proc/{relay}/stat").read().rsplit(")", 1)[1].split()[1])
def children(of):
    for q in os.listdir("/proc"):
        try:
            if q.isdigit() and int(open(f"/proc/{q}/stat").read().rsplit(")", 1)[1].split()[1]) == of:
                yield int(q)
        except OSError:
            pass
siblings = [i for r in children(server) if r != relay for i in children(r)]
for pid in [init] + siblings:
    d = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
    who = "own init" if pid == init else "sibling init"
    r = err(libc.syscall(424, d, signal.SIGSTOP, None, 0))
    print(who, "pidfd_send_signal:", r, "stopped" if stopped(pid) else "running")
print("kill host pid:", err(libc.kill(init, 0)))
libc.kill(1, signal.SIGKILL)
libc.kill(1, signal.SIGSTOP)
print("own init", "stopped" if stopped(init) else "running")
print("done")
'"#;

/// Runs [`REACH`] on `server` while another client's command runs in a
/// namespace beside it, then a command in the same namespace: what
/// [`REACH`] said, after checking that both inits still served.
fn reach(server: &Running) -> String {
    let addr = server.addr;
    let beside = thread::spawn(move || framed(addr).run("sleep 1.5; echo beside"));
    let seen = within(Duration::from_secs(5), || {
        relays_and_inits(server.child.id()).len() == 1
    });
    let Some((a, b, _)) = in_turn(server.addr, REACH, "echo served") else {
        panic!("never twice in one namespace in 5 tries");
    };
    let said = out(&a);
    eprintln!("{said}{}", String::from_utf8_lossy(&a.stderr));
    let beside = beside.join().unwrap().unwrap();
    assert!(seen, "no command beside");
    assert_eq!(out(&beside), "beside\n", "{beside:?}");
    assert_eq!(out(&b), "served\n", "{b:?}");
    assert!(said.contains("fds: [0, 1, 2, 3]"), "{said}");
    assert!(said.contains("init found: True"), "{said}");
    assert!(said.contains("ptrace 1: Operation not permitted"), "{said}");
    assert!(!said.contains("READ"), "{said}");
    assert!(!said.contains("stopped"), "{said}");
    assert!(
        said.contains("own init pidfd_send_signal: ok running"),
        "{said}"
    );
    assert!(
        said.contains("sibling init pidfd_send_signal: Invalid argument running"),
        "{said}"
    );
    assert!(said.contains("kill host pid: No such process"), "{said}");
    assert!(said.ends_with("own init running\ndone\n"), "{said}");
    said
}

/// The init that serves one command after another is out of each
/// command's reach, for a root server (the command is root in the
/// namespace's user namespace) and for an unprivileged one: the command
/// holds its three pipes only (and the directory it lists), cannot
/// ptrace pid 1 (EPERM), read anything of the init's or the relay's in
/// /proc (EACCES x10, the descriptor list and the namespace link
/// included), signal the init through a pidfd of its /proc directory
/// (EINVAL: it is outside the command's namespace) or by its host pid
/// (ESRCH); its SIGKILL and SIGSTOP to pid 1 are dropped, and the init
/// serves the next command.
#[test]
fn held_the_init_is_out_of_a_commands_reach() {
    if !namespaces_here() || !have("python3") {
        eprintln!("SKIPPED: needs PID namespaces and python3");
        return;
    }
    reach(&shell_server(&[]));
    match common::unprivileged_server(&["--shell", "--max-commands-per-peer", "8"]) {
        Some(server) => drop(reach(&server)),
        None => eprintln!("SKIPPED (unprivileged part): cannot run cmd_server unprivileged"),
    }
}

// ------------------------------------------------------------- races

/// A small generator of pseudo-random numbers (xorshift), seeded from the
/// clock and printed, so that a failing run can be told apart.
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("seed {seed}");
        Random(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What [`race_deadlines`] saw: per connection, how many replies were
/// timed out, the replies that were neither the command's status nor
/// timed out, those killed by SIGKILL without being said to be timed out,
/// the next commands that failed, the sleeps that outlived their command
/// by more than 2 s.
#[derive(Debug, Default)]
struct Race {
    timed_out: usize,
    wrong: Vec<String>,
    killed_untold: usize,
    next_failed: Vec<String>,
    outlived: usize,
}

/// Two connections at once, `each` commands each, that end within a few
/// milliseconds of their 40 ms deadline (20-60 ms), each leaving a
/// background sleep, each followed by `echo next` on its connection.
/// Checks at the end that the server's threads, descriptors and children
/// are back where they were once the namespaces have retired.
fn race_deadlines(each: usize) -> Option<Vec<Race>> {
    if !namespaces_or_skip() {
        return None;
    }
    let tag = "53.51";
    let server = shell_server(&["--timeout-ms", "40"]);
    let pid = server.child.id();
    let before = figures(pid);
    let addr = server.addr;
    let seed = Random::new().0;
    let runs: Vec<_> = (0..2u64)
        .map(|i| {
            thread::spawn(move || {
                let mut random = Random(seed + i * 7919);
                let mut client = framed(addr);
                let mut race = Race::default();
                for _ in 0..each {
                    let ms = 20 + random.below(40);
                    let line =
                        format!("sleep {tag} </dev/null >/dev/null 2>&1 & sleep 0.{ms:03}; exit 7");
                    let reply = client.run(&line).unwrap();
                    match (reply.timed_out, reply.exit, reply.signal) {
                        (true, _, _) => race.timed_out += 1,
                        (false, Some(7), None) => {}
                        (false, None, Some(9)) => race.killed_untold += 1,
                        _ => race.wrong.push(format!("{reply:?}")),
                    }
                    let next = client.run("echo next").unwrap();
                    if out(&next) != "next\n" && !next.timed_out {
                        race.next_failed.push(format!("{next:?}"));
                    }
                    if !within(Duration::from_secs(2), || pids(&["sleep", tag]).is_empty()) {
                        race.outlived += 1;
                    }
                }
                race
            })
        })
        .collect();
    let races: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let left = kill_all(&["sleep", tag]);
    eprintln!("{races:?}");
    assert_eq!(left, 0);
    common::assert_back_to(pid, before, Duration::from_secs(3));
    Some(races)
}

/// 200 commands (two connections at once, 100 each) racing their 40 ms
/// deadline: every reply is the command's own status (exit 7) or its
/// timeout, or (finding 5) a SIGKILL; never another status; the command
/// after each, on the same connection, runs; no sleep outlives its
/// command by more than 2 s; once the namespaces have retired, the
/// server has no child (no zombie) and its threads and descriptors are
/// back where they were. Measured over 13 runs: 50-73 of 100 timed out
/// per connection, 0 other statuses, 0 next commands failed, 0 left; a
/// sleep outlived its command by more than 1 s once (load average 10 on
/// 2 cores), never by 2 s.
#[test]
fn held_timeouts_racing_the_end_leave_nothing_and_no_wrong_status() {
    let Some(races) = race_deadlines(100) else {
        return;
    };
    for race in &races {
        assert_eq!((&race.wrong, &race.next_failed), (&vec![], &vec![]));
        assert_eq!(race.outlived, 0);
    }
}

/// Finding 5 (low; mended): a command was now and then reported
/// killed by SIGKILL but not timed out, when commands race their
/// deadlines on two connections at once. Measured: 0, 1, 2 and 4
/// replies of 400 (`exit: None, signal: Some(9), timed_out: false`) in
/// four runs with the machine loaded (load average ~10 on 2 cores;
/// 240-283 of them timed out); 0 in 12 later runs under less load. Two
/// windows give that reply. (a) In `exec.rs`, the handler's loop reads
/// the watchdog's flag, then reaps; the watchdog sets the flag and kills
/// in between; the loop finds the command ended with its pipes closed and
/// returned without reading the flag again. Mended: a command that died
/// of SIGKILL is told timed out if the flag is set when its status is
/// known. (b) A watchdog that fires as the command ends kills
/// the relay after the init's last answer was read; the namespace went
/// back to the pool, and the other connection's next command could start
/// in it before the SIGKILL had ended the init, and die with it, told
/// killed. Mended: `sandbox::kill` marks the pidfd it kills through (a
/// flag of the open file description every clone shares) and a marked
/// namespace is not put back (unit test
/// `warm::tests::a_namespace_killed_after_its_answer_is_not_reused`). After
/// both: 0 of 400 in this test.
#[test]
fn held_a_watchdog_kill_is_reported_as_a_timeout() {
    let Some(races) = race_deadlines(200) else {
        return;
    };
    let untold: usize = races.iter().map(|r| r.killed_untold).sum();
    assert_eq!(untold, 0, "{races:?}");
}

// ------------------------------------------------------------ bounds

/// Whether the server `pid` has its namespace keeper thread now.
fn keeper(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks.filter_map(Result::ok).any(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.starts_with("socketserver-na"))
            })
        })
        .unwrap_or(false)
}

/// 16 clients at once, 32 commands each (512 in all, the command cap 8):
/// each reply is its command's own output or a "busy" refusal; the
/// server never has more than 8 namespaces (relays) at once; the keeper
/// thread runs while any namespace lives and is gone, with every
/// namespace, 200 ms after the last command (within 2 s here), when the
/// server's threads, descriptors and children are back where they were.
/// Measured: 512 replies, ~35 refused busy, 0 wrong, at most 8 relays
/// and 8 inits, 3 threads and 6 descriptors before and after (the keeper
/// the fourth thread while it ran), gone 0.3 s after the last reply.
#[test]
fn held_many_clients_at_once_stay_within_the_slots_and_come_back() {
    if !namespaces_or_skip() {
        return;
    }
    let tag = "53.61";
    let server = shell_server(&["--max-per-peer", "0"]);
    let pid = server.child.id();
    let before = figures(pid);
    assert!(!keeper(pid), "a keeper before any command");
    let addr = server.addr;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let done = std::sync::Arc::clone(&done);
        thread::spawn(move || {
            let (mut most, mut keeper_seen) = (0, false);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(children_of(pid).len());
                keeper_seen |= keeper(pid);
                thread::sleep(Duration::from_millis(5));
            }
            (most, keeper_seen)
        })
    };
    let clients: Vec<_> = (0..16)
        .map(|c| {
            thread::spawn(move || {
                let mut client = framed(addr);
                let (mut busy, mut wrong) = (0, vec![]);
                for i in 0..32 {
                    let line = match i % 4 {
                        0 => format!("echo {c}.{i}"),
                        1 => format!("sleep 0.02; echo {c}.{i}"),
                        2 => format!("sleep {tag} </dev/null >/dev/null 2>&1 & echo {c}.{i}"),
                        _ => format!("echo {c}.{i}; exit 3"),
                    };
                    match client.run(&line) {
                        Ok(r) if out(&r) == format!("{c}.{i}\n") => {
                            if r.exit != Some(if i % 4 == 3 { 3 } else { 0 }) {
                                wrong.push(format!("{r:?}"));
                            }
                        }
                        Ok(r) => wrong.push(format!("{r:?}")),
                        Err(CommandError::Server(m)) if m.contains("busy") => busy += 1,
                        Err(e) => wrong.push(e.to_string()),
                    }
                }
                (busy, wrong)
            })
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let ended = Instant::now();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (most, keeper_seen) = watch.join().unwrap();
    let gone = within(Duration::from_secs(2), || {
        !keeper(pid) && children_of(pid).is_empty() && figures(pid) == before
    });
    let after = ended.elapsed();
    let left = kill_all(&["sleep", tag]);
    let busy: usize = results.iter().map(|(b, _)| b).sum();
    let wrong: Vec<_> = results.iter().flat_map(|(_, w)| w).collect();
    eprintln!(
        "busy {busy}, wrong {}, at most {most} relays, back after {after:?}",
        wrong.len()
    );
    assert_eq!(wrong, Vec::<&String>::new());
    assert!(most <= 8, "{most} relays at once");
    assert!(keeper_seen);
    assert_eq!(left, 0);
    assert!(
        gone,
        "keeper {}, children {:?}, figures {:?} (before {before:?})",
        keeper(pid),
        children_of(pid),
        figures(pid)
    );
}

/// Whether process `pid` is alive (a zombie is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// The server stopped by SIGINT, SIGTERM or SIGKILL while it has idle
/// warm namespaces and one running command (with a background sleep):
/// within a second of the server's end, no relay, no init and no sleep
/// of the command is alive. Measured: 3 namespaces (2 idle, 1 running),
/// their relays, inits and sleeps gone 1-25 ms after the server's end,
/// for each signal.
#[test]
fn held_the_servers_end_ends_every_warm_namespace() {
    if !namespaces_or_skip() {
        return;
    }
    for (signal, tag) in [("INT", "53.71"), ("TERM", "53.72"), ("KILL", "53.73")] {
        let mut server = shell_server(&[]);
        let pid = server.child.id();
        let _ = idle_namespaces(&server, 3);
        let addr = server.addr;
        let line = format!("sleep {tag} </dev/null >/dev/null 2>&1 & sleep {tag}");
        let _running = thread::spawn(move || framed(addr).run(&line));
        assert!(
            within(Duration::from_secs(5), || pids(&["sleep", tag]).len() == 2),
            "SIG{signal}: the command never ran"
        );
        let namespaces = relays_and_inits(pid);
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status();
        let _ = server.child.wait();
        let ended = Instant::now();
        let gone = within(Duration::from_secs(1), || {
            pids(&["sleep", tag]).is_empty()
                && namespaces.iter().all(|(r, i)| !alive(*r) && !alive(*i))
        });
        let took = ended.elapsed();
        let left = kill_all(&["sleep", tag]);
        eprintln!(
            "SIG{signal}: {} namespaces, gone after {took:?}",
            namespaces.len()
        );
        assert!(namespaces.len() >= 2, "SIG{signal}: {namespaces:?}");
        assert!(
            gone && left == 0,
            "SIG{signal}: {left} sleeps left, {namespaces:?}"
        );
    }
}

// ----------------------------------------------------- odd requests

/// One namespace's init handed, one after another, statuses of every
/// kind and requests at and past its limits, each followed by a command
/// that must run in a namespace still serving: exit codes 0, 1, 127, 128
/// and 255 and `exit 256` (0) come back exactly, as do deaths by signals
/// 1, 6, 9, 15, 33, 34 and 64; 256 arguments and 120,000 arguments run;
/// 140,000 arguments (past the 131,072 strings a request holds), one
/// argument of 200 KB (past the kernel's 128 KiB for one) and a request
/// of 2.1 MiB without a NUL (past the 2 MiB a request holds) are refused
/// with an error, and the next command runs; a script without `#!` runs
/// with /bin/sh.
#[test]
fn held_odd_statuses_and_requests_leave_the_init_serving() {
    if !namespaces_or_skip() {
        return;
    }
    // Lines for `sh -c` (statuses), and lines split into arguments.
    let mut shell = CommandConfig::default().shell(true);
    shell.max_request = 4 << 20;
    let mut split = CommandConfig::default();
    split.max_request = 4 << 20;
    let (shell, _a) = serve_commands(shell);
    let (split, _b) = serve_commands(split);
    let (mut shell, mut split) = (framed(shell), framed(split));
    let check = |client: &mut socketserver::command::Client,
                 line: &str,
                 want: Result<(Option<i32>, Option<i32>), ()>| {
        let got = client.run(line).map(|r| (r.exit, r.signal));
        let shown: String = line.chars().take(40).collect();
        match (&got, want) {
            (Ok(g), Ok(w)) => assert_eq!(*g, w, "{shown}"),
            (Err(CommandError::Server(_)), Err(())) => {}
            _ => panic!("{shown}: {got:?}"),
        }
        let next = client.run("echo next").unwrap();
        assert_eq!(out(&next), "next\n", "after {shown}");
    };
    for code in [0, 1, 127, 128, 255] {
        check(&mut shell, &format!("exit {code}"), Ok((Some(code), None)));
    }
    check(&mut shell, "exit 256", Ok((Some(0), None)));
    for signal in [1, 6, 9, 15, 33, 34, 64] {
        check(
            &mut shell,
            &format!("kill -{signal} $$"),
            Ok((None, Some(signal))),
        );
    }
    let args = |n: usize| vec!["a"; n].join(" ");
    check(
        &mut split,
        &format!("true {}", args(256)),
        Ok((Some(0), None)),
    );
    check(
        &mut split,
        &format!("true {}", args(120_000)),
        Ok((Some(0), None)),
    );
    check(&mut split, &format!("true {}", args(140_000)), Err(()));
    check(
        &mut split,
        &format!("true {}", "a".repeat(200_000)),
        Err(()),
    );
    check(
        &mut split,
        &format!("true {}", "a".repeat(2_200_000)),
        Err(()),
    );
    let dir = scratch("warm", "odd");
    let script = dir.join("no-shebang");
    std::fs::write(&script, "echo script-ran \"$1\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let reply = split.run(&format!("{} arg", script.display())).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out(&reply), "script-ran arg\n", "{reply:?}");
}

// ------------------------------------------- what the init passes on

/// What a command changes in its pid 1, the init (a process of its user,
/// in its namespace): resource limits, nice value, CPUs, scheduling
/// policy and I/O class, and (as root in the namespace's user namespace)
/// its `oom_score_adj` through the server's /proc.
const CHANGE_INIT: &str = r#"prlimit --pid 1 --fsize=0 --nofile=64 --stack=1000000
renice -n 19 -p 1 >/dev/null; taskset -p 1 1 >/dev/null; chrt -i -p 0 1; ionice -c 3 -p 1
python3 -c '
import os
p = int(os.readlink("/proc/self"))
while p > 1:
    st = open(f"/proc/{p}/status").read().splitlines()
    if [l.split()[-1] for l in st if l.startswith("NSpid")][0] == "1":
        open(f"/proc/{p}/oom_score_adj", "w").write("1000")
        open(f"/proc/{p}/coredump_filter", "w").write("0x7f")
        break
    p = int([l.split()[1] for l in st if l.startswith("PPid")][0])
' 2>/dev/null
prlimit --pid 1 --fsize --output SOFT --noheadings"#;

/// What a command inherited: the same, as it sees them in itself.
const INHERITED: &str = "ulimit -f; ulimit -n; ulimit -s; nice; taskset -p $$ | sed 's/.*: //'; \
     chrt -p $$ | sed 's/.*: //'; ionice -p $$; cat /proc/self/oom_score_adj /proc/self/coredump_filter";

/// Finding 6 (medium, mended): a command changes what every later command
/// in its namespace inherits, through its pid 1: `prlimit`, `renice`,
/// `taskset`, `chrt` and `ionice` take pids of the caller's namespace, and
/// a process of the same user may lower another's limits and priorities
/// without being able to read or trace it (a root server's command may
/// also raise the init's `oom_score_adj`). The next command, another
/// client's, ran with a file size limit of 0 (its first write to a file
/// killed by SIGXFSZ), 64 descriptors, a 976 KiB stack, nice 19, one CPU,
/// `SCHED_IDLE` and the idle I/O class, for as long as commands kept the
/// namespace warm (a lowered hard limit cannot be raised again from
/// inside), and `oom_score_adj` 1000: measured on a root server (its
/// `coredump_filter`, which `exec` keeps, is checked too). On an
/// unprivileged one (`nobody`), the next command inherited the three
/// limits (0, 64, 976 KiB); the nice value, CPUs, policy and I/O class
/// were not changed there. Mended: the init reads what a
/// command inherits when the namespace starts and again before each
/// command, and ends (the command then runs in a new namespace) if it
/// changed. Measured after: the next command's values are a fresh one's.
#[test]
fn held_what_a_command_changes_in_its_init_is_not_inherited() {
    if !namespaces_here() || !have("prlimit") || !have("chrt") || !have("ionice") {
        eprintln!("SKIPPED: needs PID namespaces, prlimit, chrt and ionice");
        return;
    }
    let check = |server: &Running| {
        let mut client = framed(server.addr);
        let fresh = out(&client.run(INHERITED).unwrap());
        for _ in 0..3 {
            let changed = client.run(&format!("{PIDNS}; {CHANGE_INIT}")).unwrap();
            let next = framed(server.addr)
                .run(&format!("{PIDNS}; {INHERITED}"))
                .unwrap();
            let (changed, next) = (out(&changed), out(&next));
            eprintln!("fresh:\n{fresh}changed:\n{changed}next:\n{next}");
            let set = changed.lines().last().map(str::trim);
            assert_eq!(set, Some("0"), "the limit was not set: {changed}");
            let inherited = next.split_once('\n').map_or("", |(_, rest)| rest);
            assert_eq!(inherited, fresh);
        }
    };
    check(&shell_server(&[]));
    match common::unprivileged_server(&["--shell", "--max-commands-per-peer", "8"]) {
        Some(server) => check(&server),
        None => eprintln!("SKIPPED (unprivileged part): cannot run cmd_server unprivileged"),
    }
}

/// 500 commands, two connections at once, then the server idle: within a
/// second of the last reply (200 ms of idleness, up to 200 more before
/// the keeper looks, and a margin) the keeper thread and every namespace
/// are gone and the server's threads, descriptors and children are what
/// they were before the first command; the next command brings the
/// keeper back, and it goes again. Measured: 500 commands in 0.77 s; 2
/// threads and 9 descriptors before, 4 and 14 right after the last
/// (the keeper, a handler, namespaces' sockets), back 0.35 s and 0.52 s
/// after it.
#[test]
fn held_after_500_commands_the_server_comes_back_to_its_baseline() {
    if !namespaces_or_skip() {
        return;
    }
    let server = cmd_server(&[]);
    let pid = server.child.id();
    let before = figures(pid);
    let addr = server.addr;
    let back = || {
        let idle = Instant::now();
        let back = within(Duration::from_secs(1), || {
            !keeper(pid) && children_of(pid).is_empty() && figures(pid) == before
        });
        (back, idle.elapsed())
    };
    let started = Instant::now();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut client = framed(addr);
                (0..250)
                    .filter(|_| client.run("true").is_ok_and(|r| r.exit == Some(0)))
                    .count()
            })
        })
        .collect();
    let ran: usize = runs.into_iter().map(|r| r.join().unwrap()).sum();
    let took = started.elapsed();
    let during = figures(pid);
    let first = back();
    let again = framed(addr).run("true").unwrap();
    let kept = keeper(pid);
    let second = back();
    eprintln!(
        "{ran} commands in {took:?}; before {before:?}, after them {during:?}; back after {:?}, {:?}",
        first.1, second.1
    );
    assert_eq!(ran, 500);
    assert!(
        first.0,
        "not back: {:?}, keeper {}",
        figures(pid),
        keeper(pid)
    );
    assert_eq!(again.exit, Some(0));
    assert!(kept, "no keeper for the next command");
    assert!(second.0, "not back again: {:?}", figures(pid));
}

/// A fork bomb under its own process limit (`prlimit --nproc=100`, on an
/// unprivileged server: root's is not enforced; if `prlimit` fails, no
/// bomb), forking as fast as the init kills: the reply comes, no process
/// of it is left, and the next command runs. Measured: reply 0.8 s after
/// the bomb started (0.5 s of it the command's own sleep), 0 left.
#[test]
fn held_a_bounded_fork_bomb_ends_before_the_next_command() {
    if !namespaces_here() || !have("perl") || !have("prlimit") {
        eprintln!("SKIPPED: needs PID namespaces, perl and prlimit");
        return;
    }
    let Some(server) = common::unprivileged_server(&["--shell", "--max-commands-per-peer", "8"])
    else {
        eprintln!("SKIPPED: cannot run cmd_server unprivileged");
        return;
    };
    let bomb = ["perl", "-e", "fork while 1 # 53.81"];
    let mut client = framed(server.addr);
    let started = Instant::now();
    let reply = client
        .run("prlimit --nproc=100:100 perl -e 'fork while 1 # 53.81' </dev/null >/dev/null 2>&1 & sleep 0.5; echo bombed")
        .unwrap();
    let took = started.elapsed();
    let left = pids(&bomb).len();
    let next = client.run("echo next").unwrap();
    let killed = kill_all(&bomb);
    eprintln!("reply after {took:?}, {left} left");
    assert_eq!(out(&reply), "bombed\n", "{reply:?}");
    assert_eq!((left, killed), (0, 0));
    assert_eq!(out(&next), "next\n");
}

/// A command, the init's own child (`exec`), plants a key in its session
/// keyring and hands that keyring to its parent, the init
/// (`KEYCTL_SESSION_TO_PARENT`: the same user, and a parent that is not
/// the machine's pid 1).
const PLANT_KEY: &str = r#"exec python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
session = libc.syscall(250, 1, None)
libc.syscall(248, b"user", b"socketserver-planted", b"from-a", 6, -3)
r = libc.syscall(250, 18)
print(session, "to parent:", "ok" if r >= 0 else os.strerror(ctypes.get_errno()))
'"#;
/// The next command's session keyring, and whether the key is in it.
const FIND_KEY: &str = r#"python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(250, 10, -3, b"user", b"socketserver-planted", 0)
print(libc.syscall(250, 0, -3, 0), "key:", "FOUND" if r >= 0 else os.strerror(ctypes.get_errno()))
'"#;

/// Finding 7 (low, mended): a command handed its session keyring to the
/// init (see [`PLANT_KEY`]), and every later command in the namespace,
/// another client's, inherited it: the key planted in it, and whatever
/// the later commands put in their session keyring for the next command
/// of the planter to read. Measured: 3 of 3 next commands had the
/// planter's session keyring and found the key, on a root server and on
/// an unprivileged one. Mended: each command joins a session keyring of
/// its own before it executes (so it no longer sees the server's either).
/// Measured after: 0 of 3, a keyring of its own each time.
#[test]
fn held_a_session_keyring_handed_to_the_init_reaches_no_next_command() {
    if !namespaces_here() || !have("python3") {
        eprintln!("SKIPPED: needs PID namespaces and python3");
        return;
    }
    let check = |server: &Running| {
        for _ in 0..3 {
            let planted = out(&framed(server.addr).run(PLANT_KEY).unwrap());
            let found = out(&framed(server.addr).run(FIND_KEY).unwrap());
            eprintln!("planted: {planted}found: {found}");
            assert!(planted.ends_with("to parent: ok\n"), "{planted}");
            let planted_in = planted.split_whitespace().next();
            assert_ne!(found.split_whitespace().next(), planted_in, "{found}");
            assert!(
                found.ends_with("key: Required key not available\n"),
                "{found}"
            );
        }
    };
    check(&shell_server(&[]));
    match common::unprivileged_server(&["--shell", "--max-commands-per-peer", "8"]) {
        Some(server) => check(&server),
        None => eprintln!("SKIPPED (unprivileged part): cannot run cmd_server unprivileged"),
    }
}
