//! The serving loop: wait for a free slot and a request, receive it, ask
//! the per-peer cap and `verify_request`, and hand it to an executor (this
//! thread, a pool, or a thread per request).
//!
//! The loop reaches the handler through one path, [`Handler`]: one
//! implementation for every stream handler, one for every datagram
//! handler, each of which runs the request (Python's `setup` / `handle` /
//! `finish` for a connection) and forwards the three hooks,
//! `verify_request`, `handle_error` and `handle_timeout`. A request's
//! ticket counts it out when it ends, and a panic is caught and reported
//! on its thread. What the server itself has to say (a failing `accept`, a
//! clamped cap, a refused peer, a grace period overrun) goes through
//! [`report`], to the `log` facade.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::Level;
use threadpool::ThreadPool;

use super::deadline::{Clock, Dir};
use super::shutdown::{Threads, Waker};
use super::source::{self, DATAGRAM_BUFFER, Source};
use super::stats::Ticket;
use super::{Config, Policy, Run, Server, ServerInfo, State, peer_key};
use crate::handler::{
    Addr, BaseRequestHandler, Connection, Datagram, DatagramFamily, DatagramRequestHandler,
    HandlerError, Stream,
};
use crate::proxy;

/// What a server needs of its handler, for requests of type `R`: the one
/// path from the serving loop to the handler traits. Every
/// [`BaseRequestHandler`] (or closure over `&mut Connection`) is one for
/// stream servers, every [`DatagramRequestHandler`] (or closure over
/// `&Datagram`) for datagram servers; there is nothing to implement.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a request handler for this server",
    label = "not a handler for this server",
    note = "a stream server (TCP, Unix) takes a `BaseRequestHandler`, a `StreamRequestHandler` wrapped in `Streamed(..)`, or a closure `|conn: &mut Connection| -> io::Result<()>`; a datagram server takes a `DatagramRequestHandler` or a closure `|d: &Datagram| -> io::Result<()>` (with the argument's type written out)"
)]
pub trait Handler<R>: Send + Sync + 'static {
    /// Serves one request to its end; the server's state comes with its
    /// ticket. Behind the PROXY protocol, `peer` becomes the client's
    /// address once its header is read.
    #[doc(hidden)]
    fn serve(&self, request: R, peer: &mut Addr, ticket: &mut Ticket) -> io::Result<()>;
    /// `verify_request`.
    #[doc(hidden)]
    fn verify(&self, peer: &Addr) -> bool;
    /// `handle_error`.
    #[doc(hidden)]
    fn report(&self, peer: &Addr, error: &HandlerError);
    /// `handle_timeout`.
    #[doc(hidden)]
    fn timed_out(&self, server: &ServerInfo);
}

/// A connection: socket options, then Python's `setup` / `handle` /
/// `finish`, known to the server's registry of live connections meanwhile.
// Unmet, rustc names the handler trait itself (its own message), not this.
#[diagnostic::do_not_recommend]
impl<H: BaseRequestHandler> Handler<Stream> for H {
    fn serve(&self, stream: Stream, peer: &mut Addr, ticket: &mut Ticket) -> io::Result<()> {
        let state = Arc::clone(&ticket.state);
        let config = &state.config;
        // Unless the listener was made with them, to pass them on
        // (`source::Accepted`), each connection sets its own: a socket
        // handed over may have passed on anything, so every one is set,
        // none assumed.
        if config.socket.accepted.is_none() {
            stream.set_read_timeout(config.read_timeout)?;
            stream.set_write_timeout(config.write_timeout)?;
            if let Some(tcp) = stream.as_tcp() {
                tcp.set_nodelay(config.nodelay)?;
            }
        }
        let mut conn = Connection {
            stream: Arc::new(stream),
            // Numbered from 1 in the order handlers start; never wraps.
            id: state.ids.fetch_add(1, Ordering::Relaxed) + 1,
            peer: peer.clone(),
            proxy: None,
            server: ServerInfo::new(Arc::clone(&state)),
            clock: Arc::new(Clock::new(config.read_timeout, config.write_timeout)),
        };
        if let Some(deadline) = config.initial_deadline {
            conn.set_deadline_in(deadline);
        }
        // Known to the server until the handler is done, so a shutdown can
        // end it (dropped before `conn`, which closes the socket).
        let _live = state.live.register(&conn.stream, &conn.clock);
        if config.proxy.is_some() {
            // Only a connection whose header was read, and that passed the
            // checks the serving loop left to this thread, goes on.
            if !proxied(self, &mut conn, ticket) {
                return Ok(());
            }
            *peer = conn.peer_addr().clone();
        }
        let handled = self.setup(&mut conn).and_then(|()| {
            let handled = self.handle(&mut conn);
            let finished = self.finish(&mut conn);
            handled.and(finished)
        });
        // A connection cut at the end of the grace period failed, whatever
        // its handler made of the errors it saw.
        if conn.clock.is_cut() {
            return Err(super::deadline::cut());
        }
        handled
    }
    fn verify(&self, peer: &Addr) -> bool {
        self.verify_request(peer)
    }
    fn report(&self, peer: &Addr, error: &HandlerError) {
        self.handle_error(peer, error);
    }
    fn timed_out(&self, server: &ServerInfo) {
        self.handle_timeout(server);
    }
}

/// Behind the PROXY protocol, the part of a connection's start that needs
/// the client's address, on the connection's own thread: reads the header
/// under the first-request deadline, then [`admit`]s the client it names.
/// Whether to serve the connection; if not, its ticket is counted out.
fn proxied(handler: &impl BaseRequestHandler, conn: &mut Connection, ticket: &mut Ticket) -> bool {
    let state = Arc::clone(&conn.server().state);
    let config = &state.config;
    let first = config.initial_deadline.unwrap_or(proxy::HEADER_DEADLINE);
    conn.set_deadline_in(first);
    match proxy::read_with(&mut &*conn) {
        Ok(proxy::Header::Local) => {}
        // The header names the client: the socket's peer is the balancer.
        Ok(proxy::Header::Proxied { source, .. }) => {
            conn.proxy = Some(std::mem::replace(&mut conn.peer, Addr::Inet(source)));
        }
        Err(e) => {
            ticket.withdraw(|s| s.refused_proxy += 1);
            refused(&state, conn.peer_addr(), &e);
            return false;
        }
    }
    let verify = |peer: &Addr| handler.verify_request(peer);
    if !admit(&state, conn.peer_addr(), verify, ticket) {
        return false;
    }
    // The header was no request: the connection waits for its first,
    // and the handler's own first-request time starts now.
    conn.request_boundary();
    match config.initial_deadline {
        Some(deadline) => conn.set_deadline_in(deadline),
        None => conn.clear_deadline(),
    }
    true
}

/// A server's connection: it peeks at what has arrived, then reads exactly
/// the part that belongs to the line, so a header that came whole costs one
/// peek and one read. Both under the connection's deadline.
impl proxy::Source for &Connection {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        io::Read::read_exact(self, buf)
    }
    fn read_line_part(&mut self, buf: &mut [u8], _after_cr: bool) -> io::Result<usize> {
        let seen = self.clock.guard(&self.stream, Dir::Read, |s| s.peek(buf))?;
        if seen == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Up to the line's end if it is here; else all of it, which is
        // still the line's (a peek blocks only while nothing is waiting).
        let take = buf[..seen]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(seen, |at| at + 1);
        io::Read::read_exact(self, &mut buf[..take])?;
        Ok(take)
    }
}

/// The checks every request passes before its handler runs: the per-peer
/// cap first (a lookup: a flood from one address must not reach user code
/// or a pool's queue), then `verify_request`. The serving loop makes them;
/// behind the PROXY protocol the connection's own thread does, once the
/// header has named the client. Whether to serve; if not, the ticket is
/// counted out as refused or rejected.
fn admit(
    state: &State,
    peer: &Addr,
    verify: impl FnOnce(&Addr) -> bool,
    ticket: &mut Ticket,
) -> bool {
    let cap = state.config.max_per_peer;
    if let Some((max, key)) = cap.and_then(|max| Some((max, peer_key(peer)?))) {
        if !ticket.claim_peer(key, max) {
            ticket.withdraw(|s| s.refused_per_peer += 1);
            refused(state, peer, &format_args!("over the per-peer cap of {max}"));
            return false;
        }
    }
    if !verify(peer) {
        ticket.withdraw(|s| s.rejected += 1);
        return false;
    }
    true
}

/// Logs a connection closed unserved (over the per-peer cap, refused by
/// the PROXY protocol), at most once a second with a count of the others.
pub(crate) fn refused(state: &State, from: &Addr, why: &dyn fmt::Display) {
    if let Some(earlier) = crate::lock(&state.refused).due(Instant::now()) {
        report(
            Level::Info,
            format_args!("refused {from}: {why} ({earlier} more refused since the last report)"),
        );
    }
}

/// A datagram received: its bytes (`None` if it was longer than a server
/// takes), its sender, and the socket to reply on.
#[derive(Debug)]
pub struct Received<F: DatagramFamily> {
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) peer: F::PeerAddr,
    pub(crate) socket: Arc<F::Socket>,
}

/// A datagram: Python's `handle`, with the datagram whole.
#[diagnostic::do_not_recommend]
impl<F: DatagramFamily, H: DatagramRequestHandler<F>> Handler<Received<F>> for H {
    fn serve(&self, request: Received<F>, _: &mut Addr, ticket: &mut Ticket) -> io::Result<()> {
        let Some(data) = request.data else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a datagram longer than {DATAGRAM_BUFFER} bytes, dropped"),
            ));
        };
        self.handle(&Datagram {
            data,
            peer: request.peer,
            socket: request.socket,
            server: ServerInfo::new(Arc::clone(&ticket.state)),
        })
    }
    fn verify(&self, peer: &Addr) -> bool {
        self.verify_request(peer)
    }
    fn report(&self, peer: &Addr, error: &HandlerError) {
        self.handle_error(peer, error);
    }
    fn timed_out(&self, server: &ServerInfo) {
        self.handle_timeout(server);
    }
}

/// Runs one request to its end, on whatever thread the executor chose.
fn run<R, H: Handler<R>>(handler: &H, request: R, mut peer: Addr, mut ticket: Ticket) {
    // `serve` consumes the request, so the socket is closed before the
    // ticket is dropped: when the counters say a request is done, its
    // client has its last byte and its end of stream.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        handler.serve(request, &mut peer, &mut ticket)
    }));
    let error = match outcome {
        Ok(Ok(())) => {
            ticket.succeeded();
            return;
        }
        Ok(Err(e)) => HandlerError::io(e),
        Err(panic) => {
            let text = panic.downcast_ref::<String>().map(String::as_str);
            let text = text.or_else(|| panic.downcast_ref::<&str>().copied());
            HandlerError::Panic(text.unwrap_or("(a panic with no message)").to_owned())
        }
    };
    // A panicking error hook must not take the worker down either.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| handler.report(&peer, &error)));
}

/// Who runs a request.
pub(crate) enum Executor {
    /// The serving thread itself: one request at a time.
    Inline,
    /// A fixed pool of workers.
    Pool(ThreadPool),
    /// A new thread for each request, joined before `serve_forever` returns.
    Spawn(Threads),
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
}

impl<S: Source, H: Handler<S::Request>, P: Policy> Server<S, H, P> {
    /// A server on `source`, configured; not yet serving.
    pub(crate) fn new(source: S, handler: H, config: Config) -> io::Result<Self> {
        let local = source.prepare()?;
        let cap = |default| config.max_connections.unwrap_or(default).max(1);
        let (executor, asked) = match config.run {
            _ if !P::THREADED => (Executor::Inline, 1),
            Run::Pool(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a pool needs at least one worker",
                ));
            }
            Run::Pool(workers) => {
                let pool = threadpool::Builder::new()
                    .num_threads(workers)
                    .thread_name("socketserver-worker".into())
                    .thread_stack_size(config.stack_size)
                    .build();
                (Executor::Pool(pool), cap(workers))
            }
            Run::PerConnection => {
                let threads = Threads::new(config.stack_size);
                (
                    Executor::Spawn(threads),
                    cap(super::DEFAULT_MAX_CONNECTIONS),
                )
            }
        };
        let waker = Waker::new(&local)?;
        Ok(Server {
            source: Arc::new(source),
            handler: Arc::new(handler),
            state: Arc::new(State::new(local, waker, config)),
            executor,
            // Never promise connections the descriptor limit would refuse.
            max_active: source::connection_cap(asked),
            buf: Mutex::new(vec![0; S::BUFFER]),
            created: None,
            _policy: PhantomData,
        })
    }

    /// Waits for one request and serves it (Python's `handle_request`). A
    /// threading server returns once the request is handed to its thread.
    /// The type's own example shows it with a client.
    ///
    /// # Errors
    ///
    /// The error of the `accept` or `recv_from` call, if it failed.
    pub fn handle_request(&self) -> io::Result<()> {
        self.next(None).map(drop)
    }

    /// Waits at most `timeout` for one request and serves it: Python's
    /// `handle_request` with the server's `timeout` set. If none came in
    /// time (a free slot and a request, together), calls the handler's
    /// `handle_timeout` and returns `Ok(false)`; `Ok(true)` once a request
    /// was received (and handed on, or refused by the per-peer cap or
    /// `verify_request`). A shutdown asked for meanwhile also returns
    /// `Ok(false)`, without `handle_timeout`.
    ///
    /// A loop of these is a serving loop with a tick, for periodic work on
    /// the serving thread (Python's `service_actions`). The wait is one
    /// `poll(2)`, on Unix only for now: elsewhere this fails with
    /// `Unsupported`.
    ///
    /// ```
    /// let server = socketserver::TcpServer::bind("127.0.0.1:0", |_: &mut socketserver::Connection| Ok(()))?;
    /// let start = std::time::Instant::now();
    /// # #[cfg(unix)]
    /// assert!(!server.handle_request_timeout(std::time::Duration::from_millis(50))?);
    /// # #[cfg(unix)]
    /// assert!(start.elapsed() >= std::time::Duration::from_millis(50));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The error of the `poll`, `accept` or `recv_from` call, if one
    /// failed.
    pub fn handle_request_timeout(&self, timeout: Duration) -> io::Result<bool> {
        // A timeout past what an Instant holds (`Duration::MAX`) waits
        // without a bound.
        let came = self.next(Instant::now().checked_add(timeout))?;
        if !came && !self.state.is_shutdown() {
            self.handler.timed_out(&self.info());
        }
        Ok(came)
    }

    /// Waits (until `deadline`, if given) for a free slot and a request,
    /// then receives it and hands it on. Whether one came: not if the
    /// wait ran out or a shutdown woke it.
    fn next(&self, deadline: Option<Instant>) -> io::Result<bool> {
        let state = &self.state;
        // Backpressure: at the cap, stop taking requests and let them wait
        // in the kernel's queue, rather than queue without bound in ours.
        // Then wait for a request (or the waker).
        let (request, peer) = loop {
            if !state.wait_for_slot(self.max_active, deadline)
                || !state.waker.wait(&*self.source, deadline)?
            {
                return Ok(false);
            }
            match S::receive(&self.source, &mut crate::lock(&self.buf)) {
                // Another thread or process on the same socket took what
                // `poll` saw, and a listener's read timeout (passed on to
                // its connections) then ended the wait in `accept`: wait
                // again, as if nothing had come.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                received => break received?,
            }
        };
        if state.is_shutdown() {
            // Stopped meanwhile: closed unserved, as Python's `server_close`.
            return Ok(false);
        }
        self.dispatch(request, peer);
        Ok(true)
    }

    /// Serves requests until [`shutdown`](crate::ShutdownHandle::shutdown)
    /// is called (Python's `serve_forever`), then ends the live connections
    /// (idle ones at once, the others after the grace period) and returns
    /// once every handler has returned and its thread is joined: nothing of
    /// the server runs after it (the [module docs](crate::server#shutting-down)
    /// say more). Errors from `accept` are logged (`log`, at most once a
    /// second) and retried; errors from requests go to the handler's
    /// `handle_error`.
    ///
    /// ```
    /// let server = socketserver::ThreadingTcpServer::bind("127.0.0.1:0", |_: &mut socketserver::Connection| Ok(()))?;
    /// let stop = server.shutdown_handle(); // Send + Sync + Clone
    /// let serving = std::thread::spawn(move || server.serve_forever());
    /// stop.shutdown();
    /// serving.join().unwrap(); // returned: the server is stopped
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_forever(&self) {
        let state = &self.state;
        let mut failures = Failures::default();
        while !state.is_shutdown() {
            match self.next(None) {
                Ok(_) => failures.recovered(&state.local_addr),
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

    fn dispatch(&self, request: S::Request, peer: Addr) {
        let mut ticket = self.state.begin();
        if let Some(trusted) = &self.state.config.proxy {
            // Only the source's trust is checked here: the header and
            // `admit` wait for the connection's thread, so that a balancer
            // dripping its header holds no one else up.
            let from = peer.ip();
            if !from.is_some_and(|ip| trusted.iter().any(|net| net.contains(ip))) {
                ticket.withdraw(|s| s.refused_proxy += 1);
                let why = "not a trusted balancer (PROXY protocol)";
                refused(&self.state, &peer, &why);
                return; // dropping the request closes its socket, unread
            }
        } else if !admit(&self.state, &peer, |p| self.handler.verify(p), &mut ticket) {
            return; // dropping the request closes its socket
        }
        let handler = Arc::clone(&self.handler);
        let job_peer = peer.clone();
        let job = move || run(&*handler, request, job_peer, ticket);
        if let Err(e) = self.executor.execute(job) {
            // The job was dropped unrun: its ticket counted it failed and
            // its socket is closed. Say why.
            self.handler.report(&peer, &HandlerError::Io(e));
        }
    }
}

/// Says something about the server itself, through the `log` facade
/// (target `socketserver`): these lines never go to stderr by themselves
/// (only the default `handle_error` falls back to stderr without a logger).
/// The one place such lines go through.
pub(crate) fn report(level: Level, line: fmt::Arguments<'_>) {
    log::log!(target: "socketserver", level, "{line}");
}

/// At most one line per [`REPORT_EVERY`] about a repeated event, with a
/// count of those that went unreported in between.
#[derive(Debug, Default)]
pub(crate) struct Every {
    last: Option<Instant>,
    unreported: u64,
}

impl Every {
    fn is_due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY)
    }

    /// `Some(unreported since the last line)` if a line is due now; else
    /// counts this event as unreported.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if !self.is_due(now) {
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
/// At most one line about a repeated event per this long.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A run of failing `accept` calls: how long to pause after the next one,
/// and its lines, at most one a second.
#[derive(Debug, Default)]
struct Failures {
    pause: Duration,
    every: Every,
}

impl Failures {
    /// Counts a failure, reports it if a line is due, and returns how long
    /// to pause before the next `accept`: doubling from [`PAUSE_MIN`] to
    /// [`PAUSE_MAX`].
    fn failed(&mut self, addr: &Addr, e: &io::Error, now: Instant) -> Duration {
        if let Some(earlier) = self.every.due(now) {
            let earlier = match earlier {
                0 => String::new(),
                n => format!(" ({n} more since the last report)"),
            };
            report(
                Level::Warn,
                format_args!("accept on {addr} failed: {e}{earlier}; retrying with backoff"),
            );
        }
        self.pause = (self.pause * 2).clamp(PAUSE_MIN, PAUSE_MAX);
        self.pause
    }

    /// An `accept` worked: the run is over. Failures not yet reported are
    /// reported now, if a line is due, or with the next run's first line.
    fn recovered(&mut self, addr: &Addr) {
        if self.pause.is_zero() {
            return; // the hot path: nothing had failed
        }
        self.pause = Duration::ZERO;
        let now = Instant::now();
        if self.every.unreported > 0 && self.every.is_due(now) {
            let earlier = self.every.due(now).unwrap_or(0);
            report(
                Level::Info,
                format_args!("accept on {addr} works again, after {earlier} more failures"),
            );
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
        assert_eq!(failures.every.unreported, 9);
        failures.recovered(&addr); // within the second
        assert_eq!(failures.pause, Duration::ZERO);
        assert_eq!(failures.every.unreported, 9, "kept for the next line");
        // A second on, the next failure's line carries them.
        failures.failed(&addr, &e, start + Duration::from_millis(1000));
        assert_eq!(failures.every.unreported, 0);
    }

    // Refused peers' lines, at most one a second with a count of the
    // others (`Every`, as accept failures use it): tests/reports.rs.
}
