//! The reply to one command, on the wire and in the client's hands.
//!
//! The server writes a command's output in the form the client asked in;
//! the client reads it back into a [`Reply`]. Both sides live here so they
//! cannot drift apart.
//!
//! In our form a reply is a run of frames, each sent as soon as the output
//! it carries exists, then one closing frame:
//!
//! ```text
//! {"ver":"1","md5":"…","lenth":6,"stream":"stdout"}  hello\n
//! {"ver":"1","md5":"…","lenth":4,"stream":"stderr"}  oops
//! {"ver":"1","md5":"…","lenth":0,"end":true,"exit":0,"signal":null,
//!  "timed_out":false,"truncated":false}
//! ```
//!
//! The seed's form is one frame whose body is stderr if there was any, else
//! stdout, else `ok`: the whole output has to be gathered first, in memory
//! up to a window and past it in a temporary file ([`SeedSpool`]). Its header
//! is exactly the seed's three keys (`ver`, `md5`, `lenth`), because the
//! seed's client prints the whole header: the same transcript against our
//! server as against the seed's. How the command ended is not in it; that
//! is what our form is for.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde_json::Value;

use super::auth::nonce_in;
use super::exec::{Ending, Pipe};
use super::{CommandError, Protocol};
use crate::frame::{
    FrameLimits, Header, read_body_append, read_body_to, read_frame_with, read_header,
    write_frame_from, write_frame_parts,
};

/// What the client gets back for one command.
///
/// See [`Client`](super::Client) for an example.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The command's standard output. In the seed's form, the whole body:
    /// stderr if there was any, else stdout, else `ok`.
    pub stdout: Vec<u8>,
    /// The command's standard error (always empty in the seed's form).
    pub stderr: Vec<u8>,
    /// The exit code, if the command exited (and the server said so).
    pub exit: Option<i32>,
    /// The signal that ended the command, if one did.
    pub signal: Option<i32>,
    /// The command ran past the server's timeout and was killed.
    pub timed_out: bool,
    /// The output passed the server's cap and was cut short.
    pub truncated: bool,
}

fn with_ending(header: Header, ending: &Ending) -> Header {
    header
        .with("exit", ending.exit)
        .with("signal", ending.signal)
        .with("timed_out", ending.timed_out)
        .with("truncated", ending.truncated)
        .with("stragglers", ending.stragglers)
}

/// Sends one piece of output, in our form, the moment it exists.
pub(crate) fn write_piece(
    w: &mut impl Write,
    pipe: Pipe,
    piece: &[u8],
    digest: md5::Digest,
) -> io::Result<()> {
    let stream = match pipe {
        Pipe::Stdout => "stdout",
        Pipe::Stderr => "stderr",
    };
    let header = Header::new(piece.len() as u64, digest).with("stream", stream);
    write_frame_parts(w, &header, &[piece])
}

/// Closes a reply in our form with how the command ended.
pub(crate) fn write_end(w: &mut impl Write, ending: &Ending) -> io::Result<()> {
    write_frame_parts(
        w,
        &with_ending(Header::for_body(b""), ending).with("end", true),
        &[],
    )
}

/// How much of a seed-form reply's output is held in memory, both pipes
/// together; the rest waits in an unlinked temporary file.
///
/// ```
/// assert_eq!(socketserver::command::SEED_WINDOW, 1 << 20);
/// ```
pub const SEED_WINDOW: usize = 1 << 20;

/// A seed-form reply in the making. The seed's frame carries the body's
/// length and md5 before the body, so nothing of it can leave before the
/// command has ended; and a client that never reads would then hold the
/// whole output in the server's memory for as long as the reply may take
/// to leave. So each pipe's output is hashed as it comes, the first
/// [`SEED_WINDOW`] bytes (both pipes together) are kept in memory, and the
/// rest is spooled to a temporary file that has no name (`O_TMPFILE` on
/// Linux; elsewhere created and unlinked at once), which the reply then
/// streams from in 64 KiB steps.
#[derive(Debug, Default)]
pub(crate) struct SeedSpool {
    pipes: [Spooled; 2],
    held: usize,
}

#[derive(Default)]
struct Spooled {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
    md5: md5::Context,
}

impl std::fmt::Debug for Spooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spooled")
            .field("memory", &self.memory.len())
            .field("file", &self.file)
            .field("len", &self.len)
            .finish()
    }
}

impl SeedSpool {
    /// Keeps one piece of output.
    pub(crate) fn push(&mut self, pipe: Pipe, piece: &[u8]) -> io::Result<()> {
        let spooled = &mut self.pipes[pipe as usize];
        spooled.md5.consume(piece);
        spooled.len += piece.len() as u64;
        if spooled.file.is_none() && self.held + piece.len() <= SEED_WINDOW {
            spooled.memory.extend_from_slice(piece);
            self.held += piece.len();
            return Ok(());
        }
        let file = match &mut spooled.file {
            Some(file) => file,
            None => spooled.file.insert(spool_file()?),
        };
        file.write_all(piece)
    }

    /// Sends the reply: stderr if any, else stdout, else `ok`, under the
    /// seed's three header keys and no others.
    pub(crate) fn write_to(self, w: &mut impl Write) -> io::Result<()> {
        let [stdout, stderr] = self.pipes;
        let body = if stderr.len > 0 { stderr } else { stdout };
        if body.len == 0 {
            return write_frame_parts(w, &Header::for_body(b"ok"), &[b"ok"]);
        }
        let header = Header::new(body.len, body.md5.finalize());
        match body.file {
            Some(mut file) => {
                file.seek(SeekFrom::Start(0))?;
                write_frame_from(w, &header, &mut body.memory.chain(file))
            }
            None => write_frame_parts(w, &header, &[&body.memory]),
        }
    }
}

/// A temporary file with no name, readable only by this user.
fn spool_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC;
        if let Ok(fd) = rustix::fs::open(&dir, flags, Mode::RUSR | Mode::WUSR) {
            return Ok(File::from(fd));
        }
        // A file system without O_TMPFILE: the portable way.
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = [0u8; 16];
    getrandom::fill(&mut name).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    let name: String = name.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!(".socketserver-spool-{name}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Sends an error in the form the client asked in: for the seed's client,
/// as a body it prints (under the seed's three keys); for ours, as an
/// `error` key on a closing frame.
pub(crate) fn write_error(
    w: &mut impl Write,
    protocol: Protocol,
    error: &CommandError,
) -> io::Result<()> {
    let message = error.to_string();
    match protocol {
        Protocol::Framed => {
            let header = Header::for_body(b"")
                .with("error", message)
                .with("end", true);
            write_frame_parts(w, &header, &[])
        }
        Protocol::Seed => {
            let body = format!("error: {message}\n");
            write_frame_parts(w, &Header::for_body(body.as_bytes()), &[body.as_bytes()])
        }
    }
}

fn int(header: &Header, key: &str) -> Option<i32> {
    header
        .extra
        .get(key)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

fn flag(header: &Header, key: &str) -> bool {
    header.extra.get(key).and_then(Value::as_bool) == Some(true)
}

fn server_error(header: &Header) -> Option<CommandError> {
    if nonce_in(header).is_some() {
        // A challenge where a reply was expected: a token is needed.
        return Some(CommandError::Unauthorized);
    }
    let message = header.extra.get("error")?.as_str()?;
    Some(CommandError::Server(message.to_owned()))
}

fn closed() -> CommandError {
    CommandError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    ))
}

impl Reply {
    fn ended(mut self, header: &Header) -> Reply {
        self.exit = int(header, "exit");
        self.signal = int(header, "signal");
        self.timed_out = flag(header, "timed_out");
        self.truncated = flag(header, "truncated");
        self
    }

    /// Reads one reply in the given form, taking at most `max` bytes of
    /// output. Every frame's md5 is checked as it arrives.
    pub(crate) fn read(
        r: &mut impl Read,
        protocol: Protocol,
        max: u64,
    ) -> Result<Reply, CommandError> {
        let limits = FrameLimits::new().max_body_len(max);
        if protocol == Protocol::Seed {
            let frame = read_frame_with(r, &limits)?.ok_or_else(closed)?;
            if let Some(e) = server_error(&frame.header) {
                return Err(e);
            }
            // The seed's form says nothing of how the command ended.
            return Ok(Reply {
                stdout: frame.body,
                ..Reply::default()
            });
        }
        let mut reply = Reply::default();
        loop {
            let header = read_header(r, &limits)?.ok_or_else(closed)?;
            let so_far = (reply.stdout.len() + reply.stderr.len()) as u64;
            let sink = match header.extra.get("stream").and_then(Value::as_str) {
                Some("stdout") => &mut reply.stdout,
                Some("stderr") => &mut reply.stderr,
                _ => {
                    read_body_to(r, &header, &mut io::sink())?;
                    if let Some(e) = server_error(&header) {
                        return Err(e);
                    }
                    if flag(&header, "end") {
                        return Ok(reply.ended(&header));
                    }
                    return Err(CommandError::Server(
                        "a reply frame of no known kind".into(),
                    ));
                }
            };
            if so_far + header.len > max {
                return Err(CommandError::Server(format!("reply is over {max} bytes")));
            }
            read_body_append(r, &header, sink)?;
        }
    }
}
