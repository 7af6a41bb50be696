//! Warm namespaces: PID namespaces kept between commands, so that a
//! command costs what a plain spawn costs, not a fork of the server and a
//! new namespace.
//!
//! A namespace's init ([`sandbox`]) serves one request after another on a
//! Unix socket: it starts the command, reaps until the command's main
//! process has ended, kills and reaps everything else in the namespace,
//! and answers with the status; only then is the namespace handed to the
//! next command. The [`Pool`] keeps the idle ones (at most one per
//! command slot) and ends each after [`IDLE`] without a command, and all
//! of them when it is dropped; they are started by a keeper thread of
//! their own, because a relay dies with the thread that forked it
//! (`PR_SET_PDEATHSIG`), which must therefore live as long as it.
//!
//! ```text
//!  handler thread ── request + 3 fds (SCM_RIGHTS) ──▶ init ── clone(CLONE_VM|CLONE_VFORK) ──▶ command
//!                 ◀── [started, errno] ──────────────     waitpid, then kill(-1) and reap
//!                 ◀── [status, stragglers] ─────────  (the namespace is empty again)
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustix::net::{
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, recv, send, sendmsg,
};

use super::sandbox::{self, HEADER, NO_CLONE, NO_EXEC, Plan, REQUEST_MAX, STARTED, STRINGS_MAX};

/// How long a warm namespace waits for its next command before it is
/// ended (it may wait up to twice that: the keeper looks that often).
pub(crate) const IDLE: Duration = Duration::from_millis(200);
/// No SIGPIPE for a send to an init that has ended: an error instead
/// (only Linux runs namespaces; elsewhere nothing is sent).
#[cfg(target_os = "linux")]
const NOSIGNAL: SendFlags = SendFlags::NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const NOSIGNAL: SendFlags = SendFlags::empty();
/// How long a new namespace may take to say it is ready.
const READY: Duration = Duration::from_secs(10);

/// One command for an init, encoded: a header of three native-endian
/// `u32`s (the payload's length, the number of arguments, the number of
/// variables), then the directory, the program's path, the arguments and
/// the variables, each ending in NUL.
#[derive(Debug)]
pub(crate) struct Request(Vec<u8>);

impl Request {
    /// `path` run with `argv` (its `argv[0]` first) in `env`, in `dir` (or
    /// the init's directory if `None`). A NUL byte in any of them is
    /// `InvalidInput`, as `std` has it; more than [`REQUEST_MAX`] bytes or
    /// [`STRINGS_MAX`] strings is `E2BIG`, as `execve` would say.
    pub(crate) fn new<I>(
        dir: Option<&Path>,
        path: &Path,
        argv: &[&OsStr],
        env: I,
    ) -> io::Result<Request>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let mut bytes = vec![0u8; HEADER];
        let mut put = |parts: &[&[u8]]| {
            if parts.iter().any(|p| p.contains(&0)) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a NUL byte in a command",
                ));
            }
            parts.iter().for_each(|p| bytes.extend_from_slice(p));
            bytes.push(0);
            Ok(())
        };
        put(&[dir.map_or(&b""[..], |d| d.as_os_str().as_bytes())])?;
        put(&[path.as_os_str().as_bytes()])?;
        for arg in argv {
            put(&[arg.as_bytes()])?;
        }
        let mut envc = 0;
        for (key, value) in env {
            put(&[key.as_bytes(), b"=", value.as_bytes()])?;
            envc += 1;
        }
        let len = bytes.len() - HEADER;
        if len > REQUEST_MAX || argv.len() + envc > STRINGS_MAX || argv.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::E2BIG));
        }
        for (i, word) in [len, argv.len(), envc].into_iter().enumerate() {
            bytes[4 * i..4 * i + 4].copy_from_slice(&(word as u32).to_ne_bytes());
        }
        Ok(Request(bytes))
    }
}

/// One warm namespace, seen from the server: its relay (a child of the
/// keeper thread), a pidfd on it, and the socket to its init.
#[derive(Debug)]
pub(crate) struct Slot {
    sock: UnixStream,
    pidfd: OwnedFd,
    relay: Child,
}

impl Slot {
    /// Starts a namespace and waits until its init is ready.
    pub(crate) fn start(plan: &Plan) -> io::Result<Slot> {
        let (sock, theirs) = UnixStream::pair()?;
        let mut relay = sandbox::start_relay(plan, theirs.into())?;
        // Opened before the relay can be reaped: it stays this relay's.
        let pidfd = match sandbox::handle(&relay) {
            Ok(pidfd) => pidfd,
            Err(e) => {
                let _ = relay.kill();
                let _ = relay.wait();
                return Err(io::Error::other(format!("no pidfd: {e}")));
            }
        };
        let mut slot = Slot { sock, pidfd, relay };
        slot.read_words(Instant::now() + READY)?;
        Ok(slot)
    }

    /// Sends one request with the command's stdin, stdout and stderr, and
    /// waits until its process has executed the program. The outer error:
    /// the namespace is broken; the inner one: the command could not start
    /// (the error `execve` met, as `std`'s `spawn` returns it), and the
    /// init serves on. The answer is waited for until `until` at most.
    fn run(
        &mut self,
        request: &Request,
        fds: [BorrowedFd<'_>; 3],
        until: Instant,
    ) -> io::Result<io::Result<()>> {
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        let bytes = &request.0;
        let mut sent = sendmsg(&self.sock, &[IoSlice::new(bytes)], &mut control, NOSIGNAL)?;
        while sent < bytes.len() {
            sent += send(&self.sock, &bytes[sent..], NOSIGNAL)?;
        }
        // No wait without a deadline: the command's watchdog starts only
        // once this answer is in, and an init stopped from outside its
        // namespace (SIGSTOP from any process of the server's user, a
        // debugger) would never give it. As long as a new namespace may
        // take to say it is ready, and no longer than the command may
        // run; past it the namespace is ended.
        let words = self.read_words(until).map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                "a namespace's init did not answer in time",
            ),
            _ => e,
        })?;
        Ok(match words {
            [STARTED, _] => Ok(()),
            [NO_EXEC, errno] => Err(io::Error::from_raw_os_error(errno as i32)),
            // The init cannot start a process: a limit of its namespaces,
            // which a command of a root server (root in the namespace's
            // user namespace) can set for every command after it. The
            // namespace is ended, not handed to the next command.
            [NO_CLONE, errno] => {
                return Err(io::Error::other(format!(
                    "no process for the command: {}",
                    io::Error::from_raw_os_error(errno as i32)
                )));
            }
            _ => return Err(io::Error::other("a namespace's init broke the protocol")),
        })
    }

    /// The probe: a request for `/`, which no process can execute. Only
    /// `EACCES` from `execve` means every step before it worked.
    pub(crate) fn probe(mut self) -> io::Result<()> {
        let null = File::open("/dev/null")?;
        let request = Request::new(None, Path::new("/"), &[OsStr::new("/")], [])?;
        let fds = [null.as_fd(), null.as_fd(), null.as_fd()];
        match self.run(&request, fds, Instant::now() + READY)? {
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => Ok(()),
            Err(e) => Err(e),
            Ok(()) => Err(io::Error::other("the probe executed /")),
        }
    }

    /// Reads the init's next two words, waiting for them until `until`
    /// (then `TimedOut`).
    fn read_words(&mut self, until: Instant) -> io::Result<[u32; 2]> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut buf = [0u8; 8];
        let mut got = 0;
        while got < buf.len() {
            let left = until.saturating_duration_since(Instant::now());
            // `until` is at most `READY` away: it fits.
            let timeout = Timespec::try_from(left).ok();
            let mut fds = [PollFd::new(&self.sock, PollFlags::IN)];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            match recv(&self.sock, &mut buf[got..], RecvFlags::DONTWAIT) {
                Ok((0, _)) => return Err(ended()),
                Ok((n, _)) => got += n,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(words(buf))
    }
}

impl Drop for Slot {
    /// SIGKILL to the relay: the init dies with it, and the kernel ends
    /// whatever is left in the namespace.
    fn drop(&mut self) {
        sandbox::kill(&self.pidfd);
        let _ = self.relay.wait();
    }
}

fn words(buf: [u8; 8]) -> [u32; 2] {
    let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    [word(0), word(4)]
}

fn ended() -> io::Error {
    io::Error::other("the namespace's init has ended")
}

/// The warm namespaces of one command handler (see the module docs).
#[derive(Debug)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
    /// What every command's stdin is, opened once.
    null: File,
}

#[derive(Debug)]
struct Shared {
    plan: Plan,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Namespaces waiting for a command, each since when.
    idle: Vec<(Slot, Instant)>,
    /// Namespaces alive: idle, running a command, or being started.
    live: usize,
    /// The keeper thread, while any namespace is alive: where to ask it
    /// for a new one.
    keeper: Option<mpsc::Sender<mpsc::SyncSender<io::Result<Slot>>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Pool {
    /// A pool that starts namespaces as `plan` says (see [`sandbox::probe`]).
    pub(crate) fn new(plan: Plan) -> io::Result<Pool> {
        Ok(Pool {
            shared: Arc::new(Shared {
                plan,
                state: Mutex::default(),
            }),
            null: File::open("/dev/null")?,
        })
    }

    /// Whether its namespaces are made in user namespaces.
    pub(crate) fn user_namespace(&self) -> bool {
        self.shared.plan.user_namespace()
    }

    /// Starts a command in a warm namespace (a new one if none is idle):
    /// `request` with stdin from `/dev/null` and `out`, `err` as its
    /// stdout and stderr. Returns once it has executed the program; the
    /// error `execve` met if it could not; `TimedOut` if no answer came
    /// within 10 s or by the command's `deadline`.
    pub(crate) fn start(
        &self,
        request: &Request,
        out: BorrowedFd<'_>,
        err: BorrowedFd<'_>,
        deadline: Option<Instant>,
    ) -> io::Result<Job<'_>> {
        let fds = [self.null.as_fd(), out, err];
        let until = || {
            let ready = Instant::now() + READY;
            deadline.map_or(ready, |d| d.min(ready))
        };
        let (mut slot, warm) = self.take()?;
        let mut answer = slot.run(request, fds, until());
        if answer.is_err() && warm {
            // An idle namespace that ended meanwhile (killed from outside,
            // or by a watchdog that fired as its last command ended):
            // once more, in a new one.
            self.discard(slot);
            slot = self.take_new()?;
            answer = slot.run(request, fds, until());
        }
        match answer {
            Ok(Ok(())) => Ok(Job {
                pool: self,
                slot: Some(slot),
                reply: Vec::with_capacity(8),
                ended: None,
            }),
            Ok(Err(e)) => {
                self.put(slot); // the init answered, and serves on
                Err(e)
            }
            Err(e) => {
                self.discard(slot);
                Err(e)
            }
        }
    }

    /// An idle namespace, the one used last (`true`), or a new one.
    fn take(&self) -> io::Result<(Slot, bool)> {
        if let Some((slot, _)) = lock(&self.shared.state).idle.pop() {
            return Ok((slot, true));
        }
        self.take_new().map(|slot| (slot, false))
    }

    /// A new namespace, started by the keeper thread (started first if
    /// none is running).
    fn take_new(&self) -> io::Result<Slot> {
        let keeper = {
            let mut state = lock(&self.shared.state);
            state.live += 1;
            match &state.keeper {
                Some(keeper) => keeper.clone(),
                None => {
                    let (keeper, orders) = mpsc::channel();
                    let shared = Arc::clone(&self.shared);
                    match thread::Builder::new()
                        .name("socketserver-namespaces".into())
                        .spawn(move || keep(&shared, &orders))
                    {
                        Ok(handle) => {
                            state.handle = Some(handle);
                            state.keeper = Some(keeper.clone());
                            keeper
                        }
                        Err(e) => {
                            state.live -= 1;
                            return Err(e);
                        }
                    }
                }
            }
        };
        let (reply, made) = mpsc::sync_channel(1);
        let slot = match keeper.send(reply) {
            Ok(()) => made
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("the namespace keeper has ended"))),
            Err(_) => Err(io::Error::other("the namespace keeper has ended")),
        };
        if slot.is_err() {
            lock(&self.shared.state).live -= 1;
        }
        slot
    }

    /// A namespace whose command ended cleanly, ready for the next.
    fn put(&self, slot: Slot) {
        lock(&self.shared.state).idle.push((slot, Instant::now()));
    }

    /// A namespace that must not serve again (killed, or broken).
    fn discard(&self, slot: Slot) {
        drop(slot);
        lock(&self.shared.state).live -= 1;
    }
}

impl Drop for Pool {
    /// Ends every idle namespace and the keeper (a running command holds
    /// its job, which borrows the pool: none is running).
    fn drop(&mut self) {
        let (idle, handle) = {
            let mut state = lock(&self.shared.state);
            state.keeper = None;
            (std::mem::take(&mut state.idle), state.handle.take())
        };
        drop(idle);
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The keeper thread: starts the namespaces it is asked for (so that their
/// relays are its children, and die with it), ends those idle past
/// [`IDLE`], and ends itself when none is left, or the pool is dropped.
fn keep(shared: &Shared, orders: &mpsc::Receiver<mpsc::SyncSender<io::Result<Slot>>>) {
    loop {
        match orders.recv_timeout(IDLE) {
            Ok(reply) => {
                let _ = reply.send(Slot::start(&shared.plan));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let mut state = lock(&shared.state);
        let (expired, idle): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(|(_, since)| now.duration_since(*since) >= IDLE);
        state.idle = idle;
        state.live -= expired.len();
        let done = state.live == 0;
        if done {
            state.keeper = None;
            state.handle = None; // this thread's own: detached
        }
        drop(state);
        drop(expired);
        if done {
            return;
        }
    }
}

/// A poisoned lock only means a thread panicked while holding it; the
/// pool's state is still consistent (each change is one statement).
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A command running in a warm namespace: what `std::process::Child` is
/// to the scan.
#[derive(Debug)]
pub(crate) struct Job<'a> {
    pool: &'a Pool,
    slot: Option<Slot>,
    /// The bytes of the init's last answer read so far.
    reply: Vec<u8>,
    /// The command's status and how many processes it left, once known.
    ended: Option<(ExitStatus, usize)>,
}

impl Job<'_> {
    /// Readable once the command has ended, its namespace emptied (or the
    /// namespace has ended).
    pub(crate) fn ready(&self) -> BorrowedFd<'_> {
        self.slot().sock.as_fd()
    }

    /// A pidfd on the namespace's relay, to kill it with from any thread
    /// ([`sandbox::kill`]): the command and all it started end at once,
    /// and this namespace serves no other.
    pub(crate) fn killer(&self) -> io::Result<OwnedFd> {
        self.slot().pidfd.try_clone()
    }

    fn slot(&self) -> &Slot {
        self.slot
            .as_ref()
            .expect("a job holds its slot until dropped")
    }

    /// The status, if the command has ended.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.reap(RecvFlags::DONTWAIT)
    }

    /// The status, once the command has ended.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.reap(RecvFlags::empty())? {
                return Ok(status);
            }
        }
    }

    /// How many processes the command left running when its main process
    /// ended (all killed).
    pub(crate) fn stragglers(&self) -> usize {
        self.ended.map_or(0, |(_, left)| left)
    }

    fn reap(&mut self, flags: RecvFlags) -> io::Result<Option<ExitStatus>> {
        if let Some((status, _)) = self.ended {
            return Ok(Some(status));
        }
        let slot = self
            .slot
            .as_mut()
            .expect("a job holds its slot until dropped");
        let mut buf = [0u8; 8];
        let have = self.reply.len();
        match recv(&slot.sock, &mut buf[have..], flags) {
            Ok((0, _)) => {
                // The namespace has ended (killed): the status is the
                // relay's, as it was before namespaces were warm.
                let status = slot.relay.wait()?;
                self.ended = Some((status, 0));
                return Ok(Some(status));
            }
            Ok((n, _)) => self.reply.extend_from_slice(&buf[have..have + n]),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let Ok(whole) = <[u8; 8]>::try_from(&self.reply[..]) else {
            return Ok(None);
        };
        let [status, left] = words(whole);
        let status = ExitStatus::from_raw(status as i32);
        self.ended = Some((status, left as usize));
        Ok(Some(status))
    }

    /// Kills the command and everything it started, now.
    pub(crate) fn kill(&self) {
        sandbox::kill(&self.slot().pidfd);
    }
}

impl Drop for Job<'_> {
    /// A namespace whose init answered that all is over goes back to the
    /// pool; any other (killed, or left mid-command) is ended.
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        // A kill through any clone of the relay's pidfd (a watchdog that
        // fired as the command ended, after the answer was read) is seen
        // here: its SIGKILL may not have ended the init yet, which could
        // still start the next command, and die under it.
        match self.ended.is_some() && self.reply.len() == 8 && !sandbox::killed(&slot.pidfd) {
            true => self.pool.put(slot),
            false => self.pool.discard(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_its_header_then_each_string_with_its_nul() {
        let argv = [OsStr::new("echo"), OsStr::new("hi")];
        let env = [("A".into(), "1".into())];
        let request =
            Request::new(Some(Path::new("/tmp")), Path::new("/bin/echo"), &argv, env).unwrap();
        let (header, payload) = request.0.split_at(HEADER);
        assert_eq!(payload, b"/tmp\0/bin/echo\0echo\0hi\0A=1\0");
        let word = |i: usize| u32::from_ne_bytes(header[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!([word(0), word(1), word(2)], [payload.len() as u32, 2, 1]);
    }

    #[test]
    fn a_nul_is_invalid_input_and_too_much_is_e2big_as_execve_says() {
        let nul = Request::new(None, Path::new("/bin/echo"), &[OsStr::new("a\0b")], []);
        assert_eq!(nul.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let big = "x".repeat(REQUEST_MAX);
        let e2big = Request::new(None, Path::new("/bin/echo"), &[OsStr::new(&big)], []);
        assert_eq!(e2big.unwrap_err().raw_os_error(), Some(libc::E2BIG));
        let many = vec![OsStr::new("x"); STRINGS_MAX + 1];
        let e2big = Request::new(None, Path::new("/bin/echo"), &many, []);
        assert_eq!(e2big.unwrap_err().raw_os_error(), Some(libc::E2BIG));
    }

    #[cfg(target_os = "linux")]
    fn sh(line: &str) -> Request {
        let argv = [OsStr::new("sh"), OsStr::new("-c"), OsStr::new(line)];
        Request::new(None, Path::new("/bin/sh"), &argv, []).unwrap()
    }

    /// A namespace whose relay a watchdog killed after the init's answer
    /// was read (the command ended as its deadline came) is not put back
    /// for the next command: the SIGKILL may not have ended the init yet,
    /// and the next command would start in it and die with it, reported
    /// killed though nothing killed it. One that ended unkilled is.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_namespace_killed_after_its_answer_is_not_reused() {
        let Ok(plan) = sandbox::probe() else {
            eprintln!("SKIPPED: no PID namespaces here");
            return;
        };
        let pool = Pool::new(plan).unwrap();
        let (_read, write) = sandbox::cloexec_pipe().unwrap();
        for late_kill in [false, true] {
            let mut job = pool
                .start(&sh("exit 7"), write.as_fd(), write.as_fd(), None)
                .unwrap();
            let watchdog = job.killer().unwrap();
            assert_eq!(job.wait().unwrap().code(), Some(7));
            if late_kill {
                sandbox::kill(&watchdog);
            }
            drop(job);
            let idle = lock(&pool.shared.state).idle.len();
            assert_eq!(idle, usize::from(!late_kill), "late kill: {late_kill}");
        }
    }
}
