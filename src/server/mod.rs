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
//! All eight are one type, [`Server<S, H, P>`](Server): a source of
//! requests `S` (a `TcpListener`, `UdpSocket`, `UnixListener` or
//! `UnixDatagram`), a handler `H`, and a policy `P` ([`Sequential`] or
//! [`Threading`]); Python's names are aliases of it.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Server`], Python's names, [`ServerInfo`] |
//! | `builder.rs` | [`Builder`]: every option, and which server types take it |
//! | `source.rs` | the four sources: binding (Python's `server_bind`), socket options, receiving; the descriptor limit and the cap it sets |
//! | `serve.rs` | the serving loop, the executors, and the one path to the handler's hooks |
//! | `shutdown.rs` | [`ShutdownHandle`]: the waker, drain, grace, cut, joins, the registry of live connections |
//! | `stats.rs` | [`Stats`], the connection gate, the per-peer cap |
//! | `deadline.rs` | a connection's deadline |
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
//!   thread costs a stack (2 MiB reserved by default, a few pages
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
//! | thread stack size | 2 MiB (std's default) | [`Builder::stack_size`] |
//! | UDP datagram size | 65,507 bytes, received whole | fixed |
//! | Unix datagram size | 65,536 bytes, received whole; longer ones refused whole | fixed |
//! | listen backlog | [`DEFAULT_BACKLOG`] (128) | [`Builder::backlog`] |
//! | PROXY protocol header (TCP, when on) | v1: 107 bytes; v2: 16 + [`proxy::MAX_V2_LEN`] (1,024); within the initial deadline, else [`proxy::HEADER_DEADLINE`] (5 s) | [`Builder::proxy_protocol`] |
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
//! [`ShutdownHandle::shutdown`] sets a flag and wakes the serving thread
//! through a pipe of its own, which the loop waits on beside its socket
//! (one `poll(2)`), so the loop stops at once, without polling, whatever
//! the server's address (a Unix socket with an abstract name or none, a
//! port shared with `SO_REUSEPORT`), from any thread, including a
//! handler's own: Python's `shutdown()` waits for `serve_forever` to
//! return, and so deadlocks when a handler calls it. (That is Unix; off
//! Unix the loop waits in `accept` or `recv_from` and is woken by a
//! connection and a datagram to its own address.) A client still waiting
//! in the listen queue at that moment is closed unserved, as Python's
//! `server_close` does.
//!
//! Then the live connections end, in the manner of Go's `Server.Shutdown`.
//! The server keeps a registry of the sockets it is serving (shared with
//! each [`Connection`](crate::Connection), so it costs no descriptor and
//! no system call per read or write), and:
//!
//! 1. shuts the **read half** of every socket at a **request boundary**:
//!    a handler waiting for its client's next request sees end of stream
//!    at once and returns, while a reply being written goes on; a request
//!    whose bytes are arriving (read in part, or waiting unread in the
//!    socket) keeps its read half until it is answered, and so finishes
//!    within the grace period. The framework knows the boundaries without
//!    a system call: a connection is between requests when it starts and
//!    after each write (a reply), in a request once a read returns fewer
//!    bytes than it asked for (a message that goes on); a read that starts
//!    between requests with nothing in the socket waits for a new request,
//!    and during a drain sees end of stream;
//!    [`StreamRequest::read_line`](crate::StreamRequest::read_line) marks
//!    one before it waits for a line, and a handler marks its own with
//!    [`Connection::request_boundary`](crate::Connection::request_boundary)
//!    (or says a request goes on past an acknowledgement with
//!    [`Connection::request_continues`](crate::Connection::request_continues));
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
//! Dropping a server (Python's `server_close`) does the same to the
//! requests still running: a threading server served with
//! `handle_request` is dropped only once its handler threads are joined,
//! within the grace period (and [`CUT_WAIT`]).
//!
//! [`ShutdownHandle::shutdown_now`] skips to step 3 (Go's `Server.Close`).
//! With the `ctrlc` feature (on by default),
//! `ShutdownHandle::shutdown_on_ctrl_c` turns Ctrl-C into `shutdown`, and a
//! second Ctrl-C into `shutdown_now`.
//!
//! No thread can be stopped from outside. A handler that loops without any
//! I/O, or ignores every error it gets, runs on after its connection is
//! closed; `serve_forever` waits [`CUT_WAIT`] (1 s) for it, then logs an
//! error, returns, and leaves that thread running (`Stats::active` still
//! counts it). A handler that serves many requests on one connection can
//! also check [`ServerInfo::is_shutdown`] between them. On a [`TcpServer`]
//! (one request at a time, on the serving thread) the grace period is held
//! by the connection's deadline alone: nothing else can interrupt it.

mod builder;
mod deadline;
mod serve;
mod shutdown;
mod source;
mod stats;

use std::fmt;
use std::marker::PhantomData;
use std::net::{TcpListener, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use crate::proxy;
pub use builder::{Builder, Connected, Inet, Threaded};
pub(crate) use deadline::{Clock, Dir};
use serve::Executor;
pub use serve::Handler;
pub use shutdown::ShutdownHandle;
use shutdown::{Live, Waker};
pub use source::{BindAddr, DEFAULT_BACKLOG, FD_RESERVE, Source, SourceAddr};
pub use stats::Stats;
pub(crate) use stats::peer_key;

use crate::handler::Addr;

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
/// std's own default (2 MiB). Reserved, not resident: a thousand idle
/// threads stay a few MB resident whatever the size (on a 32-bit system,
/// though, 1,024 of them reserve 2 GiB of its address space: set less). Smaller stacks cost
/// speed here: with 512 KiB ones, joined and reused as connections come
/// and go, a busy thread-per-connection server more often ends up with
/// each client on one core and its handler on the other (see the
/// benchmark docs).
pub const DEFAULT_STACK_SIZE: usize = 2 * 1024 * 1024;

/// A TCP server that serves one connection at a time, on the thread that
/// calls `serve_forever`: Python's `TCPServer`. While one client is served,
/// the next waits in the listen queue.
///
/// ```
/// use std::io::{self, Read, Write};
/// use socketserver::{Connection, TcpServer};
///
/// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
///     let mut name = String::new();
///     conn.read_to_string(&mut name)?;
///     write!(conn, "你好,{name}")
/// })?;
/// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
/// client.write_all(b"Michael")?;
/// client.shutdown(std::net::Shutdown::Write)?;
/// server.handle_request()?;
/// let mut reply = String::new();
/// client.read_to_string(&mut reply)?;
/// assert_eq!(reply, "你好,Michael");
/// # Ok::<(), io::Error>(())
/// ```
pub type TcpServer<H> = Server<TcpListener, H, Sequential>;

/// A TCP server that serves each connection on its own thread (up to
/// [`DEFAULT_MAX_CONNECTIONS`] at once), or on a pool ([`Builder::pool`]):
/// Python's `ThreadingTCPServer`. The [module docs](crate::server) say
/// when each fits.
///
/// ```
/// use std::io::{self, Read};
/// use std::thread;
/// use socketserver::{Connection, ThreadingTcpServer};
///
/// let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
///     io::Write::write_all(conn, b"Welcome!")
/// })
/// .pool(4)
/// .bind("127.0.0.1:0")?;
/// let addr = server.local_addr()?;
/// let stop = server.shutdown_handle();
/// let serving = thread::spawn(move || server.serve_forever());
/// let clients: Vec<_> = (0..8)
///     .map(|_| thread::spawn(move || {
///         let mut banner = String::new();
///         std::net::TcpStream::connect(addr)?.read_to_string(&mut banner)?;
///         Ok::<_, io::Error>(banner)
///     }))
///     .collect();
/// for client in clients {
///     assert_eq!(client.join().unwrap()?, "Welcome!");
/// }
/// stop.shutdown();
/// serving.join().unwrap();
/// # Ok::<(), io::Error>(())
/// ```
pub type ThreadingTcpServer<H> = Server<TcpListener, H, Threading>;

/// A UDP server that handles one datagram at a time: Python's
/// `UDPServer`. See [`DatagramRequestHandler`](crate::DatagramRequestHandler)
/// for an example.
pub type UdpServer<H> = Server<UdpSocket, H, Sequential>;

/// A UDP server that handles each datagram on a thread or a pool:
/// Python's `ThreadingUDPServer`. Worth it when handling a datagram takes
/// long (a lookup, a delay) compared with receiving one.
///
/// ```
/// use socketserver::{Datagram, ThreadingUdpServer};
///
/// let server = ThreadingUdpServer::builder(|d: &Datagram| d.reply(d.data()))
///     .pool(2)
///     .bind("127.0.0.1:0")?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"ping", server.local_addr()?)?;
/// server.handle_request()?;
/// let mut buf = [0u8; 16];
/// assert_eq!(client.recv(&mut buf)?, 4);
/// # Ok::<(), std::io::Error>(())
/// ```
pub type ThreadingUdpServer<H> = Server<UdpSocket, H, Threading>;

/// A Unix-domain stream server that serves one connection at a time:
/// Python's `UnixStreamServer`. Only processes on this machine that may
/// open the socket file can connect, which makes it a good home for local
/// control services.
///
/// ```
/// use std::io::{self, Read, Write};
/// use socketserver::{Connection, UnixStreamServer};
///
/// let path = std::env::temp_dir().join(format!("socketserver-doc-{}.sock", std::process::id()));
/// let server = UnixStreamServer::bind(&path, |conn: &mut Connection| conn.write_all(b"hi"))?;
/// let mut client = std::os::unix::net::UnixStream::connect(&path)?;
/// server.handle_request()?;
/// let mut reply = String::new();
/// client.read_to_string(&mut reply)?;
/// assert_eq!(reply, "hi");
/// drop(server); // removes the socket file
/// assert!(!path.exists());
/// # Ok::<(), io::Error>(())
/// ```
#[cfg(unix)]
pub type UnixStreamServer<H> = Server<UnixListener, H, Sequential>;

/// A Unix-domain stream server that serves each connection on a thread or
/// a pool, like [`ThreadingTcpServer`]: Python's
/// `ThreadingUnixStreamServer`.
#[cfg(unix)]
pub type ThreadingUnixStreamServer<H> = Server<UnixListener, H, Threading>;

/// A Unix-domain datagram server that handles one datagram at a time:
/// Python's `UnixDatagramServer`. Its handler is a
/// [`DatagramRequestHandler<Unix>`](crate::DatagramRequestHandler) (or a
/// closure over `&Datagram<Unix>`); datagrams up to 65,536 bytes are taken
/// whole, longer ones refused whole (`InvalidData` to `handle_error`).
/// Nothing is lost or reordered on the way; a client that wants replies
/// binds a path of its own (an unnamed sender can be heard, not answered).
///
/// ```
/// use std::os::unix::net::UnixDatagram;
/// use socketserver::UnixDatagramServer;
/// use socketserver::handler::{Datagram, Unix};
///
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("socketserver-doc-dgram-{}.sock", std::process::id()));
/// let server = UnixDatagramServer::bind(&path, |d: &Datagram<Unix>| {
///     d.reply(&[b"echo:", d.data()].concat())
/// })?;
/// // The client binds a path of its own, so that it can be answered.
/// let me = dir.join(format!("socketserver-doc-dgram-client-{}.sock", std::process::id()));
/// let client = UnixDatagram::bind(&me)?;
/// client.send_to(b"hi", &path)?;
/// server.handle_request()?;
/// let mut buf = [0u8; 16];
/// let n = client.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"echo:hi");
/// std::fs::remove_file(&me)?;
/// drop(server); // removes the socket file
/// assert!(!path.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
pub type UnixDatagramServer<H> = Server<UnixDatagram, H, Sequential>;

/// A Unix-domain datagram server that handles each datagram on a thread
/// or a pool: Python's `ThreadingUnixDatagramServer`.
///
/// ```
/// use std::io;
/// use std::os::unix::net::UnixDatagram;
/// use socketserver::ThreadingUnixDatagramServer;
/// use socketserver::handler::{Datagram, DatagramFamily, DatagramRequestHandler};
///
/// /// One handler for UDP and Unix datagrams alike.
/// struct Echo;
/// impl<F: DatagramFamily> DatagramRequestHandler<F> for Echo {
///     fn handle(&self, d: &Datagram<F>) -> io::Result<()> {
///         d.reply(d.data())
///     }
/// }
///
/// let path = std::env::temp_dir().join(format!("socketserver-doc-tdgram-{}.sock", std::process::id()));
/// let server = ThreadingUnixDatagramServer::builder(Echo).pool(2).bind(&path)?;
/// let udp = socketserver::UdpServer::bind("127.0.0.1:0", Echo)?; // the same handler
/// let (client, _peer) = UnixDatagram::pair()?; // unnamed: cannot be answered
/// client.send_to(b"hi", &path)?;
/// server.handle_request()?;
/// # drop(udp);
/// # Ok::<(), io::Error>(())
/// ```
#[cfg(unix)]
pub type ThreadingUnixDatagramServer<H> = Server<UnixDatagram, H, Threading>;

/// A server: requests from a source `S` (a `TcpListener`, `UdpSocket`,
/// `UnixListener` or `UnixDatagram`), served by a handler `H`, one at a
/// time on the serving thread ([`Sequential`]) or on other threads
/// ([`Threading`]). Python's eight names ([`TcpServer`],
/// [`ThreadingTcpServer`], ...) are aliases of it; the
/// [module docs](crate::server) tell its lifecycle.
pub struct Server<S, H, P = Threading> {
    source: Arc<S>,
    /// Shared with every request's job (the state through its ticket).
    handler: Arc<H>,
    state: Arc<State>,
    executor: Executor,
    max_active: usize,
    /// The buffer datagrams are received into (empty for stream sources).
    buf: Mutex<Vec<u8>>,
    /// The socket file we created, removed when the server is dropped.
    created: Option<std::path::PathBuf>,
    _policy: PhantomData<fn() -> P>,
}

/// The policy of a server that serves one request at a time, on the thread
/// that calls `serve_forever` or `handle_request` (Python's `TCPServer`).
#[derive(Debug)]
pub enum Sequential {}

/// The policy of a server that serves each request on another thread: a
/// thread per request (the default) or a pool (Python's `ThreadingMixIn`).
#[derive(Debug)]
pub enum Threading {}

/// A threading policy: [`Sequential`] or [`Threading`].
pub trait Policy: sealed::Sealed {
    #[doc(hidden)]
    const THREADED: bool;
}

impl sealed::Sealed for Sequential {}
impl sealed::Sealed for Threading {}
impl Policy for Sequential {
    const THREADED: bool = false;
}
impl Policy for Threading {
    const THREADED: bool = true;
}

impl<S: Source, H: Handler<S::Request>, P: Policy> Server<S, H, P> {
    /// Options for this server; finish with `bind` (or `from_listener`).
    ///
    /// ```
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// let server = ThreadingTcpServer::builder(|_: &mut Connection| Ok(()))
    ///     .graceful_shutdown(std::time::Duration::from_secs(5))
    ///     .bind("127.0.0.1:0")?;
    /// assert_eq!(server.stats().accepted, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(handler: H) -> Builder<H, Self> {
        Builder::new(handler)
    }

    /// Binds `addr` with the default options and returns the server, ready
    /// but not yet serving: for TCP and UDP anything [`BindAddr`] takes
    /// (`"127.0.0.1:0"`, Python's `("", port)`), for Unix servers the path
    /// of the socket file to create (removed when the server is dropped).
    ///
    /// # Errors
    ///
    /// If the address cannot be bound (in use, not local, a socket file
    /// that exists already: remove a stale one first).
    pub fn bind(addr: impl SourceAddr<S>, handler: H) -> std::io::Result<Self> {
        Self::builder(handler).bind(addr)
    }

    /// The address the server listens (or receives) on: with port 0, the
    /// port the system picked.
    ///
    /// # Errors
    ///
    /// As the socket's `local_addr`.
    pub fn local_addr(&self) -> std::io::Result<S::Addr> {
        self.source.local_addr()
    }

    /// A handle that stops `serve_forever` from any thread; see
    /// [`serve_forever`](Self::serve_forever).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.info().shutdown_handle()
    }

    /// The server's counters now.
    ///
    /// ```
    /// let server = socketserver::TcpServer::bind("127.0.0.1:0", |_: &mut socketserver::Connection| Ok(()))?;
    /// let stats = server.stats();
    /// assert_eq!((stats.accepted, stats.active), (0, 0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// What handlers see of this server: its address, its counters, a
    /// shutdown handle.
    ///
    /// ```
    /// let server = socketserver::TcpServer::bind("127.0.0.1:0", |_: &mut socketserver::Connection| Ok(()))?;
    /// println!("serving on {}", server.info().local_addr());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn info(&self) -> ServerInfo {
        ServerInfo::new(Arc::clone(&self.state))
    }

    /// The handler this server runs, to reach its state (counters, a
    /// cache) while it serves or after. To keep it past the server, give
    /// the server an `Arc` of it and keep a clone.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

impl<S: Source, H, P> fmt::Debug for Server<S, H, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.state.local_addr)
            .field("stats", &self.state.stats())
            .finish()
    }
}

/// How a threading server runs requests, as configured (a sequential one
/// serves each on the thread that waits for it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Run {
    Pool(usize),
    PerConnection,
}

/// A server's options, as the builder set them; the server's threads read
/// them in its [`State`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    run: Run,
    max_connections: Option<usize>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    nodelay: bool,
    /// How long a shutdown lets requests run on ([`Builder::graceful_shutdown`]).
    graceful: Duration,
    stack_size: usize,
    initial_deadline: Option<Duration>,
    max_per_peer: Option<usize>,
    /// The trusted balancers, with the PROXY protocol on.
    proxy: Option<Arc<[proxy::Network]>>,
    socket: source::SocketOptions,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            run: Run::PerConnection,
            max_connections: None,
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
            write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
            nodelay: false,
            graceful: DEFAULT_GRACE,
            stack_size: DEFAULT_STACK_SIZE,
            initial_deadline: None,
            max_per_peer: None,
            proxy: None,
            socket: source::SocketOptions::default(),
        }
    }
}

/// What a server's threads share: its address and options, the counters
/// and the gate they drive (`stats.rs`), and the shutdown's flag, waker and
/// registry of live connections (`shutdown.rs`).
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) local_addr: Addr,
    config: Config,
    waker: Waker,
    shutdown: std::sync::atomic::AtomicBool,
    counts: Mutex<stats::Counts>,
    /// Announces every change to the counts, and a shutdown.
    changed: Condvar,
    live: Live,
    /// The last connection number given (`Connection::id`).
    ids: std::sync::atomic::AtomicU64,
    /// Lines about connections closed unserved (the per-peer cap, the
    /// PROXY protocol), at most one a second, from the serving thread and
    /// the connections'.
    refused: Mutex<serve::Every>,
}

impl State {
    fn new(local_addr: Addr, waker: Waker, config: Config) -> State {
        State {
            local_addr,
            config,
            waker,
            shutdown: std::sync::atomic::AtomicBool::new(false),
            counts: Mutex::default(),
            changed: Condvar::new(),
            live: Live::default(),
            ids: std::sync::atomic::AtomicU64::new(0),
            refused: Mutex::default(),
        }
    }
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
#[derive(Clone, Debug)]
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

/// Seals the framework's traits (`Source`, `Policy`, `DatagramFamily`,
/// the builder's markers): only the types here implement them.
pub(crate) mod sealed {
    pub trait Sealed {}
}
