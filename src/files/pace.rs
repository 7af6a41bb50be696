//! Uploads keep pace: each mebibyte must arrive within
//! [`FileConfig::chunk_timeout`](super::FileConfig::chunk_timeout) of the
//! one before, however its bytes drip.
//!
//! An upload holds its share of the upload budget until it ends. The
//! socket's read timeout bounds only the wait for the *next byte*, so a
//! client sending a byte a minute would hold its share (and a thread)
//! forever. [`Paced`] gives every [`CHUNK`] of bytes a deadline and, before
//! a read that could pass it, cuts the socket's timeout to the time left:
//! at most about one extra system call a second, none while bytes flow
//! faster than that, and no thread to watch the clock.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::CHUNK;
use crate::handler::{Connection, Stream};

/// How late a read may end past its deadline, to spare system calls.
const SLACK: Duration = Duration::from_secs(1);

/// A connection read under a deadline per [`CHUNK`] bytes; puts the
/// socket's own read timeout back when dropped.
pub(crate) struct Paced<'c> {
    conn: &'c mut Connection,
    per_chunk: Duration,
    deadline: Instant,
    /// Bytes read since the deadline was last moved.
    since: usize,
    /// The server's per-read timeout, which still holds.
    original: Option<Duration>,
    /// The timeout now on the socket.
    current: Option<Duration>,
}

impl<'c> Paced<'c> {
    pub(crate) fn new(conn: &'c mut Connection, per_chunk: Duration) -> io::Result<Paced<'c>> {
        let original = match conn.stream() {
            Stream::Tcp(s) => s.read_timeout()?,
            #[cfg(unix)]
            Stream::Unix(s) => s.read_timeout()?,
        };
        Ok(Paced {
            conn,
            per_chunk,
            deadline: Instant::now() + per_chunk,
            since: 0,
            original,
            current: original,
        })
    }

    /// Whether the socket's timeout is shorter than the server's own.
    fn cut_short(&self) -> bool {
        match (self.current, self.original) {
            (Some(current), Some(original)) => current < original,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The timeout the next read needs: the time left, or the server's
    /// own if that is shorter.
    fn wanted(&self, left: Duration) -> Duration {
        self.original.map_or(left, |t| t.min(left))
    }
}

impl Read for Paced<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the upload fell behind: {CHUNK} bytes not sent within {:?}",
                        self.per_chunk
                    ),
                ));
            }
            let wanted = self.wanted(left);
            // Only when the socket would wait over a second too long.
            if self.current.is_none_or(|t| t > wanted + SLACK) {
                self.conn.stream().set_read_timeout(Some(wanted))?;
                self.current = Some(wanted);
            }
            match self.conn.read(buf) {
                Ok(n) => {
                    self.since += n;
                    if self.since >= CHUNK {
                        self.since -= CHUNK;
                        self.deadline = Instant::now() + self.per_chunk;
                    }
                    return Ok(n);
                }
                // A timeout cut shorter than the server's own, for a
                // deadline since passed or moved: the loop tells which.
                Err(e) if is_timeout(&e) && self.cut_short() => self.current = None,
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Drop for Paced<'_> {
    fn drop(&mut self) {
        if self.current != self.original {
            let _ = self.conn.stream().set_read_timeout(self.original);
        }
    }
}
