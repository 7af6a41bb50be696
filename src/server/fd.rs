//! File descriptors: how many connections the process can hold at all.
//!
//! Every connection is a descriptor, and the common soft limit of 1,024 is
//! below the default connection cap plus what a process already holds, so
//! `accept` would fail with `EMFILE` before the cap is reached. Most systems
//! allow far more (the hard limit) to any process that asks, so `bind` asks,
//! once per server, and then clamps the connection cap to what the limit
//! allows.

/// Descriptors kept back from the connection cap for everything else a
/// process holds: the standard streams, listeners, the files and pipes of
/// handlers, a shutdown's wake-up connection.
///
/// ```
/// // At a limit of 1,024, a server promises at most 960 connections.
/// assert_eq!(1024 - socketserver::server::FD_RESERVE, 960);
/// ```
pub const FD_RESERVE: usize = 64;

/// Raises the soft descriptor limit to the hard one, as Go's runtime does
/// at start, and returns the soft limit now in force (`None`: unlimited, or
/// not a Unix system).
#[cfg(unix)]
pub(crate) fn raise_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        // macOS refuses an unlimited soft limit; the old one then stands.
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

#[cfg(not(unix))]
pub(crate) fn raise_limit() -> Option<u64> {
    None
}

/// The most connections a descriptor limit of `limit` lets a server
/// promise: the limit less [`FD_RESERVE`], and at least one.
pub(crate) fn connections_allowed(limit: Option<u64>) -> usize {
    limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(FD_RESERVE)
            .max(1)
    })
}
