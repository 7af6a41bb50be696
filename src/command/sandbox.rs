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
//!  keeper thread ─fork (std)─▶ relay ─clone(CLONE_VM|CLONE_NEWPID)─▶ init (pid 1) ─clone(CLONE_VM|CLONE_VFORK|CLONE_NEWIPC)─▶ command
//!   a pidfd on the relay:        waits for init,                   one request after            setsid, chdir, execve:
//!   SIGKILL to it ends all       dies with the keeper              another, on its              sh, ls, ...
//!                                thread (PDEATHSIG)                socket to the server
//! ```
//!
//! A namespace is kept *warm* and serves one command after another
//! ([`super::warm`] is the server's side): making one costs a fork of the
//! server and its namespaces (~0.5 ms here, more than half of what
//! running `echo` costs), running a command in one that exists costs what
//! `posix_spawn` costs. Between two
//! commands the init empties it: once the command's main process has
//! ended, `kill(-1, SIGKILL)` from a namespace's pid 1 reaches every other
//! process in it (the kernel also catches one being forked meanwhile), and
//! the init reaps until it has no child left, which means nothing is left
//! in the namespace (every process there descends from it), before it
//! answers. The next command finds it as new.
//!
//! * The **relay** stays in the server's namespace, a child of the
//!   server's keeper thread. It waits for the init and ends after it:
//!   with 0 if the init ended as the server asked, else by SIGKILL (a
//!   command whose init was killed is reported killed, never as having
//!   exited with 0; see [`relay`]). Killed (by a command's watchdog, by
//!   the pool retiring an idle namespace, or by `PR_SET_PDEATHSIG` when
//!   the keeper thread ends,
//!   SIGKILL of the server included), it takes the init with it, and the
//!   kernel the rest.
//! * The **init** is the namespace's pid 1. It holds its socket to the
//!   server and five `/proc` files of its own (what its commands inherit
//!   from it, checked before each: [`Inherited`]), and serves requests on
//!   the socket ([`serve`]): a
//!   header, the command's three streams (`SCM_RIGHTS`), its directory,
//!   program, arguments and environment; it answers once the command has
//!   executed (or failed to: the `errno`), and again with its status and
//!   how many processes it left once the namespace is empty. It reaps
//!   every orphan meanwhile, so no zombie piles up.
//! * The **command** moves its streams to 0, 1 and 2, closes every other
//!   descriptor (the init's socket least of all: a command that held it
//!   could send requests of its own), starts a session of its own and
//!   joins a session keyring of its own, enters the server's directory
//!   and executes the program. It has an IPC
//!   namespace of its own: System V shared memory, semaphores and message
//!   queues it makes end with it.
//!
//! Only the relay is a fork, once per namespace. The init shares the
//! relay's memory (`CLONE_VM`) on a stack of its own, and the command
//! shares the init's until it executes, as a process `posix_spawn` starts
//! does: the relay's memory is a private copy, so neither can touch the
//! server's, and all three run only the plain system calls below.
//!
//! Each PID namespace is made inside a user namespace of its own,
//! which maps the server's user and group to themselves (root to root), so
//! the command's files are its user's as before, while the capabilities it
//! holds (root's included) hold in that namespace only: none over the
//! relay and the init, which are not dumpable, so no command can read
//! their memory (copies of the server's) or take them over with `ptrace`.
//! A warm namespace serves many commands ([`warm`](super::warm)), so a
//! root server's command, which would be root in that user namespace and
//! could set its limits for the next, gets a user namespace of its own
//! inside it (the same maps); and the init ends rather than serve on if
//! what its commands inherit from it was changed ([`Inherited`]).
//! Where the system allows no user namespace (some distributions turn
//! unprivileged ones off), a privileged server makes the PID namespace
//! alone, and a command running with the server's root capabilities could
//! then take over its init: the server says so at start. [`probe`] finds
//! out once per process which works, if any.
//!
//! The command gets its three pipes and nothing else of the server's: the
//! relay and the init close everything else, those the server inherited
//! open too, and the command everything but its streams (`close_range`,
//! Linux 5.9 and later, which the probe makes sure of). Files it leaves
//! (in `/tmp`, or POSIX shared memory in `/dev/shm`) are files, and stay.
//!
//! What the namespace is not: a sandbox. `/proc` is the server's, files and
//! the network are as reachable as the server's user can reach them, and
//! a service the command asks to start a process (cron, `systemd-run`,
//! ssh to localhost) starts it outside. It bounds lifetimes, nothing else.
//!
//! # The one place with `unsafe`
//!
//! Everything after the `fork` runs in a copy of a multithreaded program
//! where only async-signal-safe calls are sound: no allocation, no locks,
//! no `std` I/O, for the init's whole life (it never executes anything).
//! The code here makes plain system calls only, on data prepared before
//! the fork ([`Plan`]) or received into a buffer the init maps once, and
//! starts the init and the command with the C library's `clone` wrapper,
//! which only switches stacks (its `fork` runs handlers and takes locks).
//! The relay, the init and the command share one C `errno` (one thread's
//! storage, in one memory): each reads it right after its own failed
//! call, while the others are blocked (the relay in `waitpid`, the init
//! until the command executes). No handler of the server's runs in
//! them: every signal is blocked across the init's clone and put back to
//! its default action in the init before it is unblocked, as
//! `posix_spawn` does, and a namespace's pid 1 at its defaults gets no
//! signal from inside the namespace.

#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What the child side needs, prepared before the fork.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The server's pid: the relay's parent, unless the server is gone.
    server: libc::pid_t,
    /// A user namespace first, with these maps (`"UID UID 1"`, `"GID GID 1"`).
    user: Option<Maps>,
    /// Whether the relay must be dumpable to write those maps: its own
    /// `/proc` files are root's while it is not, which only root may write.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    dumpable_for_maps: bool,
    /// Where the process's original environment block lies (`env_start`
    /// to `env_end` of `/proc/self/stat`), which the relay zeroes in its
    /// copy before it is ever dumpable: `/proc/PID/environ` reads that
    /// block, and a variable removed with `remove_var` (a token) is still
    /// in it.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    environ: Option<(usize, usize)>,
}

impl Plan {
    /// Whether the plan makes a user namespace too (tried first for every
    /// server, root's included; `false` where the system allows none).
    pub(crate) fn user_namespace(&self) -> bool {
        self.user.is_some()
    }
}

/// The user and group maps of a user namespace, each a one-line map
/// `"ID ID 1\n"` and its length.
type Maps = ([u8; 32], usize, [u8; 32], usize);

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
        dumpable_for_maps: !rustix::process::geteuid().is_root(),
        environ: environ_block(),
    }
}

/// The original environment block's bounds, from `/proc/self/stat`
/// (fields 50 and 51, after the command name in parentheses).
fn environ_block() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // Field 3 (the state) is the first after the name: field N is N - 3.
    let start = fields.get(50 - 3)?.parse().ok()?;
    let end: usize = fields.get(51 - 3)?.parse().ok()?;
    (start < end).then_some((start, end))
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
    // A warm namespace, and one request through it for "/", which cannot
    // be executed: every step a command takes but running a program.
    let slot = super::warm::Slot::start(&plan).map_err(|e| e.to_string())?;
    slot.probe().map_err(|e| e.to_string())?;
    Ok(plan)
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
///
/// The pidfd is marked first (`O_NONBLOCK` on its open file description,
/// which every clone of it shares, the slot's own included): a warm
/// namespace whose relay was killed after its init's last answer was
/// read (a watchdog firing as the command ends) must not be handed to the
/// next command, which the dying init could still start before it dies
/// ([`killed`]).
pub(crate) fn kill(relay: &OwnedFd) {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{OFlags, fcntl_setfl};
        use rustix::process::{Signal, pidfd_send_signal};
        let _ = fcntl_setfl(relay, OFlags::NONBLOCK);
        let _ = pidfd_send_signal(relay, Signal::KILL);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = relay;
}

/// Whether [`kill`] was called on this pidfd or any clone of it (an error
/// reading its flags counts as killed: the namespace is not reused).
pub(crate) fn killed(relay: &OwnedFd) -> bool {
    use rustix::fs::{OFlags, fcntl_getfl};
    fcntl_getfl(relay).map_or(true, |flags| flags.contains(OFlags::NONBLOCK))
}

/// The most bytes one request to an init may hold: the directory, the
/// program's path, its arguments and its environment, each with its NUL.
/// Linux itself takes at most a quarter of the stack limit (2 MiB by
/// default) for arguments and environment together.
pub(crate) const REQUEST_MAX: usize = 2 << 20;
/// The most strings (arguments and variables together) one request holds.
pub(crate) const STRINGS_MAX: usize = 128 << 10;
/// A request's header: the payload's length, the number of arguments, the
/// number of variables (native-endian `u32`s: both ends are this process).
pub(crate) const HEADER: usize = 12;
/// The first reply to a request, once the command's process has executed
/// the program or failed to: the stage (`STARTED`, `NO_CLONE`, `NO_EXEC`)
/// and an `errno`.
pub(crate) const STARTED: u32 = 0;
pub(crate) const NO_CLONE: u32 = 1;
pub(crate) const NO_EXEC: u32 = 2;

/// Starts a warm namespace (see the module docs): a relay forked by `std`
/// whose init serves requests on `sock` until its other end closes. The
/// relay's standard streams are `/dev/null`; the init sends four zero
/// bytes on `sock` once it is ready.
pub(crate) fn start_relay(plan: &Plan, sock: OwnedFd) -> io::Result<std::process::Child> {
    let mut plan = plan.clone();
    // This process's pid now, not at the probe: a program may have forked
    // since.
    plan.server = std::process::id() as libc::pid_t;
    let mut relay = Command::new("/");
    relay
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: `enter` makes only async-signal-safe system calls, on data
    // prepared before the fork, and allocates nothing.
    unsafe {
        relay.pre_exec(move || enter(&plan, sock.as_raw_fd()));
    }
    relay.spawn()
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

/// Closes every descriptor but `keep`.
#[cfg(target_os = "linux")]
fn close_all_but(keep: libc::c_int) {
    close_from_but(0, [keep, keep]);
}

/// Closes every descriptor from `from` on but the two in `keep`.
#[cfg(target_os = "linux")]
fn close_from_but(from: libc::c_int, keep: [libc::c_int; 2]) {
    let keep = [keep[0].min(keep[1]), keep[0].max(keep[1])];
    let mut next = from;
    for fd in keep {
        // SAFETY: close_range is a plain system call (Linux 5.9); the
        // probe makes sure it works before any command relies on it.
        unsafe {
            if fd > next {
                libc::syscall(libc::SYS_close_range, next as u32, (fd - 1) as u32, 0u32);
            }
        }
        next = next.max(fd + 1);
    }
    // SAFETY: as above.
    unsafe {
        libc::syscall(libc::SYS_close_range, next as u32, u32::MAX, 0u32);
    }
}

/// A pipe whose both ends close on `exec`: at once where the system has
/// `pipe2` (no other thread's child can inherit it meanwhile), else set
/// right after (macOS: no namespace runs there, so no command gets such a
/// pipe).
pub(crate) fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: a valid two-element array; the descriptors are new and ours.
    let (read, write) = unsafe {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        check(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC))?;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        check(libc::pipe(fds.as_mut_ptr()))?;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    for fd in [&read, &write] {
        // SAFETY: a descriptor this function owns.
        check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    }
    Ok((read, write))
}

/// Puts `signal` back to its default action with the raw system call:
/// the C library's `sigaction` refuses the signals it keeps for itself
/// (32 and 33 in glibc), which a command can still die of, and its
/// wrapper is no safer between fork and exec. A zeroed kernel `sigaction`
/// is `SIG_DFL` with no flags and an empty mask whatever the
/// architecture's layout of it. Errors (a signal that cannot be caught)
/// change nothing and are ignored.
#[cfg(target_os = "linux")]
fn default_action(signal: libc::c_int) {
    let action = [0u64; 4];
    // SAFETY: a valid, zeroed `struct sigaction` of the kernel's (at most
    // 32 bytes on every architecture), no old action asked for, and the
    // kernel's signal-set size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            action.as_ptr(),
            std::ptr::null_mut::<libc::c_void>(),
            8usize,
        );
    }
}

/// Blocks every signal (`true`) or none, with the raw system call (the C
/// library's wrapper leaves its own two signals alone).
#[cfg(target_os = "linux")]
fn block_signals(all: bool) {
    let set: u64 = if all { u64::MAX } else { 0 };
    // SAFETY: a valid 8-byte signal set, no old set asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            (&raw const set).cast::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            8usize,
        );
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

/// How big each of the init's and the command's stacks is: room enough
/// for a few frames of plain system calls.
#[cfg(target_os = "linux")]
const STACK: usize = 32 << 10;

/// The init's stack, then the command's (until it executes). Never
/// touched by the server: each relay writes to its own copy of these
/// pages (zero pages until then), so relays running at once share
/// nothing.
#[cfg(target_os = "linux")]
#[repr(C, align(16))]
struct Stacks([u8; 2 * STACK]);

#[cfg(target_os = "linux")]
static mut STACKS: Stacks = Stacks([0; 2 * STACK]);

/// What the init needs from the relay, on the relay's stack (it never
/// returns, so the frame outlives the init).
#[cfg(target_os = "linux")]
struct Start {
    /// The init's end of its pipe to the relay: polled once, to find out
    /// whether the relay is still there.
    to_relay: libc::c_int,
    /// The relay's end, closed in the init.
    from_init: libc::c_int,
    /// The init's end of its socket to the server.
    sock: libc::c_int,
    /// The maps of a user namespace of its own for each command, or null
    /// (see [`enter`]).
    nest: *const Maps,
}

/// One request, as the init hands it to the command's process, which
/// shares the init's memory until it executes.
#[cfg(target_os = "linux")]
struct Job {
    /// Its standard input, output and error, as they arrived.
    fds: [libc::c_int; 3],
    /// The directory to run in (empty: the init's).
    dir: *const libc::c_char,
    /// The program, its `argv` and its `envp`.
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// `/bin/sh PATH ARGS...`, for a file the kernel cannot execute
    /// (`ENOEXEC`): a script without a `#!` line, run by the shell as
    /// `execvp` (and so `std`) runs it.
    sh: *const *const libc::c_char,
    /// A user namespace of the command's own, with these maps, or null.
    nest: *const Maps,
    /// Set by the command's process if it could not execute the program.
    errno: libc::c_int,
}

/// The child side, from the relay on (see the module docs). Returns only
/// with an error met before the init exists; else the relay ends when the
/// init does.
#[cfg(target_os = "linux")]
fn enter(plan: &Plan, sock: libc::c_int) -> io::Result<()> {
    // The relay.
    die_with_parent(plan.server)?;
    if let Some((uid, ulen, gid, glen)) = &plan.user {
        // SAFETY: plain system calls; this process has one thread.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWUSER))?;
            // A server holding a token is not dumpable, and a process that
            // is not may not write its own maps, unless it is root (its
            // `/proc` files are then root's): dumpable just for that, and
            // not again below. A window of some microseconds, once per
            // warm namespace, in which a process of the same user (another
            // client's command) could open this one's `/proc/PID/mem`, a
            // copy of the server's; root has none.
            if plan.dumpable_for_maps {
                // Nothing of the environment the server started with (a
                // token passed in it) is there to read in that window.
                if let Some((start, end)) = plan.environ {
                    std::ptr::write_bytes(start as *mut u8, 0, end - start);
                }
                check(libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0))?;
            }
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
    // The init finds the relay gone if this pipe's end has no reader.
    // Raw from here: the relay and the init close them themselves, each
    // its own way, and neither returns.
    let (from_init, to_relay) = cloexec_pipe()?;
    use std::os::fd::IntoRawFd;
    let (from_init, to_relay) = (from_init.into_raw_fd(), to_relay.into_raw_fd());
    // A root server's command is root in the namespace's user namespace,
    // with every capability there, and that namespace outlives it: its
    // limits (`/proc/sys/user`), its PID namespace's `pid_max`, its user
    // keyring would be the next command's. Each command is put in a user
    // namespace of its own inside it (the same maps: root stays root, over
    // the same files), where it holds its capabilities and which ends with
    // it. An unprivileged server's command holds none after `exec`, and
    // could not write its own maps (its `/proc` files are root's while it
    // shares the init's memory, which is not dumpable).
    let nest = match &plan.user {
        Some(maps) if !plan.dumpable_for_maps => maps as *const Maps,
        _ => std::ptr::null(),
    };
    let start = Start {
        to_relay,
        from_init,
        sock,
        nest,
    };
    // The init shares this process's memory (`CLONE_VM`), on a stack of
    // its own: no second copy of the server's page tables is made for it.
    // Both are copies of the server, neither dumpable (the flag is the
    // memory's).
    // Every signal blocked across the clone, as `posix_spawn` does: none
    // can run a handler of the server's in the init before it has put
    // them all back to their defaults. The relay keeps them blocked; it
    // needs none (SIGKILL, which ends it, cannot be blocked).
    block_signals(true);
    // SAFETY: the stack is ours (this process's copy of `STACKS`) and
    // grows down from its top; `init_main` makes plain system calls only
    // and never returns; `start` lives in this frame, which `relay` never
    // leaves.
    let init = check(unsafe {
        libc::clone(
            init_main,
            (&raw mut STACKS).cast::<u8>().add(STACK).cast(),
            libc::CLONE_VM | libc::CLONE_NEWPID | libc::SIGCHLD,
            (&raw const start).cast_mut().cast(),
        )
    })?;
    relay(init, from_init)
}

#[cfg(not(target_os = "linux"))]
fn enter(_plan: &Plan, _sock: libc::c_int) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The relay: holds nothing of the server's (a client's socket would
/// outlive its close here), waits for the init, and ends after it.
/// Killed, it takes the init with it (its `PR_SET_PDEATHSIG`).
///
/// Its status is what the server reports for a command whose namespace
/// ended under it: 0 only if the init ended as the server asked (its
/// socket closed); an init killed from outside (the OOM killer, a process
/// of the server's user) or ended by an error makes the relay die of
/// SIGKILL, as the watchdog's kill would, so that no such command is
/// reported as having exited with 0.
#[cfg(target_os = "linux")]
fn relay(init: libc::pid_t, from_init: libc::c_int) -> ! {
    close_all_but(from_init);
    let mut status: libc::c_int = 0;
    // SAFETY: plain system calls on valid pointers; SIGKILL cannot be
    // blocked, so the relay ends there.
    unsafe {
        let ended = loop {
            if libc::waitpid(init, &mut status, 0) >= 0 {
                break true;
            }
            if errno() != libc::EINTR {
                break false;
            }
        };
        if ended && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            libc::_exit(0)
        }
        libc::kill(libc::getpid(), libc::SIGKILL);
        libc::_exit(1)
    }
}

/// This thread's `errno` (the init's and the command's are the relay's
/// thread's storage: each reads it right after its own failed call,
/// while the others are blocked).
#[cfg(target_os = "linux")]
fn errno() -> libc::c_int {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The init, pid 1 of the new namespace: holds nothing but its socket to
/// the server, and serves its requests one at a time until the server
/// closes it (see [`serve`]).
#[cfg(target_os = "linux")]
extern "C" fn init_main(start: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `enter` passed its `Start`, alive as long as the relay.
    let start = unsafe { &*start.cast::<Start>() };
    // None of the server's signal handlers runs here (on this small stack,
    // in memory the relay shares): with every action back to its default,
    // the kernel does not deliver to a namespace's pid 1 a signal sent
    // from inside it, so a command cannot reach the init with one.
    for signal in 1..=64 {
        default_action(signal);
    }
    block_signals(false);
    // SAFETY: plain system calls.
    unsafe {
        libc::close(start.from_init);
        if kill_me_with_parent().is_err() {
            libc::_exit(1);
        }
        // The relay may have died before that call, and then nothing
        // would end this namespace: a pipe with no reader polls as error.
        let mut relay_end = libc::pollfd {
            fd: start.to_relay,
            events: 0,
            revents: 0,
        };
        if libc::poll(&mut relay_end, 1, 0) < 0 || relay_end.revents & libc::POLLERR != 0 {
            libc::_exit(1);
        }
    }
    // Nothing of the server's is held past this point but the socket.
    close_all_but(start.sock);
    serve(start.sock, start.nest)
}

/// Room for the pointer arrays of one request: `argv`, `envp` and the
/// shell's `argv`, each with its NULL.
#[cfg(target_os = "linux")]
const POINTERS: usize = 2 * STRINGS_MAX + 4;

/// What a command's process inherits from its init that a process of the
/// server's user can change in the init from outside it, without being
/// able to read or trace it: a command does it to its pid 1 (`prlimit`,
/// `renice`, `taskset`, `chrt`, `ionice` take pids of its namespace; a
/// root server's command, root in the namespace's user namespace, also
/// writes the init's `oom_score_adj` and `cgroup.procs`). Every later
/// command in the namespace would inherit it (a file size limit of 0,
/// nice 19, `SCHED_IDLE`, one CPU...), and a lowered hard limit cannot be
/// raised again from inside. Read when the namespace starts and before
/// each command: a namespace where it changed is ended, not reused.
#[cfg(target_os = "linux")]
struct Inherited {
    /// The scheduling attributes (`sched_getattr`: the policy and its
    /// flags, the nice value, the priority, the utilization clamps) and
    /// the I/O priority, as the calls return them.
    sched: [u32; 14],
    ioprio: libc::c_long,
    /// The CPUs it may run on (up to 1024).
    affinity: [u64; 16],
    /// The first bytes of each of [`INHERITED_FILES`], and how many each
    /// read returned.
    files: [[u8; 2048]; 5],
    read: [isize; 5],
}

/// What [`Inherited`] reads from files, opened once by the init (a read
/// from an open file costs a fifth to two fifths of opening it again,
/// measured): every resource
/// limit, `oom_score_adj`, `coredump_filter` (which an `exec` keeps), the
/// cgroup, and the PID namespace's `pid_max` (which a root server's
/// command may set as the namespace's root user, even from a user
/// namespace of its own). `/proc/self` is the init's.
#[cfg(target_os = "linux")]
const INHERITED_FILES: [&CStr; 5] = [
    c"/proc/self/limits",
    c"/proc/self/oom_score_adj",
    c"/proc/self/coredump_filter",
    c"/proc/self/cgroup",
    c"/proc/sys/kernel/pid_max",
];

#[cfg(target_os = "linux")]
impl Inherited {
    /// Opens [`INHERITED_FILES`] (-1 for one that cannot be opened: it
    /// then reads the same, an error, every time).
    fn open() -> [libc::c_int; 5] {
        // SAFETY: plain system calls on valid C strings.
        INHERITED_FILES
            .map(|path| unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })
    }

    /// Fills `self` from this process, and from `files` ([`Self::open`]).
    ///
    /// # Safety
    ///
    /// Plain system calls only: callable in the init.
    unsafe fn read(&mut self, files: &[libc::c_int; 5]) {
        // SAFETY: plain system calls on buffers of the sizes given.
        unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                self.sched.as_mut_ptr(),
                std::mem::size_of_val(&self.sched),
                0,
            );
            self.ioprio = libc::syscall(libc::SYS_ioprio_get, 1, 0); // IOPRIO_WHO_PROCESS, self
            libc::syscall(
                libc::SYS_sched_getaffinity,
                0,
                std::mem::size_of_val(&self.affinity),
                self.affinity.as_mut_ptr(),
            );
            for ((fd, buf), read) in files.iter().zip(&mut self.files).zip(&mut self.read) {
                *read = libc::pread(*fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            }
        }
    }

    /// What was read of file `n`.
    fn text(&self, n: usize) -> &[u8] {
        &self.files[n][..self.read[n].clamp(0, 2048) as usize]
    }

    /// Whether `self` and `other` read the same.
    fn same(&self, other: &Inherited) -> bool {
        self.sched == other.sched
            && self.ioprio == other.ioprio
            && self.affinity == other.affinity
            && self.read == other.read
            && (0..self.files.len()).all(|n| self.text(n) == other.text(n))
    }
}

/// The init's loop: a buffer mapped once, a ready word to the server,
/// then one request after another ([`one`]). Ends when the server closes
/// the socket (the namespace is retired) or breaks the protocol, or when
/// what its commands inherit has been changed ([`Inherited`]).
#[cfg(target_os = "linux")]
fn serve(sock: libc::c_int, nest: *const Maps) -> ! {
    let size = REQUEST_MAX
        + POINTERS * std::mem::size_of::<*const libc::c_char>()
        + 2 * std::mem::size_of::<Inherited>();
    // SAFETY: an anonymous private mapping, the init's alone; `mmap` is a
    // plain system call.
    unsafe {
        let buf = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if buf == libc::MAP_FAILED {
            libc::_exit(1);
        }
        let buf = buf.cast::<u8>();
        let pointers = buf.add(REQUEST_MAX).cast::<*const libc::c_char>();
        // In the mapping, not on the init's small stack: as the namespace
        // started, and as it is now.
        let inherited = pointers.add(POINTERS).cast::<Inherited>();
        let (start, now) = (&mut *inherited, &mut *inherited.add(1));
        let files = Inherited::open();
        start.read(&files);
        answer(sock, [STARTED, 0]); // ready
        loop {
            one(sock, buf, pointers, (start, now, &files), nest);
        }
    }
}

/// Sends a reply of two words to the server; a server that is gone finds
/// out from its end, the init from its next `recvmsg`.
#[cfg(target_os = "linux")]
fn answer(sock: libc::c_int, words: [u32; 2]) {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&words[0].to_ne_bytes());
    bytes[4..].copy_from_slice(&words[1].to_ne_bytes());
    // SAFETY: a plain system call on a valid buffer.
    unsafe {
        libc::send(sock, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL);
    }
}

/// Reads exactly `len` bytes into `buf`; `false` at an end or an error.
///
/// # Safety
///
/// `buf` must be valid for `len` bytes.
#[cfg(target_os = "linux")]
unsafe fn read_exact(sock: libc::c_int, buf: *mut u8, len: usize) -> bool {
    let mut got = 0;
    while got < len {
        // SAFETY: within the caller's buffer.
        let n = unsafe { libc::read(sock, buf.add(got).cast(), len - got) };
        match n {
            n if n > 0 => got += n as usize,
            n if n < 0 && errno() == libc::EINTR => {}
            _ => return false,
        }
    }
    true
}

/// Receives a request's header and its three descriptors; `false` when
/// the server has closed the socket.
#[cfg(target_os = "linux")]
fn receive(sock: libc::c_int, header: &mut [u8; HEADER], fds: &mut [libc::c_int; 3]) -> bool {
    // Room for one SCM_RIGHTS message of three descriptors, aligned.
    let mut control = [0u64; 8];
    // SAFETY: plain system calls on buffers that outlive them; the
    // control message is read only where the kernel says it lies.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: header.as_mut_ptr().cast(),
            iov_len: HEADER,
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = loop {
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 || errno() != libc::EINTR {
                break n;
            }
        };
        if n <= 0 {
            return false;
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        let wanted = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            || (*cmsg).cmsg_len as usize != wanted
            || msg.msg_flags & libc::MSG_CTRUNC != 0
        {
            libc::_exit(1); // not this crate's server
        }
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
            fds.as_mut_ptr(),
            3,
        );
        let n = n as usize;
        read_exact(sock, header.as_mut_ptr().add(n), HEADER - n)
    }
}

/// Serves one request: starts the command in its own IPC namespace,
/// answers whether it executed, reaps orphans until the command's main
/// process ends, then kills every other process in the namespace, reaps
/// them all, and answers with the command's status and how many there
/// were. The namespace is then as empty as when it was made. Ends the
/// init instead if what a command inherits from it is no longer `start`
/// ([`Inherited`], read from the init and its `files`); `now` is room to
/// read it into. With `nest`, the command gets a user namespace of its
/// own with those maps.
///
/// # Safety
///
/// `buf` must be valid for [`REQUEST_MAX`] bytes and `pointers` for
/// [`POINTERS`] pointers; `nest` null or valid for as long as the init.
#[cfg(target_os = "linux")]
unsafe fn one(
    sock: libc::c_int,
    buf: *mut u8,
    pointers: *mut *const libc::c_char,
    (start, now, files): (&Inherited, &mut Inherited, &[libc::c_int; 5]),
    nest: *const Maps,
) {
    let mut header = [0u8; HEADER];
    let mut fds = [-1; 3];
    if !receive(sock, &mut header, &mut fds) {
        // SAFETY: `_exit` does not return.
        unsafe { libc::_exit(0) }
    }
    let word = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&header[4 * i..4 * i + 4]);
        u32::from_ne_bytes(w) as usize
    };
    let (len, argc, envc) = (word(0), word(1), word(2));
    // The server checks all of this before sending: anything else is not
    // this crate's server, and the init ends.
    // SAFETY: within the mapped buffer; then plain system calls.
    unsafe {
        if len > REQUEST_MAX || argc == 0 || argc + envc > STRINGS_MAX {
            libc::_exit(1);
        }
        if !read_exact(sock, buf, len) || len == 0 || *buf.add(len - 1) != 0 {
            libc::_exit(1);
        }
        // The strings, each ending in NUL: the directory, the program,
        // `argc` arguments, `envc` variables.
        let argv = pointers;
        let envp = pointers.add(argc + 1);
        let sh = envp.add(envc + 1);
        let (mut dir, mut path) = (std::ptr::null(), std::ptr::null());
        let (mut n, mut at) = (0, 0);
        while at < len {
            let s = buf.add(at).cast::<libc::c_char>();
            match n {
                0 => dir = s,
                1 => path = s,
                i if i < 2 + argc => *argv.add(i - 2) = s,
                i if i < 2 + argc + envc => *envp.add(i - 2 - argc) = s,
                _ => libc::_exit(1),
            }
            n += 1;
            while *buf.add(at) != 0 {
                at += 1;
            }
            at += 1;
        }
        if n != 2 + argc + envc {
            libc::_exit(1);
        }
        *argv.add(argc) = std::ptr::null();
        *envp.add(envc) = std::ptr::null();
        *sh = c"/bin/sh".as_ptr();
        *sh.add(1) = path;
        std::ptr::copy_nonoverlapping(argv.add(1), sh.add(2), argc - 1);
        *sh.add(argc + 1) = std::ptr::null();
        // What this command would inherit is what the first did, or the
        // namespace ends here: the server finds it ended and runs the
        // command in a new one.
        now.read(files);
        if !now.same(start) {
            libc::_exit(1);
        }
        let mut job = Job {
            fds,
            dir,
            path,
            argv,
            envp,
            sh,
            nest,
            errno: 0,
        };
        // The command shares this memory until it executes, as a process
        // `posix_spawn` starts does (`CLONE_VFORK`: the init waits until
        // then): no copy of any page table. With it, an IPC namespace:
        // System V shared memory, semaphores and message queues the
        // command makes end with it, as its processes do.
        // SAFETY: the upper half of this process's `STACKS` is free while
        // the init waits; `command_main` makes plain system calls only and
        // ends in `execve` or `_exit`.
        let user = if nest.is_null() {
            0
        } else {
            libc::CLONE_NEWUSER
        };
        let command = libc::clone(
            command_main,
            (&raw mut STACKS).cast::<u8>().add(2 * STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_NEWIPC | user | libc::SIGCHLD,
            (&raw mut job).cast(),
        );
        let clone_errno = errno();
        for fd in fds {
            libc::close(fd);
        }
        if command < 0 {
            answer(sock, [NO_CLONE, clone_errno as u32]);
            return;
        }
        let mut status: libc::c_int = 0;
        let failed = std::ptr::read_volatile(&raw const job.errno);
        if failed != 0 {
            while libc::waitpid(command, &mut status, 0) < 0 && errno() == libc::EINTR {}
            answer(sock, [NO_EXEC, failed as u32]);
            return;
        }
        answer(sock, [STARTED, 0]);
        // Orphans the command leaves are reaped as they end (no zombie
        // piles up while it runs), until its main process ends.
        loop {
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == command {
                break;
            }
            if pid < 0 && errno() != libc::EINTR {
                libc::_exit(1);
            }
        }
        // Then the rest: `kill(-1)` from a namespace's pid 1 reaches every
        // other process in it (the kernel also catches one being forked
        // meanwhile); reaped until none is left, again after each.
        let mut left = 0u32;
        let mut reaped = 0;
        loop {
            libc::kill(-1, libc::SIGKILL);
            match libc::waitpid(-1, &mut reaped, 0) {
                pid if pid > 0 => left += 1,
                _ if errno() == libc::EINTR => {}
                _ => break, // ECHILD: the namespace is empty
            }
        }
        answer(sock, [status as u32, left]);
    }
}

/// The command's process, until it executes: its three streams as 0, 1
/// and 2 and no other descriptor (the init's socket least of all), a
/// session and a session keyring of its own, the server's directory,
/// then `execve`.
#[cfg(target_os = "linux")]
extern "C" fn command_main(job: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `one` passed its `Job`, alive until this process executes or
    // ends (the init waits: `CLONE_VFORK`).
    let job = unsafe { &mut *job.cast::<Job>() };
    // SAFETY: plain system calls, on C strings and arrays prepared by the
    // init.
    unsafe {
        // Above 2 first, so that moving one to its place cannot overwrite
        // another that arrived there.
        let mut high = [0; 3];
        for (to, from) in high.iter_mut().zip(job.fds) {
            *to = libc::fcntl(from, libc::F_DUPFD, 3);
            if *to < 0 {
                fail(job);
            }
        }
        for (fd, from) in high.into_iter().enumerate() {
            if libc::dup2(from, fd as libc::c_int) < 0 {
                fail(job);
            }
        }
        // Not just close-on-exec: a command that kept the init's socket
        // could send it requests of its own.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) < 0 {
            fail(job);
        }
        // Its own user namespace's maps, the warm one's again (see
        // `enter`): a process may map its own ids in a namespace it made.
        // A failure is not `EACCES`, which the probe takes for success.
        if let Some((uid, ulen, gid, glen)) = job.nest.as_ref() {
            let written = write_file(c"/proc/self/setgroups", b"deny")
                .and_then(|()| write_file(c"/proc/self/uid_map", &uid[..*ulen]))
                .and_then(|()| write_file(c"/proc/self/gid_map", &gid[..*glen]));
            if written.is_err() {
                job.errno = match errno() {
                    libc::EACCES | 0 => libc::EPERM,
                    e => e,
                };
                libc::_exit(127);
            }
        }
        if libc::setsid() < 0 {
            fail(job);
        }
        // A session keyring of its own, as it has a session of its own: a
        // command may hand its session keyring to its parent, the init
        // (`KEYCTL_SESSION_TO_PARENT`), which every later command in the
        // namespace would inherit, keys and all. Nor does it get the
        // server's. Where keys are refused (a seccomp profile, a full
        // quota), it keeps what it inherited.
        libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()); // KEYCTL_JOIN_SESSION_KEYRING, anonymous
        if *job.dir != 0 && libc::chdir(job.dir) < 0 {
            fail(job);
        }
        libc::execve(job.path, job.argv, job.envp);
        if errno() == libc::ENOEXEC {
            libc::execve(*job.sh, job.sh, job.envp);
        }
        fail(job)
    }
}

/// Leaves `errno` where the init reads it, and ends the command's process.
#[cfg(target_os = "linux")]
fn fail(job: &mut Job) -> ! {
    job.errno = match errno() {
        0 => libc::EINVAL,
        e => e,
    };
    // SAFETY: `_exit` does not return.
    unsafe { libc::_exit(127) }
}
