//! UDP servers: [`UdpServer`] handles one datagram at a time, like Python's
//! `UDPServer`; [`ThreadingUdpServer`] hands each to a thread or a pool.
//!
//! UDP has no connections, so each datagram is one request: the handler
//! gets its bytes and its sender, and replies with a datagram of its own.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use super::core::{Core, Datagrams, UdpSource};
use super::state::{State, Waker};
use super::{BindAddr, Builder, Inet, Threaded, Threading, server_type};
use crate::handler::{Addr, DatagramRequestHandler};

server_type! {
    /// A UDP server that handles one datagram at a time: Python's
    /// `UDPServer`. See [`DatagramRequestHandler`] for an example.
    UdpServer<H: DatagramRequestHandler>, UdpSource, Datagrams, Threading::Inline,
    example: ("\"127.0.0.1:0\"", "|_: &socketserver::Datagram| Ok(())")
}

server_type! {
    /// A UDP server that handles each datagram on a thread or a pool:
    /// Python's `ThreadingUDPServer`. Worth it when handling a datagram
    /// takes long (a lookup, a delay) compared with receiving one.
    ///
    /// ```
    /// use socketserver::{Datagram, ThreadingUdpServer};
    ///
    /// let server = ThreadingUdpServer::builder(|d: &Datagram| d.reply(d.data()))
    ///     .pool(2)
    ///     .bind("127.0.0.1:0")?;
    /// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// client.send_to(b"ping", server.local_addr()?)?;
    /// server.handle_request()?;
    /// let mut buf = [0u8; 16];
    /// assert_eq!(client.recv(&mut buf)?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ThreadingUdpServer<H: DatagramRequestHandler>, UdpSource, Datagrams, Threading::PerConnection,
    example: ("\"127.0.0.1:0\"", "|_: &socketserver::Datagram| Ok(())")
}

impl<H: DatagramRequestHandler> Threaded for ThreadingUdpServer<H> {}
impl<H: DatagramRequestHandler> Inet for UdpServer<H> {}
impl<H: DatagramRequestHandler> Inet for ThreadingUdpServer<H> {}

macro_rules! udp_family {
    ($name:ident) => {
        impl<H: DatagramRequestHandler> $name<H> {
            /// Binds `addr` with the default options.
            ///
            /// # Errors
            ///
            /// If the address cannot be bound.
            pub fn bind(addr: impl BindAddr, handler: H) -> io::Result<Self> {
                Self::builder(handler).bind(addr)
            }

            /// The address the server receives on.
            ///
            /// # Errors
            ///
            /// As `UdpSocket::local_addr`.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.core.source().socket.local_addr()
            }
        }

        impl<H: DatagramRequestHandler> Builder<H, $name<H>> {
            /// Binds `addr` and returns the server, ready to serve, with the
            /// socket options set on this builder.
            ///
            /// # Errors
            ///
            /// If the address cannot be bound or a socket option cannot be
            /// set, or a pool of 0 was asked for.
            pub fn bind(self, addr: impl BindAddr) -> io::Result<$name<H>> {
                let socket = self.config.socket.udp_socket(addr)?;
                self.from_socket(socket)
            }

            /// Serves on a socket you bound yourself; the builder's socket
            /// options are not applied to it.
            ///
            /// # Errors
            ///
            /// If the socket's address cannot be read, or a pool of 0 was
            /// asked for.
            pub fn from_socket(self, socket: UdpSocket) -> io::Result<$name<H>> {
                socket.set_nonblocking(false)?;
                socket.set_read_timeout(None)?;
                let local = socket.local_addr()?;
                let state = State::new(Addr::Inet(local), Waker::Udp(Waker::target(local)));
                Ok($name {
                    core: Core::new(
                        UdpSource::new(socket),
                        Datagrams::new(self.handler),
                        self.config,
                        state,
                    )?,
                })
            }
        }
    };
}

udp_family!(UdpServer);
udp_family!(ThreadingUdpServer);
