//! See the wire: every `read` and `write` of a conversation, drawn as a
//! sequence diagram that shows 粘包 and 分包 where they happen.
//!
//! The problem this module makes visible: a `send` is not a message. TCP
//! moves a stream of bytes, and the receiver's `recv` calls cut that stream
//! wherever the bytes happened to be when it asked. Two writes can come out
//! of one read (**粘包**, sticky packets), and one write can come out of
//! several reads (**分包**, fragmentation). Narration can say so; a trace
//! shows exactly which bytes each call moved.
//!
//! A [`Trace`] is one conversation. Wrap each end's stream with
//! [`Trace::wrap`] (any `Read + Write`: a `TcpStream`, a `&mut Connection`,
//! a `Cursor`) and every call is recorded: when, which side, which
//! direction, how many bytes and the first [`PREVIEW`] of them. Because both
//! ends share one trace, each read can be matched to the writes whose bytes
//! it returned. [`Trace::text`] draws the result for a terminal and
//! [`html::page`] as a self-contained HTML page with inline SVG. Traffic
//! that is the seed's frame (4-byte length, JSON header, body) is
//! recognised and shown in its three parts.
//!
//! ```
//! use std::io::{Read, Write};
//! use socketserver::trace::{Side, Trace};
//!
//! // Two writes, then one read that finds both: 粘包.
//! let trace = Trace::new("hello + world");
//! let mut wire = Vec::new();
//! let mut client = trace.wrap(&mut wire, Side::Client);
//! client.write_all(b"hello")?;
//! client.write_all(b"world")?;
//! let mut server = trace.wrap(&wire[..], Side::Server);
//! let mut buf = [0u8; 1024];
//! let n = server.read(&mut buf)?;
//! assert_eq!(&buf[..n], b"helloworld");
//!
//! let arrows = trace.arrows();
//! assert_eq!(arrows.len(), 2);
//! assert!(trace.reads()[0].sticky); // one read, two writes
//! println!("{}", trace.text());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The chaos proxy ([`crate::chaos`]) records into a trace too, as the
//! relay on the path sees the conversation; [`Trace::wrap`] records it as
//! each end sees it.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod framing;
pub mod html;
mod labels;
mod text;

use framing::Direction;
pub use labels::Labels;

/// How many leading bytes of each call a trace keeps for its preview.
pub const PREVIEW: usize = 24;

/// The most events one trace keeps; later calls are counted, not kept, so a
/// long transfer cannot grow a trace without bound.
pub const MAX_EVENTS: usize = 4096;

/// How many frame parts (lengths, headers, body pieces) a trace keeps for
/// each direction; later ones are recognised, to stay in step, but not
/// kept, so a long framed conversation holds bounded memory.
pub const MAX_PARTS: usize = 65_536;

/// One end of a conversation: its lifeline in the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The end that connected: the left lifeline.
    Client,
    /// The end that accepted: the right lifeline.
    Server,
}

impl Side {
    /// The other end.
    ///
    /// ```
    /// use socketserver::trace::Side;
    /// assert_eq!(Side::Client.peer(), Side::Server);
    /// ```
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
        })
    }
}

/// What a call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A `write`/`send`: bytes handed to the stream.
    Write,
    /// A `read`/`recv`: bytes taken from it. A read of 0 bytes is the end
    /// of the stream.
    Read,
}

/// One of the three parts of the seed's frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The 4-byte little-endian header length.
    Length,
    /// The JSON header (`ver`, `md5`, `lenth`).
    Header,
    /// The body.
    Body,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Length => "len",
            Part::Header => "header",
            Part::Body => "body",
        })
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When the call returned, from the trace's start.
    pub at: Duration,
    /// The end that made the call.
    pub side: Side,
    /// A write or a read.
    pub op: Op,
    /// Where the call's bytes start in their direction's stream: a write
    /// by the client and the server's reads share one stream of offsets.
    pub offset: u64,
    /// How many bytes the call moved.
    pub len: usize,
    /// The first [`PREVIEW`] bytes it moved.
    pub head: Vec<u8>,
}

impl Event {
    /// The byte range the call moved, in its direction's stream.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + self.len as u64
    }

    /// The direction's stream: the writer's side for a write, the other
    /// side for a read.
    pub fn from(&self) -> Side {
        match self.op {
            Op::Write => self.side,
            Op::Read => self.side.peer(),
        }
    }
}

/// A write, with the reads that received its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// The write's index in [`Trace::events`].
    pub write: usize,
    /// The write's number among the conversation's writes, from 1: the
    /// `#n` the diagrams show.
    pub number: usize,
    /// Indices in [`Trace::events`] of the reads holding any of its bytes.
    pub reads: Vec<usize>,
    /// 分包: the network cut it, so its bytes arrived in more than one
    /// read, and (when it is a frame's) a read ended inside a frame's
    /// part. A frame whose length, header and body were read apart, each
    /// whole, as the seed's reader asks for them, is one message read in
    /// its parts: not 分包.
    pub split: bool,
    /// How many pieces the network cut it into: 1 when it is not
    /// [`split`](Self::split), however many reads took its frame's parts.
    pub pieces: usize,
    /// The frame parts it carried, with their byte counts, in order.
    pub parts: Vec<(Part, u64)>,
}

/// A read, with the writes whose bytes it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSpan {
    /// The read's index in [`Trace::events`].
    pub read: usize,
    /// The numbers (`#n`) of the writes it holds bytes of.
    pub writes: Vec<usize>,
    /// 粘包: it holds bytes of more than one write.
    pub sticky: bool,
    /// The frame parts it returned, with their byte counts, in order.
    pub parts: Vec<(Part, u64)>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    events: Vec<Event>,
    dropped: u64,
    /// Client-to-server, then server-to-client.
    directions: [Direction; 2],
}

fn index(from: Side) -> usize {
    match from {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// One conversation's recorded calls, shared by both of its ends.
///
/// Cloning a `Trace` gives another handle on the same record, so a server
/// thread and a client thread can each hold one. See the [module
/// docs](self) for an example.
#[derive(Debug, Clone)]
pub struct Trace {
    title: Arc<str>,
    inner: Arc<Mutex<Inner>>,
}

impl Trace {
    /// An empty trace; `title` names the conversation in its diagrams.
    pub fn new(title: impl Into<String>) -> Trace {
        let title: String = title.into();
        Trace {
            title: title.into(),
            inner: Arc::new(Mutex::new(Inner {
                started: Instant::now(),
                events: Vec::new(),
                dropped: 0,
                directions: [Direction::new(), Direction::new()],
            })),
        }
    }

    /// The conversation's name.
    pub fn title(&self) -> &str {
        &self.title
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A recording cannot leave the record half-changed in a way later
        // calls depend on, so a poisoned lock is still usable.
        crate::lock(&self.inner)
    }

    /// Wraps one end's stream: every call through the wrapper is recorded
    /// as made by `side`.
    pub fn wrap<S>(&self, stream: S, side: Side) -> Traced<S> {
        Traced {
            inner: stream,
            side,
            trace: self.clone(),
        }
    }

    /// Records one call by hand, for transports that are not a `Read +
    /// Write` (a UDP socket: one datagram is one write and one read).
    ///
    /// ```
    /// use socketserver::trace::{Op, Side, Trace};
    /// let trace = Trace::new("one datagram");
    /// trace.record(Side::Client, Op::Write, b"Tracy");
    /// trace.record(Side::Server, Op::Read, b"Tracy");
    /// assert_eq!(trace.arrows()[0].reads.len(), 1);
    /// ```
    pub fn record(&self, side: Side, op: Op, bytes: &[u8]) {
        self.record_at(None, side, op, bytes);
    }

    /// When `at` is given (a write's start), the event is placed in time
    /// order by it; otherwise it happened now.
    fn record_at(&self, at: Option<Instant>, side: Side, op: Op, bytes: &[u8]) {
        let mut inner = self.lock();
        let at = at.map_or_else(|| inner.started.elapsed(), |at| at - inner.started);
        let from = match op {
            Op::Write => side,
            Op::Read => side.peer(),
        };
        let direction = &mut inner.directions[index(from)];
        let offset = match op {
            Op::Write => {
                let offset = direction.written;
                direction.feed(bytes, offset);
                direction.written += bytes.len() as u64;
                offset
            }
            Op::Read => {
                let offset = direction.read;
                direction.read += bytes.len() as u64;
                offset
            }
        };
        if inner.events.len() >= MAX_EVENTS {
            inner.dropped += 1;
            return;
        }
        // A write is drawn when it was made, not when it returned (a large
        // one returns after its first bytes were read), so it goes before
        // any later event: the arrow then points down to its reads.
        let position = inner.events.partition_point(|e| e.at <= at);
        inner.events.insert(
            position,
            Event {
                at,
                side,
                op,
                offset,
                len: bytes.len(),
                head: bytes[..bytes.len().min(PREVIEW)].to_vec(),
            },
        );
    }

    /// Every call recorded, in time order: a read when it returned, a
    /// write when it was made (so it comes before the reads of its bytes).
    ///
    /// ```
    /// use socketserver::trace::{Op, Side, Trace};
    /// let trace = Trace::new("two calls");
    /// trace.record(Side::Client, Op::Write, b"hello");
    /// trace.record(Side::Server, Op::Read, b"hel");
    /// let events = trace.events();
    /// assert_eq!((events[0].op, events[0].len), (Op::Write, 5));
    /// assert_eq!((events[1].side, events[1].range()), (Side::Server, 0..3));
    /// assert_eq!(events[1].from(), Side::Client); // the bytes came from the client
    /// ```
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Calls made after [`MAX_EVENTS`] were reached, counted but not kept.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Whether the bytes from `from` were recognised as the seed's frames.
    ///
    /// ```
    /// use socketserver::trace::{Side, Trace};
    /// let trace = Trace::new("a frame one way, text the other");
    /// socketserver::frame::write_frame(&mut trace.wrap(Vec::new(), Side::Server), b"hi")?;
    /// std::io::Write::write_all(&mut trace.wrap(Vec::new(), Side::Client), b"echo hi")?;
    /// assert!(trace.framed(Side::Server));
    /// assert!(!trace.framed(Side::Client));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn framed(&self, from: Side) -> bool {
        !self.lock().directions[index(from)].parts.is_empty()
    }

    /// Every write with the reads that received its bytes (empty reads,
    /// the ends of streams, hold none).
    ///
    /// ```
    /// use socketserver::trace::{Op, Side, Trace};
    /// let trace = Trace::new("分包");
    /// trace.record(Side::Client, Op::Write, b"helloworld");
    /// trace.record(Side::Server, Op::Read, b"hello");
    /// trace.record(Side::Server, Op::Read, b"world");
    /// let arrow = &trace.arrows()[0];
    /// assert_eq!((arrow.number, arrow.reads.as_slice(), arrow.split), (1, &[1, 2][..], true));
    /// ```
    pub fn arrows(&self) -> Vec<Arrow> {
        let inner = self.lock();
        let events = &inner.events;
        let cuts = [Side::Client, Side::Server].map(|from| Cuts::new(&inner, from));
        let mut number = 0;
        let mut arrows = Vec::new();
        for (i, w) in events.iter().enumerate() {
            if w.op != Op::Write {
                continue;
            }
            number += 1;
            let reads: Vec<usize> = events
                .iter()
                .enumerate()
                .filter(|(_, r)| r.op == Op::Read && r.from() == w.side && overlaps(r, w))
                .map(|(j, _)| j)
                .collect();
            let pieces = 1 + cuts[index(w.side)].inside(w.range());
            arrows.push(Arrow {
                write: i,
                number,
                split: pieces > 1,
                pieces,
                reads,
                parts: inner.directions[index(w.side)].parts_in(w.range()),
            });
        }
        arrows
    }

    /// Every read with the writes whose bytes it returned.
    ///
    /// ```
    /// use socketserver::trace::{Op, Side, Trace};
    /// let trace = Trace::new("粘包");
    /// trace.record(Side::Client, Op::Write, b"hello");
    /// trace.record(Side::Client, Op::Write, b"world");
    /// trace.record(Side::Server, Op::Read, b"helloworld");
    /// let read = &trace.reads()[0];
    /// assert_eq!((read.writes.as_slice(), read.sticky), (&[1, 2][..], true));
    /// ```
    pub fn reads(&self) -> Vec<ReadSpan> {
        let arrows = self.arrows();
        let inner = self.lock();
        inner
            .events
            .iter()
            .enumerate()
            .filter(|(_, r)| r.op == Op::Read)
            .map(|(i, r)| {
                let writes: Vec<usize> = arrows
                    .iter()
                    .filter(|a| a.reads.contains(&i))
                    .map(|a| a.number)
                    .collect();
                ReadSpan {
                    read: i,
                    sticky: writes.len() > 1,
                    writes,
                    parts: inner.directions[index(r.from())].parts_in(r.range()),
                }
            })
            .collect()
    }

    /// The messages read so far, both ways, counted whole and split by
    /// the network. A message is a frame where the stream is framed (so a
    /// frame read as length, header and body, each whole, is one message,
    /// whole), else a write. Only messages read to their last byte count.
    ///
    /// ```
    /// use socketserver::trace::{Messages, Op, Side, Trace};
    /// let trace = Trace::new("two frames");
    /// let mut wire = Vec::new();
    /// let mut writer = trace.wrap(&mut wire, Side::Client);
    /// socketserver::frame::write_frame(&mut writer, b"hello")?;
    /// socketserver::frame::write_frame(&mut writer, b"world")?;
    /// let header = wire.len() / 2 - 4 - 5;
    /// // The first frame read as the seed reads it: length, header, body.
    /// let (length, rest) = wire.split_at(4);
    /// let (head, rest) = rest.split_at(header);
    /// let (body, second) = rest.split_at(5);
    /// for part in [length, head, body] {
    ///     trace.record(Side::Server, Op::Read, part);
    /// }
    /// // The second cut by the network in the middle of its header.
    /// let (a, b) = second.split_at(10);
    /// trace.record(Side::Server, Op::Read, a);
    /// trace.record(Side::Server, Op::Read, b);
    /// assert_eq!(trace.messages(), Messages { whole: 1, split: 1 });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn messages(&self) -> Messages {
        let inner = self.lock();
        let mut count = Messages::default();
        for from in [Side::Client, Side::Server] {
            let direction = &inner.directions[index(from)];
            let cuts = Cuts::new(&inner, from);
            let messages: Vec<std::ops::Range<u64>> = if direction.parts.is_empty() {
                inner
                    .events
                    .iter()
                    .filter(|w| w.op == Op::Write && w.side == from && w.len > 0)
                    .map(Event::range)
                    .collect()
            } else {
                direction.frames()
            };
            for range in messages.into_iter().filter(|m| m.end <= direction.read) {
                if cuts.inside(range) > 0 {
                    count.split += 1;
                } else {
                    count.whole += 1;
                }
            }
        }
        count
    }

    /// The terminal sequence diagram: two lifelines, an arrow for each
    /// write, each read marked on its reader's lifeline with the writes it
    /// holds; 粘包 and 分包 named where they happen.
    ///
    /// ```
    /// use socketserver::trace::{Op, Side, Trace};
    /// let trace = Trace::new("分包");
    /// trace.record(Side::Client, Op::Write, b"helloworld");
    /// trace.record(Side::Server, Op::Read, b"hello");
    /// trace.record(Side::Server, Op::Read, b"world");
    /// let text = trace.text();
    /// assert!(text.contains("分包"));
    /// assert!(text.contains("\"hello\""));
    /// ```
    pub fn text(&self) -> String {
        text::render(self, &Labels::EN)
    }

    /// The terminal sequence diagram, in the words of `labels`.
    ///
    /// ```
    /// use socketserver::trace::{Labels, Op, Side, Trace};
    /// let trace = Trace::new("粘包");
    /// trace.record(Side::Client, Op::Write, b"hello");
    /// trace.record(Side::Client, Op::Write, b"world");
    /// trace.record(Side::Server, Op::Read, b"helloworld");
    /// assert!(trace.text_in(&Labels::ZH).contains("服务端 读 10 B \"helloworld\" ← #1 #2 粘包"));
    /// ```
    pub fn text_in(&self, labels: &Labels) -> String {
        text::render(self, labels)
    }
}

/// Where the reads of one direction's stream cut it, other than where a
/// frame's parts begin: the cuts the network made (分包).
struct Cuts(Vec<u64>);

impl Cuts {
    fn new(inner: &Inner, from: Side) -> Cuts {
        let parts = inner.directions[index(from)].boundaries();
        let mut at: Vec<u64> = inner
            .events
            .iter()
            .filter(|r| r.op == Op::Read && r.from() == from)
            .flat_map(|r| [r.offset, r.offset + r.len as u64])
            .filter(|o| parts.binary_search(o).is_err())
            .collect();
        at.sort_unstable();
        at.dedup();
        Cuts(at)
    }

    /// How many cuts fall strictly inside `range`.
    fn inside(&self, range: std::ops::Range<u64>) -> usize {
        let first = self.0.partition_point(|&o| o <= range.start);
        let end = self.0.partition_point(|&o| o < range.end);
        end.saturating_sub(first)
    }
}

/// A conversation's messages, counted: whole, or split by the network.
/// See [`Trace::messages`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Messages {
    /// Messages that arrived whole: in one read, or (a frame) in reads
    /// that each took whole parts of it.
    pub whole: usize,
    /// Messages the network cut (分包): some read ended inside one of its
    /// parts, and the reader had to put it back together.
    pub split: usize,
}

fn overlaps(a: &Event, b: &Event) -> bool {
    a.offset < b.offset + b.len as u64 && b.offset < a.offset + a.len as u64
}

/// Escapes a preview for one line: printable text as it is (Chinese too),
/// `\n`, `\r`, `\t` and other bytes as escapes, a character cut at the end
/// of the preview as its bytes.
///
/// ```
/// use socketserver::trace::escape;
/// assert_eq!(escape("你好,Tracy\n".as_bytes()), "你好,Tracy\\n");
/// assert_eq!(escape(b"\x43\x00\x00\x00{"), "C\\x00\\x00\\x00{");
/// assert_eq!(escape(&"你".as_bytes()[..2]), "\\xe4\\xbd");
/// ```
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A stream whose every call is recorded in a [`Trace`]; made by
/// [`Trace::wrap`]. It behaves exactly as the stream it wraps: the same
/// calls, the same results, the same errors (which are not recorded).
#[derive(Debug)]
pub struct Traced<S> {
    inner: S,
    side: Side,
    trace: Trace,
}

impl<S> Traced<S> {
    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, to set options on it.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the stream; the trace keeps what was recorded.
    ///
    /// ```
    /// use std::io::Write;
    /// use socketserver::trace::{Side, Trace};
    /// let trace = Trace::new("into_inner");
    /// let mut traced = trace.wrap(Vec::new(), Side::Client);
    /// traced.write_all(b"hi")?;
    /// assert_eq!(traced.get_ref(), b"hi");
    /// assert_eq!(traced.into_inner(), b"hi");
    /// assert_eq!(trace.events().len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Read> Read for Traced<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.trace.record(self.side, Op::Read, &buf[..n]);
        Ok(n)
    }
}

impl<S: Write> Write for Traced<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let started = Instant::now();
        let n = self.inner.write(buf)?;
        self.trace
            .record_at(Some(started), self.side, Op::Write, &buf[..n]);
        Ok(n)
    }

    /// Passed through as one vectored write (the frame writer's one write
    /// per frame stays one write), recorded as the bytes it took.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let started = Instant::now();
        let n = self.inner.write_vectored(bufs)?;
        let mut taken = Vec::with_capacity(n);
        for buf in bufs {
            let want = n - taken.len();
            if want == 0 {
                break;
            }
            taken.extend_from_slice(&buf[..want.min(buf.len())]);
        }
        self.trace
            .record_at(Some(started), self.side, Op::Write, &taken);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
