//! The chat room: the program every socket course ends with (a lesson
//! beyond the seed).
//!
//! Many clients, one room: each line a client sends reaches every other
//! client. The hard part is not the broadcast but the client that stops
//! reading: write to it directly and, once its socket's buffers are full,
//! the writing thread blocks, and with it everyone whose line it was
//! passing on. So each client has its own writer thread fed by a bounded
//! queue ([`QUEUE`] lines): a broadcast puts a line in each queue.
//!
//! The room's lock guards who is in it, nothing more: a broadcast copies
//! the list of members under it and lets go before it offers anyone a
//! line, so no member's wait ever holds up a join, a leave or another
//! member's line. A broadcast first offers its line to every member at
//! once (those with room get it now), then waits on the full queues
//! together, not one after another: while such a member's writer is
//! still taking lines, the sender waits (one client's burst is slowed to
//! the room's pace, not allowed to overflow everyone's queue); once it has
//! taken none for [`PATIENCE`], no one waits for it: its lines go to
//! [`SLACK`], and it is dropped (its socket shut, the room told) past
//! that or after [`BEHIND_TIME`] without taking a line. Only the sender
//! waits, and at most [`PATIENCE`] for a client that has stopped, however
//! many have.
//!
//! Names are compared in one normalized form (NFKC, case-folded, with a
//! skeleton for Cyrillic and Greek look-alikes of Latin letters), and
//! refused if they hold characters that do not show as themselves:
//! controls, bidi overrides, zero-width and other format characters, the
//! file service's rule. Lines lose control characters and bidi controls.
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
//! | a name | 1 to [`MAX_NAME`] bytes (white space at the ends trimmed), only characters that show safely, not starting with `*` or `/`, not taken by a name that looks the same (same NFKC case-folded skeleton) |
//! | time to give a name | [`NAME_TIME`] from the connection's start |
//! | a line | [`MAX_LINE`] bytes; a longer one ends the connection; control characters and bidi controls are dropped |
//! | the kernel's send buffer per client | [`SEND_BUFFER`] |
//! | lines queued for one client | [`QUEUE`]; past it a sender waits while the client's writer takes lines, but not once it has taken none for [`PATIENCE`]: then its lines go to [`SLACK`], and it is dropped past that or after [`BEHIND_TIME`] without taking a line |
//! | clients | [`MAX_CLIENTS`] at once, [`MAX_PER_PEER`] from one IP address |
//! | idle time | [`IDLE_TIME`] without a line from the client, then it is dropped (the room is told) |
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

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::handler::{is_timeout, normalize_timeout};
use crate::server::Builder;
use crate::text::{is_bidi_control, name_key, shows_safely};
use crate::{BaseRequestHandler, Connection, Stream, ThreadingTcpServer};

/// The longest name, in bytes.
pub const MAX_NAME: usize = 32;
/// The longest line, in bytes, newline included.
pub const MAX_LINE: usize = 1024;
/// Lines waiting for one client: past this a sender waits for its writer
/// (see [`PATIENCE`] and [`SLACK`] for one that has stopped).
pub const QUEUE: usize = 256;
/// How long a new client has to give its name, from the connection's
/// start (the server's initial deadline).
pub const NAME_TIME: Duration = Duration::from_secs(30);
/// How long a client may go without sending a line (a read timeout):
/// then it is dropped and the room told. Ten minutes: a member who only
/// listens says something now and then, or comes back.
pub const IDLE_TIME: Duration = Duration::from_secs(10 * 60);
/// Clients at once.
pub const MAX_CLIENTS: usize = 256;
/// Clients at once from one IP address (an IPv6 /64): 32 addresses to
/// fill the room, not 16.
pub const MAX_PER_PEER: usize = 8;
/// How long a shutdown waits for lines being written.
pub const GRACE: Duration = Duration::from_millis(500);

/// How long a sender waits on a client whose queue is full and whose
/// writer has taken no line for that long: then the line is kept for it
/// in its [`SLACK`] instead, and the sender goes on. A client that reads,
/// however slowly, takes a line more often than this, and its senders
/// wait for it: one client's burst is slowed to the room's pace.
pub const PATIENCE: Duration = Duration::from_millis(20);

/// Lines kept for a client beyond [`QUEUE`] while its writer takes
/// nothing (no sender waits for them): past them, or [`BEHIND_TIME`], the
/// client is dropped. Large enough for a burst to a reader that paused
/// for a moment (a loaded machine can stop a thread for tens of ms).
/// Lines are shared between clients, so a flood costs its distinct lines
/// once (at most `(QUEUE + SLACK) * MAX_LINE`, 4.3 MiB), plus a pointer
/// per line per client.
pub const SLACK: usize = 16 * QUEUE;

/// The kernel's send buffer for each client's socket, in bytes. Left to
/// itself, Linux grows it up to 4 MiB for a client that does not read,
/// so a hundred such clients held 400 MiB of kernel memory, took about
/// 4,000 lines each before their queues even began to fill, and slowed
/// every socket on the machine once TCP's memory ran short. Set, the
/// buffer stays this size (the kernel doubles it for its bookkeeping).
pub const SEND_BUFFER: usize = 64 * 1024;

/// How long a client whose queue is full may take no line before it is
/// dropped.
pub const BEHIND_TIME: Duration = Duration::from_millis(250);

/// One client in the room: its name, its outbox, its socket (to drop it).
struct Member {
    name: String,
    /// The name as compared ([`name_key`]): two names that look alike
    /// have the same key.
    key: String,
    outbox: Arc<Outbox>,
    socket: Arc<Stream>,
}

/// The lines waiting for one client's writer thread, each ending in `\n`
/// (one write each). Its lock is held to add or take a line, never
/// across a wait or a write.
struct Outbox {
    state: Mutex<Queued>,
    /// Wakes the writer when a line comes or the outbox closes.
    ready: Condvar,
}

struct Queued {
    lines: VecDeque<Arc<str>>,
    /// No more lines: the member left, or its socket failed.
    closed: bool,
    /// When the writer last took a line (or the outbox was made): a
    /// writer blocked in a write takes nothing.
    taken: Instant,
}

/// What became of a line offered to a member.
enum Offer {
    /// Queued, or dropped because the member is leaving.
    Done,
    /// Its queue is full and its writer moving: try again shortly.
    Wait,
    /// Too far behind: drop it.
    Behind,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            state: Mutex::new(Queued {
                lines: VecDeque::new(),
                closed: false,
                taken: Instant::now(),
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `line` if the member has room, or has stopped taking lines
    /// for [`PATIENCE`] (into its [`SLACK`]); says to wait while its
    /// writer moves, and gives up on it past [`SLACK`] or [`BEHIND_TIME`].
    fn offer(&self, line: &Arc<str>) -> Offer {
        let mut queued = self.lock();
        let stopped = queued.taken.elapsed();
        let len = queued.lines.len();
        if queued.closed {
            return Offer::Done;
        }
        if len >= QUEUE && (len >= QUEUE + SLACK || stopped >= BEHIND_TIME) {
            return Offer::Behind;
        }
        if len >= QUEUE && stopped < PATIENCE {
            return Offer::Wait;
        }
        queued.lines.push_back(Arc::clone(line));
        self.ready.notify_one();
        Offer::Done
    }

    /// Queues the member's last line, room or not, and closes the outbox:
    /// the writer writes what is queued, then ends.
    fn close(&self, last: Option<&str>) {
        let mut queued = self.lock();
        if let Some(line) = last.filter(|_| !queued.closed) {
            queued.lines.push_back(line.into());
        }
        queued.closed = true;
        self.ready.notify_one();
    }

    /// The next line for the writer; `None` once closed and empty.
    fn take(&self) -> Option<Arc<str>> {
        let mut queued = self.lock();
        loop {
            if let Some(line) = queued.lines.pop_front() {
                queued.taken = Instant::now();
                return Some(line);
            }
            if queued.closed {
                return None;
            }
            queued = self
                .ready
                .wait(queued)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The socket failed: nothing more will be written.
    fn fail(&self) {
        let mut queued = self.lock();
        queued.closed = true;
        queued.lines.clear();
    }
}

/// Offers `line` to every member at once, then waits on the full queues
/// of moving writers together. Returns the ids given up on (too far
/// behind). Holds no lock while it waits: `members` is a copy.
fn deliver(members: Vec<(u64, Arc<Member>)>, line: &Arc<str>) -> Vec<u64> {
    let mut behind = Vec::new();
    let mut waiting = Vec::new();
    for (id, member) in members {
        match member.outbox.offer(line) {
            Offer::Done => {}
            Offer::Wait => waiting.push((id, member)),
            Offer::Behind => behind.push(id),
        }
    }
    while !waiting.is_empty() {
        // Each resolves within PATIENCE of its writer's last take; a poll
        // keeps one sender from needing a wake-up from every writer.
        thread::sleep(Duration::from_millis(1));
        waiting.retain(|(id, member)| match member.outbox.offer(line) {
            Offer::Done => false,
            Offer::Wait => true,
            Offer::Behind => {
                behind.push(*id);
                false
            }
        });
    }
    behind
}

/// The chat room, a [`BaseRequestHandler`]: serve it on a
/// [`ThreadingTcpServer`] (see [`bind`], which also sets the limits).
#[derive(Default)]
pub struct Room {
    members: Mutex<HashMap<u64, Arc<Member>>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.lock().len())
            .finish()
    }
}

/// A chat server's options with the room's limits set (module docs): a
/// cap on clients and on clients per address, [`NAME_TIME`] to give a
/// name, [`IDLE_TIME`] between lines, [`GRACE`]. Change any before
/// `bind`; [`bind`] takes them as they are.
///
/// ```
/// use std::time::Duration;
/// let server = socketserver::chat::builder()
///     .read_timeout(Some(Duration::from_secs(60))) // idle members go sooner
///     .bind("127.0.0.1:0")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn builder() -> Builder<Room, ThreadingTcpServer<Room>> {
    ThreadingTcpServer::builder(Room::default())
        .max_connections(MAX_CLIENTS)
        .max_per_peer(Some(MAX_PER_PEER))
        .initial_deadline(Some(NAME_TIME))
        .read_timeout(Some(IDLE_TIME))
        .graceful_shutdown(GRACE)
        // Lines to a client that is not talking follow each other: without
        // this the second waits for the ACK of the first, which the
        // client's TCP may delay up to 40 ms (Nagle's algorithm).
        .nodelay(true)
}

/// Binds a chat server with the room's limits (module docs), listening
/// but not yet serving; the module's example shows one served.
///
/// # Errors
///
/// If the address cannot be bound.
pub fn bind(addr: impl crate::server::BindAddr) -> io::Result<ThreadingTcpServer<Room>> {
    builder().bind(addr)
}

/// Why a member's conversation ended.
enum Parting {
    /// `/quit`, or the end of its stream.
    Left,
    /// Nothing from it for the read timeout ([`IDLE_TIME`]).
    Idle,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Member>>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `line` to every member but `from`, dropping those too far
    /// behind (and telling the rest, which may drop more). The lock is
    /// held only to copy who is here.
    fn broadcast(&self, from: Option<u64>, line: &str) {
        let mut pending = vec![(from, Arc::<str>::from(format!("{line}\n")))];
        while let Some((from, line)) = pending.pop() {
            let members: Vec<(u64, Arc<Member>)> = self
                .lock()
                .iter()
                .filter(|&(&id, _)| Some(id) != from)
                .map(|(&id, member)| (id, Arc::clone(member)))
                .collect();
            let mut notices = String::new();
            for id in deliver(members, &line) {
                // Two broadcasts may give up on the same member: the one
                // that removes it tells the room.
                let Some(member) = self.lock().remove(&id) else {
                    continue;
                };
                // Wakes its writer (blocked writing) and its reader.
                member.outbox.fail();
                let _ = member.socket.shutdown(Shutdown::Both);
                log::info!(
                    target: "socketserver::chat",
                    "{} dropped: {QUEUE} lines behind and none taken for {PATIENCE:?}, \
                     then {SLACK} more or {BEHIND_TIME:?}",
                    member.name
                );
                notices.push_str(&format!("* {} was dropped: too far behind\n", member.name));
            }
            // All dropped at once are told in one write.
            if !notices.is_empty() {
                pending.push((None, notices.into()));
            }
        }
    }

    /// Adds a member unless a name that looks the same is here, and greets
    /// it (its first line, queued before anyone else can see it here, so
    /// no broadcast comes before it); returns its id.
    fn join(&self, member: Member) -> Option<u64> {
        let mut members = self.lock();
        if members.values().any(|m| m.key == member.key) {
            return None;
        }
        let others: Vec<&str> = members.values().map(|m| m.name.as_str()).collect();
        let here = if others.is_empty() {
            "nobody else".to_owned()
        } else {
            others.join(", ")
        };
        let hello = format!("* hello {}; here: {here}. /quit leaves\n", member.name);
        // A new outbox has room.
        member.outbox.offer(&hello.into());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        members.insert(id, Arc::new(member));
        Some(id)
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
        outbox: &Arc<Outbox>,
        socket: &Arc<Stream>,
    ) -> io::Result<Option<(u64, String)>> {
        let mut out = conn;
        out.write_all(b"* welcome! your name?\n")?;
        loop {
            // The server's initial deadline ([`NAME_TIME`]) bounds this.
            let Some(raw) = read_raw_line(lines)? else {
                return Ok(None);
            };
            let name = raw.trim();
            let problem = if let Some(problem) = name_problem(name) {
                problem
            } else {
                let member = Member {
                    name: name.to_owned(),
                    key: name_key(name),
                    outbox: Arc::clone(outbox),
                    socket: Arc::clone(socket),
                };
                match self.join(member) {
                    Some(id) => {
                        conn.clear_deadline();
                        return Ok(Some((id, name.to_owned())));
                    }
                    None => format!("{name} is taken"),
                }
            };
            // One write per line, as everywhere in the room: a line in two
            // writes is two packets, or, with Nagle on, a second part that
            // waits for the first's ACK.
            out.write_all(format!("* {problem}; your name?\n").as_bytes())?;
        }
    }
}

/// What is wrong with a name, if anything (it is taken or not is the
/// room's to say).
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME {
        Some(format!("a name is 1 to {MAX_NAME} bytes"))
    } else if name.starts_with(['*', '/']) || name_key(name).starts_with(['*', '/']) {
        // The key too: a fullwidth `＊` would pass for a server line.
        Some("a name cannot start with * or /".into())
    } else {
        name.chars().find(|&c| !shows_safely(c)).map(|c| {
            format!(
                "a name cannot hold {}: it does not show as itself",
                c.escape_unicode()
            )
        })
    }
}

impl BaseRequestHandler for Room {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        // Reads through the connection (its deadline holds); the writer
        // thread writes through a second handle to the socket.
        let conn: &Connection = conn;
        let mut lines = BufReader::new(conn);
        if let Some(tcp) = conn.stream().as_tcp() {
            socket2::SockRef::from(tcp).set_send_buffer_size(SEND_BUFFER)?;
        }
        let socket = Arc::new(conn.stream().try_clone()?);
        let outbox = Arc::new(Outbox::new());
        let Some((id, name)) = self.enter(conn, &mut lines, &outbox, &socket)? else {
            return Ok(()); // gone before giving a name
        };
        let writer = thread::Builder::new().name("chat-writer".into()).spawn({
            let (socket, outbox) = (Arc::clone(&socket), Arc::clone(&outbox));
            move || write_lines(&socket, &outbox)
        });
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                self.leave(id);
                return Err(e);
            }
        };
        self.broadcast(Some(id), &format!("* {name} joined"));
        log::info!(target: "socketserver::chat", "{name} joined from {}", conn.peer_addr());
        // Every way out leaves the room, then lets the writer finish.
        let outcome = self.talk(id, &name, &mut lines);
        // On shutdown everyone goes at once: one notice each, not a
        // "left" line for every other member.
        let stopping = conn.server().is_shutdown();
        let idle = matches!(outcome, Ok(Parting::Idle));
        // Its last line, then nothing more (the outbox is closed before the
        // room hears it left, so no line of the room comes after it); the
        // writer ends once it has written what is queued.
        outbox.close(if stopping {
            Some("* the server is stopping\n")
        } else if idle {
            Some("* you were idle too long; bye\n")
        } else {
            None
        });
        if self.leave(id) && !stopping {
            let why = if idle { " (idle)" } else { "" };
            self.broadcast(Some(id), &format!("* {name} left{why}"));
            log::info!(target: "socketserver::chat", "{name} left{why}");
        }
        let _ = writer.join();
        outcome.map(drop)
    }
}

impl Room {
    /// Passes the member's lines on until it leaves or idles too long.
    fn talk(&self, id: u64, name: &str, lines: &mut BufReader<&Connection>) -> io::Result<Parting> {
        loop {
            if lines.buffer().is_empty() {
                // Waiting for the member's next line: a shutdown may end
                // this conversation here at once.
                lines.get_ref().request_boundary();
            }
            let line = match read_raw_line(lines) {
                Ok(Some(line)) => clean(&line),
                Ok(None) => return Ok(Parting::Left),
                Err(e) if is_timeout(&e) => return Ok(Parting::Idle),
                Err(e) => return Err(e),
            };
            match line.as_str() {
                "/quit" => return Ok(Parting::Left),
                "" => {}
                text => self.broadcast(Some(id), &format!("{name}: {text}")),
            }
        }
    }
}

/// The writer thread: the member's outbox (lines with their `\n`, each
/// one write) to its socket, until the outbox closes or the socket fails
/// (the client left, or was dropped).
fn write_lines(socket: &Stream, outbox: &Outbox) {
    while let Some(line) = outbox.take() {
        let mut out = socket;
        if out.write_all(line.as_bytes()).is_err() {
            outbox.fail();
            return;
        }
    }
}

/// One line without its `\r\n`, as sent (invalid UTF-8 replaced); `None`
/// at the end of the stream.
fn read_raw_line(lines: &mut impl BufRead) -> io::Result<Option<String>> {
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
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
}

/// A line as the room passes it on: control characters (an ANSI escape
/// loses its ESC) and bidi controls dropped, tabs kept.
fn clean(line: &str) -> String {
    line.chars()
        .filter(|&c| (!c.is_control() || c == '\t') && !is_bidi_control(c))
        .collect()
}

/// One line as [`read_raw_line`] reads it, [`clean`]ed.
fn read_line(lines: &mut impl BufRead) -> io::Result<Option<String>> {
    Ok(read_raw_line(lines)?.map(|line| clean(&line)))
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
