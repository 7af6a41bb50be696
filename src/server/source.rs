//! The sources of requests: a TCP or Unix listener's `accept`, a UDP or
//! Unix datagram socket's `recv_from`; and making their sockets (Python's
//! `server_bind` and `server_activate`).
//!
//! With no socket option set, a server binds as `std` does (on Unix,
//! `SO_REUSEADDR` on for TCP, and a listen backlog of 128). Any option
//! (Python's `request_queue_size`, `allow_reuse_address`,
//! `allow_reuse_port`, `create_server(dualstack_ipv6=True)`) builds the
//! socket through `socket2` instead, options set before `bind`, where they
//! must be; so does every TCP server on Linux, whose listener is given its
//! connections' timeouts and `TCP_NODELAY` before it listens
//! ([`Accepted`]).
//!
//! Every connection is a descriptor, and the common soft limit of 1,024 is
//! below the default connection cap plus what a process already holds, so
//! `accept` would fail with `EMFILE` before the cap is reached. Most
//! systems allow far more (the hard limit) to any process that asks, so a
//! server asks when it is made, and then clamps its connection cap to what
//! the limit allows.

use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, ToSocketAddrs,
    UdpSocket,
};
#[cfg(unix)]
use std::os::unix::net::{UnixDatagram, UnixListener};
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use socket2::SockAddr;
use socket2::{Domain, Protocol, Socket, Type};

use log::Level;

use super::sealed;
use super::serve::{Received, report};
#[cfg(unix)]
use crate::handler::Unix;
use crate::handler::{Addr, Stream, Udp};

/// An address a TCP or UDP server can bind: whatever `std`'s
/// [`ToSocketAddrs`] takes (`"127.0.0.1:0"`, a `SocketAddr`, `(ip, port)`,
/// `("host", port)`, a slice of addresses), and also Python's `("", port)`,
/// which means every IPv4 interface (`0.0.0.0`), where `std` would try to
/// look up a host with no name.
///
/// ```
/// use socketserver::{Connection, TcpServer};
///
/// // Python: TCPServer(("", 0), Handler)
/// let server = TcpServer::bind(("", 0), |_: &mut Connection| Ok(()))?;
/// assert!(server.local_addr()?.ip().is_unspecified());
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait BindAddr: ToSocketAddrs {
    /// The addresses to try, in order, until one binds.
    ///
    /// # Errors
    ///
    /// If a host name cannot be resolved.
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_socket_addrs()?.collect())
    }
}

/// Python's host names: `""` is every interface; others as `std` resolves them.
fn host_port(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if host.is_empty() {
        return Ok(vec![(Ipv4Addr::UNSPECIFIED, port).into()]);
    }
    Ok((host, port).to_socket_addrs()?.collect())
}

impl BindAddr for SocketAddr {}
impl BindAddr for SocketAddrV4 {}
impl BindAddr for SocketAddrV6 {}
impl BindAddr for (IpAddr, u16) {}
impl BindAddr for (Ipv4Addr, u16) {}
impl BindAddr for (Ipv6Addr, u16) {}
impl BindAddr for str {}
impl BindAddr for String {}
impl BindAddr for &[SocketAddr] {}
impl BindAddr for (&str, u16) {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        host_port(self.0, self.1)
    }
}
impl BindAddr for (String, u16) {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        host_port(&self.0, self.1)
    }
}
impl<T: BindAddr + ?Sized> BindAddr for &T {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).bind_addrs()
    }
}

/// The listen backlog `std` uses, and so this crate unless told otherwise.
pub const DEFAULT_BACKLOG: u32 = 128;

/// Socket options applied between `socket()` and `bind()`; `None` leaves
/// the system's (or `std`'s) choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[doc(hidden)]
pub struct SocketOptions {
    pub(crate) backlog: Option<u32>,
    pub(crate) reuse_address: Option<bool>,
    pub(crate) reuse_port: bool,
    pub(crate) dual_stack: Option<bool>,
    /// What every accepted connection is to have, set on a TCP listener
    /// before it listens (where [`Source::PASSES_ON`]); so, once the
    /// server is made, whether its connections come with them.
    pub(crate) accepted: Option<Accepted>,
}

/// The options a connection gets from the server: its read and write
/// timeouts and `TCP_NODELAY`.
///
/// On Linux a TCP connection is made as a copy of its listening socket
/// when its handshake completes, options and all. So a listener the
/// server binds itself is given them before `listen` (no connection can
/// be queued earlier), and no connection needs a system call of its own
/// for them. A socket handed over (`from_listener`) may have connections
/// queued already, with whatever it had then, and may be shared with
/// other servers: each connection then sets its own. So do Unix stream
/// connections (made fresh, not copied) and other systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) read: Option<Duration>,
    pub(crate) write: Option<Duration>,
    pub(crate) nodelay: bool,
}

impl Accepted {
    /// Sets them on `socket`. A timeout under a microsecond is one
    /// microsecond, as `std` has it (a `timeval` of zero means none).
    fn set(&self, socket: &Socket) -> io::Result<()> {
        let at_least = |t: Option<Duration>| t.map(|t| t.max(Duration::from_micros(1)));
        socket.set_read_timeout(at_least(self.read))?;
        socket.set_write_timeout(at_least(self.write))?;
        socket.set_tcp_nodelay(self.nodelay)
    }
}

impl SocketOptions {
    fn is_default(&self) -> bool {
        *self == SocketOptions::default()
    }

    fn backlog(&self) -> i32 {
        // The kernel clamps it to its own maximum (`somaxconn` on Linux).
        i32::try_from(self.backlog.unwrap_or(DEFAULT_BACKLOG)).unwrap_or(i32::MAX)
    }

    /// Binds a TCP or UDP socket to the first address of `addr` that
    /// binds, as `std`'s `bind` does, with the options set first (and
    /// listening, for TCP); the last error if none binds.
    fn bind_inet(&self, addr: impl BindAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
        let mut last = io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        );
        for a in addr.bind_addrs()? {
            match self.inet_socket(a, ty, proto) {
                Ok(socket) => return Ok(socket),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn inet_socket(&self, addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
        // Windows' SO_REUSEADDR lets another socket take over a port in
        // use: not what the option means on Unix (rebinding a port whose
        // old connections linger in TIME_WAIT, which Windows allows
        // anyway). It is left alone there.
        // std turns it on for TCP listeners on Unix; keep that default.
        #[cfg(unix)]
        socket.set_reuse_address(self.reuse_address.unwrap_or(ty == Type::STREAM))?;
        if self.reuse_port {
            set_reuse_port(&socket)?;
        }
        match (self.dual_stack, addr) {
            (Some(dual), SocketAddr::V6(_)) => socket.set_only_v6(!dual)?,
            (Some(true), SocketAddr::V4(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a dual-stack socket needs an IPv6 address such as [::]:0, not {addr}"),
                ));
            }
            _ => {}
        }
        if let (Some(accepted), Type::STREAM) = (self.accepted, ty) {
            accepted.set(&socket)?;
        }
        socket.bind(&addr.into())?;
        if ty == Type::STREAM {
            socket.listen(self.backlog())?;
        }
        Ok(socket)
    }
}

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_reuse_port(_: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this system",
    ))
}

/// Where a server's requests come from: a `TcpListener`, a `UdpSocket`, a
/// `UnixListener` or a `UnixDatagram` (sealed: these four).
pub trait Source: sealed::Sealed + Pollable + Send + Sync + Sized + 'static {
    /// What one request is: a connection, or a datagram received.
    type Request: Send + 'static;
    /// The socket's own address: a `SocketAddr`, or a Unix one.
    type Addr;
    /// The size of the buffer datagrams are received into (0: none).
    #[doc(hidden)]
    const BUFFER: usize;
    /// Blocks until the next request arrives.
    #[doc(hidden)]
    fn receive(this: &Arc<Self>, buf: &mut [u8]) -> io::Result<(Self::Request, Addr)>;
    /// The socket's own address.
    #[doc(hidden)]
    fn local_addr(&self) -> io::Result<Self::Addr>;
    /// Makes the socket block without a timeout (it may come from the
    /// caller in any state) and says its address.
    #[doc(hidden)]
    fn prepare(&self) -> io::Result<Addr>;
    /// Whether a socket this server binds itself is given the timeouts and
    /// `TCP_NODELAY` its connections are to have, before it listens, so
    /// that every connection comes with them ([`Accepted`]).
    #[doc(hidden)]
    const PASSES_ON: bool = false;
}

/// A socket the serving loop can wait on beside its waker (`poll(2)`):
/// on Unix, one with a descriptor.
#[cfg(unix)]
pub trait Pollable: std::os::fd::AsFd {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd> Pollable for T {}
/// A socket the serving loop can wait on: off Unix, it waits in `accept`.
#[cfg(not(unix))]
pub trait Pollable {}
#[cfg(not(unix))]
impl<T> Pollable for T {}

/// Big enough for any UDP datagram (65,507 bytes over IPv4, 65,527 over
/// IPv6 without jumbograms), so none is ever cut short.
pub(crate) const DATAGRAM_BUFFER: usize = 64 * 1024;

impl sealed::Sealed for TcpListener {}
impl Source for TcpListener {
    type Request = Stream;
    type Addr = SocketAddr;
    const BUFFER: usize = 0;
    fn receive(this: &Arc<Self>, _: &mut [u8]) -> io::Result<(Stream, Addr)> {
        let (stream, peer) = this.accept()?;
        Ok((Stream::Tcp(stream), Addr::Inet(peer)))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
    fn prepare(&self) -> io::Result<Addr> {
        self.set_nonblocking(false)?;
        Ok(Addr::Inet(TcpListener::local_addr(self)?))
    }
    #[cfg(target_os = "linux")]
    const PASSES_ON: bool = true;
}

impl sealed::Sealed for UdpSocket {}
impl Source for UdpSocket {
    type Request = Received<Udp>;
    type Addr = SocketAddr;
    const BUFFER: usize = DATAGRAM_BUFFER;
    fn receive(this: &Arc<Self>, buf: &mut [u8]) -> io::Result<(Received<Udp>, Addr)> {
        let (n, peer) = this.recv_from(buf)?;
        let data = Some(buf[..n].to_vec());
        let socket = Arc::clone(this);
        Ok((Received { data, peer, socket }, Addr::Inet(peer)))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }
    fn prepare(&self) -> io::Result<Addr> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(None)?;
        Ok(Addr::Inet(UdpSocket::local_addr(self)?))
    }
}

#[cfg(unix)]
impl sealed::Sealed for UnixListener {}
#[cfg(unix)]
impl Source for UnixListener {
    type Request = Stream;
    type Addr = std::os::unix::net::SocketAddr;
    const BUFFER: usize = 0;
    fn receive(this: &Arc<Self>, _: &mut [u8]) -> io::Result<(Stream, Addr)> {
        let (stream, peer) = this.accept()?;
        Ok((Stream::Unix(stream), Addr::Unix(peer)))
    }
    fn local_addr(&self) -> io::Result<Self::Addr> {
        UnixListener::local_addr(self)
    }
    fn prepare(&self) -> io::Result<Addr> {
        self.set_nonblocking(false)?;
        Ok(Addr::Unix(UnixListener::local_addr(self)?))
    }
}

/// The longest Unix datagram a server takes, as for UDP. Unix datagrams
/// may be longer (up to the sender's send buffer); a longer one is
/// refused whole, never handed on cut short: the buffer has one byte more,
/// so a longer one shows (`recv_from` fills it and drops the rest
/// silently).
#[cfg(unix)]
pub(crate) const MAX_UNIX_DATAGRAM: usize = DATAGRAM_BUFFER;

#[cfg(unix)]
impl sealed::Sealed for UnixDatagram {}
#[cfg(unix)]
impl Source for UnixDatagram {
    type Request = Received<Unix>;
    type Addr = std::os::unix::net::SocketAddr;
    const BUFFER: usize = MAX_UNIX_DATAGRAM + 1;
    fn receive(this: &Arc<Self>, buf: &mut [u8]) -> io::Result<(Received<Unix>, Addr)> {
        let (n, peer) = this.recv_from(buf)?;
        let data = (n <= MAX_UNIX_DATAGRAM).then(|| buf[..n].to_vec());
        let addr = Addr::Unix(peer.clone());
        let socket = Arc::clone(this);
        Ok((Received { data, peer, socket }, addr))
    }
    fn local_addr(&self) -> io::Result<Self::Addr> {
        UnixDatagram::local_addr(self)
    }
    fn prepare(&self) -> io::Result<Addr> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(None)?;
        Ok(Addr::Unix(UnixDatagram::local_addr(self)?))
    }
}

/// What a server of source `S` binds: for TCP and UDP anything
/// [`BindAddr`] takes, for Unix servers a path (`impl AsRef<Path>`), whose
/// socket file the server creates, and removes when dropped.
pub trait SourceAddr<S> {
    /// Makes the socket, with the options set; the file it created, if any.
    #[doc(hidden)]
    fn open(self, options: &SocketOptions) -> io::Result<(S, Option<PathBuf>)>;
}

impl<A: BindAddr> SourceAddr<TcpListener> for A {
    fn open(self, options: &SocketOptions) -> io::Result<(TcpListener, Option<PathBuf>)> {
        if options.is_default() {
            return Ok((TcpListener::bind(&self.bind_addrs()?[..])?, None));
        }
        let socket = options.bind_inet(self, Type::STREAM, Protocol::TCP)?;
        Ok((socket.into(), None))
    }
}

impl<A: BindAddr> SourceAddr<UdpSocket> for A {
    fn open(self, options: &SocketOptions) -> io::Result<(UdpSocket, Option<PathBuf>)> {
        if options.is_default() {
            return Ok((UdpSocket::bind(&self.bind_addrs()?[..])?, None));
        }
        let socket = options.bind_inet(self, Type::DGRAM, Protocol::UDP)?;
        Ok((socket.into(), None))
    }
}

#[cfg(unix)]
impl<A: AsRef<Path>> SourceAddr<UnixListener> for A {
    fn open(self, options: &SocketOptions) -> io::Result<(UnixListener, Option<PathBuf>)> {
        let path = self.as_ref();
        if options.backlog.is_none() {
            return Ok((UnixListener::bind(path)?, Some(path.to_owned())));
        }
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        if let Err(e) = socket.listen(options.backlog()) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok((socket.into(), Some(path.to_owned())))
    }
}

#[cfg(unix)]
impl<A: AsRef<Path>> SourceAddr<UnixDatagram> for A {
    fn open(self, _: &SocketOptions) -> io::Result<(UnixDatagram, Option<PathBuf>)> {
        let path = self.as_ref();
        Ok((UnixDatagram::bind(path)?, Some(path.to_owned())))
    }
}

/// Descriptors kept back from the connection cap for everything else a
/// process holds: the standard streams, listeners, the files and pipes of
/// handlers, a shutdown's wake-up pipe.
///
/// ```
/// // At a limit of 1,024, a server promises at most 960 connections.
/// assert_eq!(1024 - socketserver::server::FD_RESERVE, 960);
/// ```
pub const FD_RESERVE: usize = 64;

/// How many connections a server that asks for `asked` at once may
/// promise: no more than the descriptor limit less [`FD_RESERVE`] (and at
/// least one), once the soft limit is raised to the hard one, as Go's
/// runtime does at start. A clamp is noted through `log`, once per process
/// (a test suite binds hundreds of servers).
pub(crate) fn connection_cap(asked: usize) -> usize {
    let limit = raise_limit();
    let allowed = limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(FD_RESERVE)
            .max(1)
    });
    static NOTED: std::sync::Once = std::sync::Once::new();
    if allowed < asked {
        NOTED.call_once(|| {
            report(
                Level::Info,
                format_args!(
                    "serving at most {allowed} connections at once, not {asked}: \
                     the descriptor limit is {} ({FD_RESERVE} kept for other uses)",
                    limit.unwrap_or(0),
                ),
            );
        });
    }
    asked.min(allowed)
}

/// Raises the soft descriptor limit to the hard one and returns the soft
/// limit now in force (`None`: unlimited, or not a Unix system).
#[cfg(unix)]
fn raise_limit() -> Option<u64> {
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
fn raise_limit() -> Option<u64> {
    None
}
