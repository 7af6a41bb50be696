//! The connections being served, so that a shutdown can end them.
//!
//! A handler blocked in `read`, waiting for its client's next request,
//! looks at no flag: only its socket can wake it. So the server keeps, for
//! every connection being served, its socket and its deadline clock
//! (shared with the [`Connection`](crate::Connection), not duplicated: no
//! descriptor, no system call), added once when the connection starts and
//! removed when it ends. A shutdown works through the list in two steps:
//! *drain* shuts the read half of every socket (a waiting handler sees end
//! of stream; a reply being written goes on) and limits every deadline to
//! the end of the grace period; *cut* ends what is left (every call
//! through the connection fails, both halves shut). A connection that
//! starts during either step gets that step at once.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::deadline::Clock;
use crate::handler::Stream;

/// Where a shutdown has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Serving: nothing to do to new connections.
    Open,
    /// Draining until the instant: read halves shut, deadlines limited.
    Draining(Instant),
    /// Cut: every connection ends at once.
    Cut,
}

#[derive(Debug)]
struct Entry {
    stream: Arc<Stream>,
    clock: Arc<Clock>,
}

impl Entry {
    fn drain(&self, until: Instant) {
        // Errors mean the peer has gone already: nothing left to wake.
        let _ = self.stream.shutdown(Shutdown::Read);
        self.clock.limit(until);
    }

    fn cut(&self) {
        self.clock.cut();
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

#[derive(Debug)]
struct Inner {
    next: u64,
    phase: Phase,
    conns: HashMap<u64, Entry>,
}

/// The registry of live connections.
#[derive(Debug)]
pub(crate) struct Live {
    inner: Mutex<Inner>,
}

impl Live {
    pub(crate) fn new() -> Live {
        Live {
            inner: Mutex::new(Inner {
                next: 0,
                phase: Phase::Open,
                conns: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding this lock.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connection; the guard removes it when dropped. A connection
    /// that starts while a shutdown is under way gets its step at once.
    pub(crate) fn register(&self, stream: &Arc<Stream>, clock: &Arc<Clock>) -> Registered<'_> {
        let entry = Entry {
            stream: Arc::clone(stream),
            clock: Arc::clone(clock),
        };
        let mut inner = self.lock();
        match inner.phase {
            Phase::Open => {}
            Phase::Draining(until) => entry.drain(until),
            Phase::Cut => entry.cut(),
        }
        let id = inner.next;
        inner.next += 1;
        inner.conns.insert(id, entry);
        Registered { live: self, id }
    }

    /// Shuts the read half of every connection and limits its deadline to
    /// `until` (an earlier drain's limit stays). Nothing after a cut.
    #[cfg(test)]
    pub(crate) fn drain(&self, until: Instant) {
        self.announce_drain(until);
        self.drain_all();
    }

    /// The first half of a drain: from now on the grace period ends at
    /// `until` (or an earlier drain's end), and connections that start are
    /// drained at once. Nothing after a cut.
    pub(crate) fn announce_drain(&self, until: Instant) {
        let mut inner = self.lock();
        inner.phase = match inner.phase {
            Phase::Cut => Phase::Cut,
            Phase::Draining(earlier) => Phase::Draining(earlier.min(until)),
            Phase::Open => Phase::Draining(until),
        };
    }

    /// The second half: drains every connection, as the phase says.
    pub(crate) fn drain_all(&self) {
        let inner = self.lock();
        if let Phase::Draining(until) = inner.phase {
            for entry in inner.conns.values() {
                entry.drain(until);
            }
        }
    }

    /// Ends every connection; returns how many there were.
    pub(crate) fn cut(&self) -> usize {
        let mut inner = self.lock();
        inner.phase = Phase::Cut;
        for entry in inner.conns.values() {
            entry.cut();
        }
        inner.conns.len()
    }

    /// When the grace period of the shutdown under way ends: `None` if
    /// the connections are cut already, or no shutdown is under way.
    pub(crate) fn grace_end(&self) -> Option<Instant> {
        match self.lock().phase {
            Phase::Draining(until) => Some(until),
            Phase::Open | Phase::Cut => None,
        }
    }

    /// Whether the connections are cut (`shutdown_now`, or the grace
    /// period is over).
    pub(crate) fn is_cut(&self) -> bool {
        self.lock().phase == Phase::Cut
    }

    /// Serving again (after `serve_forever` returned).
    pub(crate) fn reopen(&self) {
        self.lock().phase = Phase::Open;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

/// A connection's place in the registry, given up when dropped.
#[derive(Debug)]
pub(crate) struct Registered<'a> {
    live: &'a Live,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let entry = self.live.lock().conns.remove(&self.id);
        // The socket closes when the connection drops its own handle,
        // after this: dropping ours outside the lock only gives it back.
        drop(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    fn pair() -> (Arc<Stream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Arc::new(Stream::Tcp(server)), client)
    }

    #[test]
    fn a_connection_that_starts_during_a_drain_is_drained_at_once() {
        let live = Live::new();
        let (stream, _client) = pair();
        let clock = Arc::new(Clock::new(None, None));
        live.drain(Instant::now() + Duration::from_secs(60));
        let registered = live.register(&stream, &clock);
        // The read half is shut: end of stream at once, not a wait.
        assert_eq!((&*stream).read(&mut [0u8; 8]).unwrap(), 0);
        assert!(clock.get().is_some(), "the grace end limits the deadline");
        assert_eq!(live.len(), 1);
        drop(registered);
        assert_eq!(live.len(), 0);
    }

    #[test]
    fn a_cut_ends_every_connection_and_a_reopen_forgets_it() {
        let live = Live::new();
        let (stream, _client) = pair();
        let clock = Arc::new(Clock::new(None, None));
        let _registered = live.register(&stream, &clock);
        assert_eq!(live.cut(), 1);
        assert!(clock.is_cut());
        assert_eq!(live.grace_end(), None);
        live.drain(Instant::now());
        assert_eq!(live.lock().phase, Phase::Cut, "a drain does not undo a cut");
        live.reopen();
        assert_eq!(live.lock().phase, Phase::Open);
    }
}
