//! The command server: a [`BaseRequestHandler`] that reads requests in
//! either form, checks them, runs them, and replies; and [`bind`], which
//! refuses to expose it unsafely.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::allow::Allowlist;
use super::auth::{Nonce, PROTOCOL, Session};
use super::exec::{self, Pipe};
use super::reply::{SeedSpool, write_end, write_error, write_piece};
use super::request::{Request, detect, line, read_request};
use super::sandbox;
use super::warm::Pool;
use super::{CommandConfig, CommandError, Containment, Protocol};
use super::{auth, contain};
use crate::handler::{Addr, BaseRequestHandler, Connection, is_timeout};
use crate::server::{ThreadingTcpServer, peer_key};

/// How long an error reply may take to leave: the connection's deadline
/// may have passed already (that may be the error), and a write after it
/// would fail at once.
const ERROR_GRACE: Duration = Duration::from_secs(1);

/// Serves the command protocol on any stream server.
///
/// [`bind`] is the usual way in; the handler runs on any stream server:
///
/// ```
/// use socketserver::TcpServer;
/// use socketserver::command::{CommandConfig, CommandHandler};
///
/// let handler = CommandHandler::new(CommandConfig::default().allow(["date", "uptime -p"]))?;
/// let one_at_a_time = TcpServer::bind("127.0.0.1:0", handler)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct CommandHandler {
    config: CommandConfig,
    slots: Slots,
    /// Addresses already logged for sending HTTP: one line per peer.
    warned: Mutex<HashSet<IpAddr>>,
    /// How commands run in PID namespaces; `None`: the scan.
    sandbox: Option<Pool>,
}

/// How many addresses are remembered as logged for sending HTTP; past it
/// the memory starts over (and an address may be logged again).
const MAX_WARNED: usize = 4096;

impl CommandHandler {
    /// A handler with this configuration. Where its commands are
    /// contained by the scan (no PID namespace, see [`Containment`]) and
    /// [`subreaper`](CommandConfig::subreaper) is on (the default), this
    /// makes the whole process a child subreaper on Linux: read that
    /// field's docs if your program starts processes of its own.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an allowlist with `shell` on (a shell line can
    /// run anything, so the list could not be enforced), an allowlist
    /// entry that is not a command line, or an empty token (it would
    /// authenticate anyone). Any error from making the process a subreaper.
    pub fn new(config: CommandConfig) -> io::Result<CommandHandler> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if config.shell && config.allow.is_some() {
            return Err(invalid(
                "an allowlist cannot be enforced on shell command lines".into(),
            ));
        }
        if let Some(allow) = &config.allow {
            Allowlist::parse(allow).map_err(|e| invalid(e.to_string()))?;
        }
        if config.token.as_deref() == Some("") {
            return Err(invalid("an empty token would let anyone in".into()));
        }
        let sandbox = match config.containment {
            Containment::Scan => None,
            wanted => match sandbox::probe() {
                Ok(plan) => Some(Pool::new(plan)?),
                Err(why) if wanted == Containment::Namespace => {
                    return Err(io::Error::new(io::ErrorKind::Unsupported, why));
                }
                Err(why) => {
                    log::warn!(target: "socketserver", "commands are contained by the scan only: {why}");
                    None
                }
            },
        };
        // The token is in this process's memory: a command running as the
        // same user must not read it there (/proc/PID/mem, environ).
        #[cfg(target_os = "linux")]
        if config.token.is_some() {
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
        }
        match &sandbox {
            Some(pool) if pool.user_namespace() => log::info!(
                target: "socketserver",
                "commands run in PID namespaces, in user namespaces: every process a command starts ends with it"
            ),
            Some(_) => log::warn!(
                target: "socketserver",
                "commands run in PID namespaces, without user namespaces (the system allows none): \
                 every process a command starts ends with it, unless a command holding root's \
                 capabilities takes over its namespace's init"
            ),
            // The scan needs the orphans adopted; a namespace adopts its own.
            None if config.subreaper => contain::become_subreaper()?,
            None => {}
        }
        Ok(CommandHandler {
            config,
            slots: Slots::default(),
            warned: Mutex::new(HashSet::new()),
            sandbox,
        })
    }

    /// How this handler's commands are contained: [`Containment::Namespace`]
    /// or [`Containment::Scan`], as the system allowed.
    pub fn containment(&self) -> Containment {
        match self.sandbox {
            Some(_) => Containment::Namespace,
            None => Containment::Scan,
        }
    }

    /// How many commands are running now.
    pub fn running(&self) -> usize {
        self.slots.running.load(Ordering::SeqCst)
    }

    /// Checks a request's answer, when there is a token, and returns its
    /// command line. The first request of a connection opens its session
    /// (both nonces) and is answered with the server's proof; every later
    /// one must carry its own tag (see [`auth`]).
    fn admit(
        &self,
        conn: &Connection,
        protocol: Protocol,
        request: Request,
        challenge: Option<&Nonce>,
        session: &mut Option<Session>,
    ) -> Result<String, CommandError> {
        let (Some(token), Some(server_nonce)) = (&self.config.token, challenge) else {
            return line(request.body);
        };
        let answer = match request.auth {
            Some(answer) if protocol == Protocol::Framed => answer,
            _ => return Err(CommandError::Unauthorized),
        };
        if let Some(session) = session {
            if !session.check(&request.body, &answer.tag) {
                return Err(CommandError::Unauthorized);
            }
            return line(request.body);
        }
        if answer.proto != Some(PROTOCOL) {
            return Err(CommandError::ProtocolVersion {
                ours: PROTOCOL,
                theirs: answer.proto.unwrap_or(1),
            });
        }
        let client_nonce = answer
            .client_nonce
            .as_deref()
            .and_then(auth::nonce_from_hex);
        let mut opened = client_nonce.map(|c| Session::new(token, *server_nonce, c));
        if !opened
            .as_mut()
            .is_some_and(|s| s.check(&request.body, &answer.tag))
        {
            // A wrong answer: make guessing slow.
            std::thread::sleep(auth::PENALTY);
            return Err(CommandError::Unauthorized);
        }
        if let Some(s) = &opened {
            auth::write_proof(&mut &*conn, s.proof(&request.body))?;
        }
        *session = opened;
        line(request.body)
    }

    /// Logs an HTTP request, once per address (as Redis does).
    fn warn_http(&self, peer: &Addr) {
        if let Some(key) = peer_key(peer) {
            let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
            if warned.len() >= MAX_WARNED {
                warned.clear();
            }
            if !warned.insert(key) {
                return;
            }
        }
        log::warn!(
            target: "socketserver",
            "Possible SECURITY ATTACK detected: {peer} sent an HTTP request to the command \
             server. A web page can make a browser do that; it was refused before anything \
             ran, and the connection closed. (Logged once per address.)"
        );
    }

    fn serve(
        &self,
        conn: &Connection,
        protocol: Protocol,
        line: String,
    ) -> Result<(), CommandError> {
        let argv = exec::argv(&line, &self.config)?;
        let slot = self.slots.take(
            peer_key(conn.peer_addr()),
            self.config.max_commands,
            self.config.commands_per_peer(),
        )?;
        // While it runs, the command's own timeout bounds the connection:
        // output may take as long as the watchdog allows, no longer.
        conn.set_deadline_in(self.config.timeout.saturating_add(exec::HANG_UP));
        let stream = conn.stream();
        // End of stream does not mean the client has gone: `nc -N` and
        // `shutdown(SHUT_WR)` send it once the request is out, and still
        // read the reply. Only a write can tell the two apart (a client
        // that closed its socket answers with a reset), so past end of
        // stream our form sends an empty stdout frame, which clients
        // ignore, at most every PROBE; the next probe after a reset fails
        // and the command is killed. The seed's form has no such frame: a
        // command of a half-closed seed client runs to its end or timeout.
        let end_of_stream = Cell::new(false);
        let last_probe = Cell::new(None::<Instant>);
        let gone = || {
            // A server shutting down ends its commands at once: none
            // outlives it, and the grace period is not spent waiting.
            if conn.server().is_shutdown() {
                return true;
            }
            if !end_of_stream.get() {
                if !stream.peer_closed() {
                    return false;
                }
                end_of_stream.set(true);
            }
            if protocol != Protocol::Framed
                || last_probe.get().is_some_and(|at| at.elapsed() < PROBE)
            {
                return false;
            }
            last_probe.set(Some(Instant::now()));
            write_piece(&mut &*conn, Pipe::Stdout, b"", md5::compute(b"")).is_err()
        };
        // The watchdog's last resort for a client that does not read.
        let hang_up = || {
            let _ = stream.shutdown(Shutdown::Both);
        };
        // Through the connection, not the socket: its deadline applies.
        let mut to_client = conn;
        // Ours: each piece of output leaves as its own frame at once. The
        // seed's: one frame, so the output is gathered first, in memory up
        // to a window and past it in a temporary file.
        let mut spool = SeedSpool::default();
        let ending = exec::run(
            &argv,
            &self.config,
            self.sandbox.as_ref(),
            &gone,
            &hang_up,
            &mut |pipe, piece, md5| match protocol {
                Protocol::Framed => write_piece(&mut to_client, pipe, piece, md5),
                Protocol::Seed => spool.push(pipe, piece),
            },
        )?;
        // Every process of the command is gone: its slot is free for the
        // next one, whether or not this client reads its reply.
        drop(slot);
        if ending.cancelled && conn.server().is_shutdown() {
            conn.set_deadline_in(ERROR_GRACE);
            let _ = write_error(&mut to_client, protocol, &CommandError::ShuttingDown);
            return Err(CommandError::ShuttingDown);
        }
        if ending.cancelled {
            return Err(CommandError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("client left; killed {:?}", argv[0]),
            )));
        }
        // The rest of the reply: past the command's deadline, what is left
        // of the watchdog's grace; else the time a connection may idle.
        let rest = if ending.timed_out {
            exec::HANG_UP
        } else {
            self.config.idle_timeout
        };
        conn.set_deadline_in(rest);
        match protocol {
            Protocol::Framed => write_end(&mut to_client, &ending)?,
            Protocol::Seed => spool.write_to(&mut to_client)?,
        }
        Ok(())
    }
}

impl BaseRequestHandler for CommandHandler {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        // The challenge, the form's first bytes and the whole first request
        // (which proves the token) within one deadline, however they drip.
        let mut waited = self.config.first_request_timeout;
        conn.set_deadline_in(waited);
        // A reply in our form is several frames (output, then the end), so
        // a small one is two small writes: with Nagle on, the second would
        // wait ~40 ms for the first one's delayed ACK.
        if let Some(tcp) = conn.stream().as_tcp() {
            tcp.set_nodelay(true)?;
        }
        // With a token, every connection opens with a fresh challenge.
        let nonce = match self.config.token {
            Some(_) => {
                let nonce = auth::nonce()?;
                auth::write_challenge(conn, &nonce)?;
                Some(nonce)
            }
            None => None,
        };
        let mut first = [0u8; 4];
        let protocol = match peek(conn, &mut first) {
            Ok(0) => return Ok(()),
            Ok(n) => detect(&first[..n]),
            // Unix sockets cannot peek on stable Rust: ours is framed.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Protocol::Framed,
            Err(e) if is_timeout(&e) => {
                return Err(time_out(conn, Protocol::Framed, waited).into());
            }
            Err(e) => return Err(e),
        };
        let mut session = None;
        loop {
            let outcome = match read_request(conn, protocol, self.config.max_request) {
                Ok(None) => return Ok(()),
                Ok(Some(request)) => self
                    .admit(conn, protocol, request, nonce.as_ref(), &mut session)
                    .and_then(|line| self.serve(conn, protocol, line)),
                Err(CommandError::Io(e)) if is_timeout(&e) => {
                    return Err(time_out(conn, protocol, waited).into());
                }
                Err(CommandError::LooksLikeHttp) => {
                    self.warn_http(conn.peer_addr());
                    Err(CommandError::LooksLikeHttp)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                if matches!(e, CommandError::Io(_)) {
                    return Err(e.into());
                }
                // Tell the client what was wrong; then go on if the stream
                // is still in step, or close.
                conn.set_deadline_in(ERROR_GRACE);
                write_error(conn, protocol, &e)?;
                if !e.keeps_connection() {
                    conn.linger_close();
                    return Err(e.into());
                }
            }
            // Between requests a connection may idle, not forever.
            waited = self.config.idle_timeout;
            conn.set_deadline_in(waited);
        }
    }
}

/// Tells a client that took too long so (if it still reads), and returns
/// the error for the server's log. Nothing more is read: no linger.
fn time_out(conn: &mut Connection, protocol: Protocol, waited: Duration) -> CommandError {
    let e = CommandError::TimedOut { waited };
    conn.set_deadline_in(ERROR_GRACE);
    let _ = write_error(conn, protocol, &e);
    e
}

/// Peeks at a connection's first bytes within its deadline. `peek` is a
/// call on the socket itself, which knows nothing of the deadline, so the
/// socket's read timeout is cut to the time left for it and put back.
fn peek(conn: &Connection, buf: &mut [u8]) -> io::Result<usize> {
    let Some(tcp) = conn.stream().as_tcp() else {
        return Err(io::ErrorKind::Unsupported.into());
    };
    let Some(deadline) = conn.deadline() else {
        return tcp.peek(buf);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    let before = tcp.read_timeout()?;
    let cut = before.is_none_or(|t| left < t);
    if cut {
        tcp.set_read_timeout(Some(left))?;
    }
    let peeked = tcp.peek(buf);
    if cut {
        tcp.set_read_timeout(before)?;
    }
    peeked
}

/// How often a command whose client sent end of stream is checked for a
/// reset by an empty frame (our form only).
const PROBE: Duration = Duration::from_millis(250);

/// The command slots: how many run, over all and per address.
#[derive(Debug, Default)]
struct Slots {
    running: AtomicUsize,
    per_peer: Mutex<HashMap<IpAddr, usize>>,
}

impl Slots {
    fn peers(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A poisoned map only means a panic between two plain updates.
        self.per_peer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one of `max` slots, if `peer` holds fewer than `per_peer`.
    fn take(
        &self,
        peer: Option<IpAddr>,
        max: usize,
        per_peer: usize,
    ) -> Result<Slot<'_>, CommandError> {
        let mut peers = self.peers();
        if let Some(key) = peer {
            if peers.get(&key).is_some_and(|&n| n >= per_peer) {
                return Err(CommandError::PeerBusy { max: per_peer });
            }
        }
        if self.running.fetch_add(1, Ordering::SeqCst) >= max {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err(CommandError::Busy { max });
        }
        if let Some(key) = peer {
            *peers.entry(key).or_insert(0) += 1;
        }
        Ok(Slot { slots: self, peer })
    }
}

/// One of the `max_commands` slots, given back when dropped.
struct Slot<'a> {
    slots: &'a Slots,
    peer: Option<IpAddr>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.peer {
            let mut peers = self.slots.peers();
            if let Some(n) = peers.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    peers.remove(&key);
                }
            }
        }
        self.slots.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Binds a threading command server: a thread per connection, at most
/// [`max_clients`](CommandConfig::max_clients) at once and
/// [`max_per_peer`](CommandConfig::max_per_peer) from one address; each
/// connection has [`first_request_timeout`](CommandConfig::first_request_timeout)
/// to deliver its first request and
/// [`idle_timeout`](CommandConfig::idle_timeout) between requests.
///
/// # Errors
///
/// `PermissionDenied` for an address that is not loopback when there is no
/// token and `insecure` is not set: anyone who could reach the port could
/// run commands as this user. Also any error binding, or an allowlist with
/// `shell`.
///
/// ```
/// use socketserver::command::{self, CommandConfig};
/// // Loopback: fine without a token.
/// assert!(command::bind("127.0.0.1:0", CommandConfig::default()).is_ok());
/// // Every interface, no token: refused before anything is bound.
/// let err = command::bind("0.0.0.0:0", CommandConfig::default()).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
/// ```
pub fn bind(
    addr: impl ToSocketAddrs,
    config: CommandConfig,
) -> io::Result<ThreadingTcpServer<CommandHandler>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    check_exposure(&addrs, &config)?;
    let (max_clients, max_per_peer) = (config.max_clients, config.max_per_peer);
    let (reuse_port, trusted) = (config.reuse_port, config.proxy_protocol.clone());
    ThreadingTcpServer::builder(CommandHandler::new(config)?)
        .max_connections(max_clients)
        .max_per_peer(max_per_peer)
        .balanced(reuse_port, trusted)
        .bind(&addrs[..])
}

/// Refuses addresses beyond this machine unless a token guards them or
/// the operator said `insecure`.
fn check_exposure(addrs: &[SocketAddr], config: &CommandConfig) -> io::Result<()> {
    if config.proxy_protocol.is_some() && config.token.is_none() && !config.insecure {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refusing to serve commands behind a load balancer without a token: its \
             clients are remote, whatever address the server listens on; set a token \
             (or, knowing that, insecure)",
        ));
    }
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(open) if config.token.is_none() && !config.insecure => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to serve commands on {open} without a token: anyone who \
                 can reach it could run commands; set a token (or, knowing that, insecure)"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back() {
        let slots = Slots::default();
        let a = slots.take(None, 2, 2).unwrap();
        let _b = slots.take(None, 2, 2).unwrap();
        assert!(matches!(
            slots.take(None, 2, 2),
            Err(CommandError::Busy { max: 2 })
        ));
        drop(a);
        assert!(slots.take(None, 2, 2).is_ok());
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        let slots = Slots::default();
        let (one, two) = ("127.0.0.2".parse().ok(), "127.0.0.3".parse().ok());
        let held: Vec<_> = (0..4).map(|_| slots.take(one, 8, 4).unwrap()).collect();
        assert!(matches!(
            slots.take(one, 8, 4),
            Err(CommandError::PeerBusy { max: 4 })
        ));
        let other = slots.take(two, 8, 4).unwrap();
        assert_eq!(slots.running.load(Ordering::SeqCst), 5);
        drop(held);
        drop(other);
        assert!(
            slots.peers().is_empty(),
            "nothing kept of a peer with no slot"
        );
        assert!(slots.take(one, 8, 4).is_ok());
    }

    #[test]
    fn refuses_open_addresses_without_a_token() {
        // Checked without binding: no test ever listens beyond loopback.
        let open: Vec<SocketAddr> = vec!["0.0.0.0:9999".parse().unwrap()];
        let loopback: Vec<SocketAddr> = vec![
            "127.0.0.1:9999".parse().unwrap(),
            "[::1]:9999".parse().unwrap(),
        ];
        let err = check_exposure(&open, &CommandConfig::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(check_exposure(&open, &CommandConfig::default().token("t")).is_ok());
        let insecure = CommandConfig {
            insecure: true,
            ..CommandConfig::default()
        };
        assert!(check_exposure(&open, &insecure).is_ok());
        assert!(check_exposure(&loopback, &CommandConfig::default()).is_ok());
        // And bind itself says no before it binds anything.
        assert!(bind("0.0.0.0:0", CommandConfig::default()).is_err());
    }
}
