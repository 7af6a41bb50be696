//! TCP servers: [`TcpServer`] serves one connection at a time, like
//! Python's `TCPServer`; [`ThreadingTcpServer`] serves many at once, like
//! Python's `ThreadingTCPServer`, on a thread per connection or a pool.
//!
//! Both take any [`BaseRequestHandler`] (or closure) and bind anything that
//! names a socket address, IPv4 or IPv6, port 0 included.

use std::io;
use std::net::{SocketAddr, TcpListener};

use super::core::{Core, Streams, TcpSource};
use super::state::{State, Waker};
use super::{BindAddr, Builder, Connected, Inet, Threaded, Threading, server_type};
use crate::handler::{Addr, BaseRequestHandler};

server_type! {
    /// A TCP server that serves one connection at a time, on the thread
    /// that calls `serve_forever`: Python's `TCPServer`.
    ///
    /// While one client is served, the next waits in the listen queue. Use
    /// it for quick request/response handlers, for tests, and to see why
    /// [`ThreadingTcpServer`] exists.
    ///
    /// ```
    /// use std::io::{self, Read, Write};
    /// use socketserver::{Connection, TcpServer};
    ///
    /// let server = TcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
    ///     let mut name = String::new();
    ///     conn.read_to_string(&mut name)?;
    ///     write!(conn, "你好,{name}")
    /// })?;
    /// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
    /// client.write_all(b"Michael")?;
    /// client.shutdown(std::net::Shutdown::Write)?;
    /// server.handle_request()?;
    /// let mut reply = String::new();
    /// client.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "你好,Michael");
    /// # Ok::<(), io::Error>(())
    /// ```
    TcpServer<H: BaseRequestHandler>, TcpSource, Streams, Threading::Inline,
    example: ("\"127.0.0.1:0\"", "|_: &mut socketserver::Connection| Ok(())")
}

server_type! {
    /// A TCP server that serves each connection on its own thread, or on a
    /// pool: Python's `ThreadingTCPServer`.
    ///
    /// By default every connection gets a new thread, up to
    /// [`DEFAULT_MAX_CONNECTIONS`](crate::server::DEFAULT_MAX_CONNECTIONS)
    /// at once; [`Builder::pool`] picks a fixed pool instead. The
    /// [module docs](crate::server) say when each fits.
    ///
    /// ```
    /// use std::io::{self, Read};
    /// use std::thread;
    /// use socketserver::{Connection, ThreadingTcpServer};
    ///
    /// let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
    ///     io::Write::write_all(conn, b"Welcome!")
    /// })
    /// .pool(4)
    /// .bind("127.0.0.1:0")?;
    /// let addr = server.local_addr()?;
    /// let stop = server.shutdown_handle();
    /// let serving = thread::spawn(move || server.serve_forever());
    /// let clients: Vec<_> = (0..8)
    ///     .map(|_| thread::spawn(move || {
    ///         let mut banner = String::new();
    ///         std::net::TcpStream::connect(addr)?.read_to_string(&mut banner)?;
    ///         Ok::<_, io::Error>(banner)
    ///     }))
    ///     .collect();
    /// for client in clients {
    ///     assert_eq!(client.join().unwrap()?, "Welcome!");
    /// }
    /// stop.shutdown();
    /// serving.join().unwrap();
    /// # Ok::<(), io::Error>(())
    /// ```
    ThreadingTcpServer<H: BaseRequestHandler>, TcpSource, Streams, Threading::PerConnection,
    example: ("\"127.0.0.1:0\"", "|_: &mut socketserver::Connection| Ok(())")
}

impl<H: BaseRequestHandler> Threaded for ThreadingTcpServer<H> {}
impl<H: BaseRequestHandler> Connected for TcpServer<H> {}
impl<H: BaseRequestHandler> Connected for ThreadingTcpServer<H> {}
impl<H: BaseRequestHandler> Inet for TcpServer<H> {}
impl<H: BaseRequestHandler> Inet for ThreadingTcpServer<H> {}

macro_rules! tcp_family {
    ($name:ident) => {
        impl<H: BaseRequestHandler> $name<H> {
            /// Binds `addr` with the default options and returns the server,
            /// listening but not yet serving.
            ///
            /// # Errors
            ///
            /// If the address cannot be bound (in use, not local, ...).
            pub fn bind(addr: impl BindAddr, handler: H) -> io::Result<Self> {
                Self::builder(handler).bind(addr)
            }

            /// The address the server listens on: with port 0, the port the
            /// system picked.
            ///
            /// # Errors
            ///
            /// As `TcpListener::local_addr`.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.core.source().0.local_addr()
            }
        }

        impl<H: BaseRequestHandler> Builder<H, $name<H>> {
            /// Binds `addr` and returns the server, listening but not yet
            /// serving, with the socket options set on this builder.
            ///
            /// # Errors
            ///
            /// If the address cannot be bound or a socket option cannot be
            /// set, or a pool of 0 was asked for.
            pub fn bind(self, addr: impl BindAddr) -> io::Result<$name<H>> {
                let listener = self.config.socket.tcp_listener(addr)?;
                self.from_listener(listener)
            }

            /// Serves on a listener you bound yourself (to set socket options
            /// first, or to inherit one); the builder's socket options
            /// (backlog, reuse, dual stack) are not applied to it.
            ///
            /// # Errors
            ///
            /// If the listener's address cannot be read, or a pool of 0 was
            /// asked for.
            pub fn from_listener(self, listener: TcpListener) -> io::Result<$name<H>> {
                listener.set_nonblocking(false)?;
                let local = listener.local_addr()?;
                let state = State::new(Addr::Inet(local), Waker::Tcp(Waker::target(local)));
                Ok($name {
                    core: Core::new(
                        TcpSource(listener),
                        Streams::new(self.handler),
                        self.config,
                        state,
                    )?,
                })
            }
        }
    };
}

tcp_family!(TcpServer);
tcp_family!(ThreadingTcpServer);
