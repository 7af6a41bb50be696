//! The request-handler traits: the code you write, as in Python's `socketserver`.
//!
//! Python splits a server in two: a *server class* that binds, listens and
//! accepts (that is [`crate::server`]), and a *request handler class* that
//! says what to do with one client. This module is the second half. You
//! implement [`BaseRequestHandler`] (raw stream), [`StreamRequestHandler`]
//! (buffered `rfile`/`wfile`) or [`DatagramRequestHandler`] (UDP, or Unix
//! datagrams), or pass a closure, and the server calls it once per
//! connection or datagram.
//!
//! Python builds a new handler object per request; here one handler value is
//! shared by every request (the server holds it in an `Arc`), so shared
//! state (a counter, a cache, a config) lives in its fields, behind a
//! `Mutex` or an atomic. Per-connection state that `setup`, `handle` and
//! `finish` share, Python's `self.x`, lives in a value made for each
//! connection: see [`per_connection`](fn@per_connection). `verify_request`, `handle_error` and
//! `handle_timeout`, which Python puts on the server class, are methods
//! here too, so one type holds all you customize. An `Arc<H>` is a handler
//! wherever `H` is, so the code that made the server can keep a clone and
//! reach the handler's state while it serves (or use the server's
//! `handler()`).
//!
//! # The hooks
//!
//! The three traits are in this file, each with the same three hooks and
//! the same defaults: `verify_request` serves everyone, `handle_error`
//! writes Python's one line ([`default_handle_error`]), `handle_timeout`
//! does nothing. The server reaches all of them through one path
//! ([`server::Handler`](crate::server::Handler)). The other files hold
//! what the traits are handed: [`Connection`] and its [`Stream`]
//! (`connection.rs`), [`StreamRequest`] with `rfile` and `wfile` and the
//! [`Streamed`] adapter (`stream.rs`), [`Datagram`] and its families
//! (`datagram.rs`), and [`per_connection`](fn@per_connection) (`per_connection.rs`).

mod connection;
mod datagram;
mod per_connection;
mod stream;

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::server::ServerInfo;

pub use connection::{Addr, Connection, LINGER_BYTES, LINGER_TIME, Stream};
#[cfg(unix)]
pub use datagram::Unix;
pub use datagram::{Datagram, DatagramFamily, Udp};
pub use per_connection::{ConnectionHandler, PerConnection, per_connection};
pub use stream::{ReadHalf, StreamRequest, Streamed, WriteHalf};

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
    /// Unix reports) into `TimedOut` (what it means). A `TimedOut` that
    /// says something already (a connection deadline, a frame timeout)
    /// keeps its words.
    pub(crate) fn io(e: io::Error) -> HandlerError {
        let timed_out = "socket timed out (the server's read or write timeout)";
        HandlerError::Io(match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::new(io::ErrorKind::TimedOut, timed_out),
            _ => e,
        })
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
    let kind = e.kind();
    kind == io::ErrorKind::WouldBlock || kind == io::ErrorKind::TimedOut
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

/// What every `handle_error` does unless overridden: Python's one line
/// naming the client, never silent. Through the `log` facade at `error`
/// level (target `socketserver`) once the program has installed a logger
/// (the examples do: `RUST_LOG=off` silences it); to stderr while none is
/// installed, as Python prints its traceback there. Override `handle_error`
/// to keep, count or print the errors yourself.
///
/// A logger counts as installed when `log` has one other than its own
/// no-op (which is a unit struct and enables nothing): a logger that is a
/// unit struct and turns `error` off is taken for none.
///
/// ```
/// use socketserver::{Addr, HandlerError};
/// let peer = Addr::Inet("127.0.0.1:5000".parse().unwrap());
/// // With no logger: "error processing request from 127.0.0.1:5000: handler panicked: oops" on stderr.
/// socketserver::handler::default_handle_error(&peer, &HandlerError::Panic("oops".into()));
/// ```
pub fn default_handle_error(peer: &Addr, error: &HandlerError) {
    let line = format_args!("error processing request from {peer}: {error}");
    let logger = log::logger();
    let meta = log::Metadata::builder()
        .level(log::Level::Error)
        .target("socketserver")
        .build();
    if std::mem::size_of_val(logger) == 0 && !logger.enabled(&meta) {
        eprintln!("{line}"); // no logger: Python's stderr
    } else {
        log::error!(target: "socketserver", "{line}");
    }
}

/// Handles one stream connection: Python's `BaseRequestHandler`.
///
/// The server calls `setup`, then `handle`, then `finish` (even if `handle`
/// failed), then closes the socket. An error or a panic from any of them is
/// passed to `handle_error` and ends only this connection.
///
/// A closure `Fn(&mut Connection) -> io::Result<()>` is a handler too, and
/// so is an `Arc<H>` of any handler `H`.
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
///
/// A type that is not a handler is refused by name: "error\[E0277\]:
/// \`Config\` is not a request handler for this server", with a note on
/// what to implement or pass instead. A closure of the
/// wrong shape gets the same message, naming the closure.
///
/// ```compile_fail,E0277
/// struct Config; // forgot `impl BaseRequestHandler for Config`
/// let server = socketserver::TcpServer::bind("127.0.0.1:0", Config);
/// ```
///
/// ```compile_fail,E0277
/// // A handler returns `io::Result<()>`, not a number.
/// let server = socketserver::TcpServer::bind("127.0.0.1:0", |_: &mut socketserver::Connection| 5);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stream request handler (`BaseRequestHandler`)",
    label = "not a `BaseRequestHandler`",
    note = "implement `socketserver::BaseRequestHandler` for it, wrap a `StreamRequestHandler` in `Streamed(..)`, or pass a closure `|conn: &mut Connection| -> io::Result<()>` (with the argument's type written out)"
)]
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

    /// Reports a failed request; by default Python's one line, through
    /// `log` or to stderr ([`default_handle_error`]).
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        default_handle_error(peer, error);
    }

    /// Called when [`handle_request_timeout`](crate::TcpServer::handle_request_timeout)
    /// waited its whole time and no request came (Python's server method
    /// of the same name); by default nothing. The server's counters and a
    /// shutdown handle are in `server`.
    ///
    /// ```
    /// use std::io;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    /// use socketserver::{BaseRequestHandler, Connection, ServerInfo, TcpServer};
    ///
    /// #[derive(Default)]
    /// struct Ticks(AtomicUsize);
    /// impl BaseRequestHandler for Ticks {
    ///     fn handle(&self, _: &mut Connection) -> io::Result<()> {
    ///         Ok(())
    ///     }
    ///     fn handle_timeout(&self, _: &ServerInfo) {
    ///         self.0.fetch_add(1, Ordering::Relaxed); // expire sessions, say
    ///     }
    /// }
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", Ticks::default())?;
    /// # #[cfg(unix)] {
    /// while server.handler().0.load(Ordering::Relaxed) < 2 {
    ///     server.handle_request_timeout(Duration::from_millis(10))?;
    /// }
    /// # }
    /// # Ok::<(), io::Error>(())
    /// ```
    fn handle_timeout(&self, server: &ServerInfo) {
        let _ = server;
    }
}

/// A shared handler: the server holds one clone, you keep another.
///
/// ```
/// use std::io;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use socketserver::{BaseRequestHandler, Connection, TcpServer};
///
/// #[derive(Default)]
/// struct Counter(AtomicU64);
/// impl BaseRequestHandler for Counter {
///     fn handle(&self, _: &mut Connection) -> io::Result<()> {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         Ok(())
///     }
/// }
///
/// let counter = Arc::new(Counter::default());
/// let server = TcpServer::bind("127.0.0.1:0", Arc::clone(&counter))?;
/// let _client = std::net::TcpStream::connect(server.local_addr()?)?;
/// server.handle_request()?;
/// assert_eq!(counter.0.load(Ordering::Relaxed), 1); // reached from here
/// # Ok::<(), io::Error>(())
/// ```
impl<H: BaseRequestHandler + ?Sized> BaseRequestHandler for Arc<H> {
    fn setup(&self, conn: &mut Connection) -> io::Result<()> {
        (**self).setup(conn)
    }
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        (**self).handle(conn)
    }
    fn finish(&self, conn: &mut Connection) -> io::Result<()> {
        (**self).finish(conn)
    }
    fn verify_request(&self, peer: &Addr) -> bool {
        (**self).verify_request(peer)
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        (**self).handle_error(peer, error);
    }
    fn handle_timeout(&self, server: &ServerInfo) {
        (**self).handle_timeout(server);
    }
}

// Without this, a type that is not a handler gets rustc's "expected an
// `Fn(..)` closure" from this impl, not the trait's own message.
#[diagnostic::do_not_recommend]
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
/// `request.wfile`; what was written leaves before `rfile` waits for the
/// client, and when `handle` returns.
///
/// Give it to a server wrapped in [`Streamed`]. The server calls `setup`,
/// `handle`, then `finish` (even if `handle` failed), all on the same
/// `rfile` and `wfile`; `wfile` is flushed after `handle` and again after
/// `finish`. An `Arc<H>` is a handler wherever `H` is.
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
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a buffered stream request handler (`StreamRequestHandler`)",
    label = "not a `StreamRequestHandler`",
    note = "implement `socketserver::StreamRequestHandler` for it; a `BaseRequestHandler` or a closure goes to the server as it is, without `Streamed(..)`"
)]
pub trait StreamRequestHandler: Send + Sync + 'static {
    /// Called before `handle`, with the same buffered halves (Python's
    /// `setup`, which makes `rfile` and `wfile`: here they are made
    /// already); an error here skips `handle` and `finish`.
    ///
    /// ```
    /// use std::io::{self, Write};
    /// use socketserver::{StreamRequest, StreamRequestHandler, Streamed, TcpServer};
    ///
    /// struct Polite;
    /// impl StreamRequestHandler for Polite {
    ///     fn setup(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
    ///         request.wfile.write_all(b"hello\n")
    ///     }
    ///     fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
    ///         request.wfile.write_all(b"...\n")
    ///     }
    ///     fn finish(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
    ///         request.wfile.write_all(b"goodbye\n") // flushed after this
    ///     }
    /// }
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", Streamed(Polite))?;
    /// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// server.handle_request()?;
    /// let mut reply = String::new();
    /// io::Read::read_to_string(&mut client, &mut reply)?;
    /// assert_eq!(reply, "hello\n...\ngoodbye\n");
    /// # Ok::<(), io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Any error ends the connection and goes to `handle_error`.
    fn setup(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        let _ = request;
        Ok(())
    }

    /// Serves the connection through `request.rfile` and `request.wfile`.
    ///
    /// # Errors
    ///
    /// Any error ends the connection and goes to `handle_error`.
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()>;

    /// Called after `handle`, even when it failed (Python's `finish`,
    /// whose flush of `wfile` happens here after it returns).
    ///
    /// # Errors
    ///
    /// Any error goes to `handle_error`.
    fn finish(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        let _ = request;
        Ok(())
    }

    /// As [`BaseRequestHandler::verify_request`].
    fn verify_request(&self, peer: &Addr) -> bool {
        let _ = peer;
        true
    }

    /// As [`BaseRequestHandler::handle_error`].
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        default_handle_error(peer, error);
    }

    /// As [`BaseRequestHandler::handle_timeout`].
    fn handle_timeout(&self, server: &ServerInfo) {
        let _ = server;
    }
}

impl<H: StreamRequestHandler + ?Sized> StreamRequestHandler for Arc<H> {
    fn setup(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        (**self).setup(request)
    }
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        (**self).handle(request)
    }
    fn finish(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        (**self).finish(request)
    }
    fn verify_request(&self, peer: &Addr) -> bool {
        (**self).verify_request(peer)
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        (**self).handle_error(peer, error);
    }
    fn handle_timeout(&self, server: &ServerInfo) {
        (**self).handle_timeout(server);
    }
}

/// Handles one datagram: Python's `DatagramRequestHandler`, with
/// [`Datagram::reply`] in place of `wfile`. `DatagramRequestHandler`
/// alone handles UDP; `DatagramRequestHandler<Unix>` serves a Unix
/// datagram server, and an impl for every `F: DatagramFamily` serves both.
///
/// UDP has no connections: every datagram is a request of its own, may be
/// lost or reordered, and arrives whole or not at all, provided the
/// receiver's buffer is large enough. The seed's `recvfrom(1024)` is not:
/// on Linux the bytes past 1024 are silently dropped, so a long message
/// arrives cut short with no error. The servers here receive into a 64 KiB
/// buffer, larger than any UDP datagram over IPv4, so nothing is cut.
///
/// A closure `Fn(&Datagram) -> io::Result<()>` is a handler too, and so is
/// an `Arc<H>` of any handler `H`.
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
///
/// A stream handler given to a UDP server is refused by name ("\`Echo\` is
/// not a request handler for this server", with a note saying which
/// traits stream and datagram servers take):
///
/// ```compile_fail,E0277
/// use socketserver::{BaseRequestHandler, Connection};
/// struct Echo;
/// impl BaseRequestHandler for Echo {
///     fn handle(&self, _: &mut Connection) -> std::io::Result<()> { Ok(()) }
/// }
/// let server = socketserver::UdpServer::bind("127.0.0.1:0", Echo);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a datagram request handler (`DatagramRequestHandler<{F}>`)",
    label = "not a `DatagramRequestHandler<{F}>`",
    note = "implement `socketserver::handler::DatagramRequestHandler<{F}>` for it, or pass a closure `|d: &Datagram<{F}>| -> io::Result<()>` (with the argument's type written out)"
)]
pub trait DatagramRequestHandler<F: DatagramFamily = Udp>: Send + Sync + 'static {
    /// Serves one datagram.
    ///
    /// # Errors
    ///
    /// Any error goes to `handle_error`; the server goes on.
    fn handle(&self, datagram: &Datagram<F>) -> io::Result<()>;

    /// Decides whether to serve a sender at all; refused datagrams are
    /// dropped and counted as `rejected`.
    fn verify_request(&self, peer: &Addr) -> bool {
        let _ = peer;
        true
    }

    /// As [`BaseRequestHandler::handle_error`].
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        default_handle_error(peer, error);
    }

    /// As [`BaseRequestHandler::handle_timeout`].
    fn handle_timeout(&self, server: &ServerInfo) {
        let _ = server;
    }
}

impl<F: DatagramFamily, H: DatagramRequestHandler<F> + ?Sized> DatagramRequestHandler<F>
    for Arc<H>
{
    fn handle(&self, datagram: &Datagram<F>) -> io::Result<()> {
        (**self).handle(datagram)
    }
    fn verify_request(&self, peer: &Addr) -> bool {
        (**self).verify_request(peer)
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        (**self).handle_error(peer, error);
    }
    fn handle_timeout(&self, server: &ServerInfo) {
        (**self).handle_timeout(server);
    }
}

// Without this, a type that is not a handler gets rustc's "expected an
// `Fn(..)` closure" from this impl, not the trait's own message.
#[diagnostic::do_not_recommend]
impl<C, F> DatagramRequestHandler<F> for C
where
    C: Fn(&Datagram<F>) -> io::Result<()> + Send + Sync + 'static,
    F: DatagramFamily,
{
    fn handle(&self, datagram: &Datagram<F>) -> io::Result<()> {
        self(datagram)
    }
}
