//! The servers: bind, accept, hand each request to your handler, shut down.
//!
//! This is the *server class* half of Python's `socketserver`. A server owns
//! a listening socket and a handler from [`crate::handler`]; it takes
//! connections (or datagrams) one after another and runs the handler on
//! each, on the serving thread ([`TcpServer`], [`UdpServer`],
//! [`UnixStreamServer`], [`UnixDatagramServer`]) or on other threads
//! ([`ThreadingTcpServer`], [`ThreadingUdpServer`],
//! [`ThreadingUnixStreamServer`], [`ThreadingUnixDatagramServer`]).
//!
//! # Lifecycle
//!
//! ```
//! use std::io::{self, Read, Write};
//! use std::thread;
//! use socketserver::{Connection, ThreadingTcpServer};
//!
//! // Port 0: the system picks a free port; `local_addr` says which.
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
//!     conn.write_all(b"Welcome!")
//! })?;
//! let addr = server.local_addr()?;
//! let stop = server.shutdown_handle();
//! let serving = thread::spawn(move || server.serve_forever());
//!
//! let mut banner = String::new();
//! std::net::TcpStream::connect(addr)?.read_to_string(&mut banner)?;
//! assert_eq!(banner, "Welcome!");
//!
//! stop.shutdown(); // from any thread, or from inside a handler
//! serving.join().unwrap(); // the socket closes when the server is dropped
//! # Ok::<(), io::Error>(())
//! ```
//!
//! # Choosing a threading policy
//!
//! A threading server runs each connection on one of two kinds of thread:
//!
//! * **A thread per connection** (the default, and Python's
//!   `ThreadingTCPServer`): right for long-lived connections such as the
//!   seed's greeting chat, where a client may sit idle for minutes. Each
//!   thread costs a stack (512 KiB reserved by default, a few pages
//!   resident), so the number of connections is capped (default 1,024).
//! * **A pool of N workers** ([`Builder::pool`]): right for short requests.
//!   Threads are made once, so connection churn costs less, but a pool of N
//!   serves at most N connections at once: the (N+1)th waits until a
//!   worker is free, so N slow or idle clients can hold the whole server.
//!   Pair a pool with a read timeout.
//!
//! # Limits
//!
//! | limit | default | set with |
//! |---|---|---|
//! | connections served at once | pool: N; thread per connection: 1,024; never more than the descriptor limit allows | [`Builder::max_connections`] |
//! | connections at once from one IP address (IPv6: one /64) | off | [`Builder::max_per_peer`] |
//! | deadline on each new connection | none | [`Builder::initial_deadline`]; handlers: [`Connection::set_deadline`](crate::Connection::set_deadline) |
//! | read timeout per connection | 5 minutes | [`Builder::read_timeout`] |
//! | write timeout per connection | 1 minute | [`Builder::write_timeout`] |
//! | grace period on shutdown (idle connections end at once) | 5 s ([`DEFAULT_GRACE`]), then connections are closed | [`Builder::graceful_shutdown`] |
//! | wait for handlers after their connections are closed | 1 s ([`CUT_WAIT`]), then left running, logged | fixed |
//! | thread stack size | 512 KiB | [`Builder::stack_size`] |
//! | UDP datagram size | 65,507 bytes, received whole | fixed |
//! | Unix datagram size | 65,536 bytes, received whole; longer ones refused whole | fixed |
//! | listen backlog | [`DEFAULT_BACKLOG`] (128) | [`Builder::backlog`] |
//!
//! At the connection cap the server stops calling `accept`: new clients
//! wait in the kernel's listen queue (their `connect` succeeds, their
//! requests are read later) instead of in an unbounded queue of ours.
//!
//! # Hostile clients
//!
//! A read timeout starts again with every byte, so clients that send
//! nothing, or one byte now and then, can hold every slot of a server. Two
//! options stop them, both off by default so that the lessons' long-lived
//! chats and a benchmark's many clients on one host work as before:
//!
//! * [`Builder::initial_deadline`] gives each new connection a deadline
//!   (say 10 s to deliver its first request); handlers that know where
//!   their requests end move it ([`Connection::set_deadline`]) or clear it.
//!   Past it every read and write fails with `TimedOut`, and the slot is
//!   free again, however slowly the client drips bytes.
//! * [`Builder::max_per_peer`] caps the connections served at once for one
//!   IP address. Connections over the cap are closed as soon as they are
//!   accepted, before any handler or pool queue sees them, and counted in
//!   [`Stats::refused_per_peer`], so one address cannot take every slot.
//!
//! # File descriptors
//!
//! Every connection is a descriptor. On Unix, `bind` raises the process's
//! soft `RLIMIT_NOFILE` to its hard limit (as Go's runtime does at start),
//! and clamps the connection cap to that limit less [`FD_RESERVE`], with a
//! note (through `log`) the first time it does: a server never promises connections it
//! could not accept. Should `accept` still fail for want of descriptors
//! (the handlers' own files, other servers in the process), the server
//! says so at most once a second with a count of the failures in between,
//! backs off (5 ms doubling to 500 ms, woken early when one of its
//! connections ends) and serves again by itself once descriptors free up.
//!
//! [`Connection::set_deadline`]: crate::Connection::set_deadline
//!
//! # Shutting down
//!
//! [`ShutdownHandle::shutdown`] sets a flag and wakes the serving thread by
//! connecting to the server (or, for UDP, sending it an empty datagram), so
//! the loop stops at once, without polling, from any thread, including a
//! handler's own: Python's `shutdown()` waits for `serve_forever` to
//! return, and so deadlocks when a handler calls it. A client still waiting
//! in the listen queue at that moment is closed unserved, as Python's
//! `server_close` does.
//!
//! Then the live connections end, in the manner of Go's `Server.Shutdown`.
//! The server keeps a registry of the sockets it is serving (shared with
//! each [`Connection`](crate::Connection), so it costs no descriptor and
//! no system call per read or write), and:
//!
//! 1. shuts the **read half** of every socket: a handler waiting for its
//!    client's next request sees end of stream at once and returns, while
//!    a reply being written goes on (a request whose bytes are still
//!    arriving sees end of stream too);
//! 2. lets requests under way run until the **grace period** ends
//!    ([`Builder::graceful_shutdown`], default [`DEFAULT_GRACE`]): every
//!    connection's deadline becomes the end of the grace period, which the
//!    handler's own `set_deadline` or `clear_deadline` cannot lift;
//! 3. at its end **closes** what is left: both halves shut, every call
//!    through the connection fails with `ConnectionAborted`, and each such
//!    request is reported to `handle_error` (a warning is logged);
//! 4. **joins** every thread it started, so `serve_forever` returns only
//!    when nothing of the server runs (Python's `block_on_close`, with a
//!    deadline).
//!
//! [`ShutdownHandle::shutdown_now`] skips to step 3 (Go's `Server.Close`).
//! With the `ctrlc` feature, `ShutdownHandle::shutdown_on_ctrl_c` turns
//! Ctrl-C into `shutdown`, and a second Ctrl-C into `shutdown_now`.
//!
//! No thread can be stopped from outside. A handler that loops without any
//! I/O, or ignores every error it gets, runs on after its connection is
//! closed; `serve_forever` waits [`CUT_WAIT`] (1 s) for it, then logs an
//! error, returns, and leaves that thread running (`Stats::active` still
//! counts it). A handler that serves many requests on one connection can
//! also check [`ServerInfo::is_shutdown`] between them. On a [`TcpServer`]
//! (one request at a time, on the serving thread) the grace period is held
//! by the connection's deadline alone: nothing else can interrupt it.

mod bind;
mod core;
pub(crate) mod deadline;
mod fd;
mod live;
mod state;
mod tcp;
mod threads;
mod udp;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
mod unix_datagram;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

pub use bind::{BindAddr, DEFAULT_BACKLOG};
pub use fd::FD_RESERVE;
pub use state::Stats;
pub use tcp::{TcpServer, ThreadingTcpServer};
pub use udp::{ThreadingUdpServer, UdpServer};
#[cfg(unix)]
pub use unix::{ThreadingUnixStreamServer, UnixStreamServer};
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub use unix_datagram::{ThreadingUnixDatagramServer, UnixDatagramServer};

use crate::handler::Addr;
use state::State;

/// The connection cap of a thread-per-connection server, unless set.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The read timeout of each connection, unless set.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// The write timeout of each connection, unless set.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a shutdown lets running requests finish, unless set with
/// [`Builder::graceful_shutdown`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// How long `serve_forever` waits, after closing the connections left at
/// the end of the grace period, for their handlers to return; a handler
/// still running then is left to run on, and logged.
pub const CUT_WAIT: Duration = Duration::from_secs(1);
/// The stack reserved for each connection or worker thread, unless set:
/// room for handlers that keep 64 KiB buffers on the stack, while a
/// thousand idle threads stay a few MB resident.
pub const DEFAULT_STACK_SIZE: usize = 512 * 1024;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Threading {
    Inline,
    Pool(usize),
    PerConnection,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    threading: Threading,
    max_connections: Option<usize>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    nodelay: bool,
    graceful: Option<Duration>,
    stack_size: usize,
    initial_deadline: Option<Duration>,
    max_per_peer: Option<usize>,
    socket: bind::SocketOptions,
}

/// A view of a running server, for handlers (Python's `self.server`).
///
/// ```
/// use std::io::{self, Write};
/// use socketserver::{Connection, TcpServer};
///
/// // A handler that reports how many clients came before this one.
/// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
///     let server = conn.server().clone();
///     write!(conn, "{} served before you at {}", server.stats().completed, server.local_addr())
/// })?;
/// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
/// server.handle_request()?;
/// assert_eq!(server.stats().completed, 1);
/// # Ok::<(), io::Error>(())
/// ```
#[derive(Clone)]
pub struct ServerInfo {
    state: Arc<State>,
}

impl ServerInfo {
    pub(crate) fn new(state: Arc<State>) -> ServerInfo {
        ServerInfo { state }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> &Addr {
        &self.state.local_addr
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Whether the server is shutting down: a handler that serves many
    /// requests on one connection checks this between requests, so that a
    /// graceful shutdown ends it at a request boundary, every request it
    /// read answered in full.
    ///
    /// ```
    /// use std::io::{self, BufRead, BufReader, Write};
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// // Echo lines until the client leaves or the server stops.
    /// let echo = |conn: &mut Connection| -> io::Result<()> {
    ///     let mut lines = BufReader::new(conn.stream().try_clone()?);
    ///     let mut line = String::new();
    ///     while !conn.server().is_shutdown() && lines.read_line(&mut line)? > 0 {
    ///         conn.write_all(line.as_bytes())?;
    ///         line.clear();
    ///     }
    ///     Ok(())
    /// };
    /// let server = ThreadingTcpServer::bind("127.0.0.1:0", echo)?;
    /// assert!(!server.info().is_shutdown());
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.state.is_shutdown()
    }

    /// A handle that can stop the server, here or from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            state: Arc::clone(&self.state),
        }
    }
}

impl fmt::Debug for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerInfo")
            .field("local_addr", &self.state.local_addr)
            .field("stats", &self.state.stats())
            .finish()
    }
}

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
#[derive(Clone)]
pub struct ShutdownHandle {
    state: Arc<State>,
}

impl ShutdownHandle {
    /// Asks `serve_forever` to return, gracefully, and returns at once
    /// (Go's `Server.Shutdown`). The server stops accepting; every
    /// connection whose handler is waiting for its client's next request
    /// sees end of stream at once (its socket's read half is shut down)
    /// while a reply being written goes on; requests still running may
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
        self.state.request_shutdown_now();
    }

    /// Whether a shutdown was asked for and `serve_forever` has not yet
    /// finished it.
    pub fn is_shutdown(&self) -> bool {
        self.state.is_shutdown()
    }
}

/// Ctrl-C, with the `ctrlc` feature.
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

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("local_addr", &self.state.local_addr)
            .field("is_shutdown", &self.is_shutdown())
            .finish()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Marks the servers that run requests on other threads, for which
/// [`Builder::pool`] and [`Builder::thread_per_connection`] mean something.
pub trait Threaded: sealed::Sealed {}

/// Marks the stream servers (TCP, Unix), for which per-connection
/// timeouts and a listen backlog mean something.
pub trait Connected: sealed::Sealed {}

/// Marks the internet servers (TCP, UDP), for which address reuse and
/// dual-stack IPv6 mean something.
pub trait Inet: sealed::Sealed {}

/// Options for a server of type `S`, then `bind`.
///
/// Start one with the server type's `builder`:
///
/// ```
/// use std::time::Duration;
/// use socketserver::{Connection, ThreadingTcpServer};
///
/// let server = ThreadingTcpServer::builder(|_: &mut Connection| Ok(()))
///     .pool(8)
///     .read_timeout(Some(Duration::from_secs(10)))
///     .nodelay(true)
///     .graceful_shutdown(Duration::from_secs(5))
///     .bind("127.0.0.1:0")?;
/// assert!(server.local_addr()?.ip().is_loopback());
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "a builder does nothing until `bind`"]
pub struct Builder<H, S> {
    handler: H,
    config: Config,
    _server: PhantomData<fn() -> S>,
}

impl<H, S> Builder<H, S> {
    fn new(handler: H, threading: Threading) -> Builder<H, S> {
        Builder {
            handler,
            config: Config {
                threading,
                max_connections: None,
                read_timeout: Some(DEFAULT_READ_TIMEOUT),
                write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
                nodelay: false,
                graceful: None,
                stack_size: DEFAULT_STACK_SIZE,
                initial_deadline: None,
                max_per_peer: None,
                socket: bind::SocketOptions::default(),
            },
            _server: PhantomData,
        }
    }

    /// On shutdown, requests under way may run for up to `deadline` (the
    /// grace period; [`DEFAULT_GRACE`] unless set) before their connections
    /// are closed (Python's `block_on_close`, with a deadline), so a
    /// request already read gets its whole reply; connections waiting for
    /// a next request end at once. `Duration::ZERO` closes everything at
    /// once. The [module docs](crate::server#shutting-down) say how.
    pub fn graceful_shutdown(mut self, deadline: Duration) -> Builder<H, S> {
        self.config.graceful = Some(deadline);
        self
    }
}

impl<H, S: Threaded> Builder<H, S> {
    /// Runs requests on a fixed pool of `workers` threads, and serves at
    /// most `workers` at once unless [`max_connections`](Self::max_connections)
    /// says more (the extra ones then wait for a worker, accepted).
    /// Zero workers is an error at `bind`.
    pub fn pool(mut self, workers: usize) -> Builder<H, S> {
        self.config.threading = Threading::Pool(workers);
        self
    }

    /// Runs each request on a new thread (the default), at most
    /// [`DEFAULT_MAX_CONNECTIONS`] at once unless
    /// [`max_connections`](Self::max_connections) says otherwise.
    pub fn thread_per_connection(mut self) -> Builder<H, S> {
        self.config.threading = Threading::PerConnection;
        self
    }

    /// Caps the requests served at once (at least 1). At the cap the server
    /// stops accepting until one ends. On Unix, `bind` clamps the cap to the
    /// descriptor limit less [`FD_RESERVE`], with a note through `log`
    /// (once per process).
    pub fn max_connections(mut self, max: usize) -> Builder<H, S> {
        self.config.max_connections = Some(max);
        self
    }

    /// The stack size of each thread the server starts.
    pub fn stack_size(mut self, bytes: usize) -> Builder<H, S> {
        self.config.stack_size = bytes;
        self
    }
}

impl<H, S: Connected> Builder<H, S> {
    /// How long a read may wait for data before the connection fails with
    /// `TimedOut` (Python's `StreamRequestHandler.timeout`); `None` waits
    /// forever, as does a zero duration.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Builder<H, S> {
        self.config.read_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// How long a write may wait for the client to make room; `None` (or
    /// zero) waits forever.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Builder<H, S> {
        self.config.write_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// Sets the read and the write timeout together.
    pub fn timeout(self, timeout: Option<Duration>) -> Builder<H, S> {
        self.read_timeout(timeout).write_timeout(timeout)
    }

    /// Puts a deadline on every new connection, `deadline` after its
    /// handler starts (for a pool, when a worker takes it): the time a
    /// client has to deliver its first request, say. Past it every read and
    /// write fails with `TimedOut` (see [`Connection::set_deadline`]), so
    /// the slot frees up however slowly the client sends. Handlers move
    /// it ([`Connection::set_deadline`]) or clear it
    /// ([`Connection::clear_deadline`]) at their request boundaries.
    /// `None` (the default) or zero sets none.
    ///
    /// ```
    /// use std::io::{self, Read, Write};
    /// use std::time::Duration;
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::builder(|conn: &mut Connection| {
    ///     let mut hello = [0u8; 5];
    ///     conn.read_exact(&mut hello)?; // within 100 ms of the accept
    ///     conn.clear_deadline(); // then the client may take its time
    ///     conn.write_all(b"welcome")
    /// })
    /// .initial_deadline(Some(Duration::from_millis(100)))
    /// .bind("127.0.0.1:0")?;
    /// let mut slow = std::net::TcpStream::connect(server.local_addr()?)?;
    /// slow.write_all(b"hel")?; // and never the rest
    /// server.handle_request()?; // returns at the deadline
    /// assert_eq!(server.stats().failed, 1);
    /// # Ok::<(), io::Error>(())
    /// ```
    ///
    /// [`Connection::set_deadline`]: crate::Connection::set_deadline
    /// [`Connection::clear_deadline`]: crate::Connection::clear_deadline
    pub fn initial_deadline(mut self, deadline: Option<Duration>) -> Builder<H, S> {
        self.config.initial_deadline = deadline.filter(|d| !d.is_zero());
        self
    }

    /// Caps the connections served at once for one client IP address (an
    /// IPv6 client's whole /64, which one host usually has); `None` (the
    /// default) caps nothing. A connection over the cap is closed as soon
    /// as it is accepted, before `verify_request`, the handler or a pool's
    /// queue sees it, and counted in [`Stats::refused_per_peer`]; other
    /// addresses are unaffected. Unix-domain peers have no address and are
    /// not capped. Zero is taken as one.
    ///
    /// ```
    /// use std::io::Read;
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
    ///     std::io::copy(conn, &mut std::io::sink()).map(drop) // until the client leaves
    /// })
    /// .max_per_peer(Some(1))
    /// .bind("127.0.0.1:0")?;
    /// let addr = server.local_addr()?;
    /// let _first = std::net::TcpStream::connect(addr)?;
    /// server.handle_request()?; // served, on its own thread
    /// let mut second = std::net::TcpStream::connect(addr)?;
    /// server.handle_request()?; // the same address again: closed at once
    /// assert_eq!(second.read(&mut [0u8; 1])?, 0);
    /// assert_eq!(server.stats().refused_per_peer, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_per_peer(mut self, max: Option<usize>) -> Builder<H, S> {
        self.config.max_per_peer = max.map(|m| m.max(1));
        self
    }

    /// Turns off Nagle's algorithm on every TCP connection (Python's
    /// `disable_nagle_algorithm`), so small writes leave at once. Better:
    /// write each reply in one piece, as [`crate::frame`] does.
    pub fn nodelay(mut self, nodelay: bool) -> Builder<H, S> {
        self.config.nodelay = nodelay;
        self
    }
}

// Python's socket knobs: `request_queue_size`, `allow_reuse_address`,
// `allow_reuse_port`, `create_server(dualstack_ipv6=True)`. Set between
// `socket()` and `bind()` (see `bind.rs`); a builder that sets none binds
// exactly as `std` does.

impl<H, S: Connected> Builder<H, S> {
    /// The listen backlog (Python's `request_queue_size`, default 5 there):
    /// how many connections the kernel completes and holds for `accept`
    /// while the server is busy or at its connection cap. Past it, Linux
    /// drops new clients' handshakes (their `connect` waits and retries)
    /// rather than refusing them. Default [`DEFAULT_BACKLOG`] (128, as
    /// `std`); the kernel clamps larger values to its own maximum
    /// (`/proc/sys/net/core/somaxconn` on Linux).
    ///
    /// ```
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// let server = ThreadingTcpServer::builder(|_: &mut Connection| Ok(()))
    ///     .backlog(1024) // bursts of connections, accepted a moment later
    ///     .bind("127.0.0.1:0")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn backlog(mut self, backlog: u32) -> Builder<H, S> {
        self.config.socket.backlog = Some(backlog);
        self
    }
}

impl<H, S: Inet> Builder<H, S> {
    /// Sets `SO_REUSEADDR` before `bind` (Python's `allow_reuse_address`).
    /// On Unix a TCP server has it on unless turned off here (as `std`
    /// does; Python's default is off): a restarted server can bind its
    /// port at once while the old connections sit in `TIME_WAIT`, and it
    /// never lets two servers listen on one port. A UDP server has it off
    /// unless turned on. On Windows the option means something else (any
    /// socket may take the port over) and is left alone.
    ///
    /// ```
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::builder(|_: &mut Connection| Ok(()))
    ///     .reuse_address(false) // fail to bind while old connections linger
    ///     .bind("127.0.0.1:0")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_address(mut self, reuse: bool) -> Builder<H, S> {
        self.config.socket.reuse_address = Some(reuse);
        self
    }

    /// Sets `SO_REUSEPORT` before `bind` (Python's `allow_reuse_port`), so
    /// that several servers (or processes) may bind the same address and
    /// port, each with this option set; Linux spreads new connections, or
    /// datagrams, across them. Off by default. Where the system has no
    /// `SO_REUSEPORT` (Windows), `bind` fails with `Unsupported` (Python
    /// silently skips it).
    ///
    /// Stopping one of several servers on a port: [`ShutdownHandle::shutdown`]
    /// wakes its server by connecting to the port, and the kernel may hand
    /// that connection to a sibling instead. Stop such servers together,
    /// or serve them with
    /// [`handle_request_timeout`](crate::TcpServer::handle_request_timeout)
    /// in a loop that checks a flag of your own.
    ///
    /// ```
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let first = TcpServer::builder(|_: &mut Connection| Ok(()))
    ///     .reuse_port(true)
    ///     .bind("127.0.0.1:0")?;
    /// # #[cfg(unix)] {
    /// let second = TcpServer::builder(|_: &mut Connection| Ok(()))
    ///     .reuse_port(true)
    ///     .bind(first.local_addr()?)?; // the same port
    /// assert_eq!(second.local_addr()?, first.local_addr()?);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_port(mut self, reuse: bool) -> Builder<H, S> {
        self.config.socket.reuse_port = reuse;
        self
    }

    /// For an IPv6 address, whether the socket also serves IPv4 clients
    /// (Python's `create_server(addr, family=AF_INET6,
    /// dualstack_ipv6=True)`): `true` clears `IPV6_V6ONLY`, `false` sets
    /// it. Unset, the system decides (Linux: dual-stack, unless
    /// `net.ipv6.bindv6only` says otherwise; Windows: IPv6 only). IPv4
    /// clients then appear as IPv4-mapped addresses (`::ffff:127.0.0.1`),
    /// which [`Addr::ip`]`.to_canonical()` turns back into IPv4 (the
    /// per-peer cap does so itself). `true` with an IPv4 address is an
    /// error at `bind`.
    ///
    /// ```
    /// use socketserver::{Connection, TcpServer};
    ///
    /// // One socket for IPv6 and IPv4 clients, where the host has IPv6.
    /// if let Ok(server) = TcpServer::builder(|_: &mut Connection| Ok(()))
    ///     .dual_stack(true)
    ///     .bind("[::1]:0")
    /// {
    ///     assert!(server.local_addr()?.is_ipv6());
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dual_stack(mut self, dual: bool) -> Builder<H, S> {
        self.config.socket.dual_stack = Some(dual);
        self
    }
}

/// Declares a server type: the struct, `builder`, and the lifecycle methods
/// every server shares. `bind` and `local_addr` differ by socket family and
/// are written beside each family's types.
macro_rules! server_type {
    (
        $(#[$doc:meta])*
        $name:ident<H: $handler:path>, $source:ty, $serve:ident, $threading:expr,
        example: ($addr:literal, $example_handler:literal)
    ) => {
        $(#[$doc])*
        pub struct $name<H: $handler> {
            core: crate::server::core::Core<$source, crate::server::core::$serve<H>>,
        }

        impl<H: $handler> crate::server::sealed::Sealed for $name<H> {}

        impl<H: $handler> $name<H> {
            /// Options for this server; finish with `bind`.
            ///
            /// ```
            #[doc = concat!("let server = socketserver::", stringify!($name), "::builder(", $example_handler, ")")]
            ///     .graceful_shutdown(std::time::Duration::from_secs(5))
            #[doc = concat!("    .bind(", $addr, ")?;")]
            /// assert_eq!(server.stats().accepted, 0);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn builder(handler: H) -> crate::server::Builder<H, Self> {
                crate::server::Builder::new(handler, $threading)
            }

            /// Serves requests until [`shutdown`](crate::ShutdownHandle::shutdown)
            /// is called (Python's `serve_forever`), then ends the live
            /// connections (idle ones at once, the others after the grace
            /// period) and returns once every handler has returned and its
            /// thread is joined: nothing of the server runs after it (the
            /// [module docs](crate::server#shutting-down) say more). Errors
            /// from `accept` are logged (`log`, at most once a second) and
            /// retried; errors from requests go to the handler's
            /// `handle_error`.
            ///
            /// ```
            #[doc = concat!("let server = socketserver::", stringify!($name), "::bind(", $addr, ", ", $example_handler, ")?;")]
            /// let stop = server.shutdown_handle(); // Send + Sync + Clone
            /// let serving = std::thread::spawn(move || server.serve_forever());
            /// stop.shutdown();
            /// serving.join().unwrap(); // returned: the server is stopped
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn serve_forever(&self) {
                self.core.serve_forever()
            }

            /// Waits for one request and serves it (Python's
            /// `handle_request`). A threading server returns once the
            /// request is handed to its thread. The type's own example
            /// shows it with a client.
            ///
            /// # Errors
            ///
            /// The error of the `accept` or `recv_from` call, if it failed.
            pub fn handle_request(&self) -> std::io::Result<()> {
                self.core.handle_request()
            }

            /// Waits at most `timeout` for one request and serves it:
            /// Python's `handle_request` with the server's `timeout` set.
            /// If none came in time (a free slot and a request, together),
            /// calls the handler's `handle_timeout` and returns
            /// `Ok(false)`; `Ok(true)` once a request was received (and
            /// handed on, or refused by the per-peer cap or
            /// `verify_request`). A shutdown asked for meanwhile also
            /// returns `Ok(false)`, without `handle_timeout`.
            ///
            /// A loop of these is a serving loop with a tick, for periodic
            /// work on the serving thread (Python's `service_actions`).
            /// The wait is one `poll(2)`, on Unix only for now: elsewhere
            /// this fails with `Unsupported`.
            ///
            /// ```
            #[doc = concat!("let server = socketserver::", stringify!($name), "::bind(", $addr, ", ", $example_handler, ")?;")]
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
            /// The error of the `poll`, `accept` or `recv_from` call, if
            /// one failed.
            pub fn handle_request_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> std::io::Result<bool> {
                self.core.handle_request_timeout(timeout)
            }

            /// A handle that stops `serve_forever` from any thread; see
            /// [`serve_forever`](Self::serve_forever).
            pub fn shutdown_handle(&self) -> crate::ShutdownHandle {
                self.core.info().shutdown_handle()
            }

            /// The server's counters now.
            ///
            /// ```
            #[doc = concat!("let server = socketserver::", stringify!($name), "::bind(", $addr, ", ", $example_handler, ")?;")]
            /// let stats = server.stats();
            /// assert_eq!((stats.accepted, stats.active), (0, 0));
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn stats(&self) -> crate::Stats {
                self.core.info().stats()
            }

            /// What handlers see of this server: its address, its counters,
            /// a shutdown handle.
            ///
            /// ```
            #[doc = concat!("let server = socketserver::", stringify!($name), "::bind(", $addr, ", ", $example_handler, ")?;")]
            /// println!("serving on {}", server.info().local_addr());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn info(&self) -> crate::ServerInfo {
                self.core.info()
            }

            /// The handler this server runs, to reach its state (counters,
            /// a cache) while it serves or after. To keep it past the
            /// server, give the server an `Arc` of it and keep a clone.
            ///
            /// ```
            #[doc = concat!("let server = socketserver::", stringify!($name), "::bind(", $addr, ", ", $example_handler, ")?;")]
            /// let _handler = server.handler();
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn handler(&self) -> &H {
                &self.core.handler().0
            }
        }

        impl<H: $handler> std::fmt::Debug for $name<H> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("info", &self.core.info())
                    .finish()
            }
        }
    };
}
use server_type;
