//! What a server's threads share: counters, the connection gate, the
//! shutdown flag, how to wake a blocked `accept`, and the live connections
//! a shutdown ends ([`Live`]).
//!
//! One mutex guards the counters, and one condvar announces every change to
//! them, so the accept loop can sleep until a slot frees up (backpressure)
//! and a graceful shutdown can sleep until the last request is done, both
//! without polling.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::live::Live;
use crate::handler::Addr;

/// A snapshot of a server's counters.
///
/// Every request the server takes on is `accepted`, and then `active` until
/// it ends as `completed` or `failed`, so at any moment
/// `accepted == active + completed + failed`. Requests refused by
/// `verify_request` are only `rejected`; connections closed at once for
/// being over [`Builder::max_per_peer`](crate::server::Builder::max_per_peer)
/// are only `refused_per_peer`.
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
    /// Connections closed unserved because their address already had
    /// [`Builder::max_per_peer`](crate::server::Builder::max_per_peer)
    /// connections being served.
    pub refused_per_peer: u64,
}

/// One line for a summary, as the examples print when they stop.
///
/// ```
/// let stats = socketserver::Stats { accepted: 3, completed: 2, failed: 1, ..Default::default() };
/// assert_eq!(
///     stats.to_string(),
///     "3 requests: 2 completed, 1 failed, 0 active; 0 rejected, 0 refused over the per-peer cap"
/// );
/// ```
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: {} completed, {} failed, {} active; \
             {} rejected, {} refused over the per-peer cap",
            self.accepted,
            self.completed,
            self.failed,
            self.active,
            self.rejected,
            self.refused_per_peer
        )
    }
}

/// The key a connection counts under for the per-peer cap: its IP address,
/// an IPv4-mapped IPv6 address as the IPv4 one, and any other IPv6 address
/// as its /64, the block one host or one home usually gets.
pub(crate) fn peer_key(peer: &Addr) -> Option<IpAddr> {
    match peer.ip()?.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            Some(IpAddr::V6(Ipv6Addr::from(prefix)))
        }
        v4 => Some(v4),
    }
}

/// The counters, and the connections being served per peer.
#[derive(Debug, Default)]
struct Counts {
    stats: Stats,
    per_peer: HashMap<IpAddr, usize>,
}

/// How to wake the thread blocked in `accept` or `recv_from`: give it
/// something to receive.
#[derive(Debug)]
pub(crate) enum Waker {
    Tcp(SocketAddr),
    Udp(SocketAddr),
    #[cfg(unix)]
    Unix(PathBuf),
    /// A Unix datagram socket: wake it with an empty datagram.
    #[cfg(unix)]
    UnixDatagram(PathBuf),
    /// A socket we cannot reach by address (an unnamed Unix socket).
    #[cfg(unix)]
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
            #[cfg(unix)]
            Waker::UnixDatagram(path) => {
                if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() {
                    let _ = socket.send_to(&[], path);
                }
            }
            #[cfg(unix)]
            Waker::Unreachable => {}
        }
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) local_addr: Addr,
    waker: Waker,
    shutdown: AtomicBool,
    counts: Mutex<Counts>,
    changed: Condvar,
    /// The connections being served, for a shutdown to end.
    pub(crate) live: Live,
    /// How long a shutdown lets requests run on ([`Builder::graceful_shutdown`]).
    ///
    /// [`Builder::graceful_shutdown`]: crate::server::Builder::graceful_shutdown
    pub(crate) grace: Duration,
}

impl State {
    pub(crate) fn new(local_addr: Addr, waker: Waker) -> State {
        State {
            local_addr,
            waker,
            shutdown: AtomicBool::new(false),
            counts: Mutex::new(Counts::default()),
            changed: Condvar::new(),
            live: Live::new(),
            grace: super::DEFAULT_GRACE,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Nothing panics while holding this lock, but a poisoned counter is
        // still a counter.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.lock().stats
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Stops the serving loop and drains the live connections: a handler
    /// waiting for its client's next request sees end of stream at once,
    /// and every connection's deadline becomes the end of the grace period.
    pub(crate) fn request_shutdown(&self) {
        // In this order: the grace end is known before the flag is up (the
        // serving loop then asks for it), and the flag is up before any
        // handler sees its end of stream (it may ask whether we stop).
        // A grace too long for an `Instant` (`Duration::MAX`) is a century.
        let now = Instant::now();
        let end = now
            .checked_add(self.grace)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        self.live.announce_drain(end);
        self.stop();
        self.live.drain_all();
        self.waker.wake();
    }

    /// Stops the serving loop and cuts every live connection at once.
    pub(crate) fn request_shutdown_now(&self) {
        self.live.cut();
        self.stop();
        self.waker.wake();
    }

    fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Taking the lock orders this notify after any waiter's check of the
        // flag, so no waiter misses it.
        drop(self.lock());
        self.changed.notify_all();
    }

    pub(crate) fn clear_shutdown(&self) {
        self.live.reopen();
        self.shutdown.store(false, Ordering::SeqCst);
    }

    /// Sleeps until fewer than `max` requests are active. Returns `false`
    /// if shutdown was requested meanwhile.
    pub(crate) fn wait_for_slot(&self, max: usize) -> bool {
        let mut counts = self.lock();
        while counts.stats.active >= max as u64 && !self.is_shutdown() {
            counts = self
                .changed
                .wait(counts)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !self.is_shutdown()
    }

    /// As [`wait_for_slot`](Self::wait_for_slot), but gives up at
    /// `deadline`: `false` then too.
    pub(crate) fn wait_for_slot_until(&self, max: usize, deadline: Instant) -> bool {
        let mut counts = self.lock();
        while counts.stats.active >= max as u64 && !self.is_shutdown() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            counts = self
                .changed
                .wait_timeout(counts, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        !self.is_shutdown()
    }

    /// Sleeps until no request is active or `deadline` passes. Returns
    /// whether the server went idle.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> bool {
        let mut counts = self.lock();
        while counts.stats.active > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            counts = self
                .changed
                .wait_timeout(counts, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Sleeps until a request ends, shutdown is asked for, or `timeout`
    /// passes (or, rarely, for no reason): a pause after a failed `accept`
    /// that ends early when a descriptor is likely to have come free.
    pub(crate) fn wait_for_change(&self, timeout: Duration) {
        let counts = self.lock();
        if !self.is_shutdown() {
            drop(self.changed.wait_timeout(counts, timeout));
        }
    }

    pub(crate) fn reject(&self) {
        self.lock().stats.rejected += 1;
    }

    /// Whether the peer counted under `key` has fewer than `max`
    /// connections being served; if not, counts one more `refused_per_peer`.
    /// Only the serving thread adds connections, so room found here is
    /// still there at its [`begin`](Self::begin).
    pub(crate) fn has_room(&self, key: IpAddr, max: usize) -> bool {
        let mut counts = self.lock();
        if counts.per_peer.get(&key).is_some_and(|&n| n >= max) {
            counts.stats.refused_per_peer += 1;
            return false;
        }
        true
    }

    /// Counts a request in, and against its peer's cap if `key` is given;
    /// the ticket counts it out when dropped.
    pub(crate) fn begin(self: &Arc<State>, key: Option<IpAddr>) -> Ticket {
        let mut counts = self.lock();
        if let Some(key) = key {
            *counts.per_peer.entry(key).or_insert(0) += 1;
        }
        counts.stats.accepted += 1;
        counts.stats.active += 1;
        Ticket {
            state: Arc::clone(self),
            peer: key,
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
    /// The per-peer count this request holds, if the cap is on.
    peer: Option<IpAddr>,
    failed: bool,
}

impl Ticket {
    pub(crate) fn succeeded(&mut self) {
        self.failed = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.state.lock();
        counts.stats.active -= 1;
        if self.failed {
            counts.stats.failed += 1;
        } else {
            counts.stats.completed += 1;
        }
        if let Some(key) = self.peer {
            // Forget a peer with nothing left, so the map holds only the
            // addresses being served.
            if let Some(n) = counts.per_peer.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.per_peer.remove(&key);
                }
            }
        }
        drop(counts);
        self.state.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(addr: &str) -> Option<IpAddr> {
        peer_key(&Addr::Inet(addr.parse().unwrap()))
    }

    #[test]
    fn peers_count_by_ipv4_address_and_ipv6_slash_64() {
        assert_eq!(key("127.0.0.2:5000"), key("127.0.0.2:6000"));
        assert_ne!(key("127.0.0.2:5000"), key("127.0.0.1:5000"));
        // An IPv4 client on a dual-stack socket is still its IPv4 address.
        assert_eq!(key("[::ffff:127.0.0.2]:5000"), key("127.0.0.2:1"));
        // One host's IPv6 addresses share a /64; another /64 is another peer.
        assert_eq!(key("[2001:db8:0:1::1]:1"), key("[2001:db8:0:1:ffff::9]:2"));
        assert_ne!(key("[2001:db8:0:1::1]:1"), key("[2001:db8:0:2::1]:1"));
    }

    #[test]
    fn the_per_peer_count_is_given_back_when_a_request_ends() {
        let state = Arc::new(State::new(
            Addr::Inet("127.0.0.1:1".parse().unwrap()),
            Waker::Tcp("127.0.0.1:1".parse().unwrap()),
        ));
        let peer = key("127.0.0.2:1").unwrap();
        let first = state.begin(Some(peer));
        assert!(!state.has_room(peer, 1));
        assert_eq!(state.stats().refused_per_peer, 1);
        drop(first);
        assert!(state.has_room(peer, 1));
        assert!(
            state.lock().per_peer.is_empty(),
            "an idle peer is forgotten"
        );
    }
}
