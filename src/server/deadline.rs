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
//!
//! The server can bring a connection's deadline nearer, never push it
//! back: a shutdown's grace period is a limit ([`Clock::limit`]) that the
//! handler's own `set_deadline` and `clear_deadline` cannot lift, and the
//! end of the grace period cuts the connection ([`Clock::cut`]), after
//! which every call fails at once with `ConnectionAborted`.

use std::io;
use std::sync::Mutex;
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
    /// The deadline in force, the earlier of the two below: nanoseconds
    /// from `base`, plus one; 0: no deadline. Read lock-free by every call.
    at: AtomicU64,
    /// The handler's deadline and the server's limit, in the same
    /// encoding. Writers take this lock, so `at` is always their minimum.
    set: Mutex<(u64, u64)>,
    /// The server closed the connection (its shutdown's grace period
    /// ended): calls fail with `ConnectionAborted`, not `TimedOut`.
    cut: AtomicBool,
    /// The read half's and the write half's, in [`Dir`] order.
    halves: [Half; 2],
    /// Between requests: nothing read since the connection began, or
    /// since its last reply was written or the handler marked a boundary
    /// ([`Clock::boundary`]). A drain shuts such a connection's read half
    /// at once; one in the middle of a request keeps it until its next
    /// boundary, so the request can finish within the grace period.
    between: AtomicBool,
    /// A drain is under way: the next boundary shuts the read half.
    draining: AtomicBool,
}

/// The error every call returns once the server has cut the connection.
pub(crate) fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by the server's shutdown",
    )
}

/// The earlier of two encoded deadlines (0: none).
fn earlier(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
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
            set: Mutex::new((0, 0)),
            cut: AtomicBool::new(false),
            halves: [half(read), half(write)],
            between: AtomicBool::new(true),
            draining: AtomicBool::new(false),
        }
    }

    /// A request boundary: the connection waits for its client's next
    /// request (a reply has gone, or a reader starts on a new message). If
    /// a drain is under way, the read half is shut now, so that wait ends
    /// at once. Two atomic operations, and no system call unless draining.
    pub(crate) fn boundary(&self, stream: &Stream) {
        self.between.store(true, Ordering::SeqCst);
        if self.draining.load(Ordering::SeqCst) {
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
    }

    /// Before a read: during a drain, a connection between requests with
    /// nothing waiting in its socket is waiting for a new request, and its
    /// read half is shut now (that read sees end of stream). One atomic
    /// load when no drain is under way.
    pub(crate) fn before_read(&self, stream: &Stream) {
        // Between requests, unless the next one's first bytes wait unread
        // in the socket: that request has begun, and may finish too.
        if self.draining.load(Ordering::Relaxed)
            && self.between.load(Ordering::SeqCst)
            && !stream.input_waiting()
        {
            // Errors mean the peer has gone already: nothing left to wake.
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
    }

    /// A request's bytes are arriving (a short read, or the handler says a
    /// request goes on): a drain leaves the read half open until the next
    /// boundary.
    pub(crate) fn in_request(&self) {
        if self.between.load(Ordering::Relaxed) {
            self.between.store(false, Ordering::Relaxed);
        }
    }

    /// A shutdown's drain: the deadline limited to the end of the grace
    /// period, and the read half shut now if the connection is between
    /// requests, else at its next boundary.
    pub(crate) fn drain(&self, stream: &Stream, until: Instant) {
        self.limit(until);
        self.draining.store(true, Ordering::SeqCst);
        // The handler may be blocked in a read already: the same test a
        // read makes before it starts, made for it now.
        self.before_read(stream);
    }

    fn encode(&self, deadline: Option<Instant>) -> u64 {
        // An instant before the connection began has passed already.
        deadline.map_or(0, |at| {
            let nanos = at.saturating_duration_since(self.base).as_nanos();
            u64::try_from(nanos).unwrap_or(u64::MAX).min(u64::MAX - 1) + 1
        })
    }

    /// The handler's deadline (`Connection::set_deadline`): in force
    /// unless the server's limit comes first.
    pub(crate) fn set(&self, deadline: Option<Instant>) {
        // No deadline in force means neither is set: clearing the
        // handler's (as the greeting does after every message) is a load.
        if deadline.is_none() && self.at.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut set = crate::lock(&self.set);
        set.0 = self.encode(deadline);
        self.at.store(earlier(set.0, set.1), Ordering::Relaxed);
    }

    /// The server's limit: from now on no deadline later than `at` is in
    /// force, whatever the handler sets. An earlier limit stays.
    pub(crate) fn limit(&self, at: Instant) {
        let mut set = crate::lock(&self.set);
        set.1 = earlier(set.1, self.encode(Some(at)));
        self.at.store(earlier(set.0, set.1), Ordering::Relaxed);
    }

    /// Ends the connection: `stream` shut both ways, and every call
    /// through it failing at once with [`cut`]'s error from now on.
    pub(crate) fn cut(&self, stream: &Stream) {
        self.cut.store(true, Ordering::Relaxed);
        self.limit(self.base);
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    /// Whether [`cut`](Self::cut) was called.
    pub(crate) fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// The error for a call made after the deadline in force: the
    /// shutdown's when the server's limit is the one that passed.
    fn expired(&self) -> io::Error {
        let (handler, server) = *crate::lock(&self.set);
        if self.is_cut() || earlier(handler, server) == server && server != 0 {
            cut()
        } else {
            io::Error::new(io::ErrorKind::TimedOut, "connection deadline passed")
        }
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
        call: impl FnOnce(&mut &Stream) -> io::Result<T>,
    ) -> io::Result<T> {
        let half = &self.halves[dir as usize];
        // The time left, if the deadline governs this call: only if it
        // comes before the server's own timeout would.
        let governs = match self.get() {
            None => None,
            Some(deadline) => {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .filter(|left| !left.is_zero())
                    .ok_or_else(|| self.expired())?;
                half.server
                    .is_none_or(|server| left < server)
                    .then_some(left)
            }
        };
        // The hot path (no deadline) makes no system call, unless one was
        // cleared since this half last shrank its timeout.
        if governs.is_some() || half.shrunk.load(Ordering::Relaxed) {
            set_timeout(stream, dir, half, governs)?;
        }
        match call(&mut &*stream) {
            Err(e) if governs.is_some() && is_timeout(&e) => Err(self.expired()),
            other => other,
        }
    }
}

/// Sets `dir`'s timeout on `stream`: `shrunk` to a deadline's time left,
/// or (`None`) the server's own back.
fn set_timeout(stream: &Stream, dir: Dir, half: &Half, shrunk: Option<Duration>) -> io::Result<()> {
    let timeout = shrunk.or(half.server);
    match dir {
        Dir::Read => stream.set_read_timeout(timeout)?,
        Dir::Write => stream.set_write_timeout(timeout)?,
    }
    half.shrunk.store(shrunk.is_some(), Ordering::Relaxed);
    Ok(())
}
