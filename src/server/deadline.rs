//! Connection deadlines: one instant after which every read and write on a
//! connection fails with `TimedOut`, however slowly the peer sends.
//!
//! A socket's read timeout starts again with every read, so a peer that
//! sends one byte just before each timeout holds a connection forever. A
//! deadline does not move unless the handler moves it: before each read or
//! write, the socket's timeout is shrunk to the time left (one system call,
//! made only while a deadline is set and nearer than the server's own
//! timeout), so no thread has to watch the connection, and a connection
//! without a deadline pays one atomic load per call.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::handler::{Stream, is_timeout};

/// Which half of the socket a call uses: each has its own timeout.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// One half's timeouts: the server's, and whether the socket now holds a
/// shrunk one instead.
#[derive(Debug)]
struct Half {
    /// The timeout the server gave the socket ([`Builder::read_timeout`],
    /// [`Builder::write_timeout`]), restored when the deadline is cleared.
    ///
    /// [`Builder::read_timeout`]: crate::server::Builder::read_timeout
    /// [`Builder::write_timeout`]: crate::server::Builder::write_timeout
    server: Option<Duration>,
    shrunk: AtomicBool,
}

/// A connection's deadline, shared by the connection and its clones.
#[derive(Debug)]
pub(crate) struct Clock {
    base: Instant,
    /// Nanoseconds from `base` to the deadline, plus one; 0: no deadline.
    at: AtomicU64,
    read: Half,
    write: Half,
}

/// The error every call returns once the deadline has passed.
pub(crate) fn passed() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection deadline passed")
}

impl Clock {
    pub(crate) fn new(read: Option<Duration>, write: Option<Duration>) -> Clock {
        let half = |server| Half {
            server,
            shrunk: AtomicBool::new(false),
        };
        Clock {
            base: Instant::now(),
            at: AtomicU64::new(0),
            read: half(read),
            write: half(write),
        }
    }

    pub(crate) fn set(&self, deadline: Option<Instant>) {
        let at = match deadline {
            None => 0,
            // An instant before the connection began has passed already.
            Some(at) => {
                let nanos = at.saturating_duration_since(self.base).as_nanos();
                u64::try_from(nanos)
                    .unwrap_or(u64::MAX - 1)
                    .min(u64::MAX - 1)
                    + 1
            }
        };
        self.at.store(at, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<Instant> {
        match self.at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(self.base + Duration::from_nanos(at - 1)),
        }
    }

    /// Runs one read or write on `stream` under the deadline: at once
    /// `TimedOut` if it has passed, else with the socket's timeout no
    /// longer than the time left, and a timeout that came from that
    /// shrinking reported as the deadline's `TimedOut`.
    pub(crate) fn guard<T>(
        &self,
        stream: &Stream,
        dir: Dir,
        call: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let half = match dir {
            Dir::Read => &self.read,
            Dir::Write => &self.write,
        };
        let Some(deadline) = self.get() else {
            // The hot path: no deadline, no system call, unless one was
            // cleared since this half last shrank its timeout.
            if half.shrunk.load(Ordering::Relaxed) {
                restore(stream, dir, half)?;
            }
            return call();
        };
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(passed)?;
        // The deadline governs this call only if it comes before the
        // server's own timeout would; otherwise that timeout stays.
        let governs = half.server.is_none_or(|server| left < server);
        if governs {
            set_timeout(stream, dir, Some(left))?;
            half.shrunk.store(true, Ordering::Relaxed);
        } else if half.shrunk.load(Ordering::Relaxed) {
            restore(stream, dir, half)?;
        }
        match call() {
            Err(e) if governs && is_timeout(&e) => Err(passed()),
            other => other,
        }
    }
}

fn restore(stream: &Stream, dir: Dir, half: &Half) -> io::Result<()> {
    set_timeout(stream, dir, half.server)?;
    half.shrunk.store(false, Ordering::Relaxed);
    Ok(())
}

fn set_timeout(stream: &Stream, dir: Dir, timeout: Option<Duration>) -> io::Result<()> {
    match dir {
        Dir::Read => stream.set_read_timeout(timeout),
        Dir::Write => stream.set_write_timeout(timeout),
    }
}
