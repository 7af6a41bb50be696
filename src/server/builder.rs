//! The builder: a server's options, set by name, then `bind` (or
//! `from_listener`). Which options a server type takes is said by three
//! marker traits, so that a UDP server has no backlog and a `TcpServer`
//! no pool: asking for one does not compile. Every option lands in the
//! server's [`Config`], read by its threads.

use std::marker::PhantomData;
use std::net::{TcpListener, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::time::Duration;

use super::source::Accepted;
use super::{Config, Handler, Policy, Run, Server, Source, SourceAddr, Threading, proxy, sealed};

/// Marks the servers that run requests on other threads, for which
/// [`Builder::pool`] and [`Builder::thread_per_connection`] mean something.
pub trait Threaded: sealed::Sealed {}

/// Marks the stream servers (TCP, Unix), for which per-connection
/// timeouts and a listen backlog mean something.
pub trait Connected: sealed::Sealed {}

/// Marks the internet servers (TCP, UDP), for which address reuse and
/// dual-stack IPv6 mean something.
pub trait Inet: sealed::Sealed {}

impl<S, H, P> sealed::Sealed for Server<S, H, P> {}
impl<S, H> Threaded for Server<S, H, Threading> {}
impl<H, P> Connected for Server<TcpListener, H, P> {}
#[cfg(unix)]
impl<H, P> Connected for Server<UnixListener, H, P> {}
impl<H, P> Inet for Server<TcpListener, H, P> {}
impl<H, P> Inet for Server<UdpSocket, H, P> {}

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
    /// The defaults, for `S::builder`.
    pub(super) fn new(handler: H) -> Builder<H, S> {
        Builder {
            handler,
            config: Config::default(),
            _server: PhantomData,
        }
    }

    /// On shutdown, requests under way may run for up to `deadline` (the
    /// grace period; [`DEFAULT_GRACE`](super::DEFAULT_GRACE) unless set) before their connections
    /// are closed (Python's `block_on_close`, with a deadline), so a
    /// request already read gets its whole reply; connections waiting for
    /// a next request end at once. `Duration::ZERO` closes everything at
    /// once. The [module docs](crate::server#shutting-down) say how.
    pub fn graceful_shutdown(mut self, deadline: Duration) -> Builder<H, S> {
        // Longer than an `Instant` can reach (`Duration::MAX`): a century.
        self.config.graceful = deadline.min(Duration::from_secs(100 * 365 * 24 * 3600));
        self
    }
}

impl<H, S: Threaded> Builder<H, S> {
    /// Runs requests on a fixed pool of `workers` threads, and serves at
    /// most `workers` at once unless [`max_connections`](Self::max_connections)
    /// says more (the extra ones then wait for a worker, accepted).
    /// Zero workers is an error at `bind`.
    pub fn pool(mut self, workers: usize) -> Builder<H, S> {
        self.config.run = Run::Pool(workers);
        self
    }

    /// Runs each request on a new thread (the default), at most
    /// [`DEFAULT_MAX_CONNECTIONS`](super::DEFAULT_MAX_CONNECTIONS) at once unless
    /// [`max_connections`](Self::max_connections) says otherwise.
    pub fn thread_per_connection(mut self) -> Builder<H, S> {
        self.config.run = Run::PerConnection;
        self
    }

    /// Caps the requests served at once (at least 1). At the cap the server
    /// stops accepting until one ends. On Unix, `bind` clamps the cap to the
    /// descriptor limit less [`FD_RESERVE`](super::FD_RESERVE), with a note through `log`
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
    /// queue sees it, and counted in [`Stats::refused_per_peer`](super::Stats::refused_per_peer); other
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

    /// The listen backlog (Python's `request_queue_size`, default 5 there):
    /// how many connections the kernel completes and holds for `accept`
    /// while the server is busy or at its connection cap. Past it, Linux
    /// drops new clients' handshakes (their `connect` waits and retries)
    /// rather than refusing them. Default [`DEFAULT_BACKLOG`](super::DEFAULT_BACKLOG) (128, as
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

impl<H, P> Builder<H, Server<TcpListener, H, P>> {
    /// Turns on HAProxy's PROXY protocol (v1 and v2): the server sits
    /// behind load balancers at the addresses or networks in `trusted`,
    /// and every connection starts with a header that names the real
    /// client ([`proxy`] explains the protocol). Off by default.
    ///
    /// With it on, in this order:
    ///
    /// * a connection from an address outside `trusted` is closed as soon
    ///   as it is accepted, before a byte is read or written (an empty
    ///   list trusts no one);
    /// * from a trusted balancer, the connection's own thread (never the
    ///   serving loop, so a balancer that drips its header stalls no
    ///   other client) reads the header exactly, under the connection's
    ///   [`initial_deadline`](Self::initial_deadline), or
    ///   [`proxy::HEADER_DEADLINE`] (5 s) if none is set. A missing,
    ///   malformed, oversized (v1: over 107 bytes; v2: over
    ///   [`proxy::MAX_V2_LEN`]) or late header closes the connection;
    /// * a refused connection never reaches `verify_request` or the
    ///   handler: it counts in [`Stats::refused_proxy`](super::Stats::refused_proxy), not in
    ///   `accepted`, and is logged (`log`, info) at most once a second,
    ///   with a count of the others;
    /// * then [`Connection::peer_addr`](crate::Connection::peer_addr) is
    ///   the client's address as the balancer saw it, and
    ///   [`Connection::proxy_addr`](crate::Connection::proxy_addr) the
    ///   balancer's; the per-peer cap, `verify_request` and `handle_error`
    ///   see the client's. A v2 `LOCAL` header (a health check) or a v1
    ///   `UNKNOWN` one is served as the balancer itself. The initial
    ///   deadline starts again for the handler once the header is read.
    ///
    /// With it off, no connection pays anything for it. Only TCP servers
    /// have it; UDP is not supported. On a [`TcpServer`](super::TcpServer) the connection's
    /// thread is the serving thread, so a slow header holds the server up
    /// to the deadline, as any slow client does there: use a threading
    /// server behind a balancer.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use socketserver::server::proxy::Network;
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
    ///     let client = conn.peer_addr().clone(); // as the balancer saw it
    ///     write!(conn, "hello {client}")
    /// })
    /// .proxy_protocol(["127.0.0.1".parse::<Network>()?]) // the balancer: here, this test
    /// .bind("127.0.0.1:0")?;
    /// let mut balancer = std::net::TcpStream::connect(server.local_addr()?)?;
    /// balancer.write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 7000\r\n")?;
    /// server.handle_request()?;
    /// let mut reply = String::new();
    /// balancer.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "hello 203.0.113.7:51000");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proxy_protocol<I>(mut self, trusted: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<proxy::Network>,
    {
        self.config.proxy = Some(trusted.into_iter().map(Into::into).collect());
        self
    }

    /// A service's balancer settings as its config holds them: `reuse_port`
    /// and, if given, [`proxy_protocol`](Self::proxy_protocol).
    pub(crate) fn balanced(self, reuse_port: bool, trusted: Option<Vec<proxy::Network>>) -> Self {
        let mut builder = self.reuse_port(reuse_port);
        builder.config.proxy = trusted.map(Into::into);
        builder
    }
}

// Python's socket knobs: `request_queue_size` (`backlog`, above, with the
// stream servers' options), `allow_reuse_address`, `allow_reuse_port`,
// `create_server(dualstack_ipv6=True)`. Set between `socket()` and
// `bind()` (see `source.rs`); a builder that sets none binds exactly as
// `std` does.

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
    /// Each of several servers on a port stops on its own
    /// ([`ShutdownHandle::shutdown`](super::ShutdownHandle::shutdown) wakes it through its own pipe, not
    /// through the shared port).
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
    /// which [`Addr::ip`](crate::Addr::ip)`.to_canonical()` turns back into IPv4 (the
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

impl<S: Source, H: Handler<S::Request>, P: Policy> Builder<H, Server<S, H, P>> {
    /// Binds `addr` and returns the server, ready but not yet serving, with
    /// the socket options set on this builder; `addr` as for
    /// [`Server::bind`].
    ///
    /// # Errors
    ///
    /// If the address cannot be bound or a socket option cannot be set, or
    /// a pool of 0 was asked for.
    pub fn bind(self, addr: impl SourceAddr<S>) -> std::io::Result<Server<S, H, P>> {
        let mut config = self.config;
        if S::PASSES_ON {
            config.socket.accepted = Some(Accepted {
                read: config.read_timeout,
                write: config.write_timeout,
                nodelay: config.nodelay,
            });
        }
        let (source, created) = addr.open(&config.socket)?;
        let server = Server::new(source, self.handler, config);
        if let (Err(_), Some(path)) = (&server, &created) {
            let _ = std::fs::remove_file(path);
        }
        let mut server = server?;
        server.created = created;
        Ok(server)
    }

    /// Serves on a socket you bound yourself (to set socket options first,
    /// or to inherit one); the builder's socket options (backlog, reuse,
    /// dual stack) are not applied to it, and a Unix socket's file is left
    /// in place when the server is dropped. The socket itself is left as
    /// it is: each connection is given the builder's timeouts and
    /// `nodelay` on its own, whatever the socket passed on to it (it may
    /// have had connections queued before, or be shared with other
    /// servers).
    ///
    /// # Errors
    ///
    /// If the socket's address cannot be read, or a pool of 0 was asked
    /// for.
    pub fn from_listener(self, listener: S) -> std::io::Result<Server<S, H, P>> {
        Server::new(listener, self.handler, self.config)
    }

    /// [`from_listener`](Self::from_listener), by the name that fits a
    /// datagram socket.
    ///
    /// # Errors
    ///
    /// As [`from_listener`](Self::from_listener).
    pub fn from_socket(self, socket: S) -> std::io::Result<Server<S, H, P>> {
        self.from_listener(socket)
    }
}
