//! Running one command: split it, check it against the allowlist, spawn
//! it, read both pipes at once, hand each piece of output on as it comes,
//! enforce the timeout and the output cap, and end every process it
//! started before the reply goes.
//!
//! The child runs in a warm PID namespace of its own ([`super::warm`]), or, where
//! the system allows none, in a session of its own with the marker
//! [`contain`] looks for; either way with an environment without the
//! server's token. Two threads serve a command that runs for more than a
//! moment or writes more than a little, both scoped to it: a pipe reader
//! (it hashes what it reads, so md5 work runs beside the command and the
//! sending) and a watchdog that kills the command at its deadline even
//! while the handler is blocked writing to a client that does not read.
//! In a namespace, the first [`QUICK`] of a command are spent in the
//! handler's thread alone, reading and waiting for the init's answer in
//! one `poll`: most commands end within it (an `echo` in about a
//! millisecond), and starting the two threads would cost about a tenth of
//! their run. Reading ends once the main process has exited and
//! [`DRAIN`] has passed, whoever still holds the pipes (in a namespace,
//! nobody: its init has ended them all); then the scan's
//! [`contain::Tree::end_all`] kills and reaps the rest.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use super::allow::Allowlist;
use super::contain::{self, Tree};
use super::sandbox;
use super::warm::{Job, Pool, Request};
use super::{CommandConfig, CommandError};

/// The environment variable the example server reads its token from; never
/// passed on to a command.
pub const TOKEN_ENV: &str = "SOCKETSERVER_TOKEN";
/// How often a running command checks on its main process and its client.
const TICK: Duration = Duration::from_millis(50);
/// How often a running command's process tree is looked at.
const SCAN: Duration = Duration::from_millis(100);
/// How long output is still read after the main process exits: what its
/// background processes write after that is dropped, and they are killed.
pub(crate) const DRAIN: Duration = Duration::from_millis(100);
/// How long to wait for the pipes to close after a kill.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// Past the deadline by this much, a handler still blocked writing output
/// to its client hangs up on it: the client is not reading.
pub(crate) const HANG_UP: Duration = Duration::from_secs(1);
/// The most a reader takes from a pipe at once.
const READ_SIZE: usize = 256 << 10;
/// What it takes at first, until a read fills that.
const FIRST_READ: usize = 16 << 10;
/// How many pieces of output may wait to be sent: with the pipes' own
/// buffers, what bounds a command's memory while its client reads slowly.
const QUEUE: usize = 8;
/// How long a command in a namespace runs before it gets its reader and
/// watchdog threads, if it has not ended by then (see `quick`).
const QUICK: Duration = Duration::from_millis(20);
/// How much output it may write before, at most.
const QUICK_OUTPUT: usize = 16 << 10;

/// Which of the command's output pipes a piece came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipe {
    Stdout,
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ending {
    /// Its exit code, if it exited rather than being killed by a signal.
    pub(crate) exit: Option<i32>,
    /// The signal that ended it, if one did.
    pub(crate) signal: Option<i32>,
    /// It ran past the timeout and was killed.
    pub(crate) timed_out: bool,
    /// Its output passed the cap; it was killed and the output cut.
    pub(crate) truncated: bool,
    /// Its client went away, so it was killed.
    pub(crate) cancelled: bool,
    /// Processes it left running after its main process ended, killed.
    pub(crate) stragglers: usize,
}

/// Turns a command line into the program and its arguments, and checks
/// them against the allowlist.
pub(crate) fn argv(line: &str, config: &CommandConfig) -> Result<Vec<String>, CommandError> {
    if line.trim().is_empty() {
        return Err(CommandError::Empty);
    }
    if config.shell {
        return Ok(vec!["sh".into(), "-c".into(), line.into()]);
    }
    let words = shlex::split(line).ok_or(CommandError::UnbalancedQuotes)?;
    if words.is_empty() {
        return Err(CommandError::Empty);
    }
    if let Some(allowed) = &config.allow {
        let list = Allowlist::parse(allowed).map_err(|e| CommandError::Server(e.to_string()))?;
        if !list.permits(&words) {
            return Err(CommandError::NotAllowed(line.trim().to_owned()));
        }
    }
    Ok(words)
}

/// Where each piece of output goes, with its md5, as it arrives.
pub(crate) type OutputSink<'a> = &'a mut dyn FnMut(Pipe, &[u8], md5::Digest) -> io::Result<()>;

enum Event {
    Output(Pipe, Vec<u8>, md5::Digest),
    Closed,
}

/// Reads both pipes to their ends, hashing each piece and passing it on;
/// or stops within one [`TICK`] of `stop`, whoever still holds the pipes'
/// other ends. One thread for both: the pipes are non-blocking, each pass
/// reads every open pipe once, and only a pass that found nothing waits,
/// in `poll` on all of them (with a timeout), so a busy pipe costs no
/// extra system call and an idle one no thread.
///
/// Once `stop` is set, one more pass takes what the pipes hold (all the
/// main process wrote before it exited is there: a pipe holds 64 KiB, a
/// read takes up to [`READ_SIZE`]), however late this thread runs, and
/// then it stops, however fast what is left keeps writing.
fn drain(mut open: Vec<(File, Pipe)>, events: SyncSender<Event>, stop: &AtomicBool) {
    // Small at first: most commands write a few lines, and a large buffer
    // is a fresh mapping to fault in and unmap per command. A read that
    // fills it means a busy pipe, and the buffer grows.
    let mut buf = vec![0u8; FIRST_READ];
    while !open.is_empty() {
        let stopping = stop.load(Ordering::SeqCst);
        let mut idle = true;
        let mut i = 0;
        while i < open.len() {
            let (pipe, which) = &mut open[i];
            match pipe.read(&mut buf) {
                Ok(n) if n > 0 => {
                    idle = false;
                    let piece = buf[..n].to_vec();
                    let digest = md5::compute(&piece);
                    if events.send(Event::Output(*which, piece, digest)).is_err() {
                        return; // reading has ended
                    }
                    if n == buf.len() && buf.len() < READ_SIZE {
                        buf.resize(READ_SIZE, 0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // End of stream, or a pipe that cannot be read.
                _ => {
                    open.swap_remove(i);
                    if events.send(Event::Closed).is_err() {
                        return;
                    }
                    continue;
                }
            }
            i += 1;
        }
        if stopping {
            return; // that was the last pass
        }
        if idle && !open.is_empty() {
            let mut fds: Vec<_> = open
                .iter()
                .map(|(pipe, _)| rustix::event::PollFd::new(pipe, rustix::event::PollFlags::IN))
                .collect();
            let tick = rustix::event::Timespec::try_from(TICK).ok();
            let _ = rustix::event::poll(&mut fds, tick.as_ref());
        }
    }
}

/// Where the handler takes the command's output from: what `quick` read
/// first, then what the reader sends.
struct Inbox {
    early: VecDeque<Event>,
    inbox: mpsc::Receiver<Event>,
}

impl Inbox {
    /// The next event, waiting up to `wait` for the reader's.
    fn next(&mut self, wait: Duration) -> Result<Event, RecvTimeoutError> {
        match self.early.pop_front() {
            Some(event) => Ok(event),
            None => self.inbox.recv_timeout(wait),
        }
    }
}

/// What the handler and the watchdog share about one command.
struct Shared {
    watch: Watch,
    /// Set by the watchdog when it killed the command at its deadline.
    timed_out: AtomicBool,
}

/// How the command's processes are held together.
enum Watch {
    /// In a PID namespace ([`sandbox`]): a pidfd on its relay. Killing
    /// the relay ends the namespace, and the kernel every process in it.
    Kernel(OwnedFd),
    /// Found by looking ([`contain`]).
    Scan(Mutex<Tree>),
}

impl Shared {
    fn kill(&self) {
        match &self.watch {
            Watch::Kernel(relay) => sandbox::kill(relay),
            Watch::Scan(tree) => {
                lock(tree).kill_all(false);
            }
        }
    }

    /// Remembers who is below the command now (the scan only).
    fn watch(&self) {
        if let Watch::Scan(tree) = &self.watch {
            lock(tree).watch();
        }
    }

    /// Once the main process is reaped: ends what is left, and says how
    /// many processes that was. In a namespace, its init has done that
    /// before answering (or, killed, took the namespace with it).
    fn end(&self, child: &Process<'_>) -> usize {
        match (&self.watch, child) {
            (Watch::Scan(tree), Process::Plain(_)) => {
                let mut tree = lock(tree);
                tree.end_all(true);
                tree.stragglers.len()
            }
            (_, Process::Warm(job)) => job.stragglers(),
            (Watch::Kernel(_), Process::Plain(_)) => 0,
        }
    }
}

/// A poisoned lock only means a scan panicked; the tree is still the best
/// knowledge there is.
fn lock(tree: &Mutex<Tree>) -> std::sync::MutexGuard<'_, Tree> {
    tree.lock().unwrap_or_else(|e| e.into_inner())
}

/// The command's main process: a `std` child (the scan), or a job in a
/// warm namespace ([`super::warm`]).
enum Process<'a> {
    Plain(Child),
    Warm(Job<'a>),
}

impl Process<'_> {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self {
            Process::Plain(child) => child.try_wait(),
            Process::Warm(job) => job.try_wait(),
        }
    }

    fn wait(&mut self) -> io::Result<ExitStatus> {
        match self {
            Process::Plain(child) => child.wait(),
            Process::Warm(job) => job.wait(),
        }
    }

    /// Kills the main process only: what the scan then finds is its own.
    fn kill(&mut self) {
        match self {
            Process::Plain(child) => drop(child.kill()),
            Process::Warm(job) => job.kill(),
        }
    }

    /// Waits up to `at_most` for the main process to end, where there is
    /// something to wait on (a warm namespace's answer); `false` where
    /// there is not.
    fn wait_exit(&self, at_most: Duration) -> bool {
        let Process::Warm(job) = self else {
            return false;
        };
        let ready = job.ready();
        let mut fds = [rustix::event::PollFd::new(
            &ready,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec::try_from(at_most).ok();
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        true
    }
}

/// Spawns the command with stdin from /dev/null and the token removed:
/// in a warm PID namespace from `pool` if there is one ([`super::warm`]),
/// else in a session of its own with `marker` set, for the scan
/// ([`contain`]). Returns it with the read ends of its stdout and stderr.
/// `None` if a namespace's init had not started it by `deadline`: the
/// command timed out before it ran.
fn spawn<'a>(
    program: &str,
    args: &[String],
    pool: Option<&'a Pool>,
    marker: Option<&str>,
    deadline: Option<Instant>,
) -> Result<Option<(Process<'a>, File, File)>, CommandError> {
    // Found here, once, rather than by `execvp` in the child, which tries
    // every directory of PATH with an `execve` of its own.
    let path = resolve(program).ok_or_else(|| CommandError::UnknownProgram(program.to_owned()))?;
    let cannot_start = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput => {
            CommandError::UnknownProgram(program.to_owned())
        }
        // EAGAIN from fork (a process limit) is no socket timeout.
        // Told to the client, whose connection goes on.
        _ => CommandError::Server(format!("cannot start {program}: {e}")),
    };
    if let Some(pool) = pool {
        // The namespace's init executes the program with these arguments,
        // this environment and this directory, on these pipes.
        let argv: Vec<&OsStr> = std::iter::once(OsStr::new(program))
            .chain(args.iter().map(OsStr::new))
            .collect();
        let env = std::env::vars_os().filter(|(k, _)| k != TOKEN_ENV);
        let dir = std::env::current_dir().ok();
        let request = Request::new(dir.as_deref(), &path, &argv, env).map_err(cannot_start)?;
        let (out, out_w) = sandbox::cloexec_pipe().map_err(cannot_start)?;
        let (err, err_w) = sandbox::cloexec_pipe().map_err(cannot_start)?;
        let job = match pool.start(&request, out_w.as_fd(), err_w.as_fd(), deadline) {
            Ok(job) => job,
            // A deadline shorter than a new namespace takes to answer
            // (1 ms, on a loaded machine): it never ran, and timed out.
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut
                    && deadline.is_some_and(|d| Instant::now() >= d) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(cannot_start(e)),
        };
        // Only the command holds the write ends now: they close with it.
        drop((out_w, err_w));
        return Ok(Some((Process::Warm(job), File::from(out), File::from(err))));
    }
    let mut command = Command::new(&path);
    command.arg0(program).args(args).env_remove(TOKEN_ENV);
    if let Some(marker) = marker {
        command.env(contain::MARKER_ENV, marker);
    }
    sandbox::prepare_plain(&mut command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(cannot_start)?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CommandError::Io(io::Error::other(
            "the child's pipes are missing",
        )));
    };
    Ok(Some((
        Process::Plain(child),
        File::from(OwnedFd::from(out)),
        File::from(OwnedFd::from(err)),
    )))
}

/// Where `execvp` would find `program`: as given if it names a path,
/// else the first executable file of that name in the server's PATH.
fn resolve(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `argv` under `config`'s timeout and output cap, handing each piece
/// of output to `output` (with its md5) as it arrives. `client_gone` is
/// asked now and then while it runs; if it says yes, the command is killed.
/// `hang_up` is called (from another thread) if the command's deadline is
/// [`HANG_UP`] past and `output` is still blocked.
///
/// Returns only once every process the command started that [`contain`]
/// can find is gone, its pipes are closed and its threads have ended.
/// An error from `output` (the client stopped reading) kills the command
/// and is returned after that.
pub(crate) fn run(
    argv: &[String],
    config: &CommandConfig,
    pool: Option<&Pool>,
    client_gone: &dyn Fn() -> bool,
    hang_up: &(dyn Fn() + Sync),
    output: OutputSink<'_>,
) -> Result<Ending, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    // No deadline past what an `Instant` can hold (`Duration::MAX`): the
    // command runs until it ends, and is still contained then.
    let deadline = Instant::now().checked_add(config.timeout);
    let marker = pool.is_none().then(contain::new_marker);
    // For the scan, held until the tree is made: no sweep sees the child
    // unclaimed.
    let mut claims = pool.is_none().then(contain::claims);
    let Some((mut child, out, err)) = spawn(program, args, pool, marker.as_deref(), deadline)?
    else {
        return Ok(Ending {
            timed_out: true,
            ..Ending::default()
        });
    };
    let watch = match (&mut claims, &marker, &child) {
        (Some(claims), Some(marker), Process::Plain(plain)) => {
            let pipes = [out.as_raw_fd(), err.as_raw_fd()]
                .into_iter()
                .filter_map(contain::fd_link)
                .collect();
            Ok(Watch::Scan(Mutex::new(Tree::new(
                claims,
                plain.id() as i32,
                marker,
                pipes,
                config.subreaper && cfg!(target_os = "linux"),
                config.kill_unclaimed_orphans,
            ))))
        }
        (_, _, Process::Warm(job)) => job.killer().map(Watch::Kernel),
        _ => Err(io::Error::other(
            "a command with neither a namespace nor a scan",
        )),
    };
    drop(claims);
    let watch = match watch {
        Ok(watch) => watch,
        Err(e) => {
            child.kill();
            let _ = child.wait();
            return Err(CommandError::Io(e));
        }
    };
    let nonblocking =
        rustix::io::ioctl_fionbio(&out, true).and_then(|()| rustix::io::ioctl_fionbio(&err, true));
    let shared = Shared {
        watch,
        timed_out: AtomicBool::new(false),
    };
    if let Err(e) = nonblocking {
        shared.kill();
        let _ = child.wait();
        return Err(CommandError::Io(e.into()));
    }
    let pipes = vec![(out, Pipe::Stdout), (err, Pipe::Stderr)];
    // In a namespace, the first moments in this thread alone (see `quick`).
    let (early, pipes, ended) = match &child {
        Process::Warm(job) => {
            let until = Instant::now() + QUICK;
            quick(job.ready(), pipes, deadline.map_or(until, |d| d.min(until)))
        }
        Process::Plain(_) => (VecDeque::new(), pipes, false),
    };
    // What is left after `read_output`: the main process reaped, and
    // every other process the command started ended.
    let finish = |child: &mut Process<'_>,
                  result: Result<(Option<ExitStatus>, Ending), CommandError>| {
        // Whatever happened, nothing the command started outlives it: the
        // main process first (its status is the reply's), then the rest.
        let status = match &result {
            Ok((Some(status), _)) => Ok(*status),
            _ => {
                shared.kill();
                child.wait()
            }
        };
        let stragglers = shared.end(child);
        let (_, mut ending) = result?;
        let status = status?;
        ending.exit = status.code();
        ending.signal = status.signal();
        ending.stragglers = stragglers;
        // The watchdog may have killed it after `read_output` last looked
        // at its flag and before the reap: a command that died of that
        // SIGKILL timed out. One that ended on its own as the deadline
        // came did not, whatever the flag says.
        if status.signal() == Some(libc::SIGKILL) && shared.timed_out.load(Ordering::SeqCst) {
            ending.timed_out = true;
        }
        Ok(ending)
    };
    let stop = AtomicBool::new(false);
    let (events, inbox) = mpsc::sync_channel(QUEUE);
    if ended {
        // Ended, its pipes closed, its output in `early`: nothing is left
        // to read or to time, so no thread is started. Its output goes to
        // the client here (a client that does not read is held to the
        // connection's deadline: the command cannot overrun its own).
        drop(events);
        let result = read_output(
            &mut child,
            config,
            &shared,
            &stop,
            Inbox { early, inbox },
            client_gone,
            output,
        );
        return finish(&mut child, result);
    }
    let (finished, watchdog_inbox) = mpsc::channel::<()>();
    thread::scope(|scope| {
        let (stop, shared) = (&stop, &shared);
        // The watchdog first: no command runs without its deadline. A
        // thread that cannot start (a task limit the command itself may
        // have filled) fails the command, never leaves it unwatched.
        let watchdog = thread::Builder::new().spawn_scoped(scope, move || {
            let Some(deadline) = deadline else {
                let _ = watchdog_inbox.recv(); // no deadline: wait for the end
                return;
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            if watchdog_inbox.recv_timeout(wait) != Err(RecvTimeoutError::Timeout) {
                return; // finished in time
            }
            shared.timed_out.store(true, Ordering::SeqCst);
            shared.kill();
            if watchdog_inbox.recv_timeout(HANG_UP) == Err(RecvTimeoutError::Timeout) {
                hang_up();
            }
        });
        let reader = match watchdog {
            Ok(_) => thread::Builder::new().spawn_scoped(scope, move || drain(pipes, events, stop)),
            Err(e) => Err(e),
        };
        if let Err(e) = reader {
            drop(finished);
            shared.kill();
            let _ = child.wait();
            shared.end(&child);
            return Err(CommandError::Server(format!(
                "cannot watch the command: no thread ({e})"
            )));
        }
        let result = read_output(
            &mut child,
            config,
            shared,
            stop,
            Inbox { early, inbox },
            client_gone,
            output,
        );
        drop(finished); // the watchdog stands down
        stop.store(true, Ordering::SeqCst);
        finish(&mut child, result)
    })
}

/// The first moments of a command in a namespace, in the handler's own
/// thread: most commands (an `echo`, an `ls`) end within them having
/// written little, and then need neither a reader nor a watchdog thread
/// (starting and joining the two costs about a tenth of running `echo`).
/// Reads both pipes and waits for the init's answer at once, in one
/// `poll`, until `until` (at most [`QUICK`], never past the deadline) or
/// [`QUICK_OUTPUT`] bytes. Returns what it read (as the reader's events,
/// in order), the pipes still open, and whether the command has ended
/// with both pipes closed: then nothing is left to watch. Otherwise
/// [`run`] goes on as if it had started with this output.
fn quick(
    ready: BorrowedFd<'_>,
    mut open: Vec<(File, Pipe)>,
    until: Instant,
) -> (VecDeque<Event>, Vec<(File, Pipe)>, bool) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut events = VecDeque::new();
    let mut taken = 0;
    let mut ended = false;
    let mut buf = [0u8; 4096];
    loop {
        let mut i = 0;
        while i < open.len() {
            let (pipe, which) = &mut open[i];
            match pipe.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let piece = buf[..n].to_vec();
                    let digest = md5::compute(&piece);
                    events.push_back(Event::Output(*which, piece, digest));
                    taken += n;
                    if taken >= QUICK_OUTPUT {
                        return (events, open, false); // a busy one: threads
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => i += 1,
                // End of stream, or a pipe that cannot be read.
                _ => {
                    open.swap_remove(i);
                    events.push_back(Event::Closed);
                }
            }
        }
        // The init answers after every process in the namespace: the pipes
        // are at their end once read.
        if ended && open.is_empty() {
            return (events, open, true);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (events, open, false);
        }
        let mut fds: Vec<_> = open
            .iter()
            .map(|(pipe, _)| PollFd::new(pipe, PollFlags::IN))
            .collect();
        if !ended {
            fds.push(PollFd::new(&ready, PollFlags::IN));
        }
        let timeout = Timespec::try_from(left).ok();
        if poll(&mut fds, timeout.as_ref()).is_err() {
            return (events, open, false); // the threads take over
        }
        if !ended && fds.last().is_some_and(|fd| !fd.revents().is_empty()) {
            ended = true;
        }
    }
}

/// The handler's side while the command runs: output to `output`, checks
/// on the deadline, the cap and the client. Ends when the main process
/// has exited and its pipes are closed, or [`DRAIN`] has passed and the
/// readers have taken what the pipes held (within a [`TICK`], or
/// [`KILL_GRACE`] at most), or after a kill. Returns the main process's
/// status if it was reaped.
fn read_output(
    child: &mut Process<'_>,
    config: &CommandConfig,
    shared: &Shared,
    stop: &AtomicBool,
    mut inbox: Inbox,
    client_gone: &dyn Fn() -> bool,
    output: OutputSink<'_>,
) -> Result<(Option<ExitStatus>, Ending), CommandError> {
    let mut ending = Ending::default();
    let mut failed: Option<io::Error> = None;
    let mut budget = config.max_output;
    let mut killed_at: Option<Instant> = None;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut open_pipes = 2;
    let mut next_tick = Instant::now();
    let mut next_scan = Instant::now() + SCAN;
    let mut reap_backoff = Duration::from_micros(50);
    loop {
        let now = Instant::now();
        if killed_at.is_none() && shared.timed_out.load(Ordering::SeqCst) {
            ending.timed_out = true;
            killed_at = Some(now);
        }
        if exited.is_none() && (open_pipes == 0 || now >= next_tick) {
            if let Some(status) = child.try_wait()? {
                exited = Some((status, now));
            }
        }
        if let Some((status, at)) = exited {
            // Past the drain period the readers stop, each after one last
            // read of what its pipe holds: output the main process wrote
            // is not lost to a reader the scheduler ran late. Then (or
            // [`KILL_GRACE`] later, if they are not even run by then) the
            // reply goes.
            if now >= at + DRAIN {
                stop.store(true, Ordering::SeqCst);
            }
            if open_pipes == 0 || now >= at + DRAIN + KILL_GRACE {
                if let Some(e) = failed {
                    return Err(CommandError::Io(e));
                }
                return Ok((Some(status), ending));
            }
        }
        if killed_at.is_some_and(|at| now >= at + KILL_GRACE) {
            // Killed, and still not reaped or the pipes still open:
            // containment takes it from here.
            if let Some(e) = failed {
                return Err(CommandError::Io(e));
            }
            return Ok((exited.map(|(s, _)| s), ending));
        }
        if now >= next_tick {
            next_tick = now + TICK;
            if killed_at.is_none() && client_gone() {
                ending.cancelled = true;
                shared.kill();
                killed_at = Some(now);
            }
            if now >= next_scan && exited.is_none() {
                next_scan = now + SCAN;
                shared.watch();
            }
        }
        if open_pipes == 0 {
            // The output is all in; the child is exiting, or has closed
            // its pipes and runs on. A namespace's init says when it has
            // ended; else poll gently, quickly at first: most are gone
            // within microseconds.
            let wait = next_tick.saturating_duration_since(now);
            if !child.wait_exit(wait.min(Duration::from_millis(5))) {
                thread::sleep(reap_backoff);
                reap_backoff = (reap_backoff * 2).min(Duration::from_millis(5));
            }
            continue;
        }
        let wait = next_tick
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        match inbox.next(wait) {
            Ok(Event::Output(pipe, piece, digest)) => {
                if failed.is_some() || killed_at.is_some() {
                    continue; // nothing more is sent once it is killed
                }
                let (piece, digest) = if piece.len() > budget {
                    ending.truncated = true;
                    shared.kill();
                    killed_at = Some(Instant::now());
                    let kept = &piece[..budget];
                    (kept, md5::compute(kept))
                } else {
                    (&piece[..], digest)
                };
                budget -= piece.len();
                if !piece.is_empty() {
                    if let Err(e) = output(pipe, piece, digest) {
                        shared.kill();
                        killed_at.get_or_insert_with(Instant::now);
                        failed = Some(e);
                    }
                }
            }
            Ok(Event::Closed) => open_pipes -= 1,
            Err(RecvTimeoutError::Timeout) => {}
            // Both readers are gone (a reader can only end by closing).
            Err(RecvTimeoutError::Disconnected) => open_pipes = 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_told_to_stop_before_it_ran_still_takes_what_the_pipe_holds() {
        // The race a loaded machine plays: the command has exited and the
        // drain period passed before its reader read anything.
        let mut child = Command::new("echo")
            .arg("hello")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        child.wait().unwrap();
        rustix::io::ioctl_fionbio(&out, true).unwrap();
        let (events, inbox) = mpsc::sync_channel(QUEUE);
        let stop = AtomicBool::new(true);
        drain(
            vec![(File::from(OwnedFd::from(out)), Pipe::Stdout)],
            events,
            &stop,
        );
        let got: Vec<u8> = inbox
            .try_iter()
            .filter_map(|e| match e {
                Event::Output(_, piece, _) => Some(piece),
                Event::Closed => None,
            })
            .flatten()
            .collect();
        assert_eq!(got, b"hello\n");
    }
}
