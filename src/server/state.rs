//! What a server's threads share: counters, the connection gate, the
//! shutdown flag and how to wake a blocked `accept`.
//!
//! One mutex guards the counters, and one condvar announces every change to
//! them, so the accept loop can sleep until a slot frees up (backpressure)
//! and a graceful shutdown can sleep until the last request is done, both
//! without polling.

use std::net::{SocketAddr, TcpStream, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::handler::Addr;

/// A snapshot of a server's counters.
///
/// Every request the server takes on is `accepted`, and then `active` until
/// it ends as `completed` or `failed`, so at any moment
/// `accepted == active + completed + failed`. Requests refused by
/// `verify_request` are only `rejected`.
///
/// ```
/// let stats = socketserver::Stats::default();
/// assert_eq!(stats.accepted, stats.active + stats.completed + stats.failed);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests (connections, or datagrams) handed to the handler.
    pub accepted: u64,
    /// Requests being served now (or queued for a pool worker).
    pub active: u64,
    /// Requests whose handler returned `Ok`.
    pub completed: u64,
    /// Requests whose handler returned an error or panicked.
    pub failed: u64,
    /// Requests refused by `verify_request`.
    pub rejected: u64,
}

/// How to wake the thread blocked in `accept` or `recv_from`: give it
/// something to receive.
#[derive(Debug)]
pub(crate) enum Waker {
    Tcp(SocketAddr),
    Udp(SocketAddr),
    #[cfg(unix)]
    Unix(PathBuf),
    /// A socket we cannot reach by address (an unnamed Unix socket).
    Unreachable,
}

impl Waker {
    /// The address to reach a socket bound to `addr`: a wildcard address
    /// (`0.0.0.0`, `::`) is reached through loopback.
    pub(crate) fn target(addr: SocketAddr) -> SocketAddr {
        let mut target = addr;
        if addr.ip().is_unspecified() {
            target.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        target
    }

    fn wake(&self) {
        // Failures are fine: they mean the socket is closed, or the loop is
        // not blocked, and the flag alone will stop it.
        match self {
            Waker::Tcp(addr) => {
                let _ = TcpStream::connect_timeout(addr, Duration::from_millis(200));
            }
            Waker::Udp(addr) => {
                let any = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                if let Ok(socket) = UdpSocket::bind(any) {
                    let _ = socket.send_to(&[], addr);
                }
            }
            #[cfg(unix)]
            Waker::Unix(path) => {
                let _ = UnixStream::connect(path);
            }
            Waker::Unreachable => {}
        }
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) local_addr: Addr,
    waker: Waker,
    shutdown: AtomicBool,
    stats: Mutex<Stats>,
    changed: Condvar,
}

impl State {
    pub(crate) fn new(local_addr: Addr, waker: Waker) -> State {
        State {
            local_addr,
            waker,
            shutdown: AtomicBool::new(false),
            stats: Mutex::new(Stats::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Stats> {
        // Nothing panics while holding this lock, but a poisoned counter is
        // still a counter.
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> Stats {
        *self.lock()
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub(crate) fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Taking the lock orders this notify after any waiter's check of the
        // flag, so no waiter misses it.
        drop(self.lock());
        self.changed.notify_all();
        self.waker.wake();
    }

    pub(crate) fn clear_shutdown(&self) {
        self.shutdown.store(false, Ordering::SeqCst);
    }

    /// Sleeps until fewer than `max` requests are active. Returns `false`
    /// if shutdown was requested meanwhile.
    pub(crate) fn wait_for_slot(&self, max: usize) -> bool {
        let mut stats = self.lock();
        while stats.active >= max as u64 && !self.is_shutdown() {
            stats = self
                .changed
                .wait(stats)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !self.is_shutdown()
    }

    /// Sleeps until no request is active or `deadline` passes. Returns
    /// whether the server went idle.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> bool {
        let mut stats = self.lock();
        while stats.active > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            stats = self
                .changed
                .wait_timeout(stats, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    pub(crate) fn reject(&self) {
        self.lock().rejected += 1;
    }

    /// Counts a request in; the ticket counts it out when dropped.
    pub(crate) fn begin(self: &Arc<State>) -> Ticket {
        let mut stats = self.lock();
        stats.accepted += 1;
        stats.active += 1;
        Ticket {
            state: Arc::clone(self),
            failed: true,
        }
    }
}

/// One request in flight. Dropping it ends the request: as `completed` if
/// [`Ticket::succeeded`] was called, as `failed` otherwise (an error, a
/// panic, or a job that never ran because no thread could be spawned).
#[derive(Debug)]
pub(crate) struct Ticket {
    state: Arc<State>,
    failed: bool,
}

impl Ticket {
    pub(crate) fn succeeded(&mut self) {
        self.failed = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut stats = self.state.lock();
        stats.active -= 1;
        if self.failed {
            stats.failed += 1;
        } else {
            stats.completed += 1;
        }
        drop(stats);
        self.state.changed.notify_all();
    }
}
