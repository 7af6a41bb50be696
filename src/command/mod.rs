//! The seed's last lesson: a remote command service on the frame, made safe.
//!
//! The seed's server reads a command with one `recv(1024)`, runs it with
//! `shell=True`, and sends the output back in a frame; its client is a
//! `>>>` prompt. This module serves that protocol unchanged, so the seed's
//! client works against our server and our client against the seed's, and
//! fixes what the seed gets wrong:
//!
//! * **It deadlocks on large output.** The seed reads stderr to its end
//!   before reading stdout; a command that writes more than a pipe holds
//!   (64 KiB) to stdout blocks forever. Here both pipes are read at once,
//!   and our form streams the output rather than gathering it.
//! * **It stalls ~40 ms per reply.** Three small `send`s per frame meet
//!   Nagle's algorithm and delayed ACK. Here a reply is one write.
//! * **Its client is quadratic.** `data_buffers += recv(1024)` copies the
//!   whole buffer on every read: 10 MB takes seconds. [`Client`] reads a
//!   reply into one buffer.
//! * **It runs anything for anyone.** Here the server binds loopback unless
//!   told otherwise, and any other address needs a token
//!   ([`CommandConfig::token`]), proved without crossing the wire, by the
//!   client for every request and by the server in return (`auth`).
//!   A request that looks like HTTP is refused before anything runs: a web
//!   page can make a browser send one to any port on the machine, and
//!   with the seed's `shell=True` `GET /;touch$IFS/tmp/x; HTTP/1.1` is a
//!   command (`request`). Without an allowlist the service is still remote code
//!   execution as the server's user for anyone who may connect: "no shell"
//!   only means `;` and `|` are not special, and `sh -c '...'` is just
//!   another program. An allowlist of whole command lines
//!   ([`CommandConfig::allow`]) is what narrows it.
//! * **Anyone can hold its door.** The seed's server serves one client at
//!   a time, so one connection that sends nothing locks everyone out.
//!   Here each connection has a thread, a new one has
//!   [`CommandConfig::first_request_timeout`] to deliver its whole first
//!   request (and prove the token) and [`CommandConfig::idle_timeout`]
//!   between requests, however slowly it drips bytes; one address may
//!   hold [`CommandConfig::max_per_peer`] connections and run
//!   [`CommandConfig::max_commands_per_peer`] commands (half the slots),
//!   all together [`CommandConfig::max_clients`]. Before a client has
//!   proved the token, its request header is read into one fixed shape of
//!   at most [`MAX_REQUEST_HEADER`] bytes: it costs the server at most
//!   about twice what it sent.
//! * **Its commands escape.** Here every process a command starts
//!   (background jobs, `nohup`, `setsid`, double forks, a process that
//!   joins another group) ends when the command ends, at a wall-clock
//!   deadline whatever the client does, and when the server stops.
//!   On Linux the kernel guarantees it: each command runs in a PID
//!   namespace of its own (`sandbox`), which ends as a whole, also when the
//!   server dies (SIGKILL included); elsewhere, or where the system allows
//!   no namespace, a scan of `/proc` finds and kills them (`contain`), and
//!   a server killed with SIGKILL leaves them running. See [`Containment`].
//!   Nothing of the server's (threads, descriptors, a slot under the cap)
//!   outlives the command.
//!
//! # The two request forms, on one port
//!
//! The seed's request is the command's raw bytes, unframed. That is its own
//! sticky-packet hazard: two commands sent back to back can arrive as one
//! (`lspwd`), and a long one can arrive in two. Our client frames its
//! requests instead, and the server tells the forms apart by the first four
//! bytes of a connection:
//!
//! ```text
//! framed:  40 00 00 00 {"ver":"1","md5":...,"lenth":5}               ls -l
//!          ^^^^^^^^^^^ header length: a small little-endian number, so
//!                      bytes 2 and 3 are zero
//! seed:    6c 73 20 2d 6c                                          (ls -l)
//!          printable text, which never contains a zero byte
//! ```
//!
//! A framed reply streams: each piece of output leaves as a frame of its
//! own (`"stream":"stdout"` or `"stderr"`) as soon as the command writes
//! it, and a closing frame (`"end":true`) carries the exit status and
//! whether the command timed out or its output was truncated. Server and
//! client hash different frames at the same time, the server holds only a
//! few pieces at once however large the output, and the client sees output
//! while the command still runs. A seed reply keeps the seed's rule: one
//! frame whose body is stderr if there is any, else stdout, else `ok`,
//! under exactly the seed's three header keys. Its header needs the body's
//! length and md5 first, so the output is gathered: at most
//! [`SEED_WINDOW`] in memory, the rest in an unlinked temporary file.
//!
//! With a token, the server opens every connection with a challenge frame
//! and answers the first request with a proof frame (`auth`, protocol
//! version [`PROTOCOL`]); the seed's client, which cannot answer, prints
//! the challenge's note and gets an `unauthorized` error for its first
//! command, then the connection closes. Without a token nothing is sent
//! first, so the seed's client works unchanged.
//!
//! # Example
//!
//! ```
//! use std::thread;
//! use socketserver::command::{self, Client, CommandConfig, Protocol};
//!
//! let server = command::bind("127.0.0.1:0", CommandConfig::default())?;
//! let addr = server.local_addr()?;
//! thread::spawn(move || server.serve_forever());
//!
//! let mut client = Client::connect(addr, Protocol::Framed)?;
//! let reply = client.run("echo hello")?;
//! assert_eq!(reply.stdout, b"hello\n");
//! assert_eq!(reply.exit, Some(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod allow;
mod auth;
mod client;
mod contain;
mod exec;
mod reply;
mod request;
mod sandbox;
mod server;
mod warm;

use std::fmt;
use std::io;
use std::time::Duration;

pub use auth::PROTOCOL;
pub use client::{Client, Protocol};
pub use exec::TOKEN_ENV;
pub use reply::{Reply, SEED_WINDOW};
pub use request::MAX_HEADER as MAX_REQUEST_HEADER;
pub use server::{CommandHandler, bind};

use crate::frame::FrameError;

/// The fuzz target's way in: a connection's first bytes through form
/// detection, request reading, the challenge answer's check, argument
/// splitting and the allowlist, as the server does.
/// Built only for fuzzing (`--cfg fuzzing`, which cargo-fuzz sets).
#[cfg(fuzzing)]
#[doc(hidden)]
pub fn fuzz_request(data: &[u8]) {
    let protocol = request::detect(data);
    let config = CommandConfig::default().allow(["echo *", "ls", "uname -a"]);
    let mut session = auth::Session::new("token", [0u8; 32], [1u8; 32]);
    let mut input = data;
    for _ in 0..16 {
        match request::read_request(&mut input, protocol, 4096) {
            Ok(Some(req)) => {
                if let Some(answer) = &req.auth {
                    let _ = answer.client_nonce.as_deref().map(auth::nonce_from_hex);
                    let _ = session.check(&req.body, &answer.tag);
                }
                if let Ok(line) = request::line(req.body) {
                    let _ = exec::argv(&line, &config);
                }
            }
            Ok(None) => break,
            Err(e) if e.keeps_connection() => {}
            Err(_) => break,
        }
    }
}

/// What a command server allows, and its limits.
///
/// ```
/// use std::time::Duration;
/// use socketserver::command::CommandConfig;
///
/// let config = CommandConfig::default()
///     .allow(["ls", "echo *", "uname -a"])
///     .timeout(Duration::from_secs(5))
///     .token("s3cret");
/// assert_eq!(config.max_output, 16 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommandConfig {
    /// Run command lines with `sh -c` instead of splitting them into
    /// arguments. Off by default: with a shell, `ls; rm -rf ~` is two
    /// commands, and a client can run anything the server's user can.
    pub shell: bool,
    /// If set, the only command lines that may run, as sudoers writes
    /// them: `uname -a` allows exactly that; a bare `ls` allows `ls` with
    /// no arguments; a trailing `*` (`df -h *`) allows any further
    /// arguments, which trusts the program with them (`find *` is
    /// `find -exec`, `env *` is anything). A program is matched as typed:
    /// `/usr/bin/uname` runs only if listed as that path. Without an
    /// allowlist, any client that may connect runs anything this user can.
    pub allow: Option<Vec<String>>,
    /// How long a command may run before it and every process it started
    /// are killed, whether or not its client reads. A handler still
    /// blocked sending output a second past it hangs up. Default 10 s.
    pub timeout: Duration,
    /// The most output (stdout and stderr together) kept per command;
    /// past it the command is killed and its reply says `truncated`.
    /// Default 16 MiB.
    pub max_output: usize,
    /// The most commands running at once, over all clients; past it a
    /// request is answered with a "busy" error. Default 8.
    pub max_commands: usize,
    /// The most commands running at once for one IP address (an IPv6
    /// /64), so that one address cannot take every slot; past it a request
    /// is answered with a "busy" error. `None` (the default): half of
    /// [`max_commands`](Self::max_commands), at least one.
    /// `Some(usize::MAX)` caps nothing but `max_commands`.
    pub max_commands_per_peer: Option<usize>,
    /// The longest request accepted, in bytes. Default 64 KiB.
    pub max_request: usize,
    /// How long a new connection has to deliver its whole first request
    /// (with a token, the one that answers the challenge), from the moment
    /// its handler starts, however slowly its bytes drip. Past it the
    /// connection gets a `timed out` error and is closed. Default 10 s.
    pub first_request_timeout: Duration,
    /// How long a connection may take, once a reply has gone, to deliver
    /// its whole next request; and how long the rest of a reply (the seed
    /// form's one frame, our form's end frame) may take to leave once its
    /// command has ended. Default 60 s. While a command runs, its own
    /// [`timeout`](Self::timeout) bounds the connection instead.
    pub idle_timeout: Duration,
    /// The most clients connected at once, over all addresses ([`bind`]
    /// clamps it to the descriptor limit, see
    /// [`Builder::max_connections`](crate::server::Builder::max_connections)).
    /// Each is a thread (most of its stack never touched) and a
    /// descriptor; an unauthenticated one holds them for at most
    /// `first_request_timeout`. Default 512.
    pub max_clients: usize,
    /// The most clients connected at once from one IP address (an IPv6
    /// /64); a connection over it is closed as soon as it is accepted.
    /// `None` caps nothing. Default `Some(8)`.
    pub max_per_peer: Option<usize>,
    /// The shared secret a client must prove it knows, and the server
    /// proves in return (HMAC-SHA256 over both sides' nonces and each
    /// request, protocol version [`PROTOCOL`]; the token itself never
    /// crosses the wire).
    /// Required to listen on an address other than loopback, unless
    /// `insecure` is set; with a token, the seed's unframed requests
    /// (which cannot answer the challenge) are refused. Must not be empty.
    /// On Linux, a handler with a token makes the process non-dumpable
    /// (`PR_SET_DUMPABLE` 0: no core dumps, and its `/proc` files become
    /// root's), so that a command running as the same user cannot read the
    /// token from the server's memory or environment.
    pub token: Option<String>,
    /// Listen on a non-loopback address without a token: anyone who can
    /// reach the port can run commands.
    pub insecure: bool,
    /// For the scan ([`Containment::Scan`], or `Auto` where no namespace
    /// can be had): make the whole process a child subreaper (Linux) when
    /// the handler is made, so a command's processes that leave their parent
    /// (`setsid`, double forks) are adopted by the server and can be
    /// found and killed. Process-wide and lasting: orphans of the
    /// embedding program's own children are adopted too (read
    /// [`kill_unclaimed_orphans`](CommandConfig::kill_unclaimed_orphans)
    /// for what happens to them). Default on; off, a
    /// command's escaped processes are still found by their marker, but
    /// not those that also cleared their environment and pipes.
    pub subreaper: bool,
    /// For the scan, with [`subreaper`](CommandConfig::subreaper) on
    /// (Linux): kill every
    /// process the server adopted that no running command claims and that
    /// is not a command's own main process, with everything below it, at
    /// every command's end and in every scan (100 ms) while commands run;
    /// and reap every such zombie. That is what catches a process that
    /// clears its environment, closes the command's pipes and leaves its
    /// group and parent between two scans (`env -i setsid -f ...`). It
    /// applies to orphans of the embedding program's own children too,
    /// which the subreaper adopts, and to any child of the program outside
    /// the program's own process group (one it spawned with a group or
    /// session of its own): turn this off if the program runs such
    /// children beside a command server. Children in the program's own
    /// group are never touched. Default on; off, only processes
    /// attributed to a command are killed and reaped (the old behaviour),
    /// and a traceless escapee lives on, a zombie once it dies.
    pub kill_unclaimed_orphans: bool,
    /// How a command's processes are made to end with it: a PID namespace
    /// of its own, which the kernel ends as a whole, where the system
    /// allows one; else the scan ([`subreaper`](Self::subreaper),
    /// [`kill_unclaimed_orphans`](Self::kill_unclaimed_orphans)). Default
    /// [`Containment::Auto`].
    pub containment: Containment,
    /// Share the port with other processes that set it (`SO_REUSEPORT`,
    /// [`Builder::reuse_port`](crate::server::Builder::reuse_port)).
    pub reuse_port: bool,
    /// Take HAProxy's PROXY protocol from these balancers only
    /// ([`Builder::proxy_protocol`](crate::server::Builder::proxy_protocol)):
    /// the client's address, not the balancer's, is then what the
    /// per-address caps and command slots count. Behind a balancer the
    /// clients are remote whatever address the server listens on, so
    /// [`bind`] requires a token with it (or `insecure`).
    pub proxy_protocol: Option<Vec<crate::server::proxy::Network>>,
}

/// How a command server makes every process a command starts end when the
/// command ends. [`CommandHandler::containment`] says which is in force.
///
/// ```
/// use socketserver::command::{CommandConfig, CommandHandler, Containment};
///
/// let handler = CommandHandler::new(CommandConfig::default())?;
/// // Never `Auto`: what the system allowed.
/// assert_ne!(handler.containment(), Containment::Auto);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Containment {
    /// A PID namespace where the system allows one, else the scan.
    #[default]
    Auto,
    /// Each command in a PID namespace of its own (Linux; inside a user
    /// namespace of its own too, a root server's included, where the
    /// system allows one): when the
    /// command's main process ends, the kernel ends every process in the
    /// namespace, however it left its parent, group or session, and none
    /// can leave the namespace. If the server dies, SIGKILL included, its
    /// commands' namespaces end with it. [`CommandHandler::new`] fails
    /// where the system allows no such namespace.
    Namespace,
    /// Each command in a session of its own, its processes found by
    /// looking in `/proc` and killed at its end (see
    /// [`CommandConfig::subreaper`]). What leaves no trace between two
    /// looks can escape; what outlives a server killed with SIGKILL is not
    /// ended. Where `/proc` is missing, only the process group holds.
    Scan,
}

impl Default for CommandConfig {
    fn default() -> CommandConfig {
        CommandConfig {
            shell: false,
            allow: None,
            timeout: Duration::from_secs(10),
            max_output: 16 << 20,
            max_commands: 8,
            max_commands_per_peer: None,
            max_request: 64 << 10,
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_clients: 512,
            max_per_peer: Some(8),
            token: None,
            insecure: false,
            subreaper: true,
            kill_unclaimed_orphans: true,
            containment: Containment::Auto,
            reuse_port: false,
            proxy_protocol: None,
        }
    }
}

impl CommandConfig {
    /// Allows only these command lines (see [`CommandConfig::allow`]
    /// for the syntax).
    pub fn allow<S: Into<String>>(mut self, programs: impl IntoIterator<Item = S>) -> Self {
        self.allow = Some(programs.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the per-command timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the output cap, in bytes.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// Sets how long a new connection has to deliver its first request
    /// (a zero duration is taken as one millisecond).
    pub fn first_request_timeout(mut self, timeout: Duration) -> Self {
        self.first_request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets how long a connection may wait between requests (a zero
    /// duration is taken as one millisecond).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the most clients connected at once (at least one).
    pub fn max_clients(mut self, max: usize) -> Self {
        self.max_clients = max.max(1);
        self
    }

    /// Sets the most clients connected at once from one address; `None`
    /// turns the cap off.
    pub fn max_per_peer(mut self, max: Option<usize>) -> Self {
        self.max_per_peer = max.map(|m| m.max(1));
        self
    }

    /// Sets the most commands one address may run at once (at least one;
    /// see [`CommandConfig::max_commands_per_peer`]).
    ///
    /// ```
    /// use socketserver::command::CommandConfig;
    /// let config = CommandConfig::default();
    /// assert_eq!(config.commands_per_peer(), 4); // half of 8
    /// assert_eq!(config.max_commands_per_peer(6).commands_per_peer(), 6);
    /// ```
    pub fn max_commands_per_peer(mut self, max: usize) -> Self {
        self.max_commands_per_peer = Some(max.max(1));
        self
    }

    /// The per-address command cap in force: the one set, or half of
    /// [`max_commands`](Self::max_commands) (at least one).
    pub fn commands_per_peer(&self) -> usize {
        self.max_commands_per_peer
            .unwrap_or(self.max_commands / 2)
            .max(1)
    }

    /// Requires clients to prove they know this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Serves behind these load balancers, which send the PROXY protocol
    /// (see [`CommandConfig::proxy_protocol`]).
    pub fn proxy_protocol(
        mut self,
        trusted: impl IntoIterator<Item = crate::server::proxy::Network>,
    ) -> Self {
        self.proxy_protocol = Some(trusted.into_iter().collect());
        self
    }

    /// Chooses how commands are contained (see [`Containment`]).
    pub fn containment(mut self, containment: Containment) -> Self {
        self.containment = containment;
        self
    }

    /// Runs command lines through `sh -c`. Read [`CommandConfig::shell`]
    /// first.
    pub fn shell(mut self, shell: bool) -> Self {
        self.shell = shell;
        self
    }
}

/// Everything that can go wrong with one command request.
///
/// ```
/// use socketserver::command::CommandError;
/// let e = CommandError::NotAllowed("rm -rf /".into());
/// assert_eq!(e.to_string(), "\"rm -rf /\": not on this server's allowlist");
/// assert!(e.keeps_connection()); // the next request can follow
/// assert!(!CommandError::Unauthorized.keeps_connection());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CommandError {
    /// The connection failed.
    Io(io::Error),
    /// A framed request or reply was malformed.
    Frame(FrameError),
    /// The request was over [`CommandConfig::max_request`].
    RequestTooLong {
        /// The limit in force.
        max: usize,
    },
    /// The command was empty (or only spaces).
    Empty,
    /// The command was not UTF-8.
    NotUtf8,
    /// The command line had an unclosed quote.
    UnbalancedQuotes,
    /// No program of that name could be found.
    UnknownProgram(String),
    /// The command line is not on the server's allowlist.
    NotAllowed(String),
    /// The answer to the server's challenge was missing or wrong, or a
    /// token is required and the seed's unframed form cannot answer.
    Unauthorized,
    /// [`CommandConfig::max_commands`] commands are running already.
    Busy {
        /// The limit in force.
        max: usize,
    },
    /// This client's address runs
    /// [`CommandConfig::max_commands_per_peer`] commands already.
    PeerBusy {
        /// The limit in force.
        max: usize,
    },
    /// The request looks like HTTP (a request line, a `Host:` or other
    /// header line, CR LF line ends): a web page made a browser send it.
    /// Refused before anything runs; the connection closes.
    LooksLikeHttp,
    /// The two sides speak different versions of the authentication
    /// protocol ([`PROTOCOL`]).
    ProtocolVersion {
        /// The version this side speaks.
        ours: u32,
        /// The version the peer speaks (1: before mutual authentication).
        theirs: u32,
    },
    /// The server did not prove it holds the token: an impostor, or a
    /// relay that changed the request. Its reply is not read.
    ServerUnproven,
    /// The client did not deliver a whole request in the time it had
    /// ([`CommandConfig::first_request_timeout`] or
    /// [`CommandConfig::idle_timeout`]); the connection closes.
    TimedOut {
        /// The time it had.
        waited: Duration,
    },
    /// The server answered with an error of its own.
    Server(String),
    /// The server is shutting down: the command was killed (with every
    /// process it started) and the connection closes.
    ShuttingDown,
}

impl CommandError {
    /// Whether the connection is still in step after this error (the next
    /// request can follow) or must be closed.
    pub fn keeps_connection(&self) -> bool {
        matches!(
            self,
            CommandError::Empty
                | CommandError::NotUtf8
                | CommandError::UnbalancedQuotes
                | CommandError::UnknownProgram(_)
                | CommandError::NotAllowed(_)
                | CommandError::Busy { .. }
                | CommandError::PeerBusy { .. }
                | CommandError::Server(_)
        )
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Io(e) => write!(f, "connection error: {e}"),
            CommandError::Frame(e) => write!(f, "bad frame: {e}"),
            CommandError::RequestTooLong { max } => {
                write!(f, "request is over the limit of {max} bytes")
            }
            CommandError::Empty => f.write_str("empty command"),
            CommandError::NotUtf8 => f.write_str("command is not UTF-8"),
            CommandError::UnbalancedQuotes => f.write_str("command has an unclosed quote"),
            CommandError::UnknownProgram(p) => write!(f, "{p}: no such program"),
            CommandError::NotAllowed(line) => {
                write!(f, "{line:?}: not on this server's allowlist")
            }
            CommandError::Unauthorized => {
                f.write_str("unauthorized: this server needs its token, proved in a framed request")
            }
            CommandError::Busy { max } => {
                write!(f, "busy: {max} commands are running already, try again")
            }
            CommandError::TimedOut { waited } => {
                write!(f, "timed out: no whole request within {waited:?}")
            }
            CommandError::PeerBusy { max } => write!(
                f,
                "busy: {max} commands from your address are running already (the most \
                 one address may run at once), try again"
            ),
            CommandError::LooksLikeHttp => f.write_str(
                "this is a command server, not an HTTP server: refused (a web page may have \
                 sent this through a browser)",
            ),
            CommandError::ProtocolVersion { ours, theirs } => write!(
                f,
                "command protocol version {theirs} is not spoken here: this side speaks \
                 version {ours} (mutual, request-bound authentication); upgrade the older side"
            ),
            CommandError::ServerUnproven => f.write_str(
                "the server did not prove it holds the token (an impostor, or a relay that \
                 changed the request): not trusted",
            ),
            CommandError::Server(msg) => write!(f, "server error: {msg}"),
            CommandError::ShuttingDown => {
                f.write_str("the server is shutting down: the command was stopped")
            }
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Io(e) => Some(e),
            CommandError::Frame(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for CommandError {
    fn from(e: io::Error) -> CommandError {
        CommandError::Io(e)
    }
}

impl From<FrameError> for CommandError {
    fn from(e: FrameError) -> CommandError {
        match e {
            FrameError::Io(e) => CommandError::Io(e),
            other => CommandError::Frame(other),
        }
    }
}

impl From<CommandError> for io::Error {
    fn from(e: CommandError) -> io::Error {
        match e {
            CommandError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
