//! A chaos proxy: makes 分包 certain by re-cutting a TCP stream into small
//! pieces, with delays, and optionally cutting it off.
//!
//! On loopback, a short message almost always arrives in one `recv`, so a
//! client that takes one `recv` for one message (the seed's greeting client
//! does) seems to work. It only works by luck: on a real network the same
//! bytes can arrive in pieces. [`Proxy`] sits between a client and a server
//! and forwards each direction in pieces of at most [`Chaos::segment`]
//! bytes, waiting [`Chaos::delay`] before each, so every receiver sees
//! 分包 (fragmentation) on every message. A client that reads frames
//! ([`crate::frame`]) gets the same messages either way; [`one_recv_client`],
//! the seed's greeting client, gets its replies in pieces, and the
//! greeting server, which takes one `recv` for one name, greets pieces of
//! names.
//!
//! ```
//! use std::time::Duration;
//! use socketserver::ThreadingTcpServer;
//! use socketserver::chaos::{self, Chaos, Proxy};
//! use socketserver::greet::{self, Greeter};
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new())?;
//! let upstream = server.local_addr()?;
//! std::thread::spawn(move || server.serve_forever());
//!
//! let chaos = Chaos::new().segment(2).delay(Duration::from_millis(20));
//! let proxy = Proxy::start("127.0.0.1:0", upstream, chaos)?;
//! // The seed's client: one recv, one message. It sees pieces.
//! let heard = chaos::one_recv_client(proxy.local_addr(), &["Tracy"])?;
//! assert_ne!(heard, ["Welcome!", "你好,Tracy"]);
//! // So does the server, which takes one recv for one name: even a client
//! // that reads whole replies is greeted for pieces of its name.
//! let greeted = greet::tcp_client(proxy.local_addr(), &["Tracy"])?;
//! assert_ne!(greeted[1], "你好,Tracy");
//! let report = proxy.shutdown();
//! assert!(report.pieces[0] >= 3); // "Tracy" went as "Tr", "ac", "y"
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! With [`Chaos::trace`] on, the proxy records each connection into a
//! [`Trace`] as the relay sees it: what it received from a side in one read
//! is drawn as that side's write, and each piece it forwarded as a read by
//! the other side, so the diagram shows the re-cutting. [`Trace::wrap`] on
//! the ends themselves records what each end saw.
//!
//! # Limits
//!
//! The proxy is a [`ThreadingTcpServer`] with a handler that relays, so
//! the framework's accept loop, threads, joins and shutdown are its own.
//! At most [`MAX_CONNECTIONS`] conversations at once (more are closed at
//! once, and counted); two threads each, ended when either side closes, a
//! side is silent or does not read for [`IDLE_TIMEOUT`], or the proxy
//! shuts down. The server's own limits still apply through it. It listens
//! where it is told: give it a loopback address.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::trace::{Op, Side, Trace};
use crate::{BaseRequestHandler, Connection, ShutdownHandle, Stream, ThreadingTcpServer};

/// The most conversations a proxy relays at once.
pub const MAX_CONNECTIONS: usize = 64;

/// How long the proxy waits to connect upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a conversation may wait for either side's next byte, or for
/// either side to take a piece, before the proxy ends it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How much one read from either side takes at most.
const READ_SIZE: usize = 64 * 1024;

type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// What the proxy does to the bytes it forwards. The default forwards them
/// unchanged.
///
/// ```
/// use std::time::Duration;
/// use socketserver::chaos::Chaos;
/// let chaos = Chaos::new().segment(3).delay(Duration::from_millis(50)).cut_after(1000);
/// assert_eq!(
///     chaos.to_string(),
///     "re-cut into pieces of at most 3 B, 50ms before each piece, cut after 1000 B"
/// );
/// assert_eq!(Chaos::new().to_string(), "forwarded as read");
/// ```
#[derive(Clone, Default)]
pub struct Chaos {
    segment: Option<usize>,
    delay: Duration,
    cut_after: Option<u64>,
    trace: bool,
    log: Option<Log>,
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("segment", &self.segment)
            .field("delay", &self.delay)
            .field("cut_after", &self.cut_after)
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Chaos {
    /// One line saying what the proxy does, for its users to read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.segment {
            Some(n) => write!(f, "re-cut into pieces of at most {n} B")?,
            None => write!(f, "forwarded as read")?,
        }
        if !self.delay.is_zero() {
            write!(f, ", {:?} before each piece", self.delay)?;
        }
        if let Some(bytes) = self.cut_after {
            write!(f, ", cut after {bytes} B")?;
        }
        Ok(())
    }
}

impl Chaos {
    /// Forward unchanged (a plain relay); add chaos with the other methods.
    pub fn new() -> Chaos {
        Chaos::default()
    }

    /// Forward each direction in pieces of at most `bytes` (at least 1),
    /// each its own write with Nagle off, so each leaves as its own segment.
    pub fn segment(mut self, bytes: usize) -> Chaos {
        self.segment = Some(bytes.max(1));
        self
    }

    /// Wait this long before forwarding each piece.
    pub fn delay(mut self, delay: Duration) -> Chaos {
        self.delay = delay;
        self
    }

    /// Close both sides of a conversation once it has forwarded this many
    /// bytes (both directions counted): a connection cut in the middle.
    pub fn cut_after(mut self, bytes: u64) -> Chaos {
        self.cut_after = Some(bytes);
        self
    }

    /// Record each conversation into a [`Trace`] ([`Proxy::traces`]).
    pub fn trace(mut self, on: bool) -> Chaos {
        self.trace = on;
        self
    }

    /// Say what happens, one line per event (a connection opened, closed,
    /// cut, refused), through `log`.
    pub fn log(mut self, log: impl Fn(&str) + Send + Sync + 'static) -> Chaos {
        self.log = Some(Arc::new(log));
        self
    }

    fn say(&self, line: impl fmt::Display) {
        if let Some(log) = &self.log {
            log(&line.to_string());
        }
    }
}

/// What a proxy did, over all its conversations; its `Display` is one
/// line for people.
///
/// ```
/// use socketserver::chaos::{Chaos, Proxy};
/// let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let proxy = Proxy::start("127.0.0.1:0", upstream.local_addr()?, Chaos::new())?;
/// let report = proxy.shutdown();
/// assert_eq!((report.connections, report.bytes), (0, [0, 0]));
/// assert!(report.to_string().starts_with("0 conversations"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Conversations relayed.
    pub connections: u64,
    /// Conversations refused: over [`MAX_CONNECTIONS`], or upstream down.
    pub refused: u64,
    /// Conversations cut by [`Chaos::cut_after`].
    pub cut: u64,
    /// Bytes forwarded: client to server, then server to client.
    pub bytes: [u64; 2],
    /// Pieces (writes) those bytes were forwarded in, the same way round.
    pub pieces: [u64; 2],
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} conversations; client→server {} B in {} pieces, server→client {} B in {} pieces",
            self.connections, self.bytes[0], self.pieces[0], self.bytes[1], self.pieces[1]
        )?;
        if self.cut > 0 {
            write!(f, "; {} cut", self.cut)?;
        }
        if self.refused > 0 {
            write!(f, "; {} refused", self.refused)?;
        }
        Ok(())
    }
}

/// The proxy's handler: one conversation per connection, relayed to
/// `upstream`. The framework gives it what a second server would need
/// (the accept loop, the threads, the joins, the shutdown).
struct Relay {
    chaos: Chaos,
    upstream: SocketAddr,
    report: Mutex<Report>,
    traces: Mutex<Vec<Trace>>,
}

/// A running chaos proxy: a [`ThreadingTcpServer`] whose handler relays.
/// [`Proxy::shutdown`] (or dropping it) stops it and ends every
/// conversation it relays.
pub struct Proxy {
    local: SocketAddr,
    relay: Arc<Relay>,
    stop: ShutdownHandle,
    serving: Option<JoinHandle<()>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("local", &self.local)
            .field("upstream", &self.relay.upstream)
            .field("chaos", &self.relay.chaos)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Listens on `listen` and relays every connection to `upstream`
    /// through `chaos`, on threads of its own.
    ///
    /// # Errors
    ///
    /// If `listen` cannot be bound or `upstream` does not resolve.
    pub fn start(
        listen: impl ToSocketAddrs,
        upstream: impl ToSocketAddrs,
        chaos: Chaos,
    ) -> io::Result<Proxy> {
        let upstream = upstream
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no upstream address"))?;
        let relay = Arc::new(Relay {
            chaos,
            upstream,
            report: Mutex::default(),
            traces: Mutex::default(),
        });
        let listen: Vec<SocketAddr> = listen.to_socket_addrs()?.collect();
        // Each piece must leave as its own segment for the receiver to see
        // it as its own read (Nagle off); a side that never sends or never
        // reads ends the conversation instead of holding it for ever.
        let server = ThreadingTcpServer::builder(Arc::clone(&relay))
            .nodelay(true)
            .timeout(Some(IDLE_TIMEOUT))
            .bind(&listen[..])?;
        let local = server.local_addr()?;
        let stop = server.shutdown_handle();
        let serving = thread::spawn(move || server.serve_forever());
        Ok(Proxy {
            local,
            relay,
            stop,
            serving: Some(serving),
        })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// What it has done so far.
    pub fn report(&self) -> Report {
        crate::lock(&self.relay.report).clone()
    }

    /// One trace per conversation, in the order they were accepted (empty
    /// unless [`Chaos::trace`] is on).
    pub fn traces(&self) -> Vec<Trace> {
        crate::lock(&self.relay.traces).clone()
    }

    /// Stops accepting, ends every conversation, waits for every thread,
    /// and returns the final report.
    pub fn shutdown(mut self) -> Report {
        self.stop();
        self.report()
    }

    fn stop(&mut self) {
        // Every conversation ends now: the server closes their client
        // sides, and each relay then closes its upstream side.
        self.stop.shutdown_now();
        if let Some(serving) = self.serving.take() {
            let _ = serving.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.serving.is_some() {
            self.stop();
        }
    }
}

impl BaseRequestHandler for Relay {
    /// Relays one conversation until both directions end or it is cut.
    fn handle(&self, client: &mut Connection) -> io::Result<()> {
        let (chaos, number) = (&self.chaos, client.id());
        // The connection being served counts itself.
        if client.server().stats().active > MAX_CONNECTIONS as u64 {
            crate::lock(&self.report).refused += 1;
            chaos.say(format_args!(
                "connection {number}: refused, {MAX_CONNECTIONS} already open"
            ));
            return Ok(());
        }
        let server = match TcpStream::connect_timeout(&self.upstream, CONNECT_TIMEOUT) {
            Ok(server) => server,
            Err(e) => {
                crate::lock(&self.report).refused += 1;
                chaos.say(format_args!(
                    "connection {number}: upstream {} unreachable: {e}",
                    self.upstream
                ));
                return Ok(());
            }
        };
        chaos.say(format_args!(
            "connection {number}: {} → {} ({chaos})",
            client.peer_addr(),
            self.upstream
        ));
        let trace = chaos.trace.then(|| {
            let plain =
                chaos.segment.is_none() && chaos.delay.is_zero() && chaos.cut_after.is_none();
            let trace = Trace::new(if plain {
                format!("connection {number}, recorded by a relay")
            } else {
                format!("connection {number} through the chaos proxy ({chaos})")
            });
            crate::lock(&self.traces).push(trace.clone());
            trace
        });
        let _ = server.set_nodelay(true);
        let _ = server.set_read_timeout(Some(IDLE_TIMEOUT));
        let _ = server.set_write_timeout(Some(IDLE_TIMEOUT));
        let server = Stream::Tcp(server);
        let client = &*client;
        let sides = [client.stream(), &server];
        let forwarded = AtomicU64::new(0);
        let cut = AtomicBool::new(false);
        let relay = |from: &dyn Fn(&mut [u8]) -> io::Result<usize>,
                     to: &dyn Fn(&[u8]) -> io::Result<()>,
                     sender: Side| {
            pump(
                from,
                to,
                sender,
                chaos,
                trace.as_ref(),
                &forwarded,
                &cut,
                sides,
            )
        };
        let (up, down) = thread::scope(|s| {
            let down = s.spawn(|| {
                relay(
                    &|b| (&server).read(b),
                    &|b| (&mut &*client).write_all(b),
                    Side::Server,
                )
            });
            let up = relay(
                &|b| (&mut &*client).read(b),
                &|b| (&server).write_all(b),
                Side::Client,
            );
            // Stopping: the client side is closed; close the upstream
            // side too, so the other direction ends now.
            if client.server().is_shutdown() {
                let _ = server.shutdown(Shutdown::Both);
            }
            (up, down.join().unwrap_or_default())
        });
        let mut report = crate::lock(&self.report);
        report.connections += 1;
        report.bytes[0] += up.0;
        report.pieces[0] += up.1;
        report.bytes[1] += down.0;
        report.pieces[1] += down.1;
        let was_cut = cut.load(Ordering::SeqCst);
        if was_cut {
            report.cut += 1;
        }
        drop(report);
        chaos.say(format_args!(
            "connection {number}: client→server {} B in {} pieces, server→client {} B in {} pieces{}",
            up.0,
            up.1,
            down.0,
            down.1,
            if was_cut { "; cut" } else { "" }
        ));
        Ok(())
    }

    /// A conversation the proxy's shutdown cut: said, not printed.
    fn handle_error(&self, peer: &crate::Addr, error: &crate::HandlerError) {
        self.chaos.say(format_args!("{peer}: {error}"));
    }
}

/// Forwards `from` to `to` until `from` ends, re-cut as the chaos says;
/// `sides` are both sockets, closed when the conversation is cut. Returns
/// (bytes, pieces) forwarded.
#[allow(clippy::too_many_arguments)]
fn pump(
    from: &dyn Fn(&mut [u8]) -> io::Result<usize>,
    to: &dyn Fn(&[u8]) -> io::Result<()>,
    sender: Side,
    chaos: &Chaos,
    trace: Option<&Trace>,
    forwarded: &AtomicU64,
    cut: &AtomicBool,
    sides: [&Stream; 2],
) -> (u64, u64) {
    let mut buf = vec![0u8; READ_SIZE];
    let (mut bytes, mut pieces) = (0u64, 0u64);
    loop {
        let n = match from(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(trace) = trace {
            trace.record(sender, Op::Write, &buf[..n]);
        }
        let segment = chaos.segment.unwrap_or(n);
        for piece in buf[..n].chunks(segment) {
            let mut piece = piece;
            let mut cutting = false;
            if let Some(limit) = chaos.cut_after {
                let before = forwarded.fetch_add(piece.len() as u64, Ordering::SeqCst);
                if before + piece.len() as u64 >= limit {
                    piece = &piece[..limit.saturating_sub(before).min(piece.len() as u64) as usize];
                    cutting = true;
                }
            }
            if !chaos.delay.is_zero() && !piece.is_empty() {
                thread::sleep(chaos.delay);
            }
            if !piece.is_empty() {
                // Recorded as it is handed on, before the receiver can
                // answer it, so the answer is drawn after it.
                if let Some(trace) = trace {
                    trace.record(sender.peer(), Op::Read, piece);
                }
                if to(piece).is_err() {
                    cutting = true;
                } else {
                    bytes += piece.len() as u64;
                    pieces += 1;
                }
            }
            if cutting || cut.load(Ordering::SeqCst) {
                if chaos.cut_after.is_some() && !cut.swap(true, Ordering::SeqCst) {
                    chaos.say(format_args!(
                        "cut after {} B, as asked",
                        chaos.cut_after.unwrap_or(0)
                    ));
                }
                for side in sides {
                    let _ = side.shutdown(Shutdown::Both);
                }
                return (bytes, pieces);
            }
        }
    }
    // The sender finished: pass its end of stream on, and let the other
    // direction finish on its own.
    let receiver = match sender {
        Side::Client => sides[1],
        Side::Server => sides[0],
    };
    let _ = receiver.shutdown(Shutdown::Write);
    (bytes, pieces)
}

/// The seed's TCP greeting client, as the seed writes it: one `recv(1024)`
/// taken as one message. Reads the banner, then for each name sends it and
/// takes one `recv` as the greeting, then sends `exit`. Returns what each
/// `recv` returned: through a proxy that re-cuts the stream, pieces.
///
/// # Errors
///
/// If the server cannot be reached or a `recv` fails (a 5 s timeout each).
pub fn one_recv_client(addr: impl ToSocketAddrs, names: &[&str]) -> io::Result<Vec<String>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(crate::greet::CLIENT_TIMEOUT))?;
    let mut buf = [0u8; 1024];
    let mut recv = |stream: &mut TcpStream| -> io::Result<String> {
        let n = stream.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let mut heard = vec![recv(&mut stream)?];
    for name in names {
        stream.write_all(name.as_bytes())?;
        heard.push(recv(&mut stream)?);
    }
    stream.write_all(crate::greet::EXIT)?;
    Ok(heard)
}
