//! Shutdown: how a server stops, and ends what it started.
//!
//! A shutdown sets a flag and wakes the serving loop through a pipe it
//! waits on beside its socket, so it stops at once whatever the socket's
//! address (on Unix; elsewhere the loop waits in `accept` or `recv_from`
//! and is woken by a connection and a datagram to its own address); it
//! *drains* every live connection (the read half shut at its next request
//! boundary, so a handler waiting for its client's next request sees end
//! of stream while one in the middle of a request may finish it, and the
//! deadline limited to the end of the grace period). At the end of the
//! grace period it *cuts* what is left (both halves shut, every call
//! through the connection failing), then *joins* every thread it started,
//! waiting [`CUT_WAIT`] at most for handlers that ignore it; dropping a
//! server does the same (Python's `server_close` with `block_on_close`).
//!
//! A handler blocked in `read` looks at no flag: only its socket can wake
//! it. So the server keeps a registry of the connections being served
//! ([`Live`]), their sockets and deadline clocks shared with each
//! [`Connection`](crate::Connection) (no descriptor, no system call),
//! added when a connection starts and removed when it ends; a connection
//! that starts during a drain or after a cut gets that step at once.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use log::Level;

use super::deadline::Clock;
use super::serve::{Executor, report};
use super::source::Source;
#[cfg(doc)]
use super::{Builder, DEFAULT_GRACE};
use super::{CUT_WAIT, Server, State};
use crate::handler::{Addr, Stream};

/// Stops a server's `serve_forever`: cloneable, `Send` and `Sync`, and safe
/// to call from inside a handler.
///
/// ```
/// use socketserver::{Connection, TcpServer};
/// use std::io::Write;
///
/// // A server whose first client shuts it down.
/// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
///     conn.server().shutdown_handle().shutdown();
///     conn.write_all(b"bye")
/// })?;
/// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
/// server.serve_forever(); // returns once that handler has run
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    pub(super) state: Arc<State>,
}

impl ShutdownHandle {
    /// Asks `serve_forever` to return, gracefully, and returns at once
    /// (Go's `Server.Shutdown`). The server stops accepting; every
    /// connection whose handler is waiting for its client's next request
    /// sees end of stream at once (its socket's read half is shut down at
    /// a request boundary: see the [module docs](crate::server)) while a
    /// reply being written goes on; requests still running, a request
    /// whose bytes are arriving included, may
    /// finish until the grace period ([`Builder::graceful_shutdown`],
    /// [`DEFAULT_GRACE`]) ends, and are then cut as by
    /// [`shutdown_now`](Self::shutdown_now). `serve_forever` returns once
    /// every handler has returned and its thread is joined.
    ///
    /// A server asked to stop before `serve_forever` starts returns from it
    /// at once; after returning, `serve_forever` can be called again.
    ///
    /// ```
    /// use std::io::{self, BufRead, BufReader, Write};
    /// use std::time::{Duration, Instant};
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// // An echo server with a client that sends nothing: its handler
    /// // waits in `read`, and the shutdown ends it at once.
    /// let echo = |conn: &mut Connection| -> io::Result<()> {
    ///     let mut lines = BufReader::new(conn.try_clone()?);
    ///     let mut line = String::new();
    ///     while lines.read_line(&mut line)? > 0 {
    ///         conn.write_all(line.as_bytes())?;
    ///         line.clear();
    ///     }
    ///     Ok(()) // end of stream: the client left, or the server stops
    /// };
    /// let server = ThreadingTcpServer::bind("127.0.0.1:0", echo)?;
    /// let _idle = std::net::TcpStream::connect(server.local_addr()?)?;
    /// let stop = server.shutdown_handle();
    /// let started = Instant::now();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| server.serve_forever());
    ///     while server.stats().active == 0 {
    ///         std::thread::yield_now(); // until the idle client is served
    ///     }
    ///     stop.shutdown();
    /// });
    /// assert!(started.elapsed() < Duration::from_secs(5), "not the grace period");
    /// assert_eq!((server.stats().active, server.stats().completed), (0, 1));
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.state.request_shutdown();
    }

    /// Asks `serve_forever` to return at once, ending every connection
    /// now (Go's `Server.Close`): each live socket is shut down both ways,
    /// every read and write through its [`Connection`](crate::Connection)
    /// fails with `ConnectionAborted` from then on, and each request cut
    /// this way is reported to `handle_error`. `serve_forever` still joins
    /// every handler's thread before it returns. Also ends a graceful
    /// shutdown under way (a second Ctrl-C, say).
    ///
    /// ```
    /// use std::io::{self, Read};
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// // A handler that ignores end of stream and reads on.
    /// let stubborn = |conn: &mut Connection| -> io::Result<()> {
    ///     loop {
    ///         conn.read(&mut [0u8; 64])?; // fails once the connection is cut
    ///     }
    /// };
    /// let server = ThreadingTcpServer::bind("127.0.0.1:0", stubborn)?;
    /// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// let stop = server.shutdown_handle();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| server.serve_forever());
    ///     while server.stats().active == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     stop.shutdown_now();
    /// });
    /// assert_eq!((server.stats().active, server.stats().failed), (0, 1));
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn shutdown_now(&self) {
        self.state.live.cut();
        self.state.stop();
        self.state.waker.wake();
    }

    /// Whether a shutdown was asked for and `serve_forever` has not yet
    /// finished it.
    pub fn is_shutdown(&self) -> bool {
        self.state.is_shutdown()
    }
}

/// Ctrl-C, with the `ctrlc` feature (on by default).
#[cfg(feature = "ctrlc")]
#[cfg_attr(docsrs, doc(cfg(feature = "ctrlc")))]
impl ShutdownHandle {
    /// Turns Ctrl-C (SIGINT), and SIGTERM and SIGHUP on Unix (Ctrl-Break on
    /// Windows: the `ctrlc` crate's `termination` feature), into a graceful
    /// [`shutdown`](Self::shutdown) of this server; a second one shuts it
    /// down now ([`shutdown_now`](Self::shutdown_now)). One line in a
    /// server's `main` before `serve_forever`, which then returns, and
    /// `main` with it, exit status 0.
    ///
    /// The signal is handled on a thread of the `ctrlc` crate's, not in a
    /// signal handler, so the shutdown runs as from any other thread.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// let server = ThreadingTcpServer::bind("127.0.0.1:0", |_: &mut Connection| Ok(()))?;
    /// server.shutdown_handle().shutdown_on_ctrl_c()?;
    /// // What a user's Ctrl-C does: SIGINT to this process.
    /// std::process::Command::new("kill")
    ///     .args(["-INT", &std::process::id().to_string()])
    ///     .status()?;
    /// server.serve_forever(); // returns: the signal asked it to
    /// println!("stopped: {}", server.stats());
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// If a handler for these signals was set already in this process
    /// (once per process: one server's handle, or your own), or the
    /// system refused to set one.
    pub fn shutdown_on_ctrl_c(&self) -> std::io::Result<()> {
        let handle = self.clone();
        let signals = std::sync::atomic::AtomicUsize::new(0);
        ctrlc::set_handler(move || {
            if signals.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                log::info!(target: "socketserver", "stopping: shutting down gracefully (again to stop now)");
                handle.shutdown();
            } else {
                log::info!(target: "socketserver", "stopping now");
                handle.shutdown_now();
            }
        })
        .map_err(|e| match e {
            ctrlc::Error::System(e) => e,
            other => std::io::Error::other(other),
        })
    }
}

/// How the serving loop is woken: on Unix, a socket pair whose read end
/// the loop polls beside its own socket; a byte written to the other end
/// wakes it, and stays until the loop has stopped, whatever the server's
/// address. Elsewhere, something for its socket to receive: a connection
/// to it, or an empty datagram.
#[derive(Debug)]
pub(crate) struct Waker {
    #[cfg(unix)]
    rx: std::os::unix::net::UnixStream,
    #[cfg(unix)]
    tx: std::os::unix::net::UnixStream,
    /// Off Unix: the address to reach.
    #[cfg(not(unix))]
    target: std::net::SocketAddr,
}

#[cfg(unix)]
impl Waker {
    pub(crate) fn new(_: &Addr) -> io::Result<Waker> {
        let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Waker { rx, tx })
    }

    fn wake(&self) {
        // A full pipe is woken already.
        let _ = io::Write::write(&mut &self.tx, &[1]);
    }

    fn clear(&self) {
        while matches!(io::Read::read(&mut &self.rx, &mut [0u8; 64]), Ok(n) if n > 0) {}
    }

    /// Waits until `source` has a request, the waker is woken, or
    /// `deadline` passes (`None`: no bound), with one `poll(2)` (again
    /// after a signal, for the time left). Whether a request is there.
    pub(crate) fn wait(&self, source: &impl Source, deadline: Option<Instant>) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        loop {
            // Past what a Timespec holds (centuries): wait without a bound.
            let left = deadline
                .map(|at| at.saturating_duration_since(Instant::now()))
                .and_then(|left| Timespec::try_from(left).ok());
            let mut fds = [
                PollFd::new(source, PollFlags::IN),
                PollFd::new(&self.rx, PollFlags::IN),
            ];
            match poll(&mut fds, left.as_ref()) {
                Ok(_) => {
                    let woken = !fds[1].revents().is_empty();
                    return Ok(!woken && !fds[0].revents().is_empty());
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(not(unix))]
impl Waker {
    pub(crate) fn new(local: &Addr) -> io::Result<Waker> {
        let mut target = local.as_inet().ok_or(io::ErrorKind::Unsupported)?;
        // A wildcard address (`0.0.0.0`, `::`) is reached through loopback.
        if target.ip().is_unspecified() {
            target.set_ip(match target {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(Waker { target })
    }

    /// A connection and an empty datagram: whichever the socket takes.
    /// Failures are fine: the socket is closed, or the loop is not
    /// blocked, and the flag alone stops it.
    fn wake(&self) {
        let wait = std::time::Duration::from_millis(200);
        let _ = std::net::TcpStream::connect_timeout(&self.target, wait);
        if let Ok(socket) = std::net::UdpSocket::bind((self.target.ip(), 0)) {
            let _ = socket.send_to(&[], self.target);
        }
    }

    fn clear(&self) {}

    /// Off Unix the loop waits in `accept` itself; std cannot wait for a
    /// listener without accepting, so no timeout.
    pub(crate) fn wait(&self, _: &impl Source, deadline: Option<Instant>) -> io::Result<bool> {
        match deadline {
            None => Ok(true),
            Some(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "handle_request_timeout needs poll(2): Unix only for now",
            )),
        }
    }
}

impl State {
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Stops the serving loop and drains the live connections: a handler
    /// waiting for its client's next request sees end of stream at once,
    /// and every connection's deadline becomes the end of the grace period.
    pub(crate) fn request_shutdown(&self) {
        // In this order: the grace end is known before the flag is up (the
        // serving loop then asks for it), and the flag is up before any
        // handler sees its end of stream (it may ask whether we stop).
        // (The builder keeps the grace within what an `Instant` reaches.)
        self.live
            .announce_drain(Instant::now() + self.config.graceful);
        self.stop();
        self.live.drain_all();
        self.waker.wake();
    }

    fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Taking the lock orders this notify after any waiter's check of the
        // flag, so no waiter misses it.
        drop(self.counts());
        self.changed.notify_all();
    }

    /// Serving again, after `serve_forever` returned.
    pub(crate) fn clear_shutdown(&self) {
        self.live.reopen();
        self.waker.clear();
        self.shutdown.store(false, Ordering::SeqCst);
    }
}

impl<S, H, P> Server<S, H, P> {
    /// After the loop: waits out the grace period, cuts what is left, and
    /// joins every thread that ran a request.
    pub(crate) fn finish_shutdown(&self) {
        let state = &self.state;
        // `None`: cut already (`shutdown_now`); then there is no grace
        // left to give.
        if state
            .live
            .grace_end()
            .is_some_and(|end| !state.wait_idle(end))
        {
            let cut = state.live.cut();
            report(
                Level::Warn,
                format_args!(
                    "{} requests still running after the {:?} grace period; \
                     closing their {cut} connections",
                    state.stats().active,
                    state.config.graceful,
                ),
            );
        }
        // Cut handlers see end of stream or an error at once; give them a
        // moment to return, then join their threads.
        let idle = state.wait_idle(Instant::now() + CUT_WAIT);
        let running = match &self.executor {
            // Its workers live as long as the server; a request done is
            // all there is to wait for.
            Executor::Inline | Executor::Pool(_) => 0,
            Executor::Spawn(threads) => threads.join(idle),
        };
        if !idle || running > 0 {
            report(
                Level::Error,
                format_args!(
                    "{} requests still running {CUT_WAIT:?} after their connections were \
                     closed; their threads are left running (a handler that loops without \
                     I/O, or ignores every error, cannot be stopped from outside)",
                    state.stats().active
                ),
            );
        }
    }
}

/// Python's `server_close` with `block_on_close`: requests still running
/// are drained, given the grace period, cut, and their threads joined,
/// before the socket closes (and a socket file we created is removed).
impl<S, H, P> Drop for Server<S, H, P> {
    fn drop(&mut self) {
        let threads =
            matches!(&self.executor, Executor::Spawn(t) if !crate::lock(&t.handles).is_empty());
        if threads || self.state.stats().active > 0 {
            self.state.request_shutdown();
            self.finish_shutdown();
        }
        if let Some(path) = &self.created {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where a shutdown has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Serving: nothing to do to new connections.
    #[default]
    Open,
    /// Draining until the instant: read halves shut, deadlines limited.
    Draining(Instant),
    /// Cut: every connection ends at once.
    Cut,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    phase: Phase,
    /// Each live connection's socket and deadline.
    conns: HashMap<u64, (Arc<Stream>, Arc<Clock>)>,
}

/// The registry of live connections.
#[derive(Debug, Default)]
pub(crate) struct Live {
    inner: Mutex<Inner>,
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::lock(&self.inner)
    }

    /// Adds a connection; the guard removes it when dropped. A connection
    /// that starts while a shutdown is under way gets its step at once.
    pub(crate) fn register(&self, stream: &Arc<Stream>, clock: &Arc<Clock>) -> Registered<'_> {
        let mut inner = self.lock();
        match inner.phase {
            Phase::Open => {}
            Phase::Draining(until) => clock.drain(stream, until),
            Phase::Cut => clock.cut(stream),
        }
        let id = inner.next;
        inner.next += 1;
        inner
            .conns
            .insert(id, (Arc::clone(stream), Arc::clone(clock)));
        Registered { live: self, id }
    }

    /// The first half of a drain: from now on the grace period ends at
    /// `until` (or an earlier drain's end), and connections that start are
    /// drained at once. Nothing after a cut.
    pub(crate) fn announce_drain(&self, until: Instant) {
        let mut inner = self.lock();
        inner.phase = match inner.phase {
            Phase::Cut => Phase::Cut,
            Phase::Draining(earlier) => Phase::Draining(earlier.min(until)),
            Phase::Open => Phase::Draining(until),
        };
    }

    /// The second half: drains every connection, as the phase says.
    pub(crate) fn drain_all(&self) {
        let inner = self.lock();
        if let Phase::Draining(until) = inner.phase {
            for (stream, clock) in inner.conns.values() {
                clock.drain(stream, until);
            }
        }
    }

    /// Ends every connection; returns how many there were.
    pub(crate) fn cut(&self) -> usize {
        let mut inner = self.lock();
        inner.phase = Phase::Cut;
        for (stream, clock) in inner.conns.values() {
            clock.cut(stream);
        }
        inner.conns.len()
    }

    /// When the grace period of the shutdown under way ends: `None` if
    /// the connections are cut already, or no shutdown is under way.
    pub(crate) fn grace_end(&self) -> Option<Instant> {
        match self.lock().phase {
            Phase::Draining(until) => Some(until),
            Phase::Open | Phase::Cut => None,
        }
    }

    /// Serving again (after `serve_forever` returned).
    pub(crate) fn reopen(&self) {
        self.lock().phase = Phase::Open;
    }
}

/// A connection's place in the registry, given up when dropped.
#[derive(Debug)]
pub(crate) struct Registered<'a> {
    live: &'a Live,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        // The socket closes when the connection drops its own handle,
        // after this: dropping ours (at the end, outside the lock) only
        // gives it back.
        let _entry = self.live.lock().conns.remove(&self.id);
    }
}

/// The threads a thread-per-connection server starts, kept so that they
/// are joined before `serve_forever` returns (or the server is dropped).
/// The serving thread joins those that have ended as it starts new ones;
/// a shutdown joins the rest once their requests are done (it waits for
/// that on the counters, not here), and leaves running those whose
/// requests will not end: no thread can be stopped from outside.
#[derive(Debug)]
pub(crate) struct Threads {
    stack_size: usize,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Threads {
    pub(crate) fn new(stack_size: usize) -> Threads {
        Threads {
            stack_size,
            handles: Mutex::default(),
        }
    }

    /// Runs `job` on a new thread, then joins those that have ended: the
    /// new client's thread starts first, not after the bookkeeping of
    /// the old ones.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let handle = thread::Builder::new()
            .name("socketserver-conn".into())
            .stack_size(self.stack_size)
            .spawn(job)?;
        crate::lock(&self.handles).push(handle);
        self.join(false);
        Ok(())
    }

    /// Joins the threads that have ended, or, once every request is done
    /// (`done`), all of them (each is at most returning from its job).
    /// Returns how many are left running.
    pub(crate) fn join(&self, done: bool) -> usize {
        let mut handles = crate::lock(&self.handles);
        let (ended, running) = handles
            .drain(..)
            .partition::<Vec<_>, _>(|h| done || h.is_finished());
        *handles = running;
        let left = handles.len();
        drop(handles);
        for handle in ended {
            let _ = handle.join(); // a panic was caught and reported already
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    // A connection that starts during a drain, and serving again after
    // it: tests/shutdown.rs. Threads joined once ended, and none waited
    // for while it runs: the thread counts there, and every test of a
    // thread-per-connection server that holds one client while serving
    // another.
    #[test]
    fn a_cut_ends_every_connection_and_a_reopen_forgets_it() {
        let live = Live::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = Arc::new(Stream::Tcp(listener.accept().unwrap().0));
        let clock = Arc::new(Clock::new(None, None));
        let registered = live.register(&stream, &clock);
        assert_eq!(live.cut(), 1);
        assert!(clock.is_cut());
        assert_eq!(live.grace_end(), None);
        live.announce_drain(Instant::now());
        assert_eq!(live.lock().phase, Phase::Cut, "a drain does not undo a cut");
        live.reopen();
        assert_eq!(live.lock().phase, Phase::Open);
        drop(registered);
        assert!(live.lock().conns.is_empty(), "an ended connection is gone");
    }
}
