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
//!  server thread ─fork (std)─▶ relay ─clone(CLONE_VM|CLONE_NEWPID)─▶ init (pid 1) ─clone(CLONE_VM)─▶ command (pid 2)
//!   Child::id() is the relay     waits for init,                    reaps orphans,                  setsid, execve:
//!   SIGKILL to it ends all       passes its status on               ends with the                   sh, ls, ...
//!                                dies with the server               command, and all
//!                                thread (PDEATHSIG)                 with it
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
//! * The **command** starts a session of its own (`setsid`) and executes
//!   the program with the arguments and environment prepared before the
//!   fork ([`Target`]), its three pipes as `std` set them up for the relay.
//!
//! Only the relay is a fork, the one copy of the server's page tables a
//! command costs (a fork and its copy-on-write faults are the dearest
//! part of starting a process here, ~0.15 ms of a 1 ms `echo`). The init
//! shares the relay's memory (`CLONE_VM`) on a stack of its own, and the
//! command shares it too until it executes, as a process `posix_spawn`
//! starts does: the relay's memory is a private copy, so neither can
//! touch the server's, and all three run only the plain system calls
//! below, on data prepared before the fork.
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
//! locks, no `std` I/O. The code here makes plain system calls only, on
//! data prepared before the fork ([`Plan`], [`Target`]), and starts the
//! init and the command with the C library's `clone` wrapper, which only
//! switches stacks (its `fork` runs handlers and takes locks). The relay,
//! the init and the command share one C `errno` (one thread's storage,
//! in one memory): each reads it right after its own failed call, while
//! the others are blocked in `waitpid` or make calls that do not fail
//! (the relay's `waitpid` misreading an `EINTR` would end the command,
//! never let it outlive anything). No handler of the server's runs in
//! them: every signal is blocked across the init's clone and put back to
//! its default action in the init before it is unblocked, as
//! `posix_spawn` does, and a namespace's pid 1 at its defaults gets no
//! signal from inside the namespace.

#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
use std::ffi::CStr;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What the child side needs, prepared before the fork.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The server's pid: the relay's parent, unless the server is gone.
    server: libc::pid_t,
    /// A user namespace first, with these maps (`"UID UID 1"`, `"GID GID 1"`).
    user: Option<([u8; 32], usize, [u8; 32], usize)>,
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
    let mut probe = Command::new("/");
    probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = prepare(&mut probe, &plan, None).map_err(|e| e.to_string())?;
    let mut child = probe.spawn().map_err(|e| e.to_string())?;
    drop(probe);
    if let Some(e) = started.failed() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.to_string());
    }
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

/// What a command's process executes, prepared before the fork: the
/// program's path, its arguments and its environment as C strings, with
/// the arrays of pointers `execve` takes. The relay never returns to
/// `std` (its stack is not where the command runs), so the command calls
/// `execve` itself, as `std` would have.
// Off Linux no namespace runs, and nothing executes a target.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Target {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// `/bin/sh PATH ARGS...`, for a file the kernel cannot execute
    /// (`ENOEXEC`): a script without a `#!` line, run by the shell as
    /// `execvp` (and so `std`) runs it.
    sh_argv: Vec<CString>,
    sh_ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into the `CString`s the same value owns, whose
// heap buffers do not move; nothing mutates them.
unsafe impl Send for Target {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Target {}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("path", &self.path)
            .field("argv", &self.argv)
            .field("env", &self.envp.len())
            .finish()
    }
}

impl Target {
    /// `path` run with `argv` (its `argv[0]` first) in `env`. A NUL byte in
    /// any of them is `InvalidInput`, as `std` has it.
    pub(crate) fn new<I>(path: &Path, argv: &[&OsStr], env: I) -> io::Result<Target>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let c = |bytes: &[u8]| {
            CString::new(bytes)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a command"))
        };
        let path = c(path.as_os_str().as_bytes())?;
        let argv = argv
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = env
            .into_iter()
            .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<io::Result<Vec<_>>>()?;
        let mut sh_argv = vec![c(b"/bin/sh")?, path.clone()];
        sh_argv.extend(argv.iter().skip(1).cloned());
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(Target {
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            sh_ptrs: ptrs(&sh_argv),
            path,
            argv,
            envp,
            sh_argv,
        })
    }
}

/// The server's end of a pipe the command's process writes its `errno`
/// to if it cannot start (`execve` failed): read once `spawn` has
/// returned, which it does only once the command has executed or ended.
#[derive(Debug)]
pub(crate) struct Started(Option<OwnedFd>);

impl Started {
    /// The error the command's process met before it could run, if any:
    /// waits until it has executed (or ended). Call it once `spawn` has
    /// returned and the `Command` (which holds a copy of the other end) is
    /// dropped.
    pub(crate) fn failed(&self) -> Option<io::Error> {
        let fd = self.0.as_ref()?;
        let mut word = [0u8; 4];
        let mut got = 0;
        while got < word.len() {
            match rustix::io::read(fd, &mut word[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
        (got == word.len()).then(|| io::Error::from_raw_os_error(i32::from_ne_bytes(word)))
    }
}

/// Sets `command` up to run in a PID namespace of its own as [`Plan`]
/// says (see the module docs): its process becomes the relay, and the
/// command executes `target`. Without a target (the probe), the command's
/// process ends before `exec`, with status 0. `std`'s own program and
/// arguments go unused, its standard streams do not.
pub(crate) fn prepare(
    command: &mut Command,
    plan: &Plan,
    target: Option<Target>,
) -> io::Result<Started> {
    let mut plan = plan.clone();
    // This process's pid now, not at the probe: a program may have forked
    // since.
    plan.server = std::process::id() as libc::pid_t;
    let (failed_read, failed_write) = cloexec_pipe()?;
    // Above the three standard streams, which `std` sets up in the relay
    // over whatever had their numbers (a server started with one closed
    // gets it back from `pipe2`).
    let failed_write = match failed_write.as_raw_fd() {
        0..=2 => rustix::io::fcntl_dupfd_cloexec(&failed_write, 3)?,
        _ => failed_write,
    };
    // SAFETY: `enter` makes only async-signal-safe system calls, on data
    // prepared before the fork, and allocates nothing.
    unsafe {
        command.pre_exec(move || enter(&plan, target.as_ref(), failed_write.as_raw_fd()));
    }
    Ok(Started(Some(failed_read)))
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

/// Ends this process as `status` (a `waitpid` status) says its child
/// ended: the same exit code, or the same signal.
#[cfg(target_os = "linux")]
fn end_as(status: libc::c_int) -> ! {
    // SAFETY: plain system calls; `_exit` does not return.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            default_action(signal);
            block_signals(false); // the relay blocked them all
            let me = libc::syscall(libc::SYS_getpid) as libc::pid_t;
            libc::kill(me, signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// A pipe whose both ends close on `exec`: at once where the system has
/// `pipe2` (no other thread's child can inherit it meanwhile), else set
/// right after (macOS: no namespace runs there, and only the probe gets
/// this far).
fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
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

/// What the init and the command need from the relay, on the relay's
/// stack (it never returns, so the frame outlives them both).
#[cfg(target_os = "linux")]
struct Start<'a> {
    /// The init's end of its pipe to the relay.
    to_relay: libc::c_int,
    /// The relay's end, closed in the init.
    from_init: libc::c_int,
    /// What the command executes; `None` for the probe.
    target: Option<&'a Target>,
    /// Where the command's process writes its `errno` if it cannot start.
    failed: libc::c_int,
}

/// The child side, from the relay on (see the module docs). Returns only
/// with an error met before the init exists; else the relay ends as the
/// command did.
#[cfg(target_os = "linux")]
fn enter(plan: &Plan, target: Option<&Target>, failed: libc::c_int) -> io::Result<()> {
    // The relay.
    die_with_parent(plan.server)?;
    if let Some((uid, ulen, gid, glen)) = &plan.user {
        // SAFETY: plain system calls; this process has one thread.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWUSER))?;
            // A server holding a token is not dumpable, and a process that
            // is not may not write its own maps, unless it is root (its
            // `/proc` files are then root's): dumpable just for that, and
            // not again below. A window of some microseconds in which a
            // process of the same user (another client's command) could
            // open this one's `/proc/PID/mem`, a copy of the server's; root
            // has none.
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
    // The init tells the relay how the command ended through this pipe;
    // and finds the relay gone if its end has no reader.
    // Raw from here: the relay, the init and the command close them
    // themselves, each its own way, and none of them returns.
    let (from_init, to_relay) = cloexec_pipe()?;
    use std::os::fd::IntoRawFd;
    let (from_init, to_relay) = (from_init.into_raw_fd(), to_relay.into_raw_fd());
    let start = Start {
        to_relay,
        from_init,
        target,
        failed,
    };
    // The init shares this process's memory (`CLONE_VM`), on a stack of
    // its own: no copy of the server's page tables is made for it, as a
    // fork would. Both are copies of the server, neither dumpable (the
    // flag is the memory's). With it, an IPC namespace: System V shared
    // memory, semaphores and message queues the command makes end with
    // the namespace, as its processes do.
    // Every signal blocked across the clone, as `posix_spawn` does: none
    // can run a handler of the server's in the init before it has put
    // them all back to their defaults. The relay keeps them blocked; it
    // needs none (SIGKILL, which ends it, cannot be blocked).
    block_signals(true);
    // SAFETY: the stack is ours (this process's copy of `STACKS`) and
    // grows down from its top; `init` makes plain system calls only and
    // never returns; `start` lives in this frame, which `relay` never
    // leaves.
    let init = check(unsafe {
        libc::clone(
            init_main,
            (&raw mut STACKS).cast::<u8>().add(STACK).cast(),
            libc::CLONE_VM | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::SIGCHLD,
            (&raw const start).cast_mut().cast(),
        )
    })?;
    relay(init, from_init)
}

/// Reports `errno` to the server through `failed`, and ends this process.
#[cfg(target_os = "linux")]
fn fail(failed: libc::c_int, status: libc::c_int) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: plain system calls on a valid buffer.
    unsafe {
        libc::write(failed, errno.to_ne_bytes().as_ptr().cast(), 4);
        libc::_exit(status)
    }
}

/// The init, pid 1 of the new namespace: starts the command, then reaps
/// (see [`init_loop`]).
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
            fail(start.failed, 1);
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
    // Nothing of the server's is held past this point: the command gets
    // its three streams, the pipe its `errno` would go to, and the init's
    // own pipe (which it closes).
    close_from_but(3, [start.to_relay, start.failed]);
    // The command shares this memory too until it executes, as a process
    // `posix_spawn` starts does: again no copy. It reads only what the
    // relay prepared (`start`, the target), on a stack of its own.
    // SAFETY: the upper half of this process's `STACKS` is free; `command`
    // makes plain system calls only and ends in `execve` or `_exit`.
    let command = unsafe {
        libc::clone(
            command_main,
            (&raw mut STACKS).cast::<u8>().add(2 * STACK).cast(),
            libc::CLONE_VM | libc::SIGCHLD,
            start as *const Start as *mut libc::c_void,
        )
    };
    if command < 0 {
        fail(start.failed, 1);
    }
    init_loop(command, start.to_relay)
}

/// The command's process, until it executes: a session of its own, no
/// descriptor of the server's but its three streams, then `execve`.
#[cfg(target_os = "linux")]
extern "C" fn command_main(start: *mut libc::c_void) -> libc::c_int {
    // SAFETY: as in `init`.
    let start = unsafe { &*start.cast::<Start>() };
    // SAFETY: plain system calls, on C strings and arrays prepared before
    // the fork.
    unsafe {
        libc::close(start.to_relay);
        if libc::setsid() < 0 {
            fail(start.failed, 127);
        }
        close_inherited_on_exec();
        let Some(target) = start.target else {
            libc::_exit(0) // the probe
        };
        libc::execve(
            target.path.as_ptr(),
            target.argv_ptrs.as_ptr(),
            target.envp_ptrs.as_ptr(),
        );
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOEXEC) {
            libc::execve(
                target.sh_argv[0].as_ptr(),
                target.sh_ptrs.as_ptr(),
                target.envp_ptrs.as_ptr(),
            );
        }
        fail(start.failed, 127)
    }
}

#[cfg(not(target_os = "linux"))]
fn enter(_plan: &Plan, _target: Option<&Target>, _failed: libc::c_int) -> io::Result<()> {
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
