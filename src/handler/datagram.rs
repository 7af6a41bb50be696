//! Python's `DatagramRequestHandler`: one datagram in, replies out.
//!
//! A datagram server receives whole datagrams and hands each, as a
//! [`Datagram`], to a [`DatagramRequestHandler`] (or a closure). There is
//! no connection: every datagram is a request of its own, and a reply is a
//! datagram sent back to its sender.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use super::{Addr, HandlerError, default_handle_error};
use crate::server::ServerInfo;

/// `(data, socket)` request and `client_address`.
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
pub struct Datagram {
    data: Vec<u8>,
    peer: SocketAddr,
    socket: Arc<UdpSocket>,
    server: ServerInfo,
}

impl Datagram {
    pub(crate) fn new(
        data: Vec<u8>,
        peer: SocketAddr,
        socket: Arc<UdpSocket>,
        server: ServerInfo,
    ) -> Datagram {
        Datagram {
            data,
            peer,
            socket,
            server,
        }
    }

    /// The datagram's bytes, whole: datagrams up to 65,507 bytes (the IPv4
    /// maximum) are received without truncation.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Who sent it.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `bytes` back to the sender as one datagram.
    ///
    /// # Errors
    ///
    /// As `UdpSocket::send_to` (over 65,507 bytes is `EMSGSIZE`).
    pub fn reply(&self, bytes: &[u8]) -> io::Result<()> {
        self.socket.send_to(bytes, self.peer).map(drop)
    }

    /// The server's socket, shared by every handler.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The server this datagram came to.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }
}

/// Handles one UDP datagram: Python's `DatagramRequestHandler`, with
/// [`Datagram::reply`] in place of `wfile`.
///
/// UDP has no connections: every datagram is a request of its own, may be
/// lost or reordered, and arrives whole or not at all, provided the
/// receiver's buffer is large enough. The seed's `recvfrom(1024)` is not:
/// on Linux the bytes past 1024 are silently dropped, so a long message
/// arrives cut short with no error. The servers here receive into a 64 KiB
/// buffer, larger than any UDP datagram over IPv4, so nothing is cut.
///
/// A closure `Fn(&Datagram) -> io::Result<()>` is a handler too, and so is
/// an `Arc<H>` of any handler `H`.
///
/// # Examples
///
/// ```
/// use socketserver::{Datagram, UdpServer};
///
/// let server = UdpServer::bind("127.0.0.1:0", |dgram: &Datagram| {
///     dgram.reply(&[b"echo:", dgram.data()].concat())
/// })?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"hi", server.local_addr()?)?;
/// server.handle_request()?;
/// let mut buf = [0u8; 64];
/// let n = client.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"echo:hi");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A stream handler given to a UDP server is refused by name ("\`Echo\` is
/// not a datagram request handler"):
///
/// ```compile_fail,E0277
/// use socketserver::{BaseRequestHandler, Connection};
/// struct Echo;
/// impl BaseRequestHandler for Echo {
///     fn handle(&self, _: &mut Connection) -> std::io::Result<()> { Ok(()) }
/// }
/// let server = socketserver::UdpServer::bind("127.0.0.1:0", Echo);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a datagram request handler (`DatagramRequestHandler`)",
    label = "not a `DatagramRequestHandler`",
    note = "implement `socketserver::DatagramRequestHandler` for it, or pass a closure `|d: &Datagram| -> io::Result<()>` (with the argument's type written out)"
)]
pub trait DatagramRequestHandler: Send + Sync + 'static {
    /// Serves one datagram.
    ///
    /// # Errors
    ///
    /// Any error goes to `handle_error`; the server goes on.
    fn handle(&self, datagram: &Datagram) -> io::Result<()>;

    /// Decides whether to serve a sender at all; refused datagrams are
    /// dropped and counted as `rejected`.
    fn verify_request(&self, peer: &Addr) -> bool {
        let _ = peer;
        true
    }

    /// Reports a failed request; by default one line on stderr.
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        default_handle_error(peer, error);
    }

    /// As [`BaseRequestHandler::handle_timeout`](super::BaseRequestHandler::handle_timeout).
    fn handle_timeout(&self, server: &ServerInfo) {
        let _ = server;
    }
}

impl<H: DatagramRequestHandler + ?Sized> DatagramRequestHandler for Arc<H> {
    fn handle(&self, datagram: &Datagram) -> io::Result<()> {
        (**self).handle(datagram)
    }
    fn verify_request(&self, peer: &Addr) -> bool {
        (**self).verify_request(peer)
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        (**self).handle_error(peer, error);
    }
    fn handle_timeout(&self, server: &ServerInfo) {
        (**self).handle_timeout(server);
    }
}

// Without this, a type that is not a handler gets rustc's "expected an
// `Fn(..)` closure" from this impl, not the trait's own message.
#[diagnostic::do_not_recommend]
impl<F> DatagramRequestHandler for F
where
    F: Fn(&Datagram) -> io::Result<()> + Send + Sync + 'static,
{
    fn handle(&self, datagram: &Datagram) -> io::Result<()> {
        self(datagram)
    }
}
