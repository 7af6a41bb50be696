//! The command server: a [`BaseRequestHandler`] that reads requests in
//! either form, checks them, runs them, and replies; and [`bind`], which
//! refuses to expose it unsafely.

use std::cell::Cell;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::allow::Allowlist;
use super::exec::{self, Pipe};
use super::reply::{write_end, write_error, write_piece, write_seed};
use super::request::{Request, detect, read_request};
use super::sandbox::{self, Plan};
use super::{CommandConfig, CommandError, Containment, Protocol};
use super::{auth, contain};
use crate::handler::{BaseRequestHandler, Connection, is_timeout};
use crate::server::ThreadingTcpServer;

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
    running: AtomicUsize,
    /// How commands run in PID namespaces; `None`: the scan.
    sandbox: Option<Plan>,
}

impl CommandHandler {
    /// A handler with this configuration. With
    /// [`subreaper`](CommandConfig::subreaper) on (the default), this makes
    /// the whole process a child subreaper on Linux: read that field's
    /// docs if your program starts processes of its own.
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
                Ok(plan) => Some(plan),
                Err(why) if wanted == Containment::Namespace => {
                    return Err(io::Error::new(io::ErrorKind::Unsupported, why));
                }
                Err(why) => {
                    log::warn!(target: "socketserver", "commands are contained by the scan only: {why}");
                    None
                }
            },
        };
        match &sandbox {
            Some(plan) => log::info!(
                target: "socketserver",
                "commands run in PID namespaces{}: every process a command starts ends with it",
                if plan.user_namespace() { " (in user namespaces)" } else { "" }
            ),
            // The scan needs the orphans adopted; a namespace adopts its own.
            None if config.subreaper => contain::become_subreaper()?,
            None => {}
        }
        Ok(CommandHandler {
            config,
            running: AtomicUsize::new(0),
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
        self.running.load(Ordering::SeqCst)
    }

    /// Checks a connection's first request against its challenge: the
    /// rest of the connection is trusted once it passes.
    fn authenticate(
        &self,
        protocol: Protocol,
        request: &Request,
        nonce: &[u8],
    ) -> Result<(), CommandError> {
        let Some(token) = &self.config.token else {
            return Ok(());
        };
        match request.auth.as_deref() {
            Some(answer) if protocol == Protocol::Framed => {
                if auth::verify(token, nonce, answer) {
                    return Ok(());
                }
                // A wrong answer: make guessing slow.
                std::thread::sleep(auth::PENALTY);
                Err(CommandError::Unauthorized)
            }
            _ => Err(CommandError::Unauthorized),
        }
    }

    fn serve(
        &self,
        conn: &Connection,
        protocol: Protocol,
        request: Request,
    ) -> Result<(), CommandError> {
        let argv = exec::argv(&request.line, &self.config)?;
        let slot = Slot::take(&self.running, self.config.max_commands)?;
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
        // seed's: one frame, so the whole output is gathered first.
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let ending = exec::run(
            &argv,
            &self.config,
            self.sandbox.as_ref(),
            &gone,
            &hang_up,
            &mut |pipe, piece, md5| {
                match (protocol, pipe) {
                    (Protocol::Framed, _) => return write_piece(&mut to_client, pipe, piece, md5),
                    (Protocol::Seed, Pipe::Stdout) => stdout.extend_from_slice(piece),
                    (Protocol::Seed, Pipe::Stderr) => stderr.extend_from_slice(piece),
                }
                Ok(())
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
            Protocol::Seed => write_seed(&mut to_client, &stdout, &stderr)?,
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
        let mut challenge = nonce.as_ref();
        loop {
            let outcome = match read_request(conn, protocol, self.config.max_request) {
                Ok(None) => return Ok(()),
                Ok(Some(request)) => match challenge {
                    Some(nonce) => self.authenticate(protocol, &request, nonce).and_then(|()| {
                        challenge = None;
                        self.serve(conn, protocol, request)
                    }),
                    None => self.serve(conn, protocol, request),
                },
                Err(CommandError::Io(e)) if is_timeout(&e) => {
                    return Err(time_out(conn, protocol, waited).into());
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

/// One of the `max_commands` slots, given back when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    fn take(running: &'a AtomicUsize, max: usize) -> Result<Slot<'a>, CommandError> {
        if running.fetch_add(1, Ordering::SeqCst) >= max {
            running.fetch_sub(1, Ordering::SeqCst);
            return Err(CommandError::Busy { max });
        }
        Ok(Slot(running))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
    ThreadingTcpServer::builder(CommandHandler::new(config)?)
        .max_connections(max_clients)
        .max_per_peer(max_per_peer)
        .bind(&addrs[..])
}

/// Refuses addresses beyond this machine unless a token guards them or
/// the operator said `insecure`.
fn check_exposure(addrs: &[SocketAddr], config: &CommandConfig) -> io::Result<()> {
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
        let running = AtomicUsize::new(0);
        let a = Slot::take(&running, 2).unwrap();
        let _b = Slot::take(&running, 2).unwrap();
        assert!(matches!(
            Slot::take(&running, 2),
            Err(CommandError::Busy { max: 2 })
        ));
        drop(a);
        assert!(Slot::take(&running, 2).is_ok());
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
