//! Making a server's socket: Python's `server_bind` and `server_activate`.
//!
//! With no socket option set, a server binds as `std` does (on Unix,
//! `SO_REUSEADDR` on for TCP, and a listen backlog of 128). Any option from
//! [`SocketOptions`] (Python's `request_queue_size`, `allow_reuse_address`,
//! `allow_reuse_port`, `create_server(dualstack_ipv6=True)`) builds the
//! socket through `socket2` instead, options set before `bind`, where they
//! must be.

use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, ToSocketAddrs,
    UdpSocket,
};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::Path;

#[cfg(unix)]
use socket2::SockAddr;
use socket2::{Domain, Protocol, Socket, Type};

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
pub trait BindAddr {
    /// The addresses to try, in order, until one binds.
    ///
    /// # Errors
    ///
    /// If a host name cannot be resolved.
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

/// Python's host names: `""` is every interface; others as `std` resolves them.
fn host_port(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if host.is_empty() {
        return Ok(vec![(Ipv4Addr::UNSPECIFIED, port).into()]);
    }
    Ok((host, port).to_socket_addrs()?.collect())
}

/// The addresses `std` makes of `addr`.
fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    Ok(addr.to_socket_addrs()?.collect())
}

impl BindAddr for SocketAddr {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}
impl BindAddr for SocketAddrV4 {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![(*self).into()])
    }
}
impl BindAddr for SocketAddrV6 {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![(*self).into()])
    }
}
impl BindAddr for (IpAddr, u16) {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![(*self).into()])
    }
}
impl BindAddr for (Ipv4Addr, u16) {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![(*self).into()])
    }
}
impl BindAddr for (Ipv6Addr, u16) {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![(*self).into()])
    }
}
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
impl BindAddr for str {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        resolve(self)
    }
}
impl BindAddr for String {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        resolve(self.as_str())
    }
}
impl BindAddr for [SocketAddr] {
    fn bind_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
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
pub(crate) struct SocketOptions {
    pub(crate) backlog: Option<u32>,
    pub(crate) reuse_address: Option<bool>,
    pub(crate) reuse_port: bool,
    pub(crate) dual_stack: Option<bool>,
}

impl SocketOptions {
    fn is_default(&self) -> bool {
        *self == SocketOptions::default()
    }

    fn backlog(&self) -> i32 {
        // The kernel clamps it to its own maximum (`somaxconn` on Linux).
        i32::try_from(self.backlog.unwrap_or(DEFAULT_BACKLOG)).unwrap_or(i32::MAX)
    }

    /// A socket for `addr` with the internet options set, not yet bound.
    fn inet_socket(&self, addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
        // Windows' SO_REUSEADDR lets another socket take over a port in
        // use: not what the option means on Unix (rebinding a port whose
        // old connections linger in TIME_WAIT, which Windows allows
        // anyway). It is left alone there.
        #[cfg(unix)]
        {
            // std turns it on for TCP listeners on Unix; keep that default.
            let default = ty == Type::STREAM;
            socket.set_reuse_address(self.reuse_address.unwrap_or(default))?;
        }
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
        socket.bind(&addr.into())?;
        Ok(socket)
    }

    /// Binds a TCP listener to the first address of `addr` that binds.
    pub(crate) fn tcp_listener(&self, addr: impl BindAddr) -> io::Result<TcpListener> {
        if self.is_default() {
            return TcpListener::bind(&addr.bind_addrs()?[..]);
        }
        each_addr(addr, |a| {
            let socket = self.inet_socket(a, Type::STREAM, Protocol::TCP)?;
            socket.listen(self.backlog())?;
            Ok(socket.into())
        })
    }

    /// Binds a UDP socket to the first address of `addr` that binds.
    pub(crate) fn udp_socket(&self, addr: impl BindAddr) -> io::Result<UdpSocket> {
        if self.is_default() {
            return UdpSocket::bind(&addr.bind_addrs()?[..]);
        }
        each_addr(addr, |a| {
            Ok(self.inet_socket(a, Type::DGRAM, Protocol::UDP)?.into())
        })
    }

    /// Creates the socket file at `path` and listens on it.
    #[cfg(unix)]
    pub(crate) fn unix_listener(&self, path: &Path) -> io::Result<UnixListener> {
        if self.backlog.is_none() {
            return UnixListener::bind(path);
        }
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        if let Err(e) = socket.listen(self.backlog()) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(socket.into())
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

/// Tries each address `addr` resolves to, as `std`'s `bind` does; the last
/// error if none binds.
fn each_addr<T>(
    addr: impl BindAddr,
    mut bind: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.bind_addrs()? {
        match bind(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
