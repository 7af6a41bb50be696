//! Transfers keep pace: each mebibyte must cross within
//! [`FileConfig::chunk_timeout`](super::FileConfig::chunk_timeout) of the
//! one before, however its bytes drip, in either direction.
//!
//! An upload holds its share of the upload budget, and any transfer a
//! thread, until it ends. The socket's timeouts bound only the wait for
//! the *next byte* (or the next bit of room), so a client sending a byte a
//! minute, or reading one, would hold them forever. [`Paced`] moves the
//! connection's deadline ([`Connection::set_deadline`]) every [`CHUNK`]
//! bytes, so no thread watches the clock. While it is nearer than the
//! server's own timeout, each read or write costs one more system call
//! (the connection cuts the socket's timeout to the time left).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::CHUNK;
use crate::handler::{Connection, is_timeout};

/// Which way the bytes go, for the error.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Way {
    /// The client sends (an upload).
    Upload,
    /// The client takes (a download or a listing).
    Download,
}

/// A connection read or written under a deadline per [`CHUNK`] bytes. The
/// connection keeps the last deadline when this is dropped: the handler
/// sets the next one.
pub(crate) struct Paced<'c> {
    conn: &'c Connection,
    per_chunk: Duration,
    way: Way,
    /// Bytes moved since the deadline was last moved.
    since: usize,
}

impl<'c> Paced<'c> {
    /// Starts the first chunk's deadline now.
    pub(crate) fn new(conn: &'c Connection, per_chunk: Duration, way: Way) -> Paced<'c> {
        conn.set_deadline_in(per_chunk);
        Paced {
            conn,
            per_chunk,
            way,
            since: 0,
        }
    }

    fn moved(&mut self, n: usize) {
        self.since += n;
        if self.since >= CHUNK {
            self.since %= CHUNK;
            self.conn.set_deadline_in(self.per_chunk);
        }
    }

    /// Says which transfer fell behind, when the deadline is what failed.
    fn explain(&self, e: io::Error) -> io::Error {
        let passed = self.conn.deadline().is_some_and(|at| Instant::now() >= at);
        if !(passed && is_timeout(&e)) {
            return e;
        }
        let (what, done) = match self.way {
            Way::Upload => ("upload", "sent"),
            Way::Download => ("download", "taken"),
        };
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the {what} fell behind: {CHUNK} bytes not {done} within {:?}",
                self.per_chunk
            ),
        )
    }
}

impl Read for Paced<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut conn = self.conn;
        match conn.read(buf) {
            Ok(n) => {
                self.moved(n);
                Ok(n)
            }
            Err(e) => Err(self.explain(e)),
        }
    }
}

impl Write for Paced<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut conn = self.conn;
        match conn.write(buf) {
            Ok(n) => {
                self.moved(n);
                Ok(n)
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut conn = self.conn;
        match conn.write_vectored(bufs) {
            Ok(n) => {
                self.moved(n);
                Ok(n)
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
