//! The one serving loop behind every server type.
//!
//! A server is a [`Source`] of requests (a listener's `accept`, a UDP
//! socket's `recv_from`) joined to a [`Serve`] (a handler trait adapted to
//! that kind of request) by an [`Executor`] (this thread, a pool, or a thread
//! per connection). The loop waits for a free slot, receives, asks
//! the per-peer cap and `verify_request`, and hands the request to the
//! executor; the request's ticket counts it out, and a panic is caught and
//! reported on its thread. What the server itself has to say (a failing
//! `accept`, a clamped cap, a refused peer, a grace period overrun) goes
//! through [`report`], to the `log` facade.
//!
//! When the loop stops, `serve_forever` ends what it started: the live
//! connections were drained when the shutdown was asked for
//! ([`State::request_shutdown`]); it waits out the grace period for the
//! requests still running, cuts the connections of those that are not done,
//! and joins every thread it started before it returns.

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::{TcpListener, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::panic::{self, AssertUnwindSafe};
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use log::Level;
use threadpool::ThreadPool;

use super::fd;
use super::state::{State, Ticket, peer_key};
use super::threads::Threads;
use super::{CUT_WAIT, Config, ServerInfo, Threading};
#[cfg(unix)]
use crate::handler::Unix;
use crate::handler::{
    Addr, BaseRequestHandler, Connection, Datagram, DatagramFamily, DatagramRequestHandler,
    HandlerError, Stream, Udp,
};

/// Where requests come from.
pub(crate) trait Source: Send + Sync + 'static {
    type Request: Send + 'static;
    /// Blocks until the next request arrives.
    fn receive(&self) -> io::Result<(Self::Request, Addr)>;
    /// Waits until a request can be received, or `timeout` passes:
    /// whether one can.
    fn ready(&self, timeout: Duration) -> io::Result<bool>;
}

/// Waits until `fd` has something to receive or `timeout` passes, with one
/// `poll(2)` (again after a signal, for the time left).
#[cfg(unix)]
fn poll_readable(fd: impl std::os::fd::AsFd, timeout: Duration) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Past what a Timespec holds (centuries): wait without a bound.
        let left = Timespec::try_from(left).ok();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, left.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Off Unix, `handle_request_timeout` is not there yet: std cannot wait
/// for a listener without accepting.
#[cfg(not(unix))]
fn poll_readable<T>(_: &T, _: Duration) -> io::Result<bool> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "handle_request_timeout needs poll(2): Unix only for now",
    ))
}

/// A handler trait adapted to one kind of request.
pub(crate) trait Serve: Send + Sync + 'static {
    type Request: Send + 'static;
    fn verify_request(&self, peer: &Addr) -> bool;
    fn serve(
        &self,
        request: Self::Request,
        peer: Addr,
        info: ServerInfo,
        config: &Config,
    ) -> io::Result<()>;
    fn handle_error(&self, peer: &Addr, error: &HandlerError);
    fn handle_timeout(&self, info: &ServerInfo);
}

pub(crate) struct TcpSource(pub(crate) TcpListener);

impl Source for TcpSource {
    type Request = Stream;
    fn receive(&self) -> io::Result<(Stream, Addr)> {
        let (stream, peer) = self.0.accept()?;
        Ok((Stream::Tcp(stream), Addr::Inet(peer)))
    }
    fn ready(&self, timeout: Duration) -> io::Result<bool> {
        poll_readable(&self.0, timeout)
    }
}

#[cfg(unix)]
pub(crate) struct UnixSource {
    pub(crate) listener: UnixListener,
    /// The socket file we created, removed when the server is dropped.
    pub(crate) created: Option<PathBuf>,
}

#[cfg(unix)]
impl Source for UnixSource {
    type Request = Stream;
    fn receive(&self) -> io::Result<(Stream, Addr)> {
        let (stream, peer) = self.listener.accept()?;
        Ok((Stream::Unix(stream), Addr::Unix(peer)))
    }
    fn ready(&self, timeout: Duration) -> io::Result<bool> {
        poll_readable(&self.listener, timeout)
    }
}

#[cfg(unix)]
impl Drop for UnixSource {
    fn drop(&mut self) {
        if let Some(path) = &self.created {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Big enough for any UDP datagram (65,507 bytes over IPv4, 65,527 over
/// IPv6 without jumbograms), so none is ever cut short.
const DATAGRAM_BUFFER: usize = 64 * 1024;

pub(crate) struct UdpSource {
    pub(crate) socket: Arc<UdpSocket>,
    buf: Mutex<Vec<u8>>,
}

impl UdpSource {
    pub(crate) fn new(socket: UdpSocket) -> UdpSource {
        UdpSource {
            socket: Arc::new(socket),
            buf: Mutex::new(vec![0; DATAGRAM_BUFFER]),
        }
    }
}

/// A datagram received: its bytes (`None` if it was longer than a
/// server takes), its sender, and the socket to reply on.
pub(crate) type DatagramRequest<F> = (
    Option<Vec<u8>>,
    <F as DatagramFamily>::PeerAddr,
    Arc<<F as DatagramFamily>::Socket>,
);

impl Source for UdpSource {
    type Request = DatagramRequest<Udp>;
    fn receive(&self) -> io::Result<(DatagramRequest<Udp>, Addr)> {
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let (n, peer) = self.socket.recv_from(&mut buf)?;
        let request = (Some(buf[..n].to_vec()), peer, Arc::clone(&self.socket));
        Ok((request, Addr::Inet(peer)))
    }
    fn ready(&self, timeout: Duration) -> io::Result<bool> {
        poll_readable(&*self.socket, timeout)
    }
}

/// The longest Unix datagram a server takes, as for UDP. Unix datagrams
/// may be longer (up to the sender's send buffer); a longer one is
/// refused whole, never handed on cut short.
#[cfg(unix)]
pub(crate) const MAX_UNIX_DATAGRAM: usize = DATAGRAM_BUFFER;

#[cfg(unix)]
pub(crate) struct UnixDatagramSource {
    pub(crate) socket: Arc<UnixDatagram>,
    /// One byte more than the longest datagram taken, so a longer one
    /// shows: `recv_from` fills the buffer and drops the rest silently.
    buf: Mutex<Vec<u8>>,
    /// The socket file we created, removed when the server is dropped.
    pub(crate) created: Option<PathBuf>,
}

#[cfg(unix)]
impl UnixDatagramSource {
    pub(crate) fn new(socket: UnixDatagram) -> UnixDatagramSource {
        UnixDatagramSource {
            socket: Arc::new(socket),
            buf: Mutex::new(vec![0; MAX_UNIX_DATAGRAM + 1]),
            created: None,
        }
    }
}

#[cfg(unix)]
impl Source for UnixDatagramSource {
    type Request = DatagramRequest<Unix>;
    fn receive(&self) -> io::Result<(DatagramRequest<Unix>, Addr)> {
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let (n, peer) = self.socket.recv_from(&mut buf)?;
        let data = (n <= MAX_UNIX_DATAGRAM).then(|| buf[..n].to_vec());
        let addr = Addr::Unix(peer.clone());
        Ok(((data, peer, Arc::clone(&self.socket)), addr))
    }
    fn ready(&self, timeout: Duration) -> io::Result<bool> {
        poll_readable(&*self.socket, timeout)
    }
}

#[cfg(unix)]
impl Drop for UnixDatagramSource {
    fn drop(&mut self) {
        if let Some(path) = &self.created {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// [`BaseRequestHandler`] as a [`Serve`]: socket options, then Python's
/// `setup` / `handle` / `finish`.
pub(crate) struct Streams<H>(pub(crate) H, AtomicU64);

impl<H> Streams<H> {
    pub(crate) fn new(handler: H) -> Streams<H> {
        Streams(handler, AtomicU64::new(0))
    }
}

impl<H: BaseRequestHandler> Serve for Streams<H> {
    type Request = Stream;

    fn verify_request(&self, peer: &Addr) -> bool {
        self.0.verify_request(peer)
    }

    fn serve(
        &self,
        stream: Stream,
        peer: Addr,
        info: ServerInfo,
        config: &Config,
    ) -> io::Result<()> {
        // New sockets have no timeouts and Nagle on: skip the system calls
        // that would set what is already so.
        if config.read_timeout.is_some() {
            stream.set_read_timeout(config.read_timeout)?;
        }
        if config.write_timeout.is_some() {
            stream.set_write_timeout(config.write_timeout)?;
        }
        if let (true, Some(tcp)) = (config.nodelay, stream.as_tcp()) {
            tcp.set_nodelay(true)?;
        }
        // Numbered from 1 in the order handlers start; a u64 never wraps.
        let id = self.1.fetch_add(1, Ordering::Relaxed) + 1;
        let mut conn = Connection::new(
            stream,
            id,
            peer,
            info,
            config.read_timeout,
            config.write_timeout,
        );
        if let Some(deadline) = config.initial_deadline {
            conn.set_deadline_in(deadline);
        }
        // Known to the server until the handler is done, so a shutdown can
        // end it (dropped before `conn`, which closes the socket).
        let (stream, clock) = conn.parts();
        let clock = Arc::clone(clock);
        let state = Arc::clone(&conn.server().state);
        let _live = state.live.register(stream, &clock);
        let handled = self.0.setup(&mut conn).and_then(|()| {
            let handled = self.0.handle(&mut conn);
            let finished = self.0.finish(&mut conn);
            handled.and(finished)
        });
        // A connection cut at the end of the grace period failed, whatever
        // its handler made of the errors it saw.
        if clock.is_cut() {
            return Err(super::deadline::cut());
        }
        handled
    }

    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.handle_error(peer, error);
    }

    fn handle_timeout(&self, info: &ServerInfo) {
        self.0.handle_timeout(info);
    }
}

/// [`DatagramRequestHandler`] as a [`Serve`], for one family of sockets.
pub(crate) struct Datagrams<H, F = Udp>(pub(crate) H, PhantomData<fn() -> F>);

impl<H, F> Datagrams<H, F> {
    pub(crate) fn new(handler: H) -> Datagrams<H, F> {
        Datagrams(handler, PhantomData)
    }
}

/// The Unix datagram servers' [`Serve`].
#[cfg(unix)]
pub(crate) type UnixDatagrams<H> = Datagrams<H, Unix>;

impl<F: DatagramFamily, H: DatagramRequestHandler<F>> Serve for Datagrams<H, F> {
    type Request = DatagramRequest<F>;

    fn verify_request(&self, peer: &Addr) -> bool {
        self.0.verify_request(peer)
    }

    fn serve(
        &self,
        (data, peer, socket): DatagramRequest<F>,
        _: Addr,
        info: ServerInfo,
        _: &Config,
    ) -> io::Result<()> {
        let Some(data) = data else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a datagram longer than {DATAGRAM_BUFFER} bytes, dropped"),
            ));
        };
        self.0.handle(&Datagram::new(data, peer, socket, info))
    }

    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.handle_error(peer, error);
    }

    fn handle_timeout(&self, info: &ServerInfo) {
        self.0.handle_timeout(info);
    }
}

/// Who runs a request.
enum Executor {
    /// The serving thread itself: one request at a time.
    Inline,
    /// A fixed pool of workers.
    Pool(ThreadPool),
    /// A new thread for each request, joined before `serve_forever` returns.
    Spawn(Arc<Threads>),
}

impl Executor {
    fn execute(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        match self {
            Executor::Inline => job(),
            Executor::Pool(pool) => pool.execute(job),
            Executor::Spawn(threads) => threads.spawn(job)?,
        }
        Ok(())
    }

    /// Joins the threads that ran requests, waiting until `until` at most;
    /// returns how many are still running.
    fn join(&self, until: Instant) -> usize {
        match self {
            // Its workers live as long as the server; a request done is
            // all there is to wait for.
            Executor::Inline | Executor::Pool(_) => 0,
            Executor::Spawn(threads) => threads.join_all(until),
        }
    }
}

struct Shared<A> {
    handler: A,
    config: Config,
    state: Arc<State>,
}

impl<A: Serve> Shared<A> {
    /// Runs one request to its end, on whatever thread the executor chose.
    fn run(&self, request: A::Request, peer: Addr, mut ticket: Ticket) {
        let info = ServerInfo::new(Arc::clone(&self.state));
        // `serve` consumes the request, so the socket is closed before the
        // ticket is dropped: when the counters say a request is done, its
        // client has its last byte and its end of stream.
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            self.handler
                .serve(request, peer.clone(), info, &self.config)
        }));
        let error = match outcome {
            Ok(Ok(())) => {
                ticket.succeeded();
                return;
            }
            Ok(Err(e)) => HandlerError::io(e),
            Err(panic) => HandlerError::Panic(panic_message(&*panic)),
        };
        // A panicking error hook must not take the worker down either.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            self.handler.handle_error(&peer, &error);
        }));
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic with no message)".to_owned()
    }
}

/// A source, a handler, an executor, and the loop that joins them.
pub(crate) struct Core<S, A> {
    source: S,
    shared: Arc<Shared<A>>,
    executor: Executor,
    max_active: usize,
    /// Lines about peers refused over their cap, at most one a second.
    refused: Mutex<Every>,
}

impl<S: Source, A: Serve<Request = S::Request>> Core<S, A> {
    pub(crate) fn new(source: S, handler: A, config: Config, mut state: State) -> io::Result<Self> {
        state.grace = config.graceful.unwrap_or(super::DEFAULT_GRACE);
        let (executor, default_max) = match config.threading {
            Threading::Inline => (Executor::Inline, 1),
            Threading::Pool(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a pool needs at least one worker",
                ));
            }
            Threading::Pool(workers) => (
                Executor::Pool(
                    threadpool::Builder::new()
                        .num_threads(workers)
                        .thread_name("socketserver-worker".into())
                        .thread_stack_size(config.stack_size)
                        .build(),
                ),
                workers,
            ),
            Threading::PerConnection => (
                Executor::Spawn(Arc::new(Threads::new(config.stack_size))),
                super::DEFAULT_MAX_CONNECTIONS,
            ),
        };
        let asked = match executor {
            Executor::Inline => 1,
            _ => config.max_connections.unwrap_or(default_max).max(1),
        };
        // Never promise connections the descriptor limit would refuse.
        let limit = fd::raise_limit();
        let max_active = asked.min(fd::connections_allowed(limit));
        // Once per process: a test suite binds hundreds of servers.
        static NOTED: std::sync::Once = std::sync::Once::new();
        if max_active < asked {
            NOTED.call_once(|| {
                report(
                    Level::Info,
                    format_args!(
                        "serving at most {max_active} connections at once, not {asked}: \
                 the descriptor limit is {} ({} kept for other uses)",
                        limit.unwrap_or(0),
                        fd::FD_RESERVE,
                    ),
                );
            });
        }
        Ok(Core {
            source,
            shared: Arc::new(Shared {
                handler,
                config,
                state: Arc::new(state),
            }),
            executor,
            max_active,
            refused: Mutex::new(Every::default()),
        })
    }

    pub(crate) fn handler(&self) -> &A {
        &self.shared.handler
    }

    pub(crate) fn source(&self) -> &S {
        &self.source
    }

    #[cfg(unix)]
    pub(crate) fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    pub(crate) fn info(&self) -> ServerInfo {
        ServerInfo::new(Arc::clone(&self.shared.state))
    }

    pub(crate) fn handle_request(&self) -> io::Result<()> {
        let state = &self.shared.state;
        // Backpressure: at the cap, stop taking requests and let them wait
        // in the kernel's queue, rather than queue without bound in ours.
        if !state.wait_for_slot(self.max_active) {
            return Ok(());
        }
        let (request, peer) = self.source.receive()?;
        if state.is_shutdown() {
            // Most likely our own wake-up call.
            return Ok(());
        }
        self.dispatch(request, peer);
        Ok(())
    }

    /// Python's `handle_request` with `timeout` set: waits for a free
    /// slot and a request together at most `timeout`, and calls the
    /// handler's `handle_timeout` if none came. Whether one came.
    pub(crate) fn handle_request_timeout(&self, timeout: Duration) -> io::Result<bool> {
        let state = &self.shared.state;
        // A timeout past what an Instant holds (`Duration::MAX`) is a year:
        // longer than any server waits for a request and means it.
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(365 * 24 * 3600));
        let left = || deadline.saturating_duration_since(Instant::now());
        let came =
            state.wait_for_slot_until(self.max_active, deadline) && self.source.ready(left())?;
        if !came {
            if !state.is_shutdown() {
                self.shared.handler.handle_timeout(&self.info());
            }
            return Ok(false);
        }
        let (request, peer) = self.source.receive()?;
        if state.is_shutdown() {
            // Most likely our own wake-up call: take it out of the queue.
            return Ok(false);
        }
        self.dispatch(request, peer);
        Ok(true)
    }

    pub(crate) fn serve_forever(&self) {
        let state = &self.shared.state;
        let mut failures = Failures::default();
        while !state.is_shutdown() {
            match self.handle_request() {
                Ok(()) if !failures.in_run() => {}
                Ok(()) => failures.recovered(&state.local_addr, Instant::now()),
                // The client gave up between its connect and our accept.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                // Out of file descriptors or memory: retrying at once would
                // spin, so back off until a connection of ours ends (likely
                // freeing a descriptor) or the pause is over.
                Err(e) => {
                    let pause = failures.failed(&state.local_addr, &e, Instant::now());
                    state.wait_for_change(pause);
                }
            }
        }
        self.finish_shutdown();
        state.clear_shutdown();
    }

    /// After the loop: waits out the grace period, cuts what is left, and
    /// joins every thread that ran a request.
    fn finish_shutdown(&self) {
        let state = &self.shared.state;
        let grace = state.grace;
        // `None`: cut already (`shutdown_now`); then there is no grace
        // left to give.
        let grace_end = state.live.grace_end().unwrap_or_else(Instant::now);
        if !state.live.is_cut() && !state.wait_idle(grace_end) {
            let cut = state.live.cut();
            report(
                Level::Warn,
                format_args!(
                    "{} requests still running after the {grace:?} grace period; \
                     closing their {cut} connections",
                    state.stats().active
                ),
            );
        }
        // Cut handlers see end of stream or an error at once; give them a
        // moment to return, then join their threads.
        let until = Instant::now() + CUT_WAIT;
        let idle = state.wait_idle(until);
        let running = self.executor.join(until);
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

    fn dispatch(&self, request: S::Request, peer: Addr) {
        let shared = &self.shared;
        // The per-peer cap first: it costs a lookup, and a flood from one
        // address must not reach user code or the pool's queue.
        let cap = shared.config.max_per_peer;
        let key = cap.and_then(|_| peer_key(&peer));
        if let (Some(key), Some(max)) = (key, cap) {
            if !shared.state.has_room(key, max) {
                let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(earlier) = refused.due(Instant::now()) {
                    report(
                        Level::Info,
                        format_args!(
                            "refused {peer}: over the per-peer cap of {max} \
                             ({earlier} more refused since the last report)"
                        ),
                    );
                }
                return; // dropping the request closes its socket
            }
        }
        if !shared.handler.verify_request(&peer) {
            shared.state.reject();
            return;
        }
        let ticket = shared.state.begin(key);
        let job_shared = Arc::clone(shared);
        let job_peer = peer.clone();
        let job = move || job_shared.run(request, job_peer, ticket);
        if let Err(e) = self.executor.execute(job) {
            // The job was dropped unrun: its ticket counted it failed and
            // its socket is closed. Say why.
            shared.handler.handle_error(&peer, &HandlerError::Io(e));
        }
    }
}

/// Says something about the server itself, through the `log` facade
/// (target `socketserver`): the library writes nothing to stderr itself.
/// The one place such lines go through.
pub(crate) fn report(level: Level, line: fmt::Arguments<'_>) {
    log::log!(target: "socketserver", level, "{line}");
}

/// At most one line per [`REPORT_EVERY`] about a repeated event, with a
/// count of those that went unreported in between.
#[derive(Debug, Default)]
struct Every {
    last: Option<Instant>,
    unreported: u64,
}

impl Every {
    /// `Some(unreported since the last line)` if a line is due now.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < REPORT_EVERY)
        {
            self.unreported += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// The shortest and the longest pause after a failed `accept`.
const PAUSE_MIN: Duration = Duration::from_millis(5);
const PAUSE_MAX: Duration = Duration::from_millis(500);
/// At most one line about failing `accept` calls per this long.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A run of failing `accept` calls: how long to pause after the next one,
/// and how many went unreported since the last line.
#[derive(Debug, Default)]
struct Failures {
    pause: Duration,
    unreported: u64,
    last_report: Option<Instant>,
}

impl Failures {
    fn in_run(&self) -> bool {
        !self.pause.is_zero()
    }

    fn due(&self, now: Instant) -> bool {
        self.last_report
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY)
    }

    /// Counts a failure, reports it if a line is due, and returns how long
    /// to pause before the next `accept`: doubling from [`PAUSE_MIN`] to
    /// [`PAUSE_MAX`].
    fn failed(&mut self, addr: &Addr, e: &io::Error, now: Instant) -> Duration {
        if self.due(now) {
            let earlier = match std::mem::take(&mut self.unreported) {
                0 => String::new(),
                n => format!(" ({n} more since the last report)"),
            };
            report(
                Level::Warn,
                format_args!("accept on {addr} failed: {e}{earlier}; retrying with backoff"),
            );
            self.last_report = Some(now);
        } else {
            self.unreported += 1;
        }
        self.pause = (self.pause * 2).clamp(PAUSE_MIN, PAUSE_MAX);
        self.pause
    }

    /// An `accept` worked: the run is over. Failures not yet reported are
    /// reported now, if a line is due, or with the next run's first line.
    fn recovered(&mut self, addr: &Addr, now: Instant) {
        if self.pause.is_zero() {
            return; // the hot path: nothing had failed
        }
        self.pause = Duration::ZERO;
        if self.unreported > 0 && self.due(now) {
            let earlier = std::mem::take(&mut self.unreported);
            report(
                Level::Info,
                format_args!("accept on {addr} works again, after {earlier} more failures"),
            );
            self.last_report = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_and_report_at_most_once_a_second() {
        let addr = Addr::Inet("127.0.0.1:1".parse().unwrap());
        let mut failures = Failures::default();
        let e = io::Error::from_raw_os_error(24);
        let start = Instant::now();
        let pauses: Vec<Duration> = (0..10u32)
            .map(|i| failures.failed(&addr, &e, start + Duration::from_millis(90) * i))
            .collect();
        assert_eq!(pauses[0], PAUSE_MIN);
        assert_eq!(pauses[1], PAUSE_MIN * 2);
        assert_eq!(*pauses.last().unwrap(), PAUSE_MAX);
        // The first was reported, the other nine (within a second) counted.
        assert_eq!(failures.unreported, 9);
        failures.recovered(&addr, start + Duration::from_millis(900));
        assert_eq!(failures.pause, Duration::ZERO);
        assert_eq!(failures.unreported, 9, "kept for the next line");
        // A second on, the next failure's line carries them.
        failures.failed(&addr, &e, start + Duration::from_millis(1000));
        assert_eq!(failures.unreported, 0);
    }

    #[test]
    fn refused_peers_are_reported_at_most_once_a_second_with_a_count() {
        let mut every = Every::default();
        let start = Instant::now();
        assert_eq!(every.due(start), Some(0));
        for i in 1..=5 {
            assert_eq!(every.due(start + Duration::from_millis(100) * i), None);
        }
        assert_eq!(every.due(start + Duration::from_secs(1)), Some(5));
    }
}
