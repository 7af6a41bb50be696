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
//! bounded and every wait has a deadline. Part two,
//! `tests/command_warm_init.rs`, holds the init seen from outside, the
//! races and the bounds (findings 3, 4 and 5); the helpers both use are
//! in `tests/common/warm.rs`.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::warm::{PIDNS, keeper, out, shell_server};
use common::{
    Running, children_of, cmd_server, figures, framed, have, is_root, kill_all, namespaces_here,
    namespaces_or_skip, pids, scratch, serve_commands, within,
};
use socketserver::command::{CommandConfig, CommandError};

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
