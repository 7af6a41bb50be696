//! The command client: our framed form by default, the seed's raw form for
//! the seed's server.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::auth::{self, PROTOCOL, Session};
use super::{CommandError, Reply};
use crate::frame::{Header, write_frame_with};

/// Which request form a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Requests are frames too: they can answer the server's challenge, and
    /// replies keep stdout and stderr apart with the exit status. Our
    /// server's preferred form.
    Framed,
    /// The seed's form: the raw command, one `send`, and a reply body that
    /// is stderr, else stdout, else `ok`, with no exit status. For the
    /// seed's Python server. It cannot authenticate.
    Seed,
}

/// The largest reply a client accepts unless told otherwise: 256 MiB.
pub const DEFAULT_MAX_REPLY: u64 = 256 << 20;

/// How long a client with a token waits for the server's challenge.
const CHALLENGE_WAIT: Duration = Duration::from_secs(5);

/// A connection to a command server.
///
/// ```
/// use socketserver::command::{self, Client, CommandConfig, Protocol};
///
/// let server = command::bind("127.0.0.1:0", CommandConfig::default().token("s3cret"))?;
/// let addr = server.local_addr()?;
/// std::thread::spawn(move || server.serve_forever());
///
/// let mut client = Client::connect(addr, Protocol::Framed)?.with_token("s3cret");
/// let reply = client.run("echo hello")?;
/// assert_eq!((reply.stdout.as_slice(), reply.exit), (&b"hello\n"[..], Some(0)));
/// assert!(client.run("no-such-program").is_err()); // an error reply...
/// assert_eq!(client.run("echo again")?.stdout, b"again\n"); // ...and the connection goes on
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    protocol: Protocol,
    token: Option<String>,
    /// Both nonces, once the challenge is answered: every request's tag
    /// is made from them.
    session: Option<Session>,
    max_reply: u64,
}

impl Client {
    /// Connects to a command server.
    ///
    /// # Errors
    ///
    /// If the server cannot be reached.
    pub fn connect(addr: impl ToSocketAddrs, protocol: Protocol) -> io::Result<Client> {
        Ok(Client {
            stream: TcpStream::connect(addr)?,
            protocol,
            token: None,
            session: None,
            max_reply: DEFAULT_MAX_REPLY,
        })
    }

    /// Proves this token to the server, and makes the server prove it too:
    /// every request carries an HMAC-SHA256 over both sides' nonces, its
    /// number and its own bytes, and the server answers the first with a
    /// proof of its own, checked before any output is read (protocol
    /// version [`PROTOCOL`]). The token itself is never sent. Framed form
    /// only.
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// Accepts replies up to this many bytes.
    pub fn max_reply(mut self, bytes: u64) -> Client {
        self.max_reply = bytes;
        self
    }

    /// Runs one command line on the server and returns its reply. Output is
    /// appended to one buffer per stream as it arrives, in time linear in
    /// its size, and every frame's md5 is checked.
    ///
    /// # Errors
    ///
    /// [`CommandError::Server`] for an error the server reported (unknown
    /// program, not allowed, ...); [`CommandError::Unauthorized`] if the
    /// server wants a token this client does not have;
    /// [`CommandError::ServerUnproven`] if this client has a token and the
    /// server cannot prove it holds it too;
    /// [`CommandError::ProtocolVersion`] for a server of the older
    /// protocol; I/O and frame errors if the server went away, sent no
    /// challenge within 5 s while this client has a token, or sent
    /// something that is not a reply.
    pub fn run(&mut self, line: &str) -> Result<Reply, CommandError> {
        let body = line.as_bytes();
        match self.protocol {
            Protocol::Framed => {
                let mut header = Header::for_body(body);
                let mut first = false;
                if let Some(token) = &self.token {
                    if self.session.is_none() {
                        let server = self.challenge()?;
                        let client = auth::nonce()?;
                        header = header
                            .with("proto", PROTOCOL)
                            .with("cnonce", auth::hex(&client));
                        self.session = Some(Session::new(token, server, client));
                        first = true;
                    }
                }
                if let Some(session) = &mut self.session {
                    header = header.with("auth", session.tag(body));
                }
                write_frame_with(&mut self.stream, &header, body)?;
                if let (true, Some(session)) = (first, &self.session) {
                    self.stream.set_read_timeout(Some(CHALLENGE_WAIT))?;
                    let proved = auth::read_proof(&mut &self.stream, session, body);
                    self.stream.set_read_timeout(None)?;
                    proved.map_err(|e| no_answer(e, "no proof from the server"))?;
                }
            }
            Protocol::Seed => self.stream.write_all(body)?,
        }
        Reply::read(&mut self.stream, self.protocol, self.max_reply)
    }

    /// Reads the challenge the server opened the connection with.
    fn challenge(&self) -> Result<auth::Nonce, CommandError> {
        self.stream.set_read_timeout(Some(CHALLENGE_WAIT))?;
        let nonce = auth::read_challenge(&mut &self.stream).map_err(|e| {
            no_answer(
                e,
                "no challenge from the server: it has no token, or is not a command server",
            )
        });
        self.stream.set_read_timeout(None)?;
        nonce
    }
}

/// A read that timed out waiting for the server, said as what it means.
fn no_answer(e: CommandError, what: &str) -> CommandError {
    match e {
        CommandError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            CommandError::Io(io::Error::new(io::ErrorKind::TimedOut, what.to_owned()))
        }
        other => other,
    }
}
