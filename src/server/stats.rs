//! A server's counters, and the gate they drive.
//!
//! One mutex guards the counters, and one condvar announces every change
//! to them, so the serving loop can sleep until a slot frees up
//! (backpressure) and a shutdown can sleep until the last request is done,
//! both without polling. Each request holds a [`Ticket`] that counts it
//! out, as completed or failed, when it ends.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::State;
use crate::handler::Addr;

/// A snapshot of a server's counters.
///
/// Every request the server takes on is `accepted`, and then `active` until
/// it ends as `completed` or `failed`, so at any moment
/// `accepted == active + completed + failed`. Requests refused by
/// `verify_request` are only `rejected`; connections closed at once for
/// being over [`Builder::max_per_peer`](crate::server::Builder::max_per_peer)
/// are only `refused_per_peer`; connections closed for the PROXY protocol
/// ([`Builder::proxy_protocol`](crate::server::Builder::proxy_protocol))
/// are only `refused_proxy`.
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
    /// Connections closed unserved by the PROXY protocol: from an address
    /// not trusted, or with a missing, malformed, oversized or late header.
    pub refused_proxy: u64,
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
        )?;
        // Said only when the PROXY protocol refused any: the line stays as
        // it was for servers without it.
        match self.refused_proxy {
            0 => Ok(()),
            n => write!(f, ", {n} refused by the PROXY protocol"),
        }
    }
}

/// The key a connection counts under for the per-peer cap: its IP address,
/// an IPv4-mapped IPv6 address as the IPv4 one, and any other IPv6 address
/// as its /64, the block one host or one home usually gets.
pub(crate) fn peer_key(peer: &Addr) -> Option<IpAddr> {
    match peer.ip()?.to_canonical() {
        // The /64: the address's top 64 bits.
        IpAddr::V6(v6) => Some(Ipv6Addr::from(u128::from(v6) >> 64 << 64).into()),
        v4 => Some(v4),
    }
}

/// The counters, and the connections being served per peer.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    stats: Stats,
    per_peer: HashMap<IpAddr, usize>,
}

impl State {
    pub(crate) fn counts(&self) -> MutexGuard<'_, Counts> {
        crate::lock(&self.counts)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counts().stats
    }

    /// Sleeps until fewer than `max` requests are active, or `deadline`
    /// (if given) passes. Whether a slot is free: `false` if the wait ran
    /// out or a shutdown was asked for meanwhile.
    pub(crate) fn wait_for_slot(&self, max: usize, deadline: Option<Instant>) -> bool {
        let full = |c: &mut Counts| c.stats.active >= max as u64 && !self.is_shutdown();
        self.wait_while(deadline, full) && !self.is_shutdown()
    }

    /// Sleeps until no request is active or `deadline` passes. Returns
    /// whether the server went idle.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> bool {
        self.wait_while(Some(deadline), |c| c.stats.active > 0)
    }

    /// Sleeps while `busy` holds, woken to ask again by every change to
    /// the counts and by a shutdown, until `deadline` if given (`None`: a
    /// `Duration::MAX`, which the condvar takes as no bound). Whether
    /// `busy` stopped holding in time.
    fn wait_while(&self, deadline: Option<Instant>, busy: impl FnMut(&mut Counts) -> bool) -> bool {
        let left = deadline.map_or(Duration::MAX, |at| {
            at.saturating_duration_since(Instant::now())
        });
        let waited = self
            .changed
            .wait_timeout_while(self.counts(), left, busy)
            .unwrap_or_else(PoisonError::into_inner)
            .1;
        !waited.timed_out()
    }

    /// Sleeps until a request ends, shutdown is asked for, or `timeout`
    /// passes (or, rarely, for no reason): a pause after a failed `accept`
    /// that ends early when a descriptor is likely to have come free.
    pub(crate) fn wait_for_change(&self, timeout: Duration) {
        let counts = self.counts();
        if !self.is_shutdown() {
            drop(self.changed.wait_timeout(counts, timeout));
        }
    }

    /// Counts a request in; the ticket counts it out when dropped, or
    /// takes it back ([`Ticket::withdraw`]) if it is refused.
    pub(crate) fn begin(self: &Arc<State>) -> Ticket {
        let mut counts = self.counts();
        counts.stats.accepted += 1;
        counts.stats.active += 1;
        Ticket {
            state: Arc::clone(self),
            peer: None,
            active: true,
            outcome: |s| s.failed += 1,
        }
    }
}

/// One request in flight. Dropping it ends the request: as `completed` if
/// [`Ticket::succeeded`] was called, as `failed` otherwise (an error, a
/// panic, or a job that never ran because no thread could be spawned).
#[derive(Debug)]
#[doc(hidden)]
pub struct Ticket {
    pub(super) state: Arc<State>,
    /// The per-peer count this request holds, if the cap is on.
    peer: Option<IpAddr>,
    /// Not yet counted out (by [`Ticket::withdraw`], or the drop).
    active: bool,
    /// What the drop counts the request as: failed, unless it
    /// [`succeeded`](Ticket::succeeded).
    outcome: fn(&mut Stats),
}

impl Ticket {
    pub(crate) fn succeeded(&mut self) {
        self.outcome = |s| s.completed += 1;
    }

    /// Takes the request back out of `accepted` and `active` now: it was
    /// refused (the per-peer cap, `verify_request`, the PROXY protocol),
    /// and counts only under the counter `refused` adds to. Dropping the
    /// ticket then counts nothing more.
    pub(crate) fn withdraw(&mut self, refused: fn(&mut Stats)) {
        self.end(|s| {
            s.accepted -= 1;
            refused(s);
        });
    }

    /// Counts this request against its peer's cap of `max`: whether there
    /// was room (the check and the count under one lock, since behind the
    /// PROXY protocol many connections' threads do this at once).
    pub(crate) fn claim_peer(&mut self, key: IpAddr, max: usize) -> bool {
        let mut counts = self.state.counts();
        let n = counts.per_peer.entry(key).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        self.peer = Some(key);
        true
    }

    /// Counts the request out of `active` (once), into what `count` adds
    /// to, and gives back its per-peer count.
    fn end(&mut self, count: impl FnOnce(&mut Stats)) {
        if !std::mem::take(&mut self.active) {
            return;
        }
        let mut counts = self.state.counts();
        counts.stats.active -= 1;
        count(&mut counts.stats);
        if let Some(key) = self.peer.take() {
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

impl Drop for Ticket {
    fn drop(&mut self) {
        self.end(self.outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::shutdown::Waker;

    // Which addresses count as one peer, and the count given back when a
    // request ends: tests/proxy_protocol.rs, through the public API.
    #[test]
    fn an_idle_peer_is_forgotten() {
        let addr = Addr::Inet("127.0.0.2:1".parse().unwrap());
        let waker = Waker::new(&addr).unwrap();
        let state = Arc::new(State::new(addr.clone(), waker, Default::default()));
        let mut ticket = state.begin();
        assert!(ticket.claim_peer(peer_key(&addr).unwrap(), 1));
        drop(ticket);
        assert!(state.counts().per_peer.is_empty());
    }
}
