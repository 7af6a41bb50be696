//! The chat room: the program every socket course ends with (a lesson
//! beyond the seed).
//!
//! Many clients, one room: each line a client sends reaches every other
//! client. The hard part is not the broadcast but the client that stops
//! reading: write to it directly and, once its socket's buffers are full,
//! the writing thread blocks, and with it everyone whose line it was
//! passing on. So each client has its own writer thread fed by a bounded
//! queue ([`QUEUE`] lines): a broadcast puts a line in each queue. A full
//! queue makes the sender wait while that client's writer is still
//! writing (so one client's burst is slowed to the room's pace, not
//! allowed to overflow everyone's queue), and a client that has written
//! nothing for [`BEHIND_TIME`] with its queue full is dropped (its socket
//! shut, the room told) instead of holding the room up any longer.
//!
//! # Protocol
//!
//! Lines of UTF-8 text ending in `\n`; works with `nc`. The server's own
//! lines start with `* `.
//!
//! ```text
//! server: * welcome! your name?
//! client: alice
//! server: * hello alice; here: bob. /quit leaves
//! client: hi bob                  (bob gets "alice: hi bob")
//!                                 (alice gets "bob: hi", "* carol joined", ...)
//! client: /quit                   (the others get "* alice left")
//! ```
//!
//! On shutdown every client gets `* the server is stopping` and the end
//! of the stream.
//!
//! # Limits
//!
//! | limit | value |
//! |---|---|
//! | a name | 1 to [`MAX_NAME`] bytes, no control characters, not taken, not starting with `*` or `/` |
//! | time to give a name | [`NAME_TIME`] |
//! | a line | [`MAX_LINE`] bytes; a longer one ends the connection; control characters are dropped |
//! | lines queued for one client | [`QUEUE`]; past it the sender waits, and the client is dropped once it has written nothing for [`BEHIND_TIME`] |
//! | clients | [`MAX_CLIENTS`] at once, [`MAX_PER_PEER`] from one IP address |
//! | idle time | [`IDLE_TIME`] between lines |
//! | grace period on shutdown | [`GRACE`] |
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//! use socketserver::chat;
//!
//! let server = chat::bind("127.0.0.1:0")?;
//! let addr = server.local_addr()?;
//! let stop = server.shutdown_handle();
//! std::thread::scope(|s| -> std::io::Result<()> {
//!     s.spawn(|| server.serve_forever());
//!     let mut alice = TcpStream::connect(addr)?;
//!     let mut lines = BufReader::new(alice.try_clone()?).lines();
//!     assert_eq!(lines.next().unwrap()?, "* welcome! your name?");
//!     alice.write_all(b"alice\n")?;
//!     assert_eq!(lines.next().unwrap()?, "* hello alice; here: nobody else. /quit leaves");
//!     stop.shutdown();
//!     assert_eq!(lines.next().unwrap()?, "* the server is stopping");
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::handler::normalize_timeout;
use crate::{BaseRequestHandler, Connection, Stream, ThreadingTcpServer};

/// The longest name, in bytes.
pub const MAX_NAME: usize = 32;
/// The longest line, in bytes, newline included.
pub const MAX_LINE: usize = 1024;
/// Lines waiting for one client: past this it is too far behind, dropped.
pub const QUEUE: usize = 256;
/// How long a new client has to give its name.
pub const NAME_TIME: Duration = Duration::from_secs(30);
/// How long a client may stay silent (a read timeout).
pub const IDLE_TIME: Duration = Duration::from_secs(60 * 60);
/// Clients at once.
pub const MAX_CLIENTS: usize = 256;
/// Clients at once from one IP address.
pub const MAX_PER_PEER: usize = 16;
/// How long a shutdown waits for lines being written.
pub const GRACE: Duration = Duration::from_millis(500);

/// How long a client whose queue is full may write nothing before it is
/// dropped. Meanwhile the sender waits: a burst from one client is slowed
/// to the pace of the slowest reader, not allowed to empty the room.
pub const BEHIND_TIME: Duration = Duration::from_millis(250);

/// One client in the room: its name, its queue, its socket (to drop it).
struct Member {
    name: String,
    /// Lines for it, each ending in `\n` (one write each).
    queue: SyncSender<Arc<str>>,
    socket: Arc<Stream>,
    /// Lines its writer has written so far: whether it is moving at all.
    written: Arc<AtomicU64>,
}

impl Member {
    /// Puts `line` in the member's queue; if it is full, waits while the
    /// member's writer is still writing, and gives up (false: too far
    /// behind) once it has written nothing for [`BEHIND_TIME`].
    fn offer(&self, line: &Arc<str>) -> bool {
        let mut seen = self.written.load(Ordering::Relaxed);
        let mut since = Instant::now();
        loop {
            match self.queue.try_send(Arc::clone(line)) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return true,
                Err(TrySendError::Full(_)) => {}
            }
            let now = self.written.load(Ordering::Relaxed);
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() >= BEHIND_TIME {
                return false;
            }
            // `SyncSender` has no send with a timeout on stable Rust.
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The chat room, a [`BaseRequestHandler`]: serve it on a
/// [`ThreadingTcpServer`] (see [`bind`], which also sets the limits).
#[derive(Default)]
pub struct Room {
    members: Mutex<HashMap<u64, Member>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.lock().len())
            .finish()
    }
}

/// Binds a chat server with the room's limits (module docs), listening
/// but not yet serving; the module's example shows one served.
///
/// # Errors
///
/// If the address cannot be bound.
pub fn bind(addr: impl crate::server::BindAddr) -> io::Result<ThreadingTcpServer<Room>> {
    ThreadingTcpServer::builder(Room::default())
        .max_connections(MAX_CLIENTS)
        .max_per_peer(Some(MAX_PER_PEER))
        .read_timeout(Some(IDLE_TIME))
        .graceful_shutdown(GRACE)
        // Lines to a client that is not talking follow each other: without
        // this the second waits for the ACK of the first, which the
        // client's TCP may delay up to 40 ms (Nagle's algorithm).
        .nodelay(true)
        .bind(addr)
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `line` to every member but `from`, dropping those too far
    /// behind (and telling the rest, which may drop more).
    fn broadcast(&self, from: Option<u64>, line: &str) {
        let mut members = self.lock();
        let mut pending = vec![(from, Arc::<str>::from(format!("{line}\n")))];
        while let Some((from, line)) = pending.pop() {
            let mut behind = Vec::new();
            for (&id, member) in members.iter() {
                if Some(id) == from {
                    continue;
                }
                if !member.offer(&line) {
                    behind.push(id);
                }
            }
            for id in behind {
                if let Some(member) = members.remove(&id) {
                    // Wakes its writer (blocked writing) and its reader.
                    let _ = member.socket.shutdown(Shutdown::Both);
                    log::info!(
                        target: "socketserver::chat",
                        "{} dropped: {QUEUE} lines behind, none written for {BEHIND_TIME:?}",
                        member.name
                    );
                    pending.push((
                        None,
                        format!("* {} was dropped: too far behind\n", member.name).into(),
                    ));
                }
            }
        }
    }

    /// Adds a member unless its name is taken; returns its id and who
    /// else is here.
    fn join(&self, member: Member) -> Result<(u64, Vec<String>), Member> {
        let mut members = self.lock();
        if members.values().any(|m| m.name == member.name) {
            return Err(member);
        }
        let others = members.values().map(|m| m.name.clone()).collect();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        members.insert(id, member);
        Ok((id, others))
    }

    /// Removes a member; `false` if it was dropped already.
    fn leave(&self, id: u64) -> bool {
        self.lock().remove(&id).is_some()
    }

    /// Asks for a name until one is good and free, and joins with it.
    fn enter(
        &self,
        conn: &Connection,
        lines: &mut impl BufRead,
        queue: &SyncSender<Arc<str>>,
        socket: &Arc<Stream>,
        written: &Arc<AtomicU64>,
    ) -> io::Result<Option<(u64, String, Vec<String>)>> {
        let mut out = conn;
        conn.set_deadline(Instant::now() + NAME_TIME);
        out.write_all(b"* welcome! your name?\n")?;
        loop {
            let Some(name) = read_line(lines)? else {
                return Ok(None);
            };
            let problem = if name.is_empty() || name.len() > MAX_NAME {
                format!("a name is 1 to {MAX_NAME} bytes")
            } else if name.starts_with(['*', '/']) {
                "a name cannot start with * or /".into()
            } else {
                let member = Member {
                    name: name.clone(),
                    queue: queue.clone(),
                    socket: Arc::clone(socket),
                    written: Arc::clone(written),
                };
                match self.join(member) {
                    Ok((id, others)) => {
                        conn.clear_deadline();
                        return Ok(Some((id, name, others)));
                    }
                    Err(_) => format!("{name} is taken"),
                }
            };
            // One write per line, as everywhere in the room: a line in two
            // writes is two packets, or, with Nagle on, a second part that
            // waits for the first's ACK.
            out.write_all(format!("* {problem}; your name?\n").as_bytes())?;
        }
    }
}

impl BaseRequestHandler for Room {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        // Reads through the connection (its deadline holds); the writer
        // thread writes through a second handle to the socket.
        let conn: &Connection = conn;
        let mut lines = BufReader::new(conn);
        let socket = Arc::new(conn.stream().try_clone()?);
        let (queue, outbox) = mpsc::sync_channel(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let Some((id, name, others)) = self.enter(conn, &mut lines, &queue, &socket, &written)?
        else {
            return Ok(()); // gone before giving a name
        };
        let writer = thread::Builder::new().name("chat-writer".into()).spawn({
            let socket = Arc::clone(&socket);
            move || write_lines(&socket, outbox, &written)
        });
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                self.leave(id);
                return Err(e);
            }
        };
        let here = if others.is_empty() {
            "nobody else".to_owned()
        } else {
            others.join(", ")
        };
        let _ = queue.try_send(format!("* hello {name}; here: {here}. /quit leaves\n").into());
        self.broadcast(Some(id), &format!("* {name} joined"));
        log::info!(target: "socketserver::chat", "{name} joined from {}", conn.peer_addr());
        // Every way out leaves the room, then lets the writer finish.
        let outcome = self.talk(id, &name, &mut lines);
        // On shutdown everyone goes at once: one notice each, not a
        // "left" line for every other member.
        let stopping = conn.server().is_shutdown();
        if stopping {
            let _ = queue.try_send("* the server is stopping\n".into());
        }
        if self.leave(id) && !stopping {
            self.broadcast(Some(id), &format!("* {name} left"));
            log::info!(target: "socketserver::chat", "{name} left");
        }
        drop(queue); // the room's copy went with `leave`: the writer ends
        let _ = writer.join();
        outcome
    }
}

impl Room {
    /// Passes the member's lines on until it leaves.
    fn talk(&self, id: u64, name: &str, lines: &mut impl BufRead) -> io::Result<()> {
        while let Some(line) = read_line(lines)? {
            match line.as_str() {
                "/quit" => break,
                "" => {}
                text => self.broadcast(Some(id), &format!("{name}: {text}")),
            }
        }
        Ok(())
    }
}

/// The writer thread: the member's queue (lines with their `\n`, each
/// one write) to its socket, until the queue closes or the socket fails
/// (the client left, or was dropped).
fn write_lines(socket: &Stream, outbox: Receiver<Arc<str>>, written: &AtomicU64) {
    for line in outbox {
        let mut out = socket;
        if out.write_all(line.as_bytes()).is_err() {
            break;
        }
        written.fetch_add(1, Ordering::Relaxed);
    }
}

/// One line without its `\r\n`, control characters dropped; `None` at the
/// end of the stream.
fn read_line(lines: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let limit = (MAX_LINE + 1) as u64;
    lines
        .take(limit)
        .read_until(b'\n', &mut line)
        .map_err(normalize_timeout)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line longer than {MAX_LINE} bytes"),
        ));
    }
    let text = String::from_utf8_lossy(&line);
    Ok(Some(
        text.trim_end_matches(['\r', '\n'])
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect(),
    ))
}

/// A short chat, narrated: a server on 127.0.0.1 port 0, three clients
/// (alice, bob, carol) who join, talk and leave, then a shutdown with two
/// still connected. Each line one of them receives goes to `say`; an
/// answer that is not what the protocol promises is an error. For the tour.
///
/// ```
/// let mut heard = Vec::new();
/// socketserver::chat::demo(|line| heard.push(line.to_owned()))?;
/// assert!(heard.iter().any(|l| l == "bob hears: alice: hi, all"));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// If a socket fails, or a client hears something else than it should.
pub fn demo(say: impl FnMut(&str)) -> io::Result<()> {
    demo_via(Ok, say)
}

/// [`demo`], with the clients connecting where `route` says: it gets the
/// server's address and returns the one to connect to, such as a
/// recording relay's (the tour draws the first client's conversation so).
///
/// ```
/// use socketserver::chaos::{Chaos, Proxy};
///
/// let mut relay = None;
/// socketserver::chat::demo_via(
///     |server| {
///         let proxy = Proxy::start("127.0.0.1:0", server, Chaos::new().trace(true))?;
///         let addr = proxy.local_addr();
///         relay = Some(proxy);
///         Ok(addr)
///     },
///     |_| {},
/// )?;
/// let relay = relay.expect("route was called");
/// assert_eq!(relay.traces().len(), 3); // alice, bob and carol
/// relay.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// As [`demo`], and whatever `route` returns (the server is then never
/// served).
pub fn demo_via(
    route: impl FnOnce(SocketAddr) -> io::Result<SocketAddr>,
    mut say: impl FnMut(&str),
) -> io::Result<()> {
    let server = bind("127.0.0.1:0")?;
    let addr = route(server.local_addr()?)?;
    let stop = server.shutdown_handle();
    thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        let mut talk = || -> io::Result<()> {
            let mut alice = Client::join(addr, "alice", &mut say)?;
            let mut bob = Client::join(addr, "bob", &mut say)?;
            alice.expect("* bob joined", &mut say)?;
            let mut carol = Client::join(addr, "carol", &mut say)?;
            alice.expect("* carol joined", &mut say)?;
            bob.expect("* carol joined", &mut say)?;
            alice.send("hi, all")?;
            bob.expect("alice: hi, all", &mut say)?;
            carol.expect("alice: hi, all", &mut say)?;
            carol.send("/quit")?;
            alice.expect("* carol left", &mut say)?;
            bob.expect("* carol left", &mut say)?;
            stop.shutdown();
            alice.expect("* the server is stopping", &mut say)?;
            bob.expect("* the server is stopping", &mut say)?;
            Ok(())
        };
        let outcome = talk();
        stop.shutdown(); // also when the talk failed half way
        let _ = serving.join();
        outcome
    })?;
    say(&format!("the server stopped: {}", server.stats()));
    Ok(())
}

/// A demo client: a name, a socket, its lines.
struct Client {
    name: &'static str,
    socket: TcpStream,
    lines: BufReader<TcpStream>,
}

impl Client {
    fn join(
        addr: SocketAddr,
        name: &'static str,
        say: &mut impl FnMut(&str),
    ) -> io::Result<Client> {
        let socket = TcpStream::connect(addr)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut client = Client {
            name,
            lines: BufReader::new(socket.try_clone()?),
            socket,
        };
        client.expect("* welcome! your name?", say)?;
        client.send(name)?;
        client.expect(&format!("* hello {name}"), say)?;
        Ok(client)
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        self.socket.write_all(format!("{line}\n").as_bytes())
    }

    /// Reads the next line, which must start with `start`.
    fn expect(&mut self, start: &str, say: &mut impl FnMut(&str)) -> io::Result<()> {
        let line = read_line(&mut self.lines)?.unwrap_or_default();
        say(&format!("{} hears: {line}", self.name));
        if line.starts_with(start) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} expected {start:?}, heard {line:?}", self.name),
            ))
        }
    }
}
