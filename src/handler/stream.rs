//! Python's `StreamRequestHandler`: a connection read and written through
//! buffered halves, `rfile` and `wfile`.
//!
//! A [`StreamRequestHandler`] gets a [`StreamRequest`] in place of the bare
//! [`Connection`], with a line reader that bounds line length. Wrapped in
//! [`Streamed`], it runs on any stream server.
//!
//! Python's `wfile` is unbuffered, so a ported handler that writes a prompt
//! and then reads the answer (`wfile.write(b"name? "); rfile.readline()`)
//! expects the prompt to be on the wire before it waits. A plain
//! `BufWriter` would keep it, and both sides would wait forever. So `wfile`
//! here gathers what is written into one buffer (a message written in
//! pieces still leaves in one `send`), and that buffer goes out when
//! `rfile` is about to wait for the socket, on `flush`, when it fills, and
//! after `handle` and `finish`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Mutex;

use super::{
    Addr, BaseRequestHandler, Connection, HandlerError, StreamRequestHandler, normalize_timeout,
};
use crate::server::ServerInfo;

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
        let pending = &Mutex::new(Vec::new());
        let mut request = StreamRequest {
            rfile: BufReader::new(ReadHalf { conn, pending }),
            wfile: WriteHalf { conn, pending },
            conn,
        };
        self.0.setup(&mut request)?;
        let handled = self
            .0
            .handle(&mut request)
            .and_then(|()| request.wfile.flush());
        // What `finish` writes (a goodbye) leaves too; after a failed
        // `handle` this flush also tries what it left in the buffer.
        let finished = self
            .0
            .finish(&mut request)
            .and_then(|()| request.wfile.flush());
        handled.and(finished)
    }

    fn verify_request(&self, peer: &Addr) -> bool {
        self.0.verify_request(peer)
    }

    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.handle_error(peer, error);
    }

    fn handle_timeout(&self, server: &ServerInfo) {
        self.0.handle_timeout(server);
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
    /// The buffered read half (Python's `self.rfile`): before it waits for
    /// the socket, what `wfile` holds is sent.
    pub rfile: BufReader<ReadHalf<'a>>,
    /// The write half (Python's `self.wfile`): see [`WriteHalf`].
    pub wfile: WriteHalf<'a>,
    conn: &'a Connection,
}

/// The most [`WriteHalf`] holds before it sends (as `BufWriter`'s default).
const WFILE_BUFFER: usize = 8 * 1024;

/// The source under [`StreamRequest::rfile`]: the connection, read only
/// after what `wfile` holds has been sent, so a prompt written to `wfile`
/// is on the wire before the handler waits for the answer (as Python's
/// unbuffered `wfile` is).
///
/// ```
/// use std::io::{self, BufRead, Read, Write};
/// use socketserver::{StreamRequest, StreamRequestHandler, Streamed, TcpServer};
///
/// struct Ask;
/// impl StreamRequestHandler for Ask {
///     fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
///         request.wfile.write_all(b"name? ")?; // Python: self.wfile.write(...)
///         let mut name = String::new();
///         request.rfile.read_line(&mut name)?; // the prompt left first
///         write!(request.wfile, "hello {}", name.trim())
///     }
/// }
/// let server = TcpServer::bind("127.0.0.1:0", Streamed(Ask))?;
/// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
/// std::thread::scope(|s| {
///     s.spawn(|| server.handle_request());
///     let mut prompt = [0u8; 6];
///     client.read_exact(&mut prompt)?; // would wait forever behind a BufWriter
///     assert_eq!(&prompt, b"name? ");
///     client.write_all(b"ada\n")?;
///     let mut reply = String::new();
///     client.read_to_string(&mut reply)?;
///     assert_eq!(reply, "hello ada");
///     Ok::<(), io::Error>(())
/// })?;
/// # Ok::<(), io::Error>(())
/// ```
#[derive(Debug)]
pub struct ReadHalf<'a> {
    conn: &'a Connection,
    pending: &'a Mutex<Vec<u8>>,
}

impl Read for ReadHalf<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        send(self.conn, &mut crate::lock(self.pending))?;
        (&mut &*self.conn).read(buf)
    }
}

/// [`StreamRequest::wfile`]: Python's `wfile`, buffered only until the
/// handler reads. Writes gather in one buffer (so a message written in
/// pieces leaves in one `send`), which is sent before `rfile` next waits
/// for the socket, on `flush`, when it holds 8 KiB, and after `handle` and
/// `finish` return.
#[derive(Debug)]
pub struct WriteHalf<'a> {
    conn: &'a Connection,
    pending: &'a Mutex<Vec<u8>>,
}

impl Write for WriteHalf<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = crate::lock(self.pending);
        if pending.len() + buf.len() > WFILE_BUFFER {
            send(self.conn, &mut pending)?;
        }
        if buf.len() >= WFILE_BUFFER {
            return (&mut &*self.conn).write(buf);
        }
        pending.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        send(self.conn, &mut crate::lock(self.pending))
    }
}

/// Sends what `wfile` holds; on an error, what was not sent stays.
fn send(conn: &Connection, pending: &mut Vec<u8>) -> io::Result<()> {
    while !pending.is_empty() {
        match (&mut &*conn).write(pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => drop(pending.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl StreamRequest<'_> {
    /// The client's address.
    pub fn peer_addr(&self) -> &Addr {
        self.conn.peer_addr()
    }

    /// The server this connection came to.
    pub fn server(&self) -> &ServerInfo {
        self.conn.server()
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
    /// [`is_timeout`](super::is_timeout)); any other read error.
    pub fn read_line(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if self.rfile.buffer().is_empty() {
            // Waiting for a new line: a request boundary, where a shutdown
            // may end this connection at once.
            self.connection().request_boundary();
        }
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
