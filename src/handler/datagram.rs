//! Python's `DatagramRequestHandler`: one datagram in, replies out.
//!
//! A datagram server receives whole datagrams and hands each, as a
//! [`Datagram`], to a [`DatagramRequestHandler`](crate::DatagramRequestHandler) (or a closure). There is
//! no connection: every datagram is a request of its own, and a reply is a
//! datagram sent back to its sender.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::sync::Arc;

use super::Addr;
use crate::server::{ServerInfo, sealed};

/// A kind of datagram socket: [`Udp`] (the default everywhere) or, on
/// Unix, [`Unix`]. It fixes the type of a [`Datagram`]'s socket and of its
/// sender's address, so a UDP handler gets a `SocketAddr` and a Unix one a
/// Unix address, each without an `Option` to unwrap; a handler written
/// for any `F: DatagramFamily` serves both, as one Python
/// `DatagramRequestHandler` class serves `UDPServer` and
/// `UnixDatagramServer`.
pub trait DatagramFamily: sealed::Sealed + Send + Sync + 'static {
    /// The socket datagrams arrive on.
    type Socket: fmt::Debug + Send + Sync + 'static;
    /// A sender's address.
    type PeerAddr: fmt::Debug + Clone + Send + Sync + 'static;
    #[doc(hidden)]
    fn send_to(socket: &Self::Socket, bytes: &[u8], peer: &Self::PeerAddr) -> io::Result<()>;
    #[doc(hidden)]
    fn to_addr(peer: &Self::PeerAddr) -> Addr;
}

/// Datagrams over UDP: [`UdpServer`](crate::UdpServer) and
/// [`ThreadingUdpServer`](crate::ThreadingUdpServer).
#[derive(Debug, Clone, Copy)]
pub enum Udp {}

impl sealed::Sealed for Udp {}

impl DatagramFamily for Udp {
    type Socket = UdpSocket;
    type PeerAddr = SocketAddr;
    fn send_to(socket: &UdpSocket, bytes: &[u8], peer: &SocketAddr) -> io::Result<()> {
        socket.send_to(bytes, peer).map(drop)
    }
    fn to_addr(peer: &SocketAddr) -> Addr {
        Addr::Inet(*peer)
    }
}

/// Datagrams over a Unix-domain socket file:
/// [`UnixDatagramServer`](crate::UnixDatagramServer) and
/// [`ThreadingUnixDatagramServer`](crate::ThreadingUnixDatagramServer).
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
#[derive(Debug, Clone, Copy)]
pub enum Unix {}

#[cfg(unix)]
impl sealed::Sealed for Unix {}

#[cfg(unix)]
impl DatagramFamily for Unix {
    type Socket = UnixDatagram;
    type PeerAddr = UnixAddr;
    fn send_to(socket: &UnixDatagram, bytes: &[u8], peer: &UnixAddr) -> io::Result<()> {
        if peer.is_unnamed() {
            // The kernel would say only "Invalid argument".
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the sender's socket is unnamed (it bound no path): there is nowhere to reply",
            ));
        }
        socket.send_to_addr(bytes, peer).map(drop)
    }
    fn to_addr(peer: &UnixAddr) -> Addr {
        Addr::Unix(peer.clone())
    }
}

/// One datagram, handed to [`DatagramRequestHandler::handle`](super::DatagramRequestHandler::handle): Python's
/// `(data, socket)` request and `client_address`. `Datagram` alone is a
/// UDP datagram; `Datagram<Unix>` came to a Unix datagram server.
///
/// ```
/// use socketserver::{Datagram, UdpServer};
///
/// let server = UdpServer::bind("127.0.0.1:0", |d: &Datagram| {
///     let text = format!("{} bytes from port {}", d.data().len(), d.peer_addr().port());
///     d.reply(text.as_bytes())
/// })?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(&[0u8; 60_000], server.local_addr()?)?; // arrives whole
/// server.handle_request()?;
/// let mut buf = [0u8; 64];
/// let n = client.recv(&mut buf)?;
/// assert!(std::str::from_utf8(&buf[..n]).unwrap().starts_with("60000 bytes"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Datagram<F: DatagramFamily = Udp> {
    pub(crate) data: Vec<u8>,
    pub(crate) peer: F::PeerAddr,
    pub(crate) socket: Arc<F::Socket>,
    pub(crate) server: ServerInfo,
}

impl<F: DatagramFamily> Datagram<F> {
    /// The datagram's bytes, whole: datagrams up to 65,507 bytes (the IPv4
    /// maximum) are received without truncation.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Who sent it: a `SocketAddr` for UDP, a Unix socket address (often
    /// unnamed) for a Unix datagram server.
    pub fn peer_addr(&self) -> F::PeerAddr {
        self.peer.clone()
    }

    /// Who sent it, as an [`Addr`] whatever the family: for handlers that
    /// serve both, and for log lines.
    ///
    /// ```
    /// use socketserver::{Addr, Datagram};
    /// fn sender(d: &Datagram) -> String {
    ///     d.peer().to_string() // "127.0.0.1:5000"
    /// }
    /// ```
    pub fn peer(&self) -> Addr {
        F::to_addr(&self.peer)
    }

    /// Sends `bytes` back to the sender as one datagram.
    ///
    /// # Errors
    ///
    /// As the socket's `send_to` (over 65,507 bytes on UDP is
    /// `EMSGSIZE`); `NotConnected` for a Unix sender whose socket is
    /// unnamed, which cannot be replied to.
    pub fn reply(&self, bytes: &[u8]) -> io::Result<()> {
        F::send_to(&self.socket, bytes, &self.peer)
    }

    /// The server's socket, shared by every handler.
    pub fn socket(&self) -> &F::Socket {
        &self.socket
    }

    /// The server this datagram came to.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }
}
