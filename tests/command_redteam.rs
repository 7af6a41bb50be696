//! A red team of issue 18's work as merged (main at 954fec1): the PID
//! namespaces (relay, init, command), the HTTP refusal, the token's reach.
//!
//! Each finding is a test that failed on that code, committed `#[ignore]`d
//! with its number and un-ignored with its fix. Fixed: 1 (the command's
//! namespace sits in a user namespace, root's too, and the relay and the
//! init are not dumpable), 2 (descriptors the server inherited are closed
//! on exec), 3 (likewise: no core), 4 and 5 (the HTTP filter knows every
//! version and a request line's start), 6 (a thread that cannot start
//! fails the command, watchdog first), 7 (an IPC namespace beside the PID
//! namespace). Finding 8 stays ignored: it is a limit of the scan, which
//! holds only where no namespace can be had (docs/SECURITY.md). Each
//! thing that held is a test that passes. Servers are `cmd_server` processes (or a handler in this
//! process), on loopback only; every escaping process has arguments of its
//! own (`sleep 47.11`), so a test counts exactly what it started and kills
//! by pid whatever it finds left before it fails. Every loop is bounded
//! and every wait has a deadline.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_back_to, children_of, cmd_server, example, figures, framed, have, is_root, kill_all,
    namespaces_here, namespaces_or_skip, pids, scratch, serve_commands, start_server, within,
};
use socketserver::command::{self, Client, CommandConfig, CommandError, Protocol};

// ------------------------------------------------------------- findings

/// Finding 1 (high where the server runs as root): a command of a root
/// server attaches to its namespace's init (pid 1) with ptrace, which
/// `CAP_SYS_PTRACE` allows whatever the init's dumpable flag says, clears
/// the init's `PR_SET_PDEATHSIG` and makes it `exec` a long sleep. The
/// namespace then lives on: the watchdog's SIGKILL to the relay no longer
/// reaches the init, the kernel ends nothing (its init is alive), and every
/// process in it outlives the command's timeout and the server, adopted
/// by the system's init. Measured: `sleep 77.7` (the former init) and a
/// background `sleep 88.8` still running after the 3 s timeout and after
/// the server was gone. gdb stands in for a few lines of ptrace.
///
/// Unprivileged (a user namespace) this is refused: the init holds every
/// capability of its user namespace and the command none, so the kernel
/// refuses the attach (EPERM; see the held test below).
#[test]
fn finding_1_a_root_command_takes_over_its_init_and_outlives_the_server() {
    if !is_root() || !have("gdb") || !have("unshare") || !namespaces_here() {
        eprintln!("SKIPPED: needs root, gdb, unshare and PID namespaces");
        return;
    }
    let (init_tag, bg_tag) = ("47.11", "47.12");
    let dir = scratch("redteam", "finding1");
    let script = dir.join("escape.sh");
    // /proc is the server's; a private mount of a fresh proc shows this
    // namespace, so gdb's pid 1 is the init for ptrace and /proc alike.
    std::fs::write(
        &script,
        format!(
            "sleep {bg_tag} </dev/null >/dev/null 2>&1 &\n\
             unshare -m sh -c 'mount -t proc proc /proc && exec timeout 6 gdb -p 1 -batch \
             -ex \"call (int)prctl(1, 0, 0, 0, 0)\" \
             -ex \"call (int)execl(\\\"/bin/sleep\\\", \\\"sleep\\\", \\\"{init_tag}\\\", (char*)0)\"' \
             </dev/null >/dev/null 2>&1\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let outlived_timeout = {
        let server = cmd_server(&["--timeout-ms", "8000"]);
        let reply = framed(server.addr).run(&format!("sh {}", script.display()));
        eprintln!("reply after {:?}: {reply:?}", started.elapsed());
        // The timeout is 8 s (gdb takes seconds to load a debug build); a
        // second past the reply for the kernel.
        thread::sleep(Duration::from_secs(1));
        pids(&["sleep", init_tag]).len() + pids(&["sleep", bg_tag]).len()
    }; // the server is killed (SIGKILL) here
    thread::sleep(Duration::from_secs(1));
    let outlived_server = pids(&["sleep", init_tag]).len() + pids(&["sleep", bg_tag]).len();
    let killed = kill_all(&["sleep", init_tag]) + kill_all(&["sleep", bg_tag]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        (outlived_timeout, outlived_server),
        (0, 0),
        "sleeps alive 1 s past the reply, and 1 s past the server's end ({killed} killed now)"
    );
}

/// Finding 2 (medium): every descriptor the server inherited without
/// close-on-exec (a shell's, a supervisor's pipe or socket, an inherited
/// listening socket) is handed on to every command of every client: the
/// relay and the init close all theirs, but the command's process keeps
/// what `std` does not close (it closes nothing it did not open). Seen on
/// this machine: `cmd_server` started from a shell had fds 10 and 251 (a
/// pipe of the shell's parent) and each command had them too. Here the
/// server is given fd 7 open on a file, and a command writes into it.
#[test]
fn finding_2_commands_inherit_the_descriptors_the_server_inherited() {
    let dir = scratch("redteam", "finding2");
    let leak = dir.join("fd7");
    std::fs::write(&leak, b"").unwrap();
    let cmd_server = example("cmd_server").get_program().to_owned();
    // A shell opens fd 7 (no close-on-exec) and executes the server, as
    // any parent that leaks a descriptor does.
    let mut command = Command::new("sh");
    command
        .args(["-c", "exec 7>>\"$1\"; shift; exec \"$@\"", "sh"])
        .arg(&leak)
        .arg(cmd_server)
        .arg("127.0.0.1:0")
        .process_group(0);
    let server = start_server(command);
    let reply = framed(server.addr)
        .run("sh -c 'echo written-by-a-command >&7 && ls -l /proc/self/fd'")
        .unwrap();
    drop(server);
    let written = std::fs::read_to_string(&leak).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        written,
        "",
        "the command wrote to the server's fd 7; its descriptors: {}",
        String::from_utf8_lossy(&reply.stdout)
    );
}

/// Finding 3 (low): a command that ends by a signal that dumps core
/// (SIGSEGV, SIGQUIT, SIGABRT...) makes the relay dump core too: the relay
/// ends "as the command did" by raising the same signal, and it is a copy
/// of the server's memory (other clients' requests and output in flight).
/// With a core size limit above 0 (`ulimit -c`), each such command writes
/// one into the server's working directory, as the server's user, even
/// when the command itself set `ulimit -c 0`: measured 3.4-7.9 MB each
/// ("from '/tmp/rt/cmd_server 127.0.0.1:0'"). With a token the server is
/// non-dumpable and nothing is written; without one, nothing stops it.
#[test]
fn finding_3_a_relay_dumps_a_core_of_the_servers_memory() {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('|') || pattern.contains('/') {
        eprintln!("SKIPPED: cores go to {pattern:?}, not the working directory");
        return;
    }
    let dir = scratch("redteam", "finding3");
    let cmd_server = example("cmd_server").get_program().to_owned();
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -c unlimited && exec \"$@\"", "sh"])
        .arg(cmd_server)
        .arg("127.0.0.1:0")
        .current_dir(&dir)
        .process_group(0);
    let server = start_server(command);
    let reply = framed(server.addr)
        .run("sh -c 'ulimit -c 0; kill -SEGV $$'")
        .unwrap();
    assert_eq!(reply.signal, Some(11));
    thread::sleep(Duration::from_millis(500));
    drop(server);
    let cores: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            Some((
                e.file_name().to_string_lossy().into(),
                e.metadata().ok()?.len(),
            ))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        cores.is_empty(),
        "written in the server's directory: {cores:?}"
    );
}

/// The pids of every process of user `uid`.
fn processes_of(uid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let real = status.lines().find(|l| l.starts_with("Uid:"))?;
            (real.split_whitespace().nth(1)? == uid.to_string()).then_some(pid)
        })
        .collect()
}

/// Finding 6 (high where a per-user or per-service task limit applies:
/// `ulimit -u`, systemd's `TasksMax`, a container's pids limit): a command
/// that fills its user's process limit and then frees a few slots makes
/// the next command's thread spawns fail, and `exec::run` does not survive
/// that: `thread::scope`'s `spawn` panics. With 5 slots free the pipe
/// reader starts and the watchdog does not; the scope then waits for the
/// reader, the reader for the command's pipes, and the command runs
/// without a deadline, its slot and connection held, until it ends by
/// itself (measured: `sleep 9.5` ran 9.5 s under a 4 s timeout; the log
/// says "handler panicked: failed to spawn thread"). With 4 free, the
/// reader fails, the unwinding drops the relay's `Child` unreaped, and it
/// stays a zombie of the server for good (1 per attempt). With 3 free, the
/// relay's fork fails and is reported as "socket timed out" (EAGAIN read
/// as a timeout). The attacker needs only a loop over how many it frees.
#[test]
fn finding_6_thread_exhaustion_unbounds_the_next_command() {
    const UID: u32 = 4242;
    if !is_root() || !have("prlimit") || !have("setpriv") || !have("perl") || !namespaces_here() {
        eprintln!("SKIPPED: needs root (to run as an unused uid), prlimit, setpriv, perl");
        return;
    }
    if !processes_of(UID).is_empty() {
        eprintln!("SKIPPED: uid {UID} is in use here");
        return;
    }
    let exe = example("cmd_server").get_program().to_owned();
    let dir = scratch("redteam", "finding6");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut outcomes = Vec::new();
    for free in 3..=7 {
        let ready = dir.join(format!("ready{free}"));
        let mut command = Command::new("prlimit");
        command
            .args(["--nproc=40:40", "setpriv", "--reuid=4242", "--regid=4242"])
            .arg("--clear-groups")
            .arg(&exe)
            .args(["127.0.0.1:0", "--timeout-ms", "3000"])
            .process_group(0);
        let server = start_server(command);
        let pid = server.child.id();
        let addr = server.addr;
        let fill = format!(
            "perl -e 'my ($k, $r) = @ARGV; my @kids; while (1) {{ my $p = fork(); last unless defined $p; \
             if (!$p) {{ sleep 60; exit 0 }} push @kids, $p }} my $n = @kids; \
             for (1..$k) {{ my $p = shift @kids; kill 9, $p; waitpid $p, 0 }} \
             open my $f, q(>), $r; print $f qq($n\\n); close $f; sleep 60' {free} {}",
            ready.display()
        );
        let attacker = thread::spawn(move || framed(addr).run(&fill));
        let filled = within(Duration::from_secs(5), || {
            std::fs::read_to_string(&ready).is_ok_and(|s| s.ends_with('\n'))
        });
        let started = Instant::now();
        let victim = Client::connect(addr, Protocol::Framed).map(|mut c| c.run("sleep 7.25"));
        let took = started.elapsed();
        let _ = attacker.join();
        thread::sleep(Duration::from_secs(1));
        let zombies = children_of(pid).iter().filter(|(_, s)| *s == 'Z').count();
        outcomes.push((free, filled, took, zombies, format!("{victim:?}")));
        drop(server);
        for pid in processes_of(UID) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        within(Duration::from_secs(2), || processes_of(UID).is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let bad: Vec<_> = outcomes
        .iter()
        .filter(|(_, _, took, zombies, _)| *took > Duration::from_secs(5) || *zombies > 0)
        .collect();
    assert!(
        bad.is_empty(),
        "(free slots, filled, victim's reply after, zombies left, reply) past a 3 s timeout: {bad:#?}"
    );
}

/// The ids of System V shared memory segments, from the kernel's list.
fn shm_ids() -> Vec<String> {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// Finding 7 (medium: memory that outlives the command, the timeout and
/// the server): the namespace ends processes, not what they leave in the
/// machine's shared namespaces. A command creates System V shared memory
/// segments (`shmget(IPC_PRIVATE)`, touch, detach, exit) and they stay,
/// charged to nobody running: measured 4 x 64 MiB from one command as
/// `nobody` (`Shmem` 9.8 -> 272 MiB, still there after the server
/// stopped), and every client may do it again (`kernel.shmall` is
/// effectively unlimited). `/dev/shm` and `/tmp` files alike; the IPC part
/// is one flag away (`CLONE_NEWIPC` beside `CLONE_NEWPID`: the segments
/// then go with the namespace), the rest is for the README's "bounds
/// lifetimes, nothing more". Here: one 1 MiB segment.
#[test]
fn finding_7_shared_memory_outlives_the_command() {
    if !namespaces_here() || !have("perl") {
        eprintln!("SKIPPED: needs PID namespaces and perl");
        return;
    }
    let before = shm_ids();
    let server = cmd_server(&[]);
    let reply = framed(server.addr)
        .run("perl -e 'my $id = shmget(0, 1 << 20, 0600 | 01000); shmwrite($id, q(x) x 4096, 0, 4096); print qq($id\\n)'")
        .unwrap();
    drop(server);
    let id = String::from_utf8_lossy(&reply.stdout).trim().to_owned();
    // Only the command's own segment is looked for and removed.
    let left: Vec<String> = shm_ids()
        .into_iter()
        .filter(|s| *s == id && !before.contains(s))
        .collect();
    for id in &left {
        let _ = Command::new("ipcrm").args(["-m", id]).status();
    }
    assert!(
        !id.is_empty() && left.is_empty(),
        "segment {id:?} created by the command is still there: {left:?} (removed now)"
    );
}

/// Finding 8 (medium, where the scan is in force: no unprivileged user
/// namespaces, as on Ubuntu 24.04's default AppArmor policy, or
/// `--containment scan`): a process outlives its command by wearing
/// another running command's marker. The markers are in each command's
/// environment, readable by every process of the same user; the sweep
/// spares a server's orphan that carries any running command's marker, and
/// the end of its own command does not look for other markers. So command
/// B copies anchor command A's `SOCKETSERVER_COMMAND`, starts `setsid -f
/// env -i MARKER sleep`, and ends: B's reply came in 70 ms, the sleep lived
/// on ~3 s until A ended (A's own scans had registered it: it dies with A).
#[test]
#[ignore = "finding 8: under the scan, a process that carries another running command's marker outlives its own command"]
fn finding_8_under_the_scan_a_borrowed_marker_outlives_the_command() {
    if !have("pgrep") || !have("setsid") {
        eprintln!("SKIPPED: needs pgrep and setsid");
        return;
    }
    let (anchor, escapee) = ("2.051", "48.61");
    let server = cmd_server(&["--containment", "scan"]);
    let addr = server.addr;
    let a = thread::spawn(move || framed(addr).run(&format!("sleep {anchor}")));
    assert!(
        within(Duration::from_secs(5), || pids(&["sleep", anchor]).len()
            == 1),
        "the anchor never ran"
    );
    let line = format!(
        "sh -c 'A=$(pgrep -x -f \"sleep {anchor}\"); \
         M=$(tr \"\\0\" \"\\n\" < /proc/$A/environ | grep ^SOCKETSERVER_COMMAND=); \
         setsid -f env -i \"$M\" sleep {escapee} </dev/null >/dev/null 2>&1; sleep 0.05'"
    );
    let reply = framed(addr).run(&line).unwrap();
    assert_eq!(reply.exit, Some(0), "{reply:?}");
    let gone = within(Duration::from_millis(500), || {
        pids(&["sleep", escapee]).is_empty()
    });
    let _ = a.join();
    let killed = kill_all(&["sleep", escapee]);
    assert!(
        gone,
        "the escapee outlived its command's reply by 500 ms ({killed} killed now)"
    );
}

/// Sends `parts` to `addr` as raw seed-form writes, `pause` apart, and
/// returns the reply's first bytes.
fn raw_request(addr: SocketAddr, parts: &[&[u8]], pause: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            thread::sleep(pause);
        }
        stream.write_all(part).unwrap();
    }
    let mut reply = vec![0u8; 512];
    let n = stream.read(&mut reply).unwrap_or(0);
    reply.truncate(n);
    reply
}

/// Whether `marker` appears within a second (a shell line runs async to
/// the reply only if the reply is an error; a command's reply comes after).
fn created(marker: &Path) -> bool {
    within(Duration::from_millis(300), || marker.exists())
}

/// Finding 4 (low): request lines that are HTTP by their shape but not by
/// the filter's list run as commands: a version other than 1.0, 1.1 and 2
/// (`HTTP/1.2`, `HTTP/3`), or a request line with a space after the
/// version, when lines end in LF alone. A browser always ends its lines in
/// CR LF, which the filter refuses, so this is what other HTTP speakers
/// (scripts, proxies, SSRF through tools) can send: with `--shell`, each
/// created its marker file.
#[test]
fn finding_4_request_lines_of_other_http_versions_run() {
    let (addr, _server) = serve_commands(CommandConfig::default().shell(true));
    let dir = scratch("redteam", "finding4");
    let mut ran = Vec::new();
    for (name, line) in [
        ("http12", "GET /;touch$IFS{m}; HTTP/1.2\n"),
        ("http3", "GET /;touch$IFS{m}; HTTP/3\n"),
        ("trailing space", "GET /;touch$IFS{m}; HTTP/1.1 \n"),
    ] {
        let marker = dir.join(name.replace(' ', "_"));
        let bytes = line.replace("{m}", &marker.display().to_string());
        raw_request(addr, &[bytes.as_bytes()], Duration::ZERO);
        if created(&marker) {
            ran.push(name);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ran.is_empty(), "ran as shell lines: {ran:?}");
}

/// Finding 5 (low, a limit to document): the seed's form takes one read
/// as one request, and the filter sees only that read. An HTTP request
/// whose request line arrives in two writes (`GET /;touch$IFS/x;`, then
/// ` HTTP/1.1` CR LF and the headers 200 ms later) runs its first part. A
/// browser sends its request line and headers in one write (checked: even
/// 65-200 KB requests in one write were refused, 60 of 60), so this takes
/// a client that splits its writes.
#[test]
fn finding_5_an_http_request_split_across_writes_runs_its_first_part() {
    let (addr, _server) = serve_commands(CommandConfig::default().shell(true));
    let dir = scratch("redteam", "finding5");
    let marker = dir.join("split");
    let first = format!("GET /;touch$IFS{};", marker.display());
    let rest = format!(" HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    raw_request(
        addr,
        &[first.as_bytes(), rest.as_bytes()],
        Duration::from_millis(200),
    );
    let ran = created(&marker);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ran, "the first write ran as a shell line");
}

// ---------------------------------------------------------- what held

/// What a command tries on its relay and its init: ptrace its pid 1, read
/// their environment, memory and maps through the server's /proc.
const REACH: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, 1, 0, 0)
print("attach 1:", "ok" if r == 0 else os.strerror(ctypes.get_errno()))
for p in os.listdir("/proc"):
    try:
        status = open(f"/proc/{p}/status").read()
        nspid = [l.split()[1:] for l in status.splitlines() if l.startswith("NSpid")][0]
        if nspid[-1] != "1" or len(nspid) != 2 or b"cmd_server" not in open(f"/proc/{p}/cmdline", "rb").read():
            continue
        ppid = [l.split()[1] for l in status.splitlines() if l.startswith("PPid")][0]
    except (OSError, IndexError):
        continue
    for who, pid in (("init", p), ("relay", ppid)):
        for f in ("environ", "mem", "maps"):
            try:
                open(f"/proc/{pid}/{f}", "rb").read(16)
                print(who, f, "READ")
            except OSError as e:
                print(who, f, e.strerror)
sys.stdout.flush()
time.sleep(1)  # the test looks at the relay and the init meanwhile
"#;

/// The relay and the init, copies of the server's memory, hold no
/// client's descriptor (the relay a pipe, the init its socket to the
/// server and five /proc files of its own); a command of an unprivileged
/// server can neither ptrace its init nor read the relay's or the init's
/// environment, memory or maps (the init holds every capability of the
/// user namespace, the command none). Measured: 1 descriptor and 6,
/// EPERM, EACCES x6.
#[test]
fn held_relay_and_init_hold_no_clients_descriptor_and_are_out_of_a_commands_reach() {
    if !namespaces_here() || !have("python3") {
        eprintln!("SKIPPED: needs PID namespaces and python3");
        return;
    }
    let Some(server) = common::unprivileged_server(&["--timeout-ms", "10000"]) else {
        eprintln!("SKIPPED: cannot run cmd_server unprivileged here");
        return;
    };
    // (setpriv executes the server: the child is the server itself.)
    let server_pid = server.child.id();
    let addr = server.addr;
    let line = format!("python3 -c '{REACH}'");
    let client = thread::spawn(move || framed(addr).run(&line));
    // While it runs: the relay (the server's child) and the init (the
    // relay's), their descriptors as the test sees them.
    let mut fds = Vec::new();
    let seen = within(Duration::from_secs(5), || {
        fds.clear();
        for (relay, _) in children_of(server_pid) {
            for (init, _) in children_of(relay) {
                for pid in [relay, init] {
                    let links: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                        .map(|d| {
                            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                                .map(|l| l.display().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    fds.push(links);
                }
            }
        }
        fds.len() == 2
    });
    let reply = client.join().unwrap().unwrap();
    let out = String::from_utf8_lossy(&reply.stdout).into_owned();
    assert!(
        seen,
        "no relay and init seen; {fds:?}; the command said {out}"
    );
    // The relay: its pipe from the init. The init: its socket to the
    // server, on which its requests come (a warm namespace's), and the
    // /proc files it reads before each command (what its commands
    // inherit: its own limits, oom_score_adj, coredump_filter, cgroup,
    // its namespace's pid_max), none a client's.
    assert_eq!(fds.len(), 2, "{fds:?}");
    assert!(
        fds[0].len() == 1 && fds[0][0].starts_with("pipe:"),
        "{fds:?}"
    );
    let sockets = fds[1].iter().filter(|l| l.starts_with("socket:")).count();
    let proc_files = fds[1].iter().filter(|l| l.starts_with("/proc/")).count();
    assert_eq!((sockets, proc_files, fds[1].len()), (1, 5, 6), "{fds:?}");
    assert!(out.contains("attach 1: Operation not permitted"), "{out}");
    assert!(!out.contains("READ"), "{out}");
    assert!(out.matches("Permission denied").count() >= 6, "{out}");
}

/// 400 processes (a quarter in sessions of their own, a quarter
/// double-forked into new sessions, a quarter stopped with SIGSTOP, all
/// with cleared environments and closed streams): the reply comes, and a
/// second later none is left, no zombie of the server, and its threads and
/// descriptors are back where they were. Measured with 1000 processes:
/// reply in 1.7 s, 0 left, 0 zombies, 2 threads and 6 fds before and after.
#[test]
fn held_a_storm_of_escapes_ends_with_its_command() {
    if !namespaces_here() || !have("perl") {
        eprintln!("SKIPPED: needs PID namespaces and perl");
        return;
    }
    let tag = "48.21";
    let server = cmd_server(&["--timeout-ms", "20000"]);
    let pid = server.child.id();
    let before = figures(pid);
    let storm = format!(
        "perl -e 'use POSIX qw(setsid); for my $i (1..400) {{ my $p = fork(); die unless defined $p; \
         if ($p == 0) {{ if ($i % 4 == 0) {{ setsid() }} if ($i % 4 == 1) {{ exit 0 if fork(); setsid(); exit 0 if fork() }} \
         if ($i % 4 == 2) {{ setpgrp(0, 0); kill q(STOP), $$ }} close STDIN; close STDOUT; close STDERR; %ENV = (); \
         exec q(sleep), q({tag}) }} }} print qq(forked\\n)'"
    );
    let started = Instant::now();
    let reply = framed(server.addr).run(&storm).unwrap();
    let took = started.elapsed();
    assert_eq!(reply.stdout, b"forked\n", "{reply:?}");
    let gone = within(Duration::from_secs(1), || pids(&["sleep", tag]).is_empty());
    let left = kill_all(&["sleep", tag]);
    assert!(gone && left == 0, "{left} left after {took:?}");
    assert_back_to(pid, before, Duration::from_secs(1));
    assert!(took < Duration::from_secs(15), "reply after {took:?}");
}

/// Commands that end around their deadline (the watchdog's kill racing
/// the command's own end): 30 of them, each leaving a background sleep;
/// none is left, and the server's threads, descriptors and children are
/// back where they were. Measured with 60: 58 timed out, 2 ended, 0 left.
#[test]
fn held_commands_racing_their_deadline_leave_nothing() {
    if !namespaces_or_skip() {
        return;
    }
    let tag = "48.31";
    let server = cmd_server(&["--timeout-ms", "200"]);
    let pid = server.child.id();
    let before = figures(pid);
    let mut client = framed(server.addr);
    let (mut ended, mut timed_out) = (0, 0);
    for i in 0..30 {
        let line = format!("sh -c 'sleep {tag} & sleep 0.{:03}'", 185 + i % 30);
        let reply = client.run(&line).unwrap();
        match reply.timed_out {
            true => timed_out += 1,
            false => ended += 1,
        }
        assert!(
            within(Duration::from_secs(1), || pids(&["sleep", tag]).is_empty()),
            "command {i}: its background sleep outlived it"
        );
    }
    eprintln!("{ended} ended, {timed_out} timed out");
    drop(client);
    assert_back_to(pid, before, Duration::from_secs(2));
}

/// Signals a command sends to its pid 1 (the init, which has the server's
/// handlers for SIGINT, SIGTERM and SIGHUP) end nothing: the command goes
/// on, twice each.
#[test]
fn held_signals_to_the_init_from_inside_change_nothing() {
    if !namespaces_or_skip() {
        return;
    }
    let server = cmd_server(&[]);
    let mut client = framed(server.addr);
    for signal in ["INT", "TERM", "HUP", "USR1", "KILL", "STOP"] {
        let line =
            format!("sh -c 'kill -{signal} 1; sleep 0.1; kill -{signal} 1; sleep 0.1; echo alive'");
        let reply = client.run(&line).unwrap();
        assert_eq!(reply.stdout, b"alive\n", "SIG{signal}: {reply:?}");
        assert_eq!(reply.exit, Some(0), "SIG{signal}");
    }
}

/// A command that makes namespaces of its own (a user and PID namespace
/// with its own /proc, where it is root) is still inside the command's:
/// its processes end with the command.
#[test]
fn held_nested_namespaces_end_with_the_command() {
    if !namespaces_here() || !have("unshare") {
        eprintln!("SKIPPED: needs PID namespaces and unshare");
        return;
    }
    let tag = "48.41";
    let server = cmd_server(&[]);
    let reply = framed(server.addr)
        .run(&format!(
            "sh -c 'unshare -Urpf --mount-proc sleep {tag} </dev/null >/dev/null 2>&1 & sleep 0.3; echo started'"
        ))
        .unwrap();
    assert_eq!(reply.stdout, b"started\n");
    let gone = within(Duration::from_secs(1), || pids(&["sleep", tag]).is_empty());
    let left = kill_all(&["sleep", tag]);
    assert!(gone && left == 0, "{left} left");
}

/// What browsers (and tools like them) send, in `--shell` mode: lowercase,
/// LF line ends, the HTTP/2 preface, and a request of 90 KB in one write
/// (longer than the request limit, its CR LF past the first read) are all
/// refused, and no marker appears.
#[test]
fn held_browser_shaped_requests_are_refused() {
    let (addr, _server) = serve_commands(CommandConfig::default().shell(true));
    let dir = scratch("redteam", "held-http");
    let headers = "Host: 127.0.0.1\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n";
    for (name, request) in [
        (
            "lower",
            format!("get /;touch$IFS{{m}}; http/1.1\r\n{headers}"),
        ),
        ("lf", "GET /;touch$IFS{m}; HTTP/1.1\nHost: x\n\n".to_owned()),
        ("h2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned()),
        (
            "long",
            format!(
                "GET /;touch$IFS{{m}};{} HTTP/1.1\r\n{headers}",
                "a".repeat(90_000)
            ),
        ),
    ] {
        let marker = dir.join(name);
        let bytes = request.replace("{m}", &marker.display().to_string());
        let reply = raw_request(addr, &[bytes.as_bytes()], Duration::ZERO);
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.contains("not an HTTP server") || reply.contains("over the limit"),
            "{name}: {reply}"
        );
        assert!(!created(&marker), "{name}: the marker appeared");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// IPv6: one /64 holds at most half the command slots, as one IPv4 address
/// does: with 4 commands running from ::1, a fifth from ::1 is told busy.
#[test]
fn held_one_ipv6_address_holds_half_the_slots() {
    let Ok(server) = command::bind("[::1]:0", CommandConfig::default()) else {
        eprintln!("SKIPPED: no IPv6 loopback here");
        return;
    };
    let server = std::sync::Arc::new(server);
    let addr = server.local_addr().unwrap();
    let serving = std::sync::Arc::clone(&server);
    thread::spawn(move || serving.serve_forever());
    let running: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || framed(addr).run("sleep 1.5")))
        .collect();
    assert!(
        within(Duration::from_secs(5), || server.handler().running() == 4),
        "4 commands never ran"
    );
    let fifth = framed(addr).run("true");
    assert!(
        matches!(fifth, Err(CommandError::Server(ref m)) if m.contains("from your address")),
        "{fifth:?}"
    );
    for r in running {
        assert_eq!(r.join().unwrap().unwrap().exit, Some(0));
    }
    server.shutdown_handle().shutdown();
}
