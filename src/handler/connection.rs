//! One accepted stream connection, as a handler sees it.
//!
//! A stream server hands each handler a [`Connection`]: the socket (a
//! [`Stream`], TCP or Unix-domain), the peer's [`Addr`], the server's view,
//! and an optional deadline that bounds many reads and writes together.
//! It reads and writes like the socket itself, so `std::io` helpers and
//! [`crate::frame`] work on it directly.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::is_timeout;
use crate::server::ServerInfo;
use crate::server::{Clock, Dir};

/// A socket address: a client's, or a server's own.
///
/// Stream handlers serve TCP and Unix-domain sockets alike, so addresses
/// come in both kinds. It prints like Python's `client_address` would, as
/// `127.0.0.1:50000` or a socket path.
///
/// ```
/// use socketserver::Addr;
/// let peer = Addr::from("127.0.0.1:50000".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(peer.to_string(), "127.0.0.1:50000");
/// assert_eq!(peer.as_inet().map(|a| a.port()), Some(50000));
/// ```
///
/// Addresses compare and hash by value (`Eq + Hash`), so they key maps and
/// sets. A Unix-domain client's socket is usually *unnamed*: it has no
/// address at all, so every unnamed peer is equal to every other and prints
/// as `(unnamed unix socket)`, as every `0.0.0.0:0` is equal to every
/// other. To tell connections apart, key by [`Connection::id`] instead.
///
/// ```
/// use std::collections::HashSet;
/// use socketserver::Addr;
/// let a = Addr::from("127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap());
/// let b = Addr::from("127.0.0.1:2".parse::<std::net::SocketAddr>().unwrap());
/// let seen: HashSet<Addr> = [a.clone(), b, a].into_iter().collect();
/// assert_eq!(seen.len(), 2);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Addr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix-domain socket address (often unnamed, for clients).
    #[cfg(unix)]
    Unix(std::os::unix::net::SocketAddr),
}

impl Addr {
    /// The IP address, for TCP and UDP peers.
    ///
    /// ```
    /// use socketserver::Addr;
    /// let addr = Addr::Inet("127.0.0.1:9999".parse().unwrap());
    /// assert!(addr.ip().unwrap().is_loopback());
    /// ```
    pub fn ip(&self) -> Option<IpAddr> {
        self.as_inet().map(|a| a.ip())
    }

    /// The internet socket address, for TCP and UDP.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Addr::Inet(a) => Some(*a),
            #[cfg(unix)]
            Addr::Unix(_) => None,
        }
    }
}

/// What a Unix-domain address is, as a value: a path, a Linux abstract
/// name, or nothing (unnamed).
#[cfg(unix)]
fn unix_key(a: &std::os::unix::net::SocketAddr) -> (Option<&std::path::Path>, Option<&[u8]>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let abstract_name = {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        a.as_abstract_name()
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let abstract_name = None;
    (a.as_pathname(), abstract_name)
}

impl PartialEq for Addr {
    fn eq(&self, other: &Addr) -> bool {
        match (self, other) {
            (Addr::Inet(a), Addr::Inet(b)) => a == b,
            #[cfg(unix)]
            (Addr::Unix(a), Addr::Unix(b)) => unix_key(a) == unix_key(b),
            #[cfg(unix)]
            _ => false,
        }
    }
}

impl Eq for Addr {}

impl std::hash::Hash for Addr {
    fn hash<S: std::hash::Hasher>(&self, state: &mut S) {
        // What `==` compares: the internet address, or the Unix one's key.
        self.as_inet().hash(state);
        #[cfg(unix)]
        if let Addr::Unix(a) = self {
            unix_key(a).hash(state);
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(a) => write!(f, "{a}"),
            #[cfg(unix)]
            Addr::Unix(a) => match unix_key(a) {
                (Some(path), _) => write!(f, "{}", path.display()),
                // Linux's abstract names, written as `ss` and `netstat` do.
                (None, Some(name)) => write!(f, "@{}", String::from_utf8_lossy(name)),
                (None, None) => f.write_str("(unnamed unix socket)"),
            },
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::Inet(a)
    }
}

/// A connected stream socket: TCP, or Unix-domain on Unix.
///
/// It reads and writes like the socket it wraps; `&Stream` does too, so a
/// reader and a writer can share one connection (that is how
/// [`StreamRequest`](super::StreamRequest) builds `rfile` and `wfile` without duplicating the
/// socket).
///
/// ```
/// use std::io::{Read, Write};
/// use socketserver::{Connection, TcpServer};
///
/// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
///     // A second handle for a writer thread, say; `&Stream` writes too.
///     let mut writer = conn.stream().try_clone()?;
///     writer.write_all(b"from the clone")?;
///     assert!(conn.stream().as_tcp().is_some());
///     Ok(())
/// })?;
/// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
/// server.handle_request()?;
/// let mut got = String::new();
/// client.read_to_string(&mut got)?;
/// assert_eq!(got, "from the clone");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream connection.
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Whether bytes the handler has not read wait in the socket's receive
    /// queue (a request that has begun to arrive). Asked only by a
    /// shutdown's drain, never per read or write.
    pub(crate) fn input_waiting(&self) -> bool {
        #[cfg(unix)]
        return rustix::io::ioctl_fionread(&*self.socket()).is_ok_and(|n| n > 0);
        #[cfg(not(unix))]
        false
    }

    /// The socket under either kind, for the calls both kinds share.
    fn socket(&self) -> socket2::SockRef<'_> {
        match self {
            Stream::Tcp(s) => s.into(),
            #[cfg(unix)]
            Stream::Unix(s) => s.into(),
        }
    }

    /// The TCP socket, if this is TCP (for `set_nodelay`, `peer_addr`, ...).
    pub fn as_tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            #[cfg(unix)]
            Stream::Unix(_) => None,
        }
    }

    /// Sets the read timeout; `None` waits forever.
    ///
    /// # Errors
    ///
    /// As the socket's `set_read_timeout` (a zero duration is an error).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(nonzero(timeout)?)
    }

    /// Sets the write timeout; `None` waits forever.
    ///
    /// # Errors
    ///
    /// As the socket's `set_write_timeout` (a zero duration is an error).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_write_timeout(nonzero(timeout)?)
    }

    /// Shuts down the read half, the write half, or both. Shutting down the
    /// write half sends the peer an end of stream while we can still read.
    ///
    /// # Errors
    ///
    /// As the socket's `shutdown`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket().shutdown(how)
    }

    /// Reads without consuming: the next read returns the same bytes.
    /// Blocks until at least one byte or the end of the stream arrives.
    ///
    /// # Errors
    ///
    /// As the socket's `peek`; `Unsupported` on Unix sockets, which cannot
    /// peek on stable Rust.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.peek(buf),
            #[cfg(unix)]
            Stream::Unix(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Whether the peer has closed the connection, checked without waiting
    /// or consuming anything. A peer that only shut down its sending half
    /// looks closed too. Always `false` for Unix sockets.
    pub fn peer_closed(&self) -> bool {
        let Some(tcp) = self.as_tcp() else {
            return false;
        };
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let closed = match tcp.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !is_timeout(&e) && e.kind() != io::ErrorKind::Interrupted,
        };
        let _ = tcp.set_nonblocking(false);
        closed
    }

    /// A second handle to the same socket, for another thread.
    ///
    /// The handle knows nothing of the connection's deadline
    /// ([`Connection::set_deadline`]): a reader made from it waits as long
    /// as the socket's timeout allows on each read, however long ago the
    /// deadline passed (and, since the two share the socket's timeouts,
    /// may time out sooner than the server's timeout while a deadline is
    /// set). Use [`Connection::try_clone`] for a handle that honours it.
    ///
    /// # Errors
    ///
    /// As the socket's `try_clone`.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => s.try_clone()?.into(),
            #[cfg(unix)]
            Stream::Unix(s) => s.try_clone()?.into(),
        })
    }
}

/// A timeout as `std` takes it: zero is an error, and anything shorter than
/// a microsecond is one (the socket counts in microseconds, where zero
/// means no timeout at all: a deadline's last nanoseconds must not turn
/// into a wait forever).
fn nonzero(timeout: Option<Duration>) -> io::Result<Option<Duration>> {
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(timeout.map(|t| t.max(Duration::from_micros(1))))
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Tcp(s)
    }
}

#[cfg(unix)]
impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Stream {
        Stream::Unix(s)
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.socket()).read(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.socket()).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.socket()).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One accepted connection, handed to [`BaseRequestHandler::handle`](super::BaseRequestHandler::handle):
/// Python's `self.request`, `self.client_address` and `self.server`.
///
/// It reads and writes like its socket (so does `&Connection`, for a
/// reader and a writer side by side). The socket closes when the handler's
/// `finish` returns, whatever happened.
///
/// A connection can carry a *deadline* ([`set_deadline`](Self::set_deadline)):
/// once it passes, every read and write through the connection (or its
/// [`try_clone`](Self::try_clone)s, or a [`StreamRequest`](super::StreamRequest)'s `rfile` and
/// `wfile`) fails with [`io::ErrorKind::TimedOut`], however slowly the
/// peer drips bytes. The server's read and write timeouts bound each
/// call; a deadline bounds them all together.
///
/// ```
/// use std::io::{Read, Write};
/// use socketserver::{Connection, TcpServer};
///
/// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
///     let mut buf = [0u8; 16];
///     let n = conn.read(&mut buf)?; // Python: self.request.recv(16)
///     let peer = conn.peer_addr().clone(); // Python: self.client_address
///     write!(conn, "{} said {}", peer.ip().unwrap(), String::from_utf8_lossy(&buf[..n]))
/// })?;
/// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
/// client.write_all(b"hi")?;
/// server.handle_request()?;
/// let mut reply = String::new();
/// client.read_to_string(&mut reply)?;
/// assert_eq!(reply, "127.0.0.1 said hi");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    // The server builds it (`server/serve.rs`), its socket's timeouts set.
    /// Shared with the server's registry of live connections, which shuts
    /// it down on shutdown (no second descriptor, no system call).
    pub(crate) stream: Arc<Stream>,
    pub(crate) id: u64,
    pub(crate) peer: Addr,
    /// The balancer's address, behind the PROXY protocol.
    pub(crate) proxy: Option<Addr>,
    pub(crate) server: ServerInfo,
    pub(crate) clock: Arc<Clock>,
}

impl Connection {
    /// The socket (Python's `self.request`).
    ///
    /// Reading or writing the socket directly bypasses the connection's
    /// deadline; read and write through the connection to honour it.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Sets the connection's deadline: once `at` passes, every read and
    /// write through this connection, its clones and its `rfile`/`wfile`
    /// fails with `TimedOut` at once, and a call in progress fails when
    /// `at` comes, however slowly the peer sends. Setting it again moves
    /// it, forwards or back; an instant already past fails the next call.
    ///
    /// No thread watches the deadline: while one is set, each call shrinks
    /// the socket's timeout to the time left (one `setsockopt`), and only
    /// when the time left is shorter than the server's own read or write
    /// timeout, which still bounds each call as before. Handlers that know
    /// their protocol's request boundaries set a deadline when a request
    /// begins and move or [clear](Self::clear_deadline) it when it ends;
    /// [`Builder::initial_deadline`](crate::server::Builder::initial_deadline)
    /// sets one on every new connection.
    ///
    /// ```
    /// use std::io::{self, Read};
    /// use std::time::{Duration, Instant};
    /// use socketserver::{Connection, TcpServer};
    ///
    /// // The whole request must arrive within 200 ms, byte by byte or not.
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     conn.set_deadline(Instant::now() + Duration::from_millis(200));
    ///     let mut request = Vec::new();
    ///     let err = conn.read_to_end(&mut request).unwrap_err();
    ///     assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    ///     Ok(())
    /// })?;
    /// let _idle = std::net::TcpStream::connect(server.local_addr()?)?; // sends nothing
    /// let start = Instant::now();
    /// server.handle_request()?;
    /// assert!(start.elapsed() >= Duration::from_millis(200));
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn set_deadline(&self, at: Instant) {
        self.clock.set(Some(at));
    }

    /// Removes the deadline: calls are bounded again only by the server's
    /// read and write timeouts, which the next call puts back on the
    /// socket if the deadline had shrunk them.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     conn.set_deadline(Instant::now() + Duration::from_secs(10));
    ///     // ... the first request, authenticated: the client may stay.
    ///     conn.clear_deadline();
    ///     assert_eq!(conn.deadline(), None);
    ///     Ok(())
    /// })?;
    /// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// server.handle_request()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear_deadline(&self) {
        self.clock.set(None);
    }

    /// Sets the deadline `time` from now, as a timeout for many calls
    /// together. A `time` too long for an [`Instant`] to hold (a
    /// configured `Duration::MAX`, say) means no deadline, never a panic.
    ///
    /// ```
    /// use std::time::Duration;
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     conn.set_deadline_in(Duration::from_secs(10));
    ///     assert!(conn.deadline().is_some());
    ///     conn.set_deadline_in(Duration::MAX); // "forever"
    ///     assert_eq!(conn.deadline(), None);
    ///     Ok(())
    /// })?;
    /// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// server.handle_request()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_deadline_in(&self, time: Duration) {
        self.clock.set(Instant::now().checked_add(time));
    }

    /// The deadline, if one is set (to within a nanosecond).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::builder(|conn: &mut Connection| {
    ///     // Set by the server: the time to deliver a first request.
    ///     assert!(conn.deadline().unwrap() <= Instant::now() + Duration::from_secs(5));
    ///     Ok(())
    /// })
    /// .initial_deadline(Some(Duration::from_secs(5)))
    /// .bind("127.0.0.1:0")?;
    /// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// server.handle_request()?;
    /// assert_eq!(server.stats().completed, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.clock.get()
    }

    /// A second connection on the same socket (a duplicated descriptor),
    /// for a reader on another thread or a `BufReader` beside a writer.
    /// It shares this connection's deadline: setting or clearing it on
    /// either applies to both.
    ///
    /// # Errors
    ///
    /// As the socket's `try_clone` (out of descriptors, say).
    ///
    /// ```
    /// use std::io::{self, BufRead, BufReader, Write};
    /// use std::time::{Duration, Instant};
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     let mut lines = BufReader::new(conn.try_clone()?);
    ///     conn.set_deadline(Instant::now() + Duration::from_millis(100));
    ///     let mut line = String::new();
    ///     // The clone honours the deadline set on the original.
    ///     let err = lines.read_line(&mut line).unwrap_err();
    ///     assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    ///     conn.clear_deadline();
    ///     conn.write_all(b"too slow\n")
    /// })?;
    /// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// server.handle_request()?;
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<Connection> {
        Ok(Connection {
            stream: Arc::new(self.stream.try_clone()?),
            id: self.id,
            peer: self.peer.clone(),
            proxy: self.proxy.clone(),
            server: self.server.clone(),
            clock: Arc::clone(&self.clock),
        })
    }

    /// This connection's number: unique among the connections of one
    /// server for as long as it lives, counted from 1 in the order their
    /// handlers start (for a pool, when a worker takes them up). A key for
    /// per-connection entries in shared state, and a name for log lines
    /// that tells apart clients with the same address (two unnamed Unix
    /// peers, say). [`try_clone`](Self::try_clone)s share it.
    ///
    /// ```
    /// use std::io::Write;
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     write!(conn, "you are #{}", conn.id())
    /// })?;
    /// let addr = server.local_addr()?;
    /// let mut replies = Vec::new();
    /// for _ in 0..2 {
    ///     let mut client = std::net::TcpStream::connect(addr)?;
    ///     server.handle_request()?;
    ///     let mut reply = String::new();
    ///     std::io::Read::read_to_string(&mut client, &mut reply)?;
    ///     replies.push(reply);
    /// }
    /// assert_eq!(replies, ["you are #1", "you are #2"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Marks a request boundary: this connection now waits for its
    /// client's next request. A server that shuts down ends a connection
    /// waiting for its next request at once (its read half is shut: the
    /// next read sees end of stream), but lets a request whose bytes are
    /// still arriving finish within the grace period
    /// ([`Builder::graceful_shutdown`](crate::server::Builder::graceful_shutdown)).
    ///
    /// The framework marks boundaries itself: a connection is between
    /// requests when it starts and after every write through it (a reply),
    /// and in a request once a read through it returns fewer bytes than it
    /// asked for (a message that goes on);
    /// [`StreamRequest::read_line`](crate::StreamRequest::read_line) marks
    /// one before it waits for a line. A handler whose protocol is
    /// otherwise (a reader that starts a new message without having
    /// written) marks its own with this, and one that writes in the middle
    /// of a request (an acknowledgement before an upload's data) says so
    /// with [`request_continues`](Self::request_continues).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use socketserver::{Connection, TcpServer};
    ///
    /// // Reads 4-byte messages and answers nothing: each message's end is
    /// // a boundary the framework cannot see, so the handler marks it.
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     let mut message = [0u8; 4];
    ///     loop {
    ///         conn.request_boundary();
    ///         if conn.read_exact(&mut message).is_err() {
    ///             return Ok(());
    ///         }
    ///     }
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn request_boundary(&self) {
        self.clock.boundary(&self.stream);
    }

    /// Says the request under way goes on although the handler just wrote
    /// (an acknowledgement before the rest of the request): a shutdown
    /// lets it finish within the grace period, until the next boundary.
    pub fn request_continues(&self) {
        self.clock.in_request();
    }

    /// The client's address (Python's `self.client_address`). Behind the
    /// PROXY protocol ([`Builder::proxy_protocol`](crate::server::Builder::proxy_protocol)),
    /// the client's address as the balancer saw it.
    pub fn peer_addr(&self) -> &Addr {
        &self.peer
    }

    /// The load balancer's address, when the client came through one that
    /// spoke the PROXY protocol
    /// ([`Builder::proxy_protocol`](crate::server::Builder::proxy_protocol)):
    /// the connection's own peer. `None` when the server does not take the
    /// protocol, and for a balancer's own connection (a v2 `LOCAL` health
    /// check), whose [`peer_addr`](Self::peer_addr) is the balancer.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use socketserver::server::proxy::Network;
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::builder(|conn: &mut Connection| {
    ///     let via = conn.proxy_addr().and_then(|a| a.ip());
    ///     let client = conn.peer_addr().clone();
    ///     write!(conn, "{client} via {via:?}")
    /// })
    /// .proxy_protocol(["127.0.0.0/8".parse::<Network>()?])
    /// .bind("127.0.0.1:0")?;
    /// let mut balancer = std::net::TcpStream::connect(server.local_addr()?)?;
    /// balancer.write_all(b"PROXY TCP6 2001:db8::7 2001:db8::1 443 7000\r\n")?;
    /// server.handle_request()?;
    /// let mut reply = String::new();
    /// balancer.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "[2001:db8::7]:443 via Some(127.0.0.1)");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proxy_addr(&self) -> Option<&Addr> {
        self.proxy.as_ref()
    }

    /// The server this connection came to (Python's `self.server`): its
    /// address, its counters, and a way to shut it down.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// Ends the connection so that a reply just written survives, for a
    /// handler that gives up on a client that may still be sending.
    ///
    /// Closing a socket with unread input makes the kernel send a reset,
    /// which can destroy data the client has not read yet: an error reply,
    /// say. So this sends our end of stream first, then reads and drops
    /// what the client still sends, for up to [`LINGER_TIME`] and
    /// [`LINGER_BYTES`], before the socket closes when the handler returns.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     conn.write_all(b"no thanks")?;
    ///     conn.linger_close();
    ///     Ok(())
    /// })?;
    /// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// client.write_all(b"unwanted bytes the server never reads")?;
    /// server.handle_request()?;
    /// let mut reply = String::new();
    /// client.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "no thanks");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// The linger is bounded as a whole, not per read: it ends by
    /// [`LINGER_TIME`] from now, or at the connection's deadline if that
    /// comes first, however slowly the client sends.
    pub fn linger_close(&mut self) {
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let until = Instant::now() + LINGER_TIME;
        if self.deadline().is_none_or(|at| at > until) {
            self.set_deadline(until);
        }
        let _ = io::copy(&mut self.take(LINGER_BYTES), &mut io::sink());
    }
}

/// How long [`Connection::linger_close`] waits for the client to stop.
pub const LINGER_TIME: Duration = Duration::from_secs(1);
/// How much [`Connection::linger_close`] reads before it gives up.
pub const LINGER_BYTES: u64 = 1 << 20;

// Request boundaries, for a shutdown's drain (see `Clock::boundary`): a
// short read means a request is arriving; bytes written mean a reply,
// after which the connection waits for its next request.
impl Read for &Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.clock.before_read(&self.stream);
        let n = self.clock.guard(&self.stream, Dir::Read, |s| s.read(buf))?;
        // A read that got less than it asked for belongs to a message that
        // goes on (a reader that wanted more): a request under way. One
        // that got all it asked for may have ended a message; a reader
        // that is done and waits for the next request is then between
        // requests, as a handler that marks nothing expects.
        if n > 0 && n < buf.len() {
            self.clock.in_request();
        }
        Ok(n)
    }
}

impl Write for &Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .clock
            .guard(&self.stream, Dir::Write, |s| s.write(buf))?;
        self.clock.boundary(&self.stream);
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self
            .clock
            .guard(&self.stream, Dir::Write, |s| s.write_vectored(bufs))?;
        self.clock.boundary(&self.stream);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
