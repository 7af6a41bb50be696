//! A lesson beyond the seed: moving files over the frame, in constant
//! memory, verified, and resumable.
//!
//! Readers of the seed go on to send files with the same frame. The first
//! try puts a whole file in one frame, as the seed does with a command's
//! output. That works, but the frame carries its md5 *before* the body, so
//! the sender must read the file twice (once to hash it, once to send it)
//! and cannot hash while the bytes travel. So a file travels here as a run
//! of frames, one per 1 MiB chunk, each the seed's frame with its own md5,
//! and an end frame with the digest of the whole file:
//!
//! ```text
//! client                                   server
//! {"op":"get","name":"a.iso","offset":0}  ──►
//!                                          ◄──  {"ok":true,"size":2621440,"offset":0,"chunk":1048576}
//!                                          ◄──  {"md5":"…","lenth":1048576}  <1 MiB>
//!                                          ◄──  {"md5":"…","lenth":1048576}  <1 MiB>
//!                                          ◄──  {"md5":"…","lenth":524288}   <512 KiB>
//!                                          ◄──  {"lenth":0,"end":true,"size":2621440,"digest":"…"}
//! ```
//!
//! Every frame also carries the seed's `ver`, `md5` and `lenth`; requests
//! and status frames have empty bodies, and their fields are extra header
//! keys. The sender hashes a chunk while the receiver hashes the one
//! before, so each byte is hashed once on each side, at the same time.
//!
//! * **The digest** of a file is the md5 of its chunks' md5s, as lowercase
//!   hex, one after another (S3 does the same for multipart uploads). It is
//!   as strong as one md5 of the file, costs nothing once the chunks are
//!   hashed, and [`file_digest`] computes it for a file on disk.
//! * **Nothing half-written under the real name.** The receiver writes to
//!   a temporary file and renames it only after every chunk's md5 and the
//!   digest match. A corrupted chunk deletes the temporary file.
//! * **Resume.** A cut `get` leaves `NAME.part`, whole chunks verified on
//!   arrival; the next `get` asks for the rest from that offset, and the
//!   digest it gets at the end covers the whole file, old chunks too.
//! * **Confined names.** A name is a relative path of plain components
//!   inside the served root: `..`, `.`, absolute paths, hidden names
//!   (leading `.`), backslashes, NUL bytes, and symlinks that lead out of
//!   the root are refused (see [`FileError::BadName`]).
//! * **Limits.** Uploads of at most [`FileConfig::max_upload`] bytes, never
//!   over an existing file unless the client asks, refused before their
//!   data when all uploads in flight would declare more than
//!   [`FileConfig::upload_budget`], those from one address more than
//!   [`FileConfig::upload_budget_per_peer`], or leave less free space than
//!   [`FileConfig::free_space_floor`], and ended when a chunk takes over
//!   [`FileConfig::chunk_timeout`] (a client that stalls or drips bytes
//!   gives its share of the budget back; a download the client takes too
//!   slowly ends the same way); a whole request within
//!   [`FileConfig::first_request_timeout`] of the connection and
//!   [`FileConfig::idle_timeout`] of the last reply; at most
//!   [`FileConfig::max_clients`] clients, [`FileConfig::max_per_peer`]
//!   from one address; listings of at most [`MAX_LISTING`]
//!   entries and [`MAX_LISTING_BYTES`] (flagged when cut); names of at
//!   most [`MAX_NAME`] bytes, components of at most 255, of characters
//!   that show safely.
//! * **Temporary files** are `.socketserver-PID-N.upload`, however long
//!   the name, and locked while written; a new server removes the ones
//!   no live upload holds (what a killed server left), and nothing else.
//!
//! Every error leaves as a frame with `"error"` and `"kind"` keys, a
//! request that is not a valid frame too (garbage, a header over 16 KiB,
//! JSON nested too deep); the client turns it back into the same
//! [`FileError`] variant (a refused frame or protocol error arrives as
//! [`FileError::Protocol`]). After one, the connection takes the next
//! request, unless the stream is out of step: then the server sends the
//! error frame, reads what the client still sends for up to a second, and
//! closes.
//!
//! # Example
//!
//! ```
//! use std::thread;
//! use socketserver::files::{self, FileClient, FileConfig};
//!
//! # let dir = std::env::temp_dir().join(format!("files-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let (root, local) = (dir.join("root"), dir.join("local"));
//! # std::fs::create_dir_all(&root)?;
//! # std::fs::create_dir_all(&local)?;
//! let server = files::bind("127.0.0.1:0", FileConfig::new(&root))?;
//! let addr = server.local_addr()?;
//! thread::spawn(move || server.serve_forever());
//!
//! std::fs::write(local.join("notes.txt"), "你好, files")?;
//! let mut client = FileClient::connect(addr)?;
//! client.put(&local.join("notes.txt"), "notes.txt", false, |_, _| {})?;
//! let listing = client.ls("")?;
//! assert_eq!(listing[0].name, "notes.txt");
//! client.get("notes.txt", &local.join("copy.txt"), false, |_, _| {})?;
//! assert_eq!(std::fs::read_to_string(local.join("copy.txt"))?, "你好, files");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod name;
mod pace;
mod server;
mod temp;

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use client::{CLIENT_TIMEOUT, FileClient, Listing, Transfer};
pub use server::{FileHandler, bind};

use crate::frame::{FrameError, FrameLimits, Header, read_frame_into, write_frame_parts};

/// The size of every chunk but a file's last.
pub const CHUNK: usize = 1024 * 1024;
/// The longest name accepted, in bytes.
pub const MAX_NAME: usize = 1024;
/// The longest component of a name (a file or directory name), in bytes,
/// as most filesystems take it.
pub(crate) const NAME_MAX: usize = 255;
/// The most entries a listing returns.
pub const MAX_LISTING: usize = 10_000;
/// The largest listing, encoded: the server stops adding entries before
/// it, and the client accepts no more. 10,000 entries of 255-byte names,
/// every byte escaped, fit.
pub const MAX_LISTING_BYTES: usize = 8 << 20;
/// The largest upload accepted, unless set: 4 GiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 4 << 30;
/// The most bytes all uploads in flight may declare together, unless set:
/// 16 GiB, four uploads of the largest size.
pub const DEFAULT_UPLOAD_BUDGET: u64 = 16 << 30;
/// The most bytes the uploads in flight from one IP address may declare
/// together, unless set: 4 GiB, a quarter of the default budget (one
/// upload of the largest size), so one address cannot take it all.
pub const DEFAULT_UPLOAD_BUDGET_PER_PEER: u64 = 4 << 30;
/// The free space an upload must leave on the root's filesystem, unless
/// set: 1 GiB.
pub const DEFAULT_FREE_SPACE_FLOOR: u64 = 1 << 30;

/// How long an upload may take over each [`CHUNK`], unless set: 60 s
/// (at least 17 KiB/s).
pub const DEFAULT_CHUNK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a new connection has to deliver its first request, unless
/// set: 10 s.
pub const DEFAULT_FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may take to deliver its next request, unless
/// set: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most clients [`bind`] serves at once, unless set: 512.
pub const DEFAULT_MAX_CLIENTS: usize = 512;
/// The most clients [`bind`] serves at once from one IP address, unless
/// set: 8.
pub const DEFAULT_MAX_PER_PEER: usize = 8;

/// What a file server serves, and how much it accepts.
///
/// ```
/// use socketserver::files::FileConfig;
/// let config = FileConfig::new("/srv/files")
///     .max_upload(1 << 20)
///     .upload_budget(8 << 20)
///     .upload_budget_per_peer(2 << 20)
///     .free_space_floor(256 << 20)
///     .chunk_timeout(std::time::Duration::from_secs(30))
///     .read_only(true);
/// assert_eq!(config.max_upload, 1 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileConfig {
    /// The directory served; names are confined to it.
    pub root: PathBuf,
    /// The largest upload accepted, in bytes.
    pub max_upload: u64,
    /// The most bytes the uploads in flight may declare together: an
    /// upload that would take the sum past it is refused with
    /// [`FileError::OverBudget`] before any of its data is accepted.
    pub upload_budget: u64,
    /// The most bytes the uploads in flight from one IP address (an IPv6
    /// /64, as [`max_per_peer`](FileConfig::max_per_peer) counts) may
    /// declare together: its share of [`upload_budget`](FileConfig::upload_budget).
    /// An upload that would take its address past it is refused with
    /// [`FileError::OverPeerBudget`] before any of its data is accepted.
    /// Unix-domain clients have no address and only the whole budget.
    pub upload_budget_per_peer: u64,
    /// The free space (for unprivileged users, from `statvfs`) an upload
    /// must leave on its filesystem, counting the bytes still due from
    /// the uploads in flight: one that would eat into it is refused with
    /// [`FileError::NoSpace`] before any of its data is accepted. Unix
    /// only; elsewhere not checked.
    pub free_space_floor: u64,
    /// How long a transfer may take over each [`CHUNK`] of its bytes,
    /// however they drip: an upload's arriving, a download's (or a
    /// listing's) being taken by the client. Past it the transfer ends
    /// with a timeout, and an upload gives its share of the budget back.
    /// The server's read and write timeouts still bound each wait.
    pub chunk_timeout: Duration,
    /// How long a new connection has to deliver its whole first request,
    /// however slowly its bytes drip; past it, an error frame and the
    /// close.
    pub first_request_timeout: Duration,
    /// How long a connection may take, after a reply, to deliver its whole
    /// next request.
    pub idle_timeout: Duration,
    /// The most clients [`bind`] serves at once, over all addresses (each
    /// a thread; clamped to the descriptor limit, see
    /// [`Builder::max_connections`](crate::server::Builder::max_connections)).
    pub max_clients: usize,
    /// The most clients [`bind`] serves at once from one IP address (an
    /// IPv6 /64); over it a connection is closed as soon as it is
    /// accepted. `None` caps nothing.
    pub max_per_peer: Option<usize>,
    /// Refuse every upload.
    pub read_only: bool,
    /// Share the port with other processes that set it (`SO_REUSEPORT`,
    /// [`Builder::reuse_port`](crate::server::Builder::reuse_port)).
    pub reuse_port: bool,
    /// Take HAProxy's PROXY protocol from these balancers only
    /// ([`Builder::proxy_protocol`](crate::server::Builder::proxy_protocol)):
    /// the client's address, not the balancer's, is then what the
    /// per-address caps and budgets count.
    pub proxy_protocol: Option<Vec<crate::server::proxy::Network>>,
}

impl FileConfig {
    /// Serves `root`, uploads up to [`DEFAULT_MAX_UPLOAD`] allowed.
    pub fn new(root: impl Into<PathBuf>) -> FileConfig {
        FileConfig {
            root: root.into(),
            max_upload: DEFAULT_MAX_UPLOAD,
            upload_budget: DEFAULT_UPLOAD_BUDGET,
            upload_budget_per_peer: DEFAULT_UPLOAD_BUDGET_PER_PEER,
            free_space_floor: DEFAULT_FREE_SPACE_FLOOR,
            chunk_timeout: DEFAULT_CHUNK_TIMEOUT,
            first_request_timeout: DEFAULT_FIRST_REQUEST_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_clients: DEFAULT_MAX_CLIENTS,
            max_per_peer: Some(DEFAULT_MAX_PER_PEER),
            read_only: false,
            reuse_port: false,
            proxy_protocol: None,
        }
    }

    /// Serves behind these load balancers, which send the PROXY protocol
    /// (see [`FileConfig::proxy_protocol`]).
    pub fn proxy_protocol(
        mut self,
        trusted: impl IntoIterator<Item = crate::server::proxy::Network>,
    ) -> FileConfig {
        self.proxy_protocol = Some(trusted.into_iter().collect());
        self
    }

    /// Sets the largest upload accepted.
    pub fn max_upload(mut self, bytes: u64) -> FileConfig {
        self.max_upload = bytes;
        self
    }

    /// Sets the most bytes the uploads in flight may declare together.
    pub fn upload_budget(mut self, bytes: u64) -> FileConfig {
        self.upload_budget = bytes;
        self
    }

    /// Sets the most bytes the uploads in flight from one address may
    /// declare together (lower it with the budget: a share over the whole
    /// budget limits nothing more).
    pub fn upload_budget_per_peer(mut self, bytes: u64) -> FileConfig {
        self.upload_budget_per_peer = bytes;
        self
    }

    /// Sets the free space an upload must leave (0: fill the disk).
    pub fn free_space_floor(mut self, bytes: u64) -> FileConfig {
        self.free_space_floor = bytes;
        self
    }

    /// Sets how long a transfer may take over each [`CHUNK`] (a zero
    /// duration is taken as one millisecond).
    pub fn chunk_timeout(mut self, timeout: Duration) -> FileConfig {
        self.chunk_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets how long a new connection has to deliver its first request (a
    /// zero duration is taken as one millisecond).
    pub fn first_request_timeout(mut self, timeout: Duration) -> FileConfig {
        self.first_request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets how long a connection may wait between requests (a zero
    /// duration is taken as one millisecond).
    pub fn idle_timeout(mut self, timeout: Duration) -> FileConfig {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the most clients served at once (at least one).
    pub fn max_clients(mut self, max: usize) -> FileConfig {
        self.max_clients = max.max(1);
        self
    }

    /// Sets the most clients served at once from one address; `None`
    /// turns the cap off.
    pub fn max_per_peer(mut self, max: Option<usize>) -> FileConfig {
        self.max_per_peer = max.map(|m| m.max(1));
        self
    }

    /// Refuses uploads (`true`) or accepts them.
    pub fn read_only(mut self, read_only: bool) -> FileConfig {
        self.read_only = read_only;
        self
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The name, relative to the directory listed.
    pub name: String,
    /// The size in bytes (0 for a directory).
    pub size: u64,
    /// Whether it is a directory.
    pub dir: bool,
}

/// A listing's JSON body, entry by entry, and whether entries were left
/// out to keep it within `max_bytes`.
fn encode_listing(entries: &[Entry], max_bytes: usize) -> (Vec<u8>, bool) {
    let mut body = b"[".to_vec();
    for (i, entry) in entries.iter().enumerate() {
        let json = serde_json::to_vec(entry).unwrap_or_default();
        // The separator before it and the `]` after it must fit too.
        if body.len() + json.len() + 2 > max_bytes {
            return (finish_listing(body), true);
        }
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&json);
    }
    (finish_listing(body), false)
}

fn finish_listing(mut body: Vec<u8>) -> Vec<u8> {
    body.push(b']');
    body
}

/// Why a file request failed, on either side of the connection.
///
/// The server sends its error's [`code`](FileError::code) and message; the
/// client turns them back into the same variant, so both sides match on
/// one type.
///
/// ```
/// use socketserver::files::FileError;
/// let e = FileError::BadName { name: "../etc/passwd".into(), why: "`..` leaves the root".into() };
/// assert_eq!(e.to_string(), "refused name \"../etc/passwd\": `..` leaves the root");
/// assert_eq!(e.code(), "bad_name");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing a file or the connection failed.
    Io(io::Error),
    /// A frame was malformed, cut short, or failed its md5 check.
    Frame(FrameError),
    /// The name is not a plain relative path inside the root.
    BadName {
        /// The name as asked for.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// No such file (or it is not a regular file).
    NotFound(String),
    /// The destination exists and overwriting was not asked for.
    AlreadyExists(String),
    /// An upload larger than the server accepts.
    TooLarge {
        /// The upload's size.
        size: u64,
        /// The most the server accepts.
        max: u64,
    },
    /// The uploads in flight have declared so much that this one would
    /// pass the server's budget: try again later.
    OverBudget {
        /// The upload's size.
        size: u64,
        /// What the uploads in flight declared together.
        in_flight: u64,
        /// The server's budget.
        budget: u64,
    },
    /// The uploads in flight from this client's address have declared so
    /// much that this one would pass the address's share of the budget:
    /// try again when one of them is done.
    OverPeerBudget {
        /// The upload's size.
        size: u64,
        /// What the uploads in flight from this address declared together.
        in_flight: u64,
        /// The share of one address.
        budget: u64,
    },
    /// The upload would leave less free space than the server keeps.
    NoSpace {
        /// The upload's size.
        size: u64,
        /// The free space, less what uploads in flight still have to write.
        available: u64,
        /// The free space the server keeps.
        floor: u64,
    },
    /// The server refuses uploads.
    ReadOnly,
    /// A resume offset past the end of the file or not on a chunk boundary.
    BadOffset {
        /// The offset asked for.
        offset: u64,
        /// The file's size.
        size: u64,
    },
    /// Every chunk arrived intact, but the whole did not match: the file
    /// changed between a cut transfer and its resume, or the sender lied.
    DigestMismatch {
        /// The digest the sender announced.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The file changed while it was being sent (its size, modification
    /// or change time moved): the bytes sent may mix two versions of it,
    /// so the transfer was stopped with this error in place of its next
    /// frame, and the receiver keeps nothing. Try again.
    Changed(String),
    /// The peer broke the protocol: an unexpected frame or field.
    Protocol(String),
    /// The server reported an error this client does not know.
    Server(String),
}

impl FileError {
    /// The short code that names this error on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::Io(_) => "io",
            FileError::Frame(_) => "frame",
            FileError::BadName { .. } => "bad_name",
            FileError::NotFound(_) => "not_found",
            FileError::AlreadyExists(_) => "exists",
            FileError::TooLarge { .. } => "too_large",
            FileError::OverBudget { .. } => "over_budget",
            FileError::OverPeerBudget { .. } => "over_peer_budget",
            FileError::NoSpace { .. } => "no_space",
            FileError::ReadOnly => "read_only",
            FileError::BadOffset { .. } => "bad_offset",
            FileError::DigestMismatch { .. } => "digest_mismatch",
            FileError::Changed(_) => "changed",
            FileError::Protocol(_) => "protocol",
            FileError::Server(_) => "server",
        }
    }

    /// Rebuilds an error from a server's error frame: its fields where the
    /// variant has them, else its message.
    fn from_wire(header: &Header) -> FileError {
        let field = |key: &str| header.extra.get(key);
        let text = |key: &str| field(key).and_then(Value::as_str).unwrap_or("").to_owned();
        let number = |key: &str| field(key).and_then(Value::as_u64).unwrap_or(0);
        match field("kind").and_then(Value::as_str).unwrap_or("") {
            "bad_name" => FileError::BadName {
                name: text("name"),
                why: text("why"),
            },
            "not_found" => FileError::NotFound(text("name")),
            "changed" => FileError::Changed(text("name")),
            "exists" => FileError::AlreadyExists(text("name")),
            "too_large" => FileError::TooLarge {
                size: number("size"),
                max: number("max"),
            },
            "over_budget" => FileError::OverBudget {
                size: number("size"),
                in_flight: number("in_flight"),
                budget: number("budget"),
            },
            "over_peer_budget" => FileError::OverPeerBudget {
                size: number("size"),
                in_flight: number("in_flight"),
                budget: number("budget"),
            },
            "no_space" => FileError::NoSpace {
                size: number("size"),
                available: number("available"),
                floor: number("floor"),
            },
            "read_only" => FileError::ReadOnly,
            "bad_offset" => FileError::BadOffset {
                offset: number("offset"),
                size: number("size"),
            },
            "digest_mismatch" => FileError::DigestMismatch {
                expected: text("expected"),
                actual: text("actual"),
            },
            // The server could not read or follow the request.
            "frame" | "protocol" => {
                FileError::Protocol(format!("the server refused the request: {}", text("error")))
            }
            _ => FileError::Server(text("error")),
        }
    }

    /// The error frame for this error: its code, message and fields.
    fn to_wire(&self) -> Header {
        let header = Header::for_body(b"")
            .with("error", self.to_string())
            .with("kind", self.code());
        match self {
            FileError::BadName { name, why } => {
                header.with("name", name.as_str()).with("why", why.as_str())
            }
            FileError::NotFound(name)
            | FileError::AlreadyExists(name)
            | FileError::Changed(name) => header.with("name", name.as_str()),
            FileError::TooLarge { size, max } => header.with("size", *size).with("max", *max),
            FileError::OverBudget {
                size,
                in_flight,
                budget,
            }
            | FileError::OverPeerBudget {
                size,
                in_flight,
                budget,
            } => header
                .with("size", *size)
                .with("in_flight", *in_flight)
                .with("budget", *budget),
            FileError::NoSpace {
                size,
                available,
                floor,
            } => header
                .with("size", *size)
                .with("available", *available)
                .with("floor", *floor),
            FileError::BadOffset { offset, size } => {
                header.with("offset", *offset).with("size", *size)
            }
            FileError::DigestMismatch { expected, actual } => header
                .with("expected", expected.as_str())
                .with("actual", actual.as_str()),
            _ => header,
        }
    }

    /// Whether the connection can take another request after this error:
    /// not after a broken frame or stream, whose next byte is unknown.
    fn keeps_connection(&self) -> bool {
        !matches!(
            self,
            FileError::Io(_) | FileError::Frame(_) | FileError::Protocol(_)
        )
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(e) => write!(f, "I/O error: {e}"),
            FileError::Frame(e) => write!(f, "bad frame: {e}"),
            FileError::BadName { name, why } => write!(f, "refused name {name:?}: {why}"),
            FileError::NotFound(name) => write!(f, "no such file: {name:?}"),
            FileError::AlreadyExists(name) => {
                write!(
                    f,
                    "{name:?} already exists, and overwriting was not asked for"
                )
            }
            FileError::TooLarge { size, max } => {
                write!(
                    f,
                    "upload of {size} bytes is over the server's limit of {max}"
                )
            }
            FileError::OverBudget {
                size,
                in_flight,
                budget,
            } => write!(
                f,
                "upload of {size} bytes refused for now: uploads in flight declare \
                 {in_flight} bytes of the server's budget of {budget}"
            ),
            FileError::OverPeerBudget {
                size,
                in_flight,
                budget,
            } => write!(
                f,
                "upload of {size} bytes refused for now: uploads in flight from your \
                 address declare {in_flight} bytes of its share of {budget}"
            ),
            FileError::NoSpace {
                size,
                available,
                floor,
            } => write!(
                f,
                "upload of {size} bytes refused: {available} bytes free, and the server \
                 keeps {floor} free"
            ),
            FileError::ReadOnly => write!(f, "this server accepts no uploads"),
            FileError::BadOffset { offset, size } => write!(
                f,
                "cannot resume at byte {offset} of a {size}-byte file \
                 (past its end or not on a {CHUNK}-byte chunk boundary)"
            ),
            FileError::DigestMismatch { expected, actual } => write!(
                f,
                "the file's digest is {actual}, not {expected} as announced: \
                 it changed during the transfer"
            ),
            FileError::Changed(name) => write!(
                f,
                "{name:?} changed while it was being sent: stopped, nothing kept \
                 (it would have mixed two versions); try again"
            ),
            FileError::Protocol(why) => write!(f, "protocol error: {why}"),
            FileError::Server(message) => write!(f, "server error: {message}"),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Io(e) => Some(e),
            FileError::Frame(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> FileError {
        FileError::Io(e)
    }
}

impl From<FrameError> for FileError {
    fn from(e: FrameError) -> FileError {
        match e {
            FrameError::Io(e) => FileError::Io(e),
            other => FileError::Frame(other),
        }
    }
}

/// The digest of a file as its chunks go by: the md5 of their md5s.
#[derive(Clone)]
struct Digest(md5::Context);

impl Digest {
    fn new() -> Digest {
        Digest(md5::Context::new())
    }

    fn add(&mut self, chunk_md5: &str) {
        self.0.consume(chunk_md5.as_bytes());
    }

    fn hex(self) -> String {
        format!("{:x}", self.0.finalize())
    }
}

/// Reads up to one chunk: fewer bytes only at the end of `source`.
fn read_chunk(source: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    buf.clear();
    source.take(want as u64).read_to_end(buf)?;
    Ok(())
}

/// The digest of the first `len` bytes of `file`, read from where it is.
fn digest_prefix(file: &mut impl Read, len: u64) -> io::Result<Digest> {
    let mut digest = Digest::new();
    let mut buf = Vec::with_capacity(CHUNK);
    let mut left = len;
    while left > 0 {
        read_chunk(file, &mut buf, CHUNK.min(left as usize))?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        digest.add(&format!("{:x}", md5::compute(&buf)));
        left -= buf.len() as u64;
    }
    Ok(digest)
}

/// The digest of a file on disk, as a transfer's end frame carries it.
///
/// ```
/// let path = std::env::temp_dir().join(format!("digest-doc-{}", std::process::id()));
/// std::fs::write(&path, b"hello")?;
/// // One chunk: the md5 of the hex md5 of "hello".
/// let expected = format!("{:x}", md5::compute(b"5d41402abc4b2a76b9719d911017c592"));
/// assert_eq!(socketserver::files::file_digest(&path)?, expected);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn file_digest(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    Ok(digest_prefix(&mut file, len)?.hex())
}

/// What a file looked like when a transfer began. A file rewritten in
/// place while it is read would go out as its old head and its new tail,
/// a file that never existed, with a digest that matches it (the sender
/// hashes what it read): so the sender compares this after every chunk it
/// reads. The descriptor's own metadata (`fstat`), not the path's: a
/// file replaced by a rename is still read whole from the old inode,
/// which is a consistent version, so only a change to the file being read
/// counts.
///
/// Timestamps have the clock's tick (a few ms on Linux): a rewrite
/// within the same tick as the write before it, keeping the size, is not
/// seen. Sending from a snapshot (a reflink copy) would close that gap
/// where the filesystem offers one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// The inode and its change time (Unix): a `chmod` or a hard link
    /// moves it too, which costs a retry, never a torn file.
    #[cfg(unix)]
    inode: (u64, u64, i64, i64),
}

impl Version {
    fn of(file: &File) -> io::Result<Version> {
        let meta = file.metadata()?;
        Ok(Version {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
            },
        })
    }

    /// `Ok` if `file` is still this version; else [`FileError::Changed`]
    /// naming it `name`.
    fn still(&self, file: &File, name: &str) -> Result<(), FileError> {
        if Version::of(file)? == *self {
            Ok(())
        } else {
            Err(FileError::Changed(name.to_owned()))
        }
    }
}

/// Sends `len` bytes of `source` as chunk frames, then the end frame;
/// `digest` already holds the chunks before (on a resume). Calls
/// `unchanged` after reading each chunk, before sending it, and once more
/// before the end frame: an error there (the file changed) ends the
/// transfer before another byte of it leaves. Calls `progress` with the
/// bytes sent after each chunk.
fn send_chunks(
    w: &mut impl Write,
    source: &mut impl Read,
    len: u64,
    mut digest: Digest,
    unchanged: &mut dyn FnMut() -> Result<(), FileError>,
    progress: &mut dyn FnMut(u64),
) -> Result<(), FileError> {
    let mut buf = Vec::with_capacity(CHUNK);
    let mut sent = 0;
    while sent < len {
        read_chunk(source, &mut buf, CHUNK.min((len - sent) as usize))?;
        unchanged()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being sent",
            )
            .into());
        }
        let header = Header::for_body(&buf);
        digest.add(&header.md5);
        write_frame_parts(w, &header, &[&buf])?;
        sent += buf.len() as u64;
        progress(sent);
    }
    // Covers a resume with nothing left to send, whose digest came from
    // the part hashed before the status.
    unchanged()?;
    let end = Header::for_body(b"")
        .with("end", true)
        .with("size", len)
        .with("digest", digest.hex());
    Ok(write_frame_parts(w, &end, &[])?)
}

/// Receives chunk frames into `sink` until the end frame; exactly `len`
/// bytes must come, in whole chunks but for the last. Only verified
/// chunks reach `sink`. Returns the digest the sender announced and the
/// one computed, for the caller to compare.
fn receive_chunks(
    r: &mut impl Read,
    sink: &mut impl Write,
    len: u64,
    mut digest: Digest,
    progress: &mut dyn FnMut(u64),
) -> Result<(String, String), FileError> {
    let limits = FrameLimits::new().max_body_len(CHUNK as u64);
    let mut buf = Vec::with_capacity(CHUNK);
    let mut received = 0u64;
    loop {
        let header = read_frame_into(r, &limits, &mut buf)?
            .ok_or_else(|| FileError::Protocol("the connection ended inside a file".into()))?;
        if header.extra.contains_key("error") {
            return Err(FileError::from_wire(&header));
        }
        if header.extra.get("end") == Some(&Value::Bool(true)) {
            if received != len {
                return Err(FileError::Protocol(format!(
                    "the file ended after {received} of {len} bytes"
                )));
            }
            let announced = header.extra.get("digest").and_then(Value::as_str);
            let announced = announced
                .ok_or_else(|| FileError::Protocol("an end frame without a digest".into()))?;
            return Ok((announced.to_owned(), digest.hex()));
        }
        let expected = CHUNK.min((len - received.min(len)) as usize);
        if buf.len() != expected || expected == 0 {
            return Err(FileError::Protocol(format!(
                "a chunk of {} bytes where {expected} were due",
                buf.len()
            )));
        }
        sink.write_all(&buf)?;
        digest.add(&header.md5);
        received += buf.len() as u64;
        progress(received);
    }
}

/// A request's or status frame's field, or a protocol error naming it.
fn field<'h>(header: &'h Header, key: &str) -> Result<&'h Value, FileError> {
    header
        .extra
        .get(key)
        .ok_or_else(|| FileError::Protocol(format!("missing field {key:?}")))
}

/// A whole-number field.
fn number(header: &Header, key: &str) -> Result<u64, FileError> {
    field(header, key)?
        .as_u64()
        .ok_or_else(|| FileError::Protocol(format!("{key:?} is not a whole number")))
}

#[cfg(test)]
mod tests {
    use super::{Entry, encode_listing};

    #[test]
    fn a_listing_stops_before_its_byte_cap_and_says_so() {
        let entries: Vec<Entry> = (0..100)
            .map(|i| Entry {
                name: format!("\"{i:03}\""),
                size: i,
                dir: false,
            })
            .collect();
        let (whole, truncated) = encode_listing(&entries, usize::MAX);
        assert!(!truncated);
        assert_eq!(
            serde_json::from_slice::<Vec<Entry>>(&whole).unwrap(),
            entries
        );
        for cap in [2, 40, 41, 1000, whole.len() - 1, whole.len()] {
            let (body, truncated) = encode_listing(&entries, cap);
            assert!(body.len() <= cap, "{cap}: {}", body.len());
            let back: Vec<Entry> = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, entries[..back.len()]);
            assert_eq!(truncated, back.len() < entries.len(), "{cap}");
        }
        assert_eq!(encode_listing(&[], 2), (b"[]".to_vec(), false));
    }
}
