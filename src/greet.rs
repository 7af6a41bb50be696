//! The seed's first lesson: a greeting server and client, over TCP and UDP.
//!
//! The server sends `Welcome!` when a client connects, answers every
//! message with `你好,` followed by the message, and closes on `exit` or
//! when the client hangs up. Over UDP there is no connection and no banner:
//! each datagram gets its greeting back as one datagram.
//!
//! The protocol has no framing: a "message" is whatever one `recv` returns.
//! That works because the client waits for each reply before it sends the
//! next name, but it is exactly what [`crate::frame`] is about. This
//! version works on bytes, never decoding them: if a read ends inside a
//! multi-byte character (分包, fragmentation), the reply carries the same
//! partial bytes and the next reply the rest, so the stream the client sees
//! is still correct; the seed's `data.decode('utf-8')` would raise there.
//!
//! ```
//! use std::thread;
//! use socketserver::ThreadingTcpServer;
//! use socketserver::greet::{self, Greeter};
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new())?;
//! let addr = server.local_addr()?;
//! let stop = server.shutdown_handle();
//! let serving = thread::spawn(move || server.serve_forever());
//!
//! let transcript = greet::tcp_client(addr, &["Michael", "Tracy"])?;
//! assert_eq!(transcript, ["Welcome!", "你好,Michael", "你好,Tracy"]);
//! stop.shutdown();
//! serving.join().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::handler::{
    Addr, BaseRequestHandler, Connection, Datagram, DatagramRequestHandler, is_timeout,
};

/// What the server sends first, on every TCP connection.
pub const WELCOME: &[u8] = b"Welcome!";
/// What every reply starts with.
pub const GREETING: &str = "你好,";
/// The message that ends a TCP conversation.
pub const EXIT: &[u8] = b"exit";
/// The names the seed's clients send.
pub const SEED_NAMES: [&str; 3] = ["Michael", "Tracy", "Sarah"];
/// How long clients wait for a reply before giving up.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The seed's `recv(1024)`: the most one message can be.
const RECV_SIZE: usize = 1024;

type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// The greeting server's handler, for TCP ([`BaseRequestHandler`]) and UDP
/// ([`DatagramRequestHandler`]) alike.
///
/// ```
/// use std::time::Duration;
/// use socketserver::{ThreadingTcpServer, UdpServer};
/// use socketserver::greet::Greeter;
///
/// let greeter = Greeter::new().delay(Duration::from_millis(10)).log(|line| println!("{line}"));
/// let tcp = ThreadingTcpServer::bind("127.0.0.1:0", greeter.clone())?; // the seed's tcp编程
/// let udp = UdpServer::bind("127.0.0.1:0", greeter)?; // and its udp编程
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Greeter {
    delay: Duration,
    log: Option<Log>,
}

impl Greeter {
    /// A greeter that answers at once and logs nothing.
    pub fn new() -> Greeter {
        Greeter {
            delay: Duration::ZERO,
            log: None,
        }
    }

    /// Waits this long before each reply, as the seed's `time.sleep(1)` does,
    /// so you can watch a threading server serve two clients at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let slow = socketserver::greet::Greeter::new().delay(Duration::from_millis(100));
    /// ```
    pub fn delay(mut self, delay: Duration) -> Greeter {
        self.delay = delay;
        self
    }

    /// Calls `log` with a line for every connection opened and closed (and,
    /// for UDP, every datagram), in the seed's words.
    ///
    /// ```
    /// let chatty = socketserver::greet::Greeter::new().log(|line| println!("{line}"));
    /// ```
    pub fn log(mut self, log: impl Fn(&str) + Send + Sync + 'static) -> Greeter {
        self.log = Some(Arc::new(log));
        self
    }

    fn say(&self, line: fmt::Arguments<'_>) {
        if let Some(log) = &self.log {
            log(&line.to_string());
        }
    }

    /// The reply to one message, written as one piece so it leaves in one
    /// segment.
    fn reply(message: &[u8]) -> Vec<u8> {
        [GREETING.as_bytes(), message].concat()
    }
}

impl Default for Greeter {
    fn default() -> Greeter {
        Greeter::new()
    }
}

impl fmt::Debug for Greeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greeter")
            .field("delay", &self.delay)
            .field("log", &self.log.is_some())
            .finish()
    }
}

/// Whether a message is the seed's `exit`. A trailing newline is allowed,
/// so `nc` and `telnet` users can leave too.
fn is_exit(message: &[u8]) -> bool {
    message
        .strip_suffix(b"\n")
        .map_or(message, |m| m.strip_suffix(b"\r").unwrap_or(m))
        == EXIT
}

impl BaseRequestHandler for Greeter {
    fn setup(&self, conn: &mut Connection) -> io::Result<()> {
        self.say(format_args!(
            "从{}接受新连接 (accepted a connection)",
            conn.peer_addr()
        ));
        Ok(())
    }

    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        conn.write_all(WELCOME)?;
        let mut buf = [0u8; RECV_SIZE];
        loop {
            let n = conn.read(&mut buf)?;
            // A server's initial deadline (`Builder::initial_deadline`) is
            // for the first message: once it came, the read timeout alone
            // bounds the wait for the next.
            conn.clear_deadline();
            thread::sleep(self.delay);
            let message = &buf[..n];
            if message.is_empty() || is_exit(message) {
                return Ok(());
            }
            conn.write_all(&Greeter::reply(message))?;
        }
    }

    fn finish(&self, conn: &mut Connection) -> io::Result<()> {
        self.say(format_args!(
            "来自{}的连接已经关闭 (connection closed)",
            conn.peer_addr()
        ));
        Ok(())
    }
}

impl DatagramRequestHandler for Greeter {
    fn handle(&self, datagram: &Datagram) -> io::Result<()> {
        self.say(format_args!(
            "从{}接受新连接 (a datagram)",
            Addr::Inet(datagram.peer_addr())
        ));
        thread::sleep(self.delay);
        datagram.reply(&Greeter::reply(datagram.data()))
    }
}

/// The seed's TCP client: connects, reads the banner, sends each name and
/// reads its greeting, then sends `exit`. Returns every line received.
///
/// The protocol has no framing, so the client reads until it has as many
/// bytes as the reply it expects: a reply split across reads (分包) is put
/// back together rather than printed in pieces.
///
/// # Errors
///
/// If the server cannot be reached, hangs up early, or sends nothing for
/// [`CLIENT_TIMEOUT`].
///
/// See the [module docs](self) for an example.
pub fn tcp_client(addr: impl ToSocketAddrs, names: &[&str]) -> io::Result<Vec<String>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    let mut transcript = vec![read_reply(&mut stream, WELCOME.len())?];
    for name in names {
        stream.write_all(name.as_bytes())?;
        transcript.push(read_reply(&mut stream, GREETING.len() + name.len())?);
    }
    stream.write_all(EXIT)?;
    Ok(transcript)
}

/// Reads until `len` bytes arrived (or the server stopped sending).
fn read_reply(stream: &mut TcpStream, len: usize) -> io::Result<String> {
    let mut reply = Vec::with_capacity(len);
    stream.take(len as u64).read_to_end(&mut reply)?;
    if reply.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// The seed's UDP client: one datagram per name, and one reply each. A
/// reply that does not come within `timeout` is `None`: UDP may lose it,
/// and the seed's client would wait forever.
///
/// # Errors
///
/// If the socket cannot be opened or a datagram cannot be sent.
///
/// ```
/// use std::time::Duration;
/// use socketserver::UdpServer;
/// use socketserver::greet::{self, Greeter};
///
/// let server = UdpServer::bind("127.0.0.1:0", Greeter::new())?;
/// let addr = server.local_addr()?;
/// std::thread::spawn(move || server.serve_forever());
/// let replies = greet::udp_client(addr, &["Tracy"], Duration::from_secs(2))?;
/// assert_eq!(replies, [Some("你好,Tracy".to_string())]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn udp_client(
    addr: impl ToSocketAddrs,
    names: &[&str],
    timeout: Duration,
) -> io::Result<Vec<Option<String>>> {
    let server: SocketAddr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let any = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(server)?; // only replies from the server reach us
    socket.set_read_timeout(Some(timeout))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut replies = Vec::new();
    for name in names {
        socket.send(name.as_bytes())?;
        replies.push(match socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionRefused => None,
            Err(e) => return Err(e),
        });
    }
    Ok(replies)
}
