//! The request-handler traits: the code you write, as in Python's `socketserver`.
//!
//! Python splits a server in two: a *server class* that binds, listens and
//! accepts (that is [`crate::server`]), and a *request handler class* that
//! says what to do with one client. This module is the second half. You
//! implement [`BaseRequestHandler`] (raw stream), [`StreamRequestHandler`]
//! (buffered `rfile`/`wfile`) or [`DatagramRequestHandler`] (UDP), or pass a
//! closure, and the server calls it once per connection or datagram.
//!
//! Python builds a new handler object per request; here one handler value is
//! shared by every request (the server holds it in an `Arc`), so shared
//! state (a counter, a cache, a config) lives in its fields, behind a
//! `Mutex` or an atomic, and per-connection state lives in local variables
//! of `handle`. `verify_request` and `handle_error`, which Python puts on the
//! server class, are methods here too, so one type holds all you customize.

use std::fmt;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::ServerInfo;
use crate::server::deadline::{Clock, Dir};

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

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(a) => write!(f, "{a}"),
            #[cfg(unix)]
            Addr::Unix(a) => match a.as_pathname() {
                Some(path) => write!(f, "{}", path.display()),
                None => f.write_str("(unnamed unix socket)"),
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
/// [`StreamRequest`] builds `rfile` and `wfile` without duplicating the
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

macro_rules! each_stream {
    ($stream:expr, $s:ident => $body:expr) => {
        match $stream {
            Stream::Tcp($s) => $body,
            #[cfg(unix)]
            Stream::Unix($s) => $body,
        }
    };
}

impl Stream {
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
        each_stream!(self, s => s.set_read_timeout(timeout))
    }

    /// Sets the write timeout; `None` waits forever.
    ///
    /// # Errors
    ///
    /// As the socket's `set_write_timeout` (a zero duration is an error).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        each_stream!(self, s => s.set_write_timeout(timeout))
    }

    /// Shuts down the read half, the write half, or both. Shutting down the
    /// write half sends the peer an end of stream while we can still read.
    ///
    /// # Errors
    ///
    /// As the socket's `shutdown`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        each_stream!(self, s => s.shutdown(how))
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
        Ok(each_stream!(self, s => s.try_clone()?.into()))
    }
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
        each_stream!(*self, s => (&*s).read(buf))
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each_stream!(*self, s => (&*s).write(buf))
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        each_stream!(*self, s => (&*s).write_vectored(bufs))
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

/// One accepted connection, handed to [`BaseRequestHandler::handle`]:
/// Python's `self.request`, `self.client_address` and `self.server`.
///
/// It reads and writes like its socket (so does `&Connection`, for a
/// reader and a writer side by side). The socket closes when the handler's
/// `finish` returns, whatever happened.
///
/// A connection can carry a *deadline* ([`set_deadline`](Self::set_deadline)):
/// once it passes, every read and write through the connection (or its
/// [`try_clone`](Self::try_clone)s, or a [`StreamRequest`]'s `rfile` and
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
    /// Shared with the server's registry of live connections, which shuts
    /// it down on shutdown (no second descriptor, no system call).
    stream: Arc<Stream>,
    peer: Addr,
    server: ServerInfo,
    clock: Arc<Clock>,
}

impl Connection {
    /// A connection whose socket has the server's `read` and `write`
    /// timeouts set already.
    pub(crate) fn new(
        stream: Stream,
        peer: Addr,
        server: ServerInfo,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> Connection {
        Connection {
            stream: Arc::new(stream),
            peer,
            server,
            clock: Arc::new(Clock::new(read, write)),
        }
    }

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
            peer: self.peer.clone(),
            server: self.server.clone(),
            clock: Arc::clone(&self.clock),
        })
    }

    /// The socket and the deadline, for the server's registry of live
    /// connections (`server::live`), which ends them on shutdown.
    pub(crate) fn parts(&self) -> (&Arc<Stream>, &Arc<Clock>) {
        (&self.stream, &self.clock)
    }

    /// The client's address (Python's `self.client_address`).
    pub fn peer_addr(&self) -> &Addr {
        &self.peer
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

impl Read for &Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stream: &Stream = &self.stream;
        self.clock
            .guard(stream, Dir::Read, || (&mut &*stream).read(buf))
    }
}

impl Write for &Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let stream: &Stream = &self.stream;
        self.clock
            .guard(stream, Dir::Write, || (&mut &*stream).write(buf))
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let stream: &Stream = &self.stream;
        self.clock
            .guard(stream, Dir::Write, || (&mut &*stream).write_vectored(bufs))
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

/// Why a request failed, as [`BaseRequestHandler::handle_error`] hears it.
///
/// ```
/// use std::sync::Mutex;
/// use socketserver::{Addr, BaseRequestHandler, Connection, HandlerError, TcpServer};
///
/// /// Keeps errors instead of printing them.
/// struct Quiet(Mutex<Vec<String>>);
///
/// impl BaseRequestHandler for Quiet {
///     fn handle(&self, _: &mut Connection) -> std::io::Result<()> {
///         panic!("no handler today")
///     }
///     fn handle_error(&self, _: &Addr, error: &HandlerError) {
///         self.0.lock().unwrap().push(error.to_string());
///     }
/// }
///
/// let server = TcpServer::bind("127.0.0.1:0", Quiet(Mutex::new(Vec::new())))?;
/// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
/// server.handle_request()?; // the panic is caught: the server goes on
/// assert_eq!(server.stats().failed, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HandlerError {
    /// `setup`, `handle` or `finish` returned an error. Socket timeouts
    /// arrive as [`io::ErrorKind::TimedOut`] on every platform.
    Io(io::Error),
    /// The handler panicked; the message is the panic's.
    Panic(String),
}

impl HandlerError {
    /// Wraps an I/O error, turning a socket timeout's `WouldBlock` (what
    /// Unix reports) into `TimedOut` (what it means).
    pub(crate) fn io(e: io::Error) -> HandlerError {
        if is_timeout(&e) {
            HandlerError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "socket timed out (the server's read or write timeout)",
            ))
        } else {
            HandlerError::Io(e)
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Io(e) => write!(f, "I/O error: {e}"),
            HandlerError::Panic(msg) => write!(f, "handler panicked: {msg}"),
        }
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandlerError::Io(e) => Some(e),
            HandlerError::Panic(_) => None,
        }
    }
}

/// Whether an error is a socket timeout or a passed deadline: Unix reports
/// a socket timeout as `WouldBlock`, other systems as `TimedOut`.
///
/// ```
/// use std::io::{Error, ErrorKind};
/// assert!(socketserver::handler::is_timeout(&Error::from(ErrorKind::WouldBlock)));
/// assert!(!socketserver::handler::is_timeout(&Error::from(ErrorKind::BrokenPipe)));
/// ```
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The same error with a socket timeout's `WouldBlock` (what Unix reports)
/// turned into `TimedOut` (what it means), its message kept; other errors
/// as they are. Readers that cannot resume after a timeout (a frame or a
/// line half read) report timeouts this way, so callers match one kind on
/// every platform.
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use socketserver::handler::normalize_timeout;
/// assert_eq!(normalize_timeout(ErrorKind::WouldBlock.into()).kind(), ErrorKind::TimedOut);
/// assert_eq!(normalize_timeout(ErrorKind::BrokenPipe.into()).kind(), ErrorKind::BrokenPipe);
/// ```
pub fn normalize_timeout(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, e)
    } else {
        e
    }
}

/// What every `handle_error` does unless overridden: one line naming the
/// client, as Python's prints, through the `log` facade at `error` level
/// (target `socketserver`), so the library writes nothing to stderr by
/// itself. Install a logger to see these lines (the examples install one:
/// `RUST_LOG=off` silences it), or override `handle_error` to keep, count
/// or print them yourself.
///
/// ```
/// use socketserver::{Addr, HandlerError};
/// let peer = Addr::Inet("127.0.0.1:5000".parse().unwrap());
/// // Logs: error processing request from 127.0.0.1:5000: handler panicked: oops
/// socketserver::handler::default_handle_error(&peer, &HandlerError::Panic("oops".into()));
/// ```
pub fn default_handle_error(peer: &Addr, error: &HandlerError) {
    log::error!(target: "socketserver", "error processing request from {peer}: {error}");
}

/// Handles one stream connection: Python's `BaseRequestHandler`.
///
/// The server calls `setup`, then `handle`, then `finish` (even if `handle`
/// failed), then closes the socket. An error or a panic from any of them is
/// passed to `handle_error` and ends only this connection.
///
/// A closure `Fn(&mut Connection) -> io::Result<()>` is a handler too.
///
/// # Examples
///
/// The seed's `Myhandler`, which reads one message and prints it:
///
/// ```
/// use std::io::{self, Read, Write};
/// use socketserver::{BaseRequestHandler, Connection, ThreadingTcpServer};
///
/// struct Myhandler;
///
/// impl BaseRequestHandler for Myhandler {
///     fn handle(&self, conn: &mut Connection) -> io::Result<()> {
///         let mut res = [0u8; 1024];
///         let n = conn.read(&mut res)?;
///         if n > 0 {
///             let msg = String::from_utf8_lossy(&res[..n]);
///             println!("client:{} msg:{msg}", conn.peer_addr());
///         }
///         Ok(())
///     }
/// }
///
/// let server = ThreadingTcpServer::bind("127.0.0.1:0", Myhandler)?;
/// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
/// client.write_all(b"hello")?;
/// server.handle_request()?; // serve just this one client
/// # Ok::<(), io::Error>(())
/// ```
pub trait BaseRequestHandler: Send + Sync + 'static {
    /// Called before `handle`; an error here skips `handle` and `finish`.
    ///
    /// # Errors
    ///
    /// Any error ends the connection and goes to `handle_error`.
    fn setup(&self, conn: &mut Connection) -> io::Result<()> {
        let _ = conn;
        Ok(())
    }

    /// Serves the connection: read requests, write replies, return when done.
    ///
    /// # Errors
    ///
    /// Any error ends the connection and goes to `handle_error`.
    fn handle(&self, conn: &mut Connection) -> io::Result<()>;

    /// Called after `handle`, even when it failed (Python's `finally:`).
    ///
    /// # Errors
    ///
    /// Any error goes to `handle_error`.
    fn finish(&self, conn: &mut Connection) -> io::Result<()> {
        let _ = conn;
        Ok(())
    }

    /// Decides whether to serve a client at all (Python's server method of
    /// the same name). A refused connection is closed at once, counted as
    /// `rejected`, and never reaches `setup`.
    fn verify_request(&self, peer: &Addr) -> bool {
        let _ = peer;
        true
    }

    /// Reports a failed request; by default one line through the `log`
    /// facade ([`default_handle_error`]).
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        default_handle_error(peer, error);
    }
}

impl<F> BaseRequestHandler for F
where
    F: Fn(&mut Connection) -> io::Result<()> + Send + Sync + 'static,
{
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        self(conn)
    }
}

/// Handles one stream connection through buffered halves, Python's
/// `StreamRequestHandler`: read from `request.rfile`, write to
/// `request.wfile`, and the write buffer is flushed when `handle` returns.
///
/// Give it to a server wrapped in [`Streamed`].
///
/// # Examples
///
/// An echo server that answers line by line:
///
/// ```
/// use std::io::{self, BufRead, BufReader, Write};
/// use socketserver::{StreamRequest, StreamRequestHandler, Streamed, TcpServer};
///
/// struct Echo;
///
/// impl StreamRequestHandler for Echo {
///     fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
///         while let Some(line) = request.read_line(1024)? {
///             request.wfile.write_all(&line)?;
///             request.wfile.flush()?;
///         }
///         Ok(())
///     }
/// }
///
/// let server = TcpServer::bind("127.0.0.1:0", Streamed(Echo))?;
/// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
/// client.write_all(b"one\ntwo\n")?;
/// client.shutdown(std::net::Shutdown::Write)?;
/// server.handle_request()?;
/// let mut reply = String::new();
/// io::Read::read_to_string(&mut client, &mut reply)?;
/// assert_eq!(reply, "one\ntwo\n");
/// # Ok::<(), io::Error>(())
/// ```
pub trait StreamRequestHandler: Send + Sync + 'static {
    /// Serves the connection through `request.rfile` and `request.wfile`.
    ///
    /// # Errors
    ///
    /// Any error ends the connection and goes to `handle_error`.
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()>;

    /// As [`BaseRequestHandler::verify_request`].
    fn verify_request(&self, peer: &Addr) -> bool {
        let _ = peer;
        true
    }

    /// As [`BaseRequestHandler::handle_error`].
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        default_handle_error(peer, error);
    }
}

/// Makes a [`StreamRequestHandler`] a [`BaseRequestHandler`], so any server
/// can run it: `TcpServer::bind(addr, Streamed(MyHandler))`.
///
/// See [`StreamRequestHandler`] for a complete example.
///
/// ```
/// use socketserver::{StreamRequest, StreamRequestHandler, Streamed, ThreadingTcpServer};
/// struct Hello;
/// impl StreamRequestHandler for Hello {
///     fn handle(&self, request: &mut StreamRequest<'_>) -> std::io::Result<()> {
///         std::io::Write::write_all(&mut request.wfile, b"hello\n")
///     }
/// }
/// let server = ThreadingTcpServer::bind("127.0.0.1:0", Streamed(Hello))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Streamed<H>(pub H);

impl<H: StreamRequestHandler> BaseRequestHandler for Streamed<H> {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let conn = &*conn;
        let mut request = StreamRequest {
            rfile: BufReader::new(conn),
            wfile: BufWriter::new(conn),
            conn,
        };
        self.0.handle(&mut request)?;
        request.wfile.flush()
    }

    fn verify_request(&self, peer: &Addr) -> bool {
        self.0.verify_request(peer)
    }

    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.handle_error(peer, error);
    }
}

/// One connection with buffered halves, handed to
/// [`StreamRequestHandler::handle`].
///
/// See [`StreamRequestHandler`] for an example. Both halves honour the
/// connection's deadline ([`Connection::set_deadline`]), which
/// [`connection`](Self::connection) reaches.
#[derive(Debug)]
pub struct StreamRequest<'a> {
    /// The buffered read half (Python's `self.rfile`).
    pub rfile: BufReader<&'a Connection>,
    /// The buffered write half (Python's `self.wfile`), flushed after
    /// `handle` returns `Ok`.
    pub wfile: BufWriter<&'a Connection>,
    conn: &'a Connection,
}

impl StreamRequest<'_> {
    /// The client's address.
    pub fn peer_addr(&self) -> &Addr {
        &self.conn.peer
    }

    /// The server this connection came to.
    pub fn server(&self) -> &ServerInfo {
        &self.conn.server
    }

    /// The connection under both halves: its socket, and its deadline.
    ///
    /// ```
    /// use std::io;
    /// use std::time::{Duration, Instant};
    /// use socketserver::{StreamRequest, StreamRequestHandler, Streamed, TcpServer};
    ///
    /// /// Each line must arrive whole within a second of the last reply.
    /// struct Lines;
    /// impl StreamRequestHandler for Lines {
    ///     fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
    ///         loop {
    ///             request.connection().set_deadline(Instant::now() + Duration::from_secs(1));
    ///             let Some(line) = request.read_line(1024)? else { return Ok(()) };
    ///             io::Write::write_all(&mut request.wfile, &line)?;
    ///             io::Write::flush(&mut request.wfile)?;
    ///         }
    ///     }
    /// }
    /// let server = TcpServer::bind("127.0.0.1:0", Streamed(Lines))?;
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn connection(&self) -> &Connection {
        self.conn
    }

    /// Reads one line, newline included, of at most `max` bytes; `None` at
    /// the end of the stream.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the line runs past `max` bytes (a client cannot make
    /// the server buffer without bound); `TimedOut` on every platform if
    /// the socket's timeout or the connection's deadline ran out first (use
    /// [`is_timeout`]); any other read error.
    pub fn read_line(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        (&mut self.rfile)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(normalize_timeout)?;
        if line.is_empty() {
            return Ok(None);
        }
        if line.len() > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line longer than {max} bytes"),
            ));
        }
        Ok(Some(line))
    }
}

/// One UDP datagram, handed to [`DatagramRequestHandler::handle`]: Python's
/// `(data, socket)` request and `client_address`.
///
/// ```
/// use socketserver::{Datagram, UdpServer};
///
/// let server = UdpServer::bind("127.0.0.1:0", |d: &Datagram| {
///     let text = format!("{} bytes from port {}", d.data().len(), d.peer_addr().port());
///     d.reply(text.as_bytes())
/// })?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(&[0u8; 60_000], server.local_addr()?)?; // arrives whole
/// server.handle_request()?;
/// let mut buf = [0u8; 64];
/// let n = client.recv(&mut buf)?;
/// assert!(std::str::from_utf8(&buf[..n]).unwrap().starts_with("60000 bytes"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Datagram {
    data: Vec<u8>,
    peer: SocketAddr,
    socket: Arc<UdpSocket>,
    server: ServerInfo,
}

impl Datagram {
    pub(crate) fn new(
        data: Vec<u8>,
        peer: SocketAddr,
        socket: Arc<UdpSocket>,
        server: ServerInfo,
    ) -> Datagram {
        Datagram {
            data,
            peer,
            socket,
            server,
        }
    }

    /// The datagram's bytes, whole: datagrams up to 65,507 bytes (the IPv4
    /// maximum) are received without truncation.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Who sent it.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `bytes` back to the sender as one datagram.
    ///
    /// # Errors
    ///
    /// As `UdpSocket::send_to` (over 65,507 bytes is `EMSGSIZE`).
    pub fn reply(&self, bytes: &[u8]) -> io::Result<()> {
        self.socket.send_to(bytes, self.peer).map(drop)
    }

    /// The server's socket, shared by every handler.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The server this datagram came to.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }
}

/// Handles one UDP datagram: Python's `DatagramRequestHandler`, with
/// [`Datagram::reply`] in place of `wfile`.
///
/// UDP has no connections: every datagram is a request of its own, may be
/// lost or reordered, and arrives whole or not at all, provided the
/// receiver's buffer is large enough. The seed's `recvfrom(1024)` is not:
/// on Linux the bytes past 1024 are silently dropped, so a long message
/// arrives cut short with no error. The servers here receive into a 64 KiB
/// buffer, larger than any UDP datagram over IPv4, so nothing is cut.
///
/// A closure `Fn(&Datagram) -> io::Result<()>` is a handler too.
///
/// # Examples
///
/// ```
/// use socketserver::{Datagram, UdpServer};
///
/// let server = UdpServer::bind("127.0.0.1:0", |dgram: &Datagram| {
///     dgram.reply(&[b"echo:", dgram.data()].concat())
/// })?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"hi", server.local_addr()?)?;
/// server.handle_request()?;
/// let mut buf = [0u8; 64];
/// let n = client.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"echo:hi");
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait DatagramRequestHandler: Send + Sync + 'static {
    /// Serves one datagram.
    ///
    /// # Errors
    ///
    /// Any error goes to `handle_error`; the server goes on.
    fn handle(&self, datagram: &Datagram) -> io::Result<()>;

    /// Decides whether to serve a sender at all; refused datagrams are
    /// dropped and counted as `rejected`.
    fn verify_request(&self, peer: &Addr) -> bool {
        let _ = peer;
        true
    }

    /// Reports a failed request; by default one line through the `log`
    /// facade ([`default_handle_error`]).
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        default_handle_error(peer, error);
    }
}

impl<F> DatagramRequestHandler for F
where
    F: Fn(&Datagram) -> io::Result<()> + Send + Sync + 'static,
{
    fn handle(&self, datagram: &Datagram) -> io::Result<()> {
        self(datagram)
    }
}
