//! The frame: the seed's cure for 粘包 (sticky packets) and 分包 (fragmentation).
//!
//! TCP carries a stream of bytes, not messages. Two `send`s of `hello` and
//! `world` may reach the peer as one read of `helloworld` (粘包, sticky
//! packets), and one large `send` may arrive in many short reads (分包,
//! fragmentation). A receiver can only find message boundaries if the sender
//! writes them into the stream, and this module writes them the way the
//! seed's Python does, so our frames and the seed's are interchangeable.
//!
//! # Wire format
//!
//! ```text
//! +-------------------+-------------------------------+----------------+
//! | header length H   | header: H bytes of UTF-8 JSON | body: N bytes  |
//! | 4 bytes, i32, LE  | {"ver":"1","md5":"<32 hex>",  |                |
//! | (struct.pack 'i') |  "lenth":N}                   |                |
//! +-------------------+-------------------------------+----------------+
//! ```
//!
//! * The header length is what Python's `struct.pack('i', H)` writes on every
//!   machine we target: a little-endian `i32`.
//! * The header is a JSON object. `ver` is `"1"`, `md5` is the hex MD5 digest
//!   of the body, and `lenth` (sic: the misspelling is the wire format) is the
//!   body length N. Readers also accept `length`. Any other keys are kept in
//!   [`Header::extra`]; the command service uses them for exit codes.
//! * The body is N raw bytes: text, binary, anything.
//!
//! The body `hello` as the seed's Python writes it (`json.dumps` puts a space
//! after every `:` and `,`; our writer is compact, and both are read):
//!
//! ```
//! let wire: &[u8] = b"\x43\x00\x00\x00\
//!     {\"ver\": \"1\", \"md5\": \"5d41402abc4b2a76b9719d911017c592\", \"lenth\": 5}\
//!     hello";
//! // 0x43 = 67, the length of the JSON header in bytes.
//! let mut input = wire;
//! let frame = socketserver::frame::read_frame(&mut input)?.expect("one frame");
//! assert_eq!(frame.body, b"hello");
//! assert_eq!(frame.header.len, 5);
//! // After the last frame, a clean end of stream reads as `None`.
//! assert!(socketserver::frame::read_frame(&mut input)?.is_none());
//! # Ok::<(), socketserver::frame::FrameError>(())
//! ```
//!
//! # One write per frame: the 40 ms lesson
//!
//! The seed sends a frame with three `send` calls: 4 bytes, the header, the
//! body. With Nagle's algorithm on (the default), the kernel holds back the
//! second small segment until the first is acknowledged, and the receiver
//! delays its ACK by up to 40 ms hoping to piggyback it on a reply. Every
//! reply then costs ~40 ms of idle waiting. [`write_frame`] hands the kernel
//! the whole frame in one write (one buffer for small frames, one vectored
//! write for large ones), so there is never a small segment waiting on an ACK.
//!
//! # Limits
//!
//! A length read from the wire is a claim, not a fact. [`FrameLimits`] caps the
//! header (default 64 KiB) and the body (default 64 MiB), and both caps are
//! checked before anything is allocated; a body is read in chunks, so memory
//! grows with the bytes that actually arrive, never with the bytes promised.
//!
//! # Streaming
//!
//! For bodies too big for memory, [`read_header`] + [`read_body_to`] move a body
//! into any [`Write`] (a file, a socket, a hasher) while hashing it, and
//! [`write_frame_from`] sends one from any [`Read`]. Because the header carries
//! the digest *before* the body, a sender must hash the whole body before
//! sending its first byte: [`Header::for_seekable`] hashes a file and rewinds
//! it, [`Header::for_reader`] hashes a stream you can open twice, and
//! [`Header::new`] takes a digest you already have.

use std::fmt;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

/// The JSON crate that [`Header::extra`] is made of, re-exported so a
/// program fills and reads a header's extra keys with the very version this
/// crate uses, and adds no dependency of its own for it: `json!` builds a
/// nested value, and anything [`Value`] converts from goes in as it is.
///
/// ```
/// use socketserver::frame::serde_json::json;
/// use socketserver::frame::{Header, Map, Value, read_frame, write_frame_with};
///
/// let body = b"{}";
/// let header = Header::for_body(body)
///     .with("op", "get")
///     .with("keys", json!(["a", "b"]));
/// let mut wire = Vec::new();
/// write_frame_with(&mut wire, &header, body)?;
///
/// let frame = read_frame(&mut &wire[..])?.expect("a frame");
/// let extra: &Map<String, Value> = &frame.header.extra;
/// assert_eq!(extra["op"], "get");
/// assert_eq!(extra["keys"][1], "b");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use serde_json;
/// The types of [`Header::extra`]: a JSON object ([`Map`]) of JSON values
/// ([`Value`]), from the re-exported [`serde_json`].
pub use serde_json::{Map, Value};

/// The only header version the seed defines, and the one we write.
pub const VERSION: &str = "1";

/// Bodies up to this size are copied next to their header and sent with one
/// `write_all`, one write even on writers without vectored writes (where
/// Nagle's algorithm would punish a second small one); larger ones go out
/// as one vectored write, without the copy.
const COALESCE_LIMIT: usize = 16 * 1024;

/// How much of a body [`read_body_to`] and [`write_frame_from`] hold at once.
const CHUNK: usize = 64 * 1024;

/// How much of a body [`read_frame`] reads before hashing it: small enough
/// to still be in cache, large enough to make few calls.
const HASH_STEP: u64 = 256 * 1024;

/// The JSON header of a frame, with real names for the seed's keys.
///
/// On the wire the fields are `ver`, `md5` and `lenth`; any other key the
/// sender added is kept in `extra`, in the order it arrived.
///
/// ```
/// use socketserver::frame::Header;
/// let header = Header::for_body(b"hello");
/// assert_eq!(header.len, 5);
/// assert_eq!(header.md5, "5d41402abc4b2a76b9719d911017c592");
/// assert_eq!(
///     String::from_utf8(header.to_json())?,
///     r#"{"ver":"1","md5":"5d41402abc4b2a76b9719d911017c592","lenth":5}"#
/// );
/// # Ok::<(), std::string::FromUtf8Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The format version, `ver` on the wire. Always [`VERSION`] in frames
    /// we accept.
    #[serde(rename = "ver")]
    pub version: String,
    /// The lowercase hex MD5 digest of the body.
    pub md5: String,
    /// The body length in bytes: `lenth` on the wire (the seed's spelling),
    /// and `length` is accepted when reading.
    #[serde(rename = "lenth", alias = "length")]
    pub len: u64,
    /// Every other key in the header, kept as the sender wrote it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Header {
    /// The header for a body whose length and MD5 digest are already known.
    ///
    /// ```
    /// use socketserver::frame::Header;
    /// let header = Header::new(5, md5::compute(b"hello"));
    /// assert_eq!(header, Header::for_body(b"hello"));
    /// ```
    pub fn new(len: u64, md5: md5::Digest) -> Header {
        Header {
            version: VERSION.to_owned(),
            md5: format!("{md5:x}"),
            len,
            extra: Map::new(),
        }
    }

    /// The header for a body held in memory.
    ///
    /// ```
    /// let header = socketserver::frame::Header::for_body(b"");
    /// assert_eq!(header.md5, "d41d8cd98f00b204e9800998ecf8427e");
    /// ```
    pub fn for_body(body: &[u8]) -> Header {
        Header::new(body.len() as u64, md5::compute(body))
    }

    /// The header for a body sent in parts, one after the other (see
    /// [`write_frame_parts`]).
    ///
    /// ```
    /// use socketserver::frame::Header;
    /// assert_eq!(Header::for_parts(&[b"hel", b"lo"]), Header::for_body(b"hello"));
    /// ```
    pub fn for_parts(parts: &[&[u8]]) -> Header {
        let mut hasher = md5::Context::new();
        for part in parts {
            hasher.consume(part);
        }
        let len = parts.iter().map(|p| p.len() as u64).sum();
        Header::new(len, hasher.finalize())
    }

    /// Reads `source` to its end and returns the header of what it held.
    ///
    /// The bytes are consumed, so use this on a source you can open again
    /// (a file by name) and pass the second opening to [`write_frame_from`].
    ///
    /// # Errors
    ///
    /// Any error reading `source`.
    ///
    /// ```
    /// let header = socketserver::frame::Header::for_reader(&b"hello"[..])?;
    /// assert_eq!(header.len, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn for_reader(mut source: impl Read) -> io::Result<Header> {
        let mut hasher = md5::Context::new();
        let len = io::copy(&mut source, &mut hasher)?;
        Ok(Header::new(len, hasher.finalize()))
    }

    /// Hashes `source` from its current position to the end, then seeks back
    /// there, ready for [`write_frame_from`].
    ///
    /// # Errors
    ///
    /// Any error reading or seeking `source`.
    ///
    /// ```
    /// use std::io::Cursor;
    /// use socketserver::frame::{Header, read_frame, write_frame_from};
    /// let mut file = Cursor::new(b"a large file".to_vec());
    /// let header = Header::for_seekable(&mut file)?;
    /// let mut wire = Vec::new();
    /// write_frame_from(&mut wire, &header, &mut file)?;
    /// let frame = read_frame(&mut &wire[..])?.expect("a frame");
    /// assert_eq!(frame.body, b"a large file");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_seekable<S: Read + Seek + ?Sized>(source: &mut S) -> io::Result<Header> {
        let start = source.stream_position()?;
        let header = Header::for_reader(&mut *source)?;
        source.seek(SeekFrom::Start(start))?;
        Ok(header)
    }

    /// Adds one extra key to the header (the command service's `exit`, for
    /// example). The seed's keys cannot be replaced this way.
    ///
    /// ```
    /// let header = socketserver::frame::Header::for_body(b"ok").with("exit", 0);
    /// assert_eq!(header.extra["exit"], 0);
    /// ```
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Header {
        if !matches!(key, "ver" | "md5" | "lenth" | "length") {
            self.extra.insert(key.to_owned(), value.into());
        }
        self
    }

    /// The header as compact JSON bytes, exactly as [`write_frame`] sends it.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing string keys and JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The 4-byte length prefix and the JSON header, ready to send.
    fn encode_prefix(&self) -> io::Result<Vec<u8>> {
        let json = self.to_json();
        let len = i32::try_from(json.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame header over i32::MAX bytes",
            )
        })?;
        let mut out = Vec::with_capacity(4 + json.len());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&json);
        Ok(out)
    }
}

/// One frame read whole into memory.
///
/// ```
/// use socketserver::frame::{Header, read_frame, write_frame_with};
/// let mut wire = Vec::new();
/// write_frame_with(&mut wire, &Header::for_body(b"42").with("kind", "answer"), b"42")?;
/// let frame = read_frame(&mut &wire[..])?.expect("a frame");
/// assert_eq!((frame.body.as_slice(), &frame.header.extra["kind"]), (&b"42"[..], &"answer".into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The frame's header, with any extra keys the sender added.
    pub header: Header,
    /// The body, already checked against the header's MD5 digest.
    pub body: Vec<u8>,
}

/// Caps on what a reader accepts, checked before anything is allocated.
///
/// ```
/// use socketserver::frame::{FrameError, FrameLimits, read_frame_with, write_frame};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, &[0u8; 100])?;
/// let strict = FrameLimits::new().max_body_len(10);
/// let err = read_frame_with(&mut &wire[..], &strict).unwrap_err();
/// assert!(matches!(err, FrameError::BodyTooLong { len: 100, max: 10 }));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// The longest JSON header accepted, in bytes. Default 64 KiB.
    pub max_header_len: usize,
    /// The longest body accepted, in bytes. Default 64 MiB.
    pub max_body_len: u64,
}

impl FrameLimits {
    /// The defaults: 64 KiB of header, 64 MiB of body.
    pub const DEFAULT: FrameLimits = FrameLimits {
        max_header_len: 64 * 1024,
        max_body_len: 64 * 1024 * 1024,
    };

    /// The defaults, ready for the setters below.
    pub fn new() -> FrameLimits {
        FrameLimits::DEFAULT
    }

    /// Sets the longest JSON header accepted.
    pub fn max_header_len(mut self, bytes: usize) -> FrameLimits {
        self.max_header_len = bytes;
        self
    }

    /// Sets the longest body accepted. Streaming readers may lift it to
    /// `u64::MAX`, since [`read_body_to`] never holds a whole body.
    pub fn max_body_len(mut self, bytes: u64) -> FrameLimits {
        self.max_body_len = bytes;
        self
    }
}

impl Default for FrameLimits {
    fn default() -> FrameLimits {
        FrameLimits::DEFAULT
    }
}

/// The part of a frame a reader was in when the stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// The 4-byte header length.
    HeaderLength,
    /// The JSON header.
    Header,
    /// The body.
    Body,
}

impl fmt::Display for FramePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramePart::HeaderLength => "header length",
            FramePart::Header => "header",
            FramePart::Body => "body",
        })
    }
}

/// Everything that can go wrong reading a frame.
///
/// Every variant but [`Io`](FrameError::Io) means the peer sent something
/// that is not a valid frame; the stream is then out of step and the only
/// safe thing left is to close it.
///
/// ```
/// use socketserver::frame::{FrameError, read_frame};
/// // Four bytes announcing a 1 GiB header: refused before anything is allocated.
/// let hostile = (1i32 << 30).to_le_bytes();
/// match read_frame(&mut &hostile[..]) {
///     Err(FrameError::HeaderTooLong { len, max }) => assert!(len > max),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum FrameError {
    /// Reading or writing the underlying stream failed. A socket timeout or
    /// a passed connection deadline arrives here as
    /// [`io::ErrorKind::TimedOut`] on every platform (Unix's `WouldBlock`
    /// is turned into it); [`FrameError::is_timeout`] asks.
    Io(io::Error),
    /// The stream ended inside a frame (an end between frames is `Ok(None)`).
    Truncated {
        /// Which part of the frame was being read.
        part: FramePart,
        /// How many bytes that part should have had.
        expected: u64,
        /// How many of them arrived.
        received: u64,
    },
    /// The header length was negative: these four bytes were not a frame.
    NegativeHeaderLength(i32),
    /// The header length was over [`FrameLimits::max_header_len`].
    HeaderTooLong {
        /// The length the peer announced.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The header bytes were not UTF-8.
    HeaderNotUtf8(std::str::Utf8Error),
    /// The header was not a JSON object with `ver`, `md5` and `lenth` of the
    /// right types.
    InvalidHeader(String),
    /// The header's `ver` was not `"1"`.
    UnsupportedVersion(String),
    /// The body length was over [`FrameLimits::max_body_len`].
    BodyTooLong {
        /// The length the peer announced.
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// The body arrived whole but its MD5 digest is not the header's.
    Md5Mismatch {
        /// The digest the header announced.
        expected: String,
        /// The digest of the bytes that arrived.
        actual: String,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "I/O error: {e}"),
            FrameError::Truncated {
                part,
                expected,
                received,
            } => write!(
                f,
                "stream ended inside the frame {part}: {received} of {expected} bytes arrived"
            ),
            FrameError::NegativeHeaderLength(n) => {
                write!(f, "header length {n} is negative: not a frame")
            }
            FrameError::HeaderTooLong { len, max } => {
                write!(f, "header length {len} is over the limit of {max} bytes")
            }
            FrameError::HeaderNotUtf8(e) => write!(f, "header is not UTF-8: {e}"),
            FrameError::InvalidHeader(why) => write!(f, "header is not valid: {why}"),
            FrameError::UnsupportedVersion(v) => {
                write!(f, "header version {v:?} is not supported (only \"1\")")
            }
            FrameError::BodyTooLong { len, max } => {
                write!(f, "body length {len} is over the limit of {max} bytes")
            }
            FrameError::Md5Mismatch { expected, actual } => {
                write!(f, "body md5 is {actual}, header says {expected}")
            }
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            FrameError::HeaderNotUtf8(e) => Some(e),
            _ => None,
        }
    }
}

impl FrameError {
    /// Whether the frame did not arrive in time: the socket's read timeout
    /// or the connection's deadline ran out (the stream is then out of step,
    /// like after any other error).
    ///
    /// ```
    /// use std::io::{self, Read};
    /// use socketserver::frame::{FrameError, read_frame};
    ///
    /// /// A reader whose peer went quiet: Unix says `WouldBlock`.
    /// struct Quiet;
    /// impl Read for Quiet {
    ///     fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
    ///         Err(io::ErrorKind::WouldBlock.into())
    ///     }
    /// }
    /// let err = read_frame(&mut Quiet).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert!(matches!(&err, FrameError::Io(e) if e.kind() == io::ErrorKind::TimedOut));
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, FrameError::Io(e) if crate::handler::is_timeout(e))
    }
}

/// A frame half read cannot be resumed, so a timeout is reported as
/// `TimedOut` on every platform rather than as Unix's `WouldBlock`.
impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> FrameError {
        FrameError::Io(crate::handler::normalize_timeout(e))
    }
}

/// Lets handlers that return `io::Result` use `?` on frame results: I/O
/// errors pass through, protocol errors become `InvalidData`.
impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> io::Error {
        match e {
            FrameError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Writes one frame holding `body`, in a single write.
///
/// # Errors
///
/// Any error from `w`.
///
/// ```
/// let mut wire = Vec::new();
/// socketserver::frame::write_frame(&mut wire, b"hello")?;
/// assert_eq!(&wire[..4], &[62, 0, 0, 0]); // a 62-byte compact header
/// assert!(wire.ends_with(b"\"lenth\":5}hello"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_frame<W: Write + ?Sized>(w: &mut W, body: &[u8]) -> io::Result<()> {
    write_frame_with(w, &Header::for_body(body), body)
}

/// Writes one frame with a header you built, usually
/// `Header::for_body(body).with(key, value)` to add extra keys.
///
/// # Errors
///
/// `InvalidInput` if `header.len` is not `body.len()`; any error from `w`.
///
/// ```
/// use socketserver::frame::{Header, read_frame, write_frame_with};
/// let body = b"total 0\n";
/// let mut wire = Vec::new();
/// write_frame_with(&mut wire, &Header::for_body(body).with("exit", 0), body)?;
/// let frame = read_frame(&mut &wire[..])?.expect("a frame");
/// assert_eq!(frame.header.extra["exit"], 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_frame_with<W: Write + ?Sized>(
    w: &mut W,
    header: &Header,
    body: &[u8],
) -> io::Result<()> {
    write_frame_parts(w, header, &[body])
}

/// Writes one frame whose body is `parts`, one after the other, without
/// first copying them into one buffer: the command service sends stdout
/// and stderr this way.
///
/// # Errors
///
/// `InvalidInput` if `header.len` is not the parts' total length; any error
/// from `w`.
///
/// ```
/// use socketserver::frame::{Header, read_frame, write_frame_parts};
/// let parts: [&[u8]; 2] = [b"out\n", b"err\n"];
/// let mut wire = Vec::new();
/// write_frame_parts(&mut wire, &Header::for_parts(&parts).with("stdout", 4), &parts)?;
/// assert_eq!(read_frame(&mut &wire[..])?.unwrap().body, b"out\nerr\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_frame_parts<W: Write + ?Sized>(
    w: &mut W,
    header: &Header,
    parts: &[&[u8]],
) -> io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if header.len != total as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("header says {} body bytes, body has {total}", header.len),
        ));
    }
    let mut prefix = header.encode_prefix()?;
    if total <= COALESCE_LIMIT {
        for part in parts {
            prefix.extend_from_slice(part);
        }
        w.write_all(&prefix)?;
    } else {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() + 1);
        slices.push(IoSlice::new(&prefix));
        slices.extend(parts.iter().map(|p| IoSlice::new(p)));
        write_all_vectored(w, &mut slices)?;
    }
    w.flush()
}

/// Writes one frame whose body is the next `header.len` bytes of `source`,
/// holding at most 64 KiB of it at a time.
///
/// The digest in `header` is sent as given: build it with
/// [`Header::for_seekable`], [`Header::for_reader`] or [`Header::new`].
///
/// # Errors
///
/// `UnexpectedEof` if `source` ends before `header.len` bytes; any error from
/// `source` or `w`.
pub fn write_frame_from<W: Write + ?Sized, R: Read + ?Sized>(
    w: &mut W,
    header: &Header,
    source: &mut R,
) -> io::Result<()> {
    let prefix = header.encode_prefix()?;
    let mut buf = vec![0u8; chunk_len(header.len)];
    let mut first = true;
    let mut remaining = header.len;
    while remaining > 0 || first {
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = read_some(source, &mut buf[..want])?;
        if n == 0 && remaining > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "source ended {remaining} bytes short of the {} announced",
                    header.len
                ),
            ));
        }
        if first {
            // The prefix and the first chunk leave in one write.
            write_all_vectored(w, &mut [IoSlice::new(&prefix), IoSlice::new(&buf[..n])])?;
            first = false;
        } else {
            w.write_all(&buf[..n])?;
        }
        remaining -= n as u64;
    }
    w.flush()
}

/// Reads one whole frame with the default [`FrameLimits`].
///
/// Returns `Ok(None)` when the stream ends cleanly between frames, the way a
/// peer that has said all it had to say closes its side.
///
/// # Errors
///
/// A [`FrameError`] for I/O failure, a stream that ends inside a frame, or
/// bytes that are not a valid frame. The body is checked against its MD5
/// digest before it is returned.
///
/// ```
/// use socketserver::frame::{read_frame, write_frame};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, b"hello")?;
/// write_frame(&mut wire, b"world")?;
/// // Both frames stuck together in one buffer: 粘包, undone.
/// let mut input = &wire[..];
/// assert_eq!(read_frame(&mut input)?.unwrap().body, b"hello");
/// assert_eq!(read_frame(&mut input)?.unwrap().body, b"world");
/// assert!(read_frame(&mut input)?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_frame<R: Read + ?Sized>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    read_frame_with(r, &FrameLimits::DEFAULT)
}

/// Reads one whole frame under the given limits; see [`read_frame`].
///
/// # Errors
///
/// As [`read_frame`], plus the limit errors.
///
/// ```
/// use socketserver::frame::{FrameLimits, read_frame_with, write_frame};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, &[0u8; 100 << 20])?; // 100 MiB: over the default
/// let limits = FrameLimits::new().max_body_len(128 << 20);
/// assert_eq!(read_frame_with(&mut &wire[..], &limits)?.unwrap().body.len(), 100 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_frame_with<R: Read + ?Sized>(
    r: &mut R,
    limits: &FrameLimits,
) -> Result<Option<Frame>, FrameError> {
    let mut body = Vec::new();
    Ok(read_frame_into(r, limits, &mut body)?.map(|header| Frame { header, body }))
}

/// Reads one whole frame's body into `body` (cleared first, its capacity
/// kept) and returns the header: for a stream of large frames, reusing one
/// buffer saves allocating, and faulting in, fresh memory for each.
///
/// # Errors
///
/// As [`read_frame_with`]. After an error, `body` holds what arrived.
///
/// ```
/// use socketserver::frame::{FrameLimits, read_frame_into, write_frame};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, b"first")?;
/// write_frame(&mut wire, b"second")?;
/// let (mut input, mut body) = (&wire[..], Vec::new());
/// while let Some(header) = read_frame_into(&mut input, &FrameLimits::new(), &mut body)? {
///     assert_eq!(header.len as usize, body.len());
/// }
/// assert_eq!(body, b""); // cleared by the clean end
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_frame_into<R: Read + ?Sized>(
    r: &mut R,
    limits: &FrameLimits,
    body: &mut Vec<u8>,
) -> Result<Option<Header>, FrameError> {
    body.clear();
    let Some(header) = read_header(r, limits)? else {
        return Ok(None);
    };
    read_body_append(r, &header, body)?;
    Ok(Some(header))
}

/// Appends the body announced by `header` to `body`, hashing each step as
/// it lands, and checks the digest at the end; returns the bytes appended.
/// Like [`read_body_to`], without the copy through a buffer of its own.
///
/// # Errors
///
/// As [`read_body_to`]. After an error, `body` holds what arrived.
///
/// ```
/// use socketserver::frame::{FrameLimits, read_body_append, read_header, write_frame};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, b"world")?;
/// let mut input = &wire[..];
/// let header = read_header(&mut input, &FrameLimits::new())?.unwrap();
/// let mut text = b"hello ".to_vec();
/// read_body_append(&mut input, &header, &mut text)?;
/// assert_eq!(text, b"hello world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_body_append<R: Read + ?Sized>(
    r: &mut R,
    header: &Header,
    body: &mut Vec<u8>,
) -> Result<u64, FrameError> {
    // Reserve what a small body needs; a large one grows as bytes arrive
    // (read_to_end at most doubles what it holds), so a lying header cannot
    // make us allocate what was never sent. Bytes go straight into the
    // body: md5 is the only real cost.
    body.reserve(chunk_len(header.len));
    hash_body(r, header, body, true, |_| Ok(()))
}

/// Reads a frame's length prefix and JSON header, leaving the body unread.
///
/// Returns `Ok(None)` on a clean end of stream before the first byte. The
/// version and the body length are checked here, so a caller that goes on
/// with [`read_body_to`] knows the body is within `limits`.
///
/// # Errors
///
/// As [`read_frame`], for the header.
///
/// ```
/// use socketserver::frame::{FrameLimits, read_body_to, read_header, write_frame};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, b"streamed")?;
/// let mut input = &wire[..];
/// let header = read_header(&mut input, &FrameLimits::new())?.expect("a header");
/// let mut sink = Vec::new(); // a file, a socket, any Write
/// read_body_to(&mut input, &header, &mut sink)?;
/// assert_eq!(sink, b"streamed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_header<R: Read + ?Sized>(
    r: &mut R,
    limits: &FrameLimits,
) -> Result<Option<Header>, FrameError> {
    let mut prefix = [0u8; 4];
    match fill(r, &mut prefix)? {
        0 => return Ok(None),
        4 => {}
        n => return Err(truncated(FramePart::HeaderLength, 4, n)),
    }
    let header_len = i32::from_le_bytes(prefix);
    let header_len =
        usize::try_from(header_len).map_err(|_| FrameError::NegativeHeaderLength(header_len))?;
    if header_len > limits.max_header_len {
        return Err(FrameError::HeaderTooLong {
            len: header_len,
            max: limits.max_header_len,
        });
    }
    let mut json = vec![0u8; header_len];
    let n = fill(r, &mut json)?;
    if n < header_len {
        return Err(truncated(FramePart::Header, header_len, n));
    }
    let text = std::str::from_utf8(&json).map_err(FrameError::HeaderNotUtf8)?;
    let header: Header =
        serde_json::from_str(text).map_err(|e| FrameError::InvalidHeader(e.to_string()))?;
    if header.version != VERSION {
        return Err(FrameError::UnsupportedVersion(header.version));
    }
    if header.len > limits.max_body_len {
        return Err(FrameError::BodyTooLong {
            len: header.len,
            max: limits.max_body_len,
        });
    }
    Ok(Some(header))
}

/// Copies the body announced by `header` from `r` into `w`, hashing as it
/// goes, and checks the digest at the end. Returns the bytes copied.
///
/// The bytes reach `w` before the digest is known: treat what `w` received as
/// untrusted until this returns `Ok` (write to a temporary file, rename after).
///
/// # Errors
///
/// [`FrameError::Truncated`] if the stream ends early,
/// [`FrameError::Md5Mismatch`] if the digest differs, and I/O errors from
/// either side.
///
/// See [`read_header`] for an example.
pub fn read_body_to<R: Read + ?Sized, W: Write + ?Sized>(
    r: &mut R,
    header: &Header,
    w: &mut W,
) -> Result<u64, FrameError> {
    let mut buf = Vec::with_capacity(chunk_len(header.len));
    hash_body(r, header, &mut buf, false, |step| w.write_all(step))
}

/// The one read-and-hash loop under every body reader: reads the body
/// announced by `header` in steps, each hashed as it lands (while it is in
/// cache, and while the sender is still sending) and handed to `sink`, and
/// checks the digest at the end. With `keep`, the steps stay in `buf`, one
/// after another ([`HASH_STEP`] each: the body read whole); without, each
/// step takes the last one's place ([`CHUNK`] each: the body streamed on).
fn hash_body<R: Read + ?Sized>(
    r: &mut R,
    header: &Header,
    buf: &mut Vec<u8>,
    keep: bool,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<u64, FrameError> {
    let step = if keep { HASH_STEP } else { CHUNK as u64 };
    let base = buf.len();
    let mut hasher = md5::Context::new();
    let mut received = 0u64;
    while received < header.len {
        if !keep {
            buf.truncate(base);
        }
        let start = buf.len();
        if r.take((header.len - received).min(step)).read_to_end(buf)? == 0 {
            return Err(FrameError::Truncated {
                part: FramePart::Body,
                expected: header.len,
                received,
            });
        }
        hasher.consume(&buf[start..]);
        sink(&buf[start..])?;
        received += (buf.len() - start) as u64;
    }
    check_md5(header, hasher.finalize())?;
    Ok(header.len)
}

fn check_md5(header: &Header, digest: md5::Digest) -> Result<(), FrameError> {
    let actual = format!("{digest:x}");
    if actual.eq_ignore_ascii_case(&header.md5) {
        Ok(())
    } else {
        Err(FrameError::Md5Mismatch {
            expected: header.md5.clone(),
            actual,
        })
    }
}

/// The working buffer for a body of `len` bytes: no more than it needs, no
/// more than [`CHUNK`].
fn chunk_len(len: u64) -> usize {
    usize::try_from(len).map_or(CHUNK, |len| len.min(CHUNK))
}

fn truncated(part: FramePart, expected: usize, received: usize) -> FrameError {
    FrameError::Truncated {
        part,
        expected: expected as u64,
        received: received as u64,
    }
}

/// One `read`, retried on `Interrupted`.
fn read_some<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
/// Unlike `read_exact`, it tells a clean end (0) from a short one.
fn fill<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_some(r, &mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// `write_all` for several buffers: as few system calls as the writer allows,
/// and correct when it accepts only part of what it is given.
fn write_all_vectored<W: Write + ?Sized>(
    w: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole frame",
                ));
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
