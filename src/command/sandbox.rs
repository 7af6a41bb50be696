//! Containment by the kernel: each command in a PID namespace of its own,
//! so that every process it starts ends when it ends, by construction.
//!
//! Watching `/proc` for a command's processes ([`contain`](super::contain))
//! is a race against the command: whatever leaves its tree between two
//! looks, clears its traces and hides where the watcher does not look
//! (the server's own process group, say) is missed. A PID namespace
//! needs no watching. The kernel numbers a namespace's processes from 1,
//! none of them can leave it (`setsid`, double forks and `setpgid` all
//! stay inside), and when its first process (its *init*) ends, the kernel
//! kills every other process in it and reaps them before that init's
//! parent learns it has ended.
//!
//! ```text
//!  server thread ─fork (std)─▶ relay ─clone(CLONE_NEWPID)─▶ init (pid 1) ─fork─▶ command (pid 2)
//!   Child::id() is the relay     waits for init,             reaps orphans,       setsid, exec:
//!   SIGKILL to it ends all       passes its status on        ends with the        sh, ls, ...
//!                                dies with the server        command, and all
//!                                thread (PDEATHSIG)          with it
//! ```
//!
//! * The **relay** stays in the server's namespace: it is the process
//!   `std::process::Child` knows. It waits for the init and ends as the
//!   command did (its exit code, or its signal). Killed (by the server's
//!   watchdog, or by `PR_SET_PDEATHSIG` when the server's thread dies,
//!   SIGKILL of the server included), it takes the init with it, and the
//!   kernel the rest.
//! * The **init** is the namespace's pid 1. It reaps every orphan the
//!   command leaves (no zombie piles up while the command runs) and ends
//!   as soon as the command's main process does; with it, the kernel ends
//!   everything else in the namespace.
//! * The **command** starts a session of its own (`setsid`) and is
//!   executed by `std` as usual, its pipes and environment as set up.
//!
//! Each command's PID namespace is made inside a user namespace of its own,
//! which maps the server's user and group to themselves (root to root), so
//! the command's files are its user's as before, while the capabilities it
//! holds (root's included) hold in that namespace only: none over the
//! relay and the init, which are not dumpable, so no command can read
//! their memory (copies of the server's) or take them over with `ptrace`.
//! Where the system allows no user namespace (some distributions turn
//! unprivileged ones off), a privileged server makes the PID namespace
//! alone, and a command running with the server's root capabilities could
//! then take over its init: the server says so at start. [`probe`] finds
//! out once per process which works, if any.
//!
//! The command gets its three pipes and nothing else of the server's: every
//! other descriptor is closed on `exec`, those the server inherited open
//! too (`close_range` with `CLOSE_RANGE_CLOEXEC`, Linux 5.11 and later;
//! on an older kernel only what is already close-on-exec is closed, as
//! everything `std` opens is).
//!
//! The PID namespace has an IPC namespace of its own beside it, so System V
//! shared memory, semaphores and message queues the command makes end with
//! it too. Files it leaves (in `/tmp`, or POSIX shared memory in `/dev/shm`)
//! are files, and stay.
//!
//! What the namespace is not: a sandbox. `/proc` is the server's, files and
//! the network are as reachable as the server's user can reach them, and
//! a service the command asks to start a process (cron, `systemd-run`,
//! ssh to localhost) starts it outside. It bounds lifetimes, nothing else.
//!
//! # The one place with `unsafe`
//!
//! Everything between `fork` and `exec` runs in a copy of a multithreaded
//! program where only async-signal-safe calls are sound: no allocation, no
//! locks, no `std` I/O. The code here makes raw system calls only, on data
//! prepared before the fork ([`Plan`]), and forks with the raw `clone`
//! system call (the C library's `fork` runs handlers and takes locks).

#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
use std::ffi::CStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What the child side needs, prepared before the fork.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The server's pid: the relay's parent, unless the server is gone.
    server: libc::pid_t,
    /// A user namespace first, with these maps (`"UID UID 1"`, `"GID GID 1"`).
    user: Option<([u8; 32], usize, [u8; 32], usize)>,
}

impl Plan {
    /// Whether the plan makes a user namespace too (tried first for every
    /// server, root's included; `false` where the system allows none).
    pub(crate) fn user_namespace(&self) -> bool {
        self.user.is_some()
    }
}

/// A one-line map `"ID ID 1\n"`, for `/proc/self/{uid,gid}_map`.
fn id_map(id: u32) -> ([u8; 32], usize) {
    let line = format!("{id} {id} 1\n");
    let mut buf = [0u8; 32];
    buf[..line.len()].copy_from_slice(line.as_bytes());
    (buf, line.len())
}

fn plan(user: bool) -> Plan {
    Plan {
        server: std::process::id() as libc::pid_t,
        user: user.then(|| {
            let (u, ulen) = id_map(rustix::process::getuid().as_raw());
            let (g, glen) = id_map(rustix::process::getgid().as_raw());
            (u, ulen, g, glen)
        }),
    }
}

/// Whether commands can run in PID namespaces on this system, and how:
/// found once per process by starting a probe through the same steps a
/// command takes (it ends before `exec`). `Err` says why not.
pub(crate) fn probe() -> Result<Plan, String> {
    static PROBED: OnceLock<Result<Plan, String>> = OnceLock::new();
    PROBED
        .get_or_init(|| {
            // A user namespace first, even for root: its commands then hold
            // capabilities in that namespace only, none over the relay and
            // the init (copies of the server, not dumpable), which a
            // command with the host's CAP_SYS_PTRACE could take over.
            match try_plan(plan(true)) {
                Ok(p) => Ok(p),
                Err(first) => try_plan(plan(false)).map_err(|second| {
                    format!("no PID namespace in a user namespace ({first}), nor alone ({second})")
                }),
            }
        })
        .clone()
}

fn try_plan(plan: Plan) -> Result<Plan, String> {
    let mut probe = Command::new("/");
    probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    prepare(&mut probe, &plan, true);
    let mut child = probe.spawn().map_err(|e| e.to_string())?;
    // The watchdog kills through a pidfd: a namespace is no use without.
    let pidfd = handle(&child);
    let status = child.wait().map_err(|e| e.to_string())?;
    pidfd.map_err(|e| format!("no pidfd: {e}"))?;
    match status.success() {
        true => Ok(plan),
        false => Err(format!("the probe ended with {status}")),
    }
}

/// A handle on a command's relay that stays its own once the relay is
/// reaped (a pidfd): open it before the relay can be reaped.
#[cfg(target_os = "linux")]
pub(crate) fn handle(relay: &std::process::Child) -> io::Result<OwnedFd> {
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    Ok(pidfd_open(Pid::from_child(relay), PidfdFlags::empty())?)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn handle(_relay: &std::process::Child) -> io::Result<OwnedFd> {
    Err(io::ErrorKind::Unsupported.into())
}

/// SIGKILL to the relay: the init dies with it, and the kernel ends the
/// rest of the namespace.
pub(crate) fn kill(relay: &OwnedFd) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Signal, pidfd_send_signal};
        let _ = pidfd_send_signal(relay, Signal::KILL);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = relay;
}

/// Sets `command` up to run in a PID namespace of its own as [`Plan`]
/// says (see the module docs). `probe` ends the command's process before
/// `exec`, with status 0.
pub(crate) fn prepare(command: &mut Command, plan: &Plan, probe: bool) {
    let mut plan = plan.clone();
    // This process's pid now, not at the probe: a program may have forked
    // since.
    plan.server = std::process::id() as libc::pid_t;
    // SAFETY: `enter` makes only async-signal-safe system calls, on data
    // prepared before the fork, and allocates nothing.
    unsafe {
        command.pre_exec(move || enter(&plan, probe));
    }
}

/// Sets `command` up for the scan: a session of its own (so none of its
/// processes can join the server's process group, which is in another
/// session), and, on Linux, killed if the server's thread dies.
pub(crate) fn prepare_plain(command: &mut Command) {
    let server = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe system calls, no allocation.
    unsafe {
        command.pre_exec(move || {
            die_with_parent(server)?;
            check(libc::setsid())?;
            close_inherited_on_exec();
            Ok(())
        });
    }
}

/// Marks every descriptor above standard error close-on-exec: the command
/// gets its three pipes and nothing else of the server's, not even what
/// the server itself inherited open (a shell's, a supervisor's). `std`
/// closes only what it opened; its own error pipe is close-on-exec
/// already. Linux 5.11 and later; elsewhere, or where it fails, as before.
fn close_inherited_on_exec() {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain system call.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

/// The last OS error if `ret` is negative.
fn check<T: Into<i64> + Copy>(ret: T) -> io::Result<T> {
    match ret.into() < 0 {
        true => Err(io::Error::last_os_error()),
        false => Ok(ret),
    }
}

/// `PR_SET_PDEATHSIG` SIGKILL, then a check that the parent it watches is
/// still `parent` (it may have died before the call).
#[cfg(target_os = "linux")]
fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    kill_me_with_parent()?;
    // SAFETY: a plain system call.
    unsafe {
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// `PR_SET_PDEATHSIG` SIGKILL: this process dies when its parent does.
#[cfg(target_os = "linux")]
fn kill_me_with_parent() -> io::Result<()> {
    // SAFETY: a plain system call.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_parent: libc::pid_t) -> io::Result<()> {
    Ok(())
}

/// Forks with the raw system call: the copy returns 0, the original the
/// copy's pid. `flags` may add `CLONE_NEWPID`.
#[cfg(target_os = "linux")]
fn raw_fork(flags: libc::c_int) -> io::Result<libc::pid_t> {
    // SAFETY: clone without CLONE_VM and without a new stack is fork: the
    // child continues on its own copy of this stack.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(pid).map(|pid| pid as libc::pid_t)
}

/// Closes every descriptor but `keep`.
#[cfg(target_os = "linux")]
fn close_all_but(keep: libc::c_int) {
    // SAFETY: close_range is a plain system call (Linux 5.9); the probe
    // makes sure it works before any command relies on it.
    unsafe {
        if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
}

/// Ends this process as `status` (a `waitpid` status) says its child
/// ended: the same exit code, or the same signal.
#[cfg(target_os = "linux")]
fn end_as(status: libc::c_int) -> ! {
    // SAFETY: plain system calls; `_exit` does not return.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            let me = libc::syscall(libc::SYS_getpid) as libc::pid_t;
            libc::kill(me, signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// Writes `bytes` to the file at `path` (a `/proc/self` map).
#[cfg(target_os = "linux")]
fn write_file(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: plain system calls on a valid C string and buffer.
    unsafe {
        let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The child side, from the relay on (see the module docs). Returns only
/// in the command's process, which `std` then executes.
#[cfg(target_os = "linux")]
fn enter(plan: &Plan, probe: bool) -> io::Result<()> {
    // The relay.
    die_with_parent(plan.server)?;
    if let Some((uid, ulen, gid, glen)) = &plan.user {
        // SAFETY: plain system calls; this process has one thread.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWUSER))?;
            // A server holding a token is not dumpable, and a process that
            // is not may not write its own maps: dumpable just for that (no
            // command exists yet to look), and not again below.
            check(libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0))?;
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", &uid[..*ulen])?;
            write_file(c"/proc/self/gid_map", &gid[..*glen])?;
        }
    }
    // Not dumpable, whatever the server is: the relay and the init are
    // copies of the server's memory (its clients' requests, a token), and
    // a command running as the same user must neither read them
    // (`/proc/PID/mem`) nor take them over, nor leave a core of them.
    // SAFETY: a plain system call.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })?;
    // The init tells the relay how the command ended through this pipe;
    // and finds the relay gone if its end has no reader.
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: a valid two-element array.
    check(unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let [from_init, to_relay] = pipe;
    // An IPC namespace with it: System V shared memory, semaphores and
    // message queues the command makes end with the namespace, as its
    // processes do.
    let init = raw_fork(libc::CLONE_NEWPID | libc::CLONE_NEWIPC)?;
    if init > 0 {
        relay(init, from_init)
    }
    // The init, pid 1 of the new namespace.
    // SAFETY: plain system calls.
    unsafe {
        libc::close(from_init);
        kill_me_with_parent()?;
        // The relay may have died before that call, and then nothing
        // would end this namespace: a pipe with no reader polls as error.
        let mut relay_end = libc::pollfd {
            fd: to_relay,
            events: 0,
            revents: 0,
        };
        if libc::poll(&mut relay_end, 1, 0) < 0 || relay_end.revents & libc::POLLERR != 0 {
            libc::_exit(1);
        }
    }
    let command = raw_fork(0)?;
    if command > 0 {
        init_loop(command, to_relay)
    }
    // The command.
    // SAFETY: plain system calls.
    unsafe {
        libc::close(to_relay);
        check(libc::setsid())?;
        close_inherited_on_exec();
        if probe {
            libc::_exit(0);
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn enter(_plan: &Plan, _probe: bool) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The relay: holds nothing of the server's (a client's socket would
/// outlive its close here), waits for the init, ends as the command did.
#[cfg(target_os = "linux")]
fn relay(init: libc::pid_t, from_init: libc::c_int) -> ! {
    close_all_but(from_init);
    let mut status: libc::c_int = 0;
    // SAFETY: plain system calls on valid pointers.
    unsafe {
        while libc::waitpid(init, &mut status, 0) < 0 {
            if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(1);
            }
        }
        let mut word = [0u8; 4];
        if libc::read(from_init, word.as_mut_ptr().cast(), 4) == 4 {
            status = libc::c_int::from_ne_bytes(word);
        }
    }
    end_as(status)
}

/// The init: holds nothing but its pipe to the relay, reaps every process
/// that ends in the namespace, and ends once the command has, passing its
/// status to the relay. The kernel then ends the rest.
#[cfg(target_os = "linux")]
fn init_loop(command: libc::pid_t, to_relay: libc::c_int) -> ! {
    close_all_but(to_relay);
    let mut status: libc::c_int = 0;
    // SAFETY: plain system calls on valid pointers.
    unsafe {
        loop {
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == command {
                let word = status.to_ne_bytes();
                libc::write(to_relay, word.as_ptr().cast(), 4);
                libc::_exit(0);
            }
            if pid < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(1);
            }
        }
    }
}
