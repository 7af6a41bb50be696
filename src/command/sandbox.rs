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
//!   from it, checked before each: `init::Inherited`), and serves requests on
//!   the socket (`init::serve`): a
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
//! what its commands inherit from it was changed (`init::Inherited`).
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
mod init;
#[cfg(target_os = "linux")]
use init::init_main;

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
