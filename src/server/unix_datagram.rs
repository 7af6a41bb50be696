//! Unix-domain datagram servers: UDP's model over a socket file, like
//! Python's `UnixDatagramServer` and `ThreadingUnixDatagramServer`.
//!
//! Each datagram is a request, as over UDP, but only processes on this
//! machine that may open the file can send one, and nothing is lost or
//! reordered on the way. A client that wants replies binds a path of its
//! own: an unnamed sender can be heard, not answered.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use super::core::{Core, UnixDatagramSource, UnixDatagrams};
use super::state::{State, Waker};
use super::{Builder, Threaded, Threading, server_type};
use crate::handler::{Addr, DatagramRequestHandler, Unix};

server_type! {
    /// A Unix-domain datagram server that handles one datagram at a time:
    /// Python's `UnixDatagramServer`. Its handler is a
    /// [`DatagramRequestHandler<Unix>`](DatagramRequestHandler) (or a
    /// closure over `&Datagram<Unix>`); datagrams up to 65,536 bytes are
    /// taken whole, longer ones refused whole (`InvalidData` to
    /// `handle_error`).
    ///
    /// ```
    /// use std::os::unix::net::UnixDatagram;
    /// use socketserver::UnixDatagramServer;
    /// use socketserver::handler::{Datagram, Unix};
    ///
    /// let dir = std::env::temp_dir();
    /// let path = dir.join(format!("socketserver-doc-dgram-{}.sock", std::process::id()));
    /// let server = UnixDatagramServer::bind(&path, |d: &Datagram<Unix>| {
    ///     d.reply(&[b"echo:", d.data()].concat())
    /// })?;
    /// // The client binds a path of its own, so that it can be answered.
    /// let me = dir.join(format!("socketserver-doc-dgram-client-{}.sock", std::process::id()));
    /// let client = UnixDatagram::bind(&me)?;
    /// client.send_to(b"hi", &path)?;
    /// server.handle_request()?;
    /// let mut buf = [0u8; 16];
    /// let n = client.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"echo:hi");
    /// std::fs::remove_file(&me)?;
    /// drop(server); // removes the socket file
    /// assert!(!path.exists());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    UnixDatagramServer<H: DatagramRequestHandler<Unix>>, UnixDatagramSource, UnixDatagrams, Threading::Inline,
    example: ("std::env::temp_dir().join(format!(\"socketserver-doc-{}-{}.sock\", std::process::id(), line!()))", "|_: &socketserver::handler::Datagram<socketserver::handler::Unix>| Ok(())")
}

server_type! {
    /// A Unix-domain datagram server that handles each datagram on a
    /// thread or a pool: Python's `ThreadingUnixDatagramServer`.
    ///
    /// ```
    /// use std::io;
    /// use std::os::unix::net::UnixDatagram;
    /// use socketserver::ThreadingUnixDatagramServer;
    /// use socketserver::handler::{Datagram, DatagramFamily, DatagramRequestHandler};
    ///
    /// /// One handler for UDP and Unix datagrams alike.
    /// struct Echo;
    /// impl<F: DatagramFamily> DatagramRequestHandler<F> for Echo {
    ///     fn handle(&self, d: &Datagram<F>) -> io::Result<()> {
    ///         d.reply(d.data())
    ///     }
    /// }
    ///
    /// let path = std::env::temp_dir().join(format!("socketserver-doc-tdgram-{}.sock", std::process::id()));
    /// let server = ThreadingUnixDatagramServer::builder(Echo).pool(2).bind(&path)?;
    /// let udp = socketserver::UdpServer::bind("127.0.0.1:0", Echo)?; // the same handler
    /// let (client, _peer) = UnixDatagram::pair()?; // unnamed: cannot be answered
    /// client.send_to(b"hi", &path)?;
    /// server.handle_request()?;
    /// # drop(udp);
    /// # Ok::<(), io::Error>(())
    /// ```
    ThreadingUnixDatagramServer<H: DatagramRequestHandler<Unix>>, UnixDatagramSource, UnixDatagrams, Threading::PerConnection,
    example: ("std::env::temp_dir().join(format!(\"socketserver-doc-{}-{}.sock\", std::process::id(), line!()))", "|_: &socketserver::handler::Datagram<socketserver::handler::Unix>| Ok(())")
}

impl<H: DatagramRequestHandler<Unix>> Threaded for ThreadingUnixDatagramServer<H> {}

macro_rules! unix_datagram_family {
    ($name:ident) => {
        impl<H: DatagramRequestHandler<Unix>> $name<H> {
            /// Creates the socket file at `path` and receives on it, with
            /// the default options. The file is removed when the server is
            /// dropped.
            ///
            /// # Errors
            ///
            /// If `path` exists already (remove a stale socket first) or
            /// cannot be created.
            pub fn bind(path: impl AsRef<Path>, handler: H) -> io::Result<Self> {
                Self::builder(handler).bind(path)
            }

            /// The address the server receives on.
            ///
            /// # Errors
            ///
            /// As `UnixDatagram::local_addr`.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.core.source().socket.local_addr()
            }
        }

        impl<H: DatagramRequestHandler<Unix>> Builder<H, $name<H>> {
            /// Creates the socket file at `path` and receives on it.
            ///
            /// # Errors
            ///
            /// If `path` exists or cannot be created, or a pool of 0 was
            /// asked for.
            pub fn bind(self, path: impl AsRef<Path>) -> io::Result<$name<H>> {
                let path = path.as_ref();
                let socket = UnixDatagram::bind(path)?;
                match self.from_socket(socket) {
                    Ok(mut server) => {
                        server.core.source_mut().created = Some(path.to_owned());
                        Ok(server)
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(path);
                        Err(e)
                    }
                }
            }

            /// Serves on a socket you bound yourself; its file is left in
            /// place when the server is dropped.
            ///
            /// # Errors
            ///
            /// If the socket's address cannot be read, or a pool of 0 was
            /// asked for.
            pub fn from_socket(self, socket: UnixDatagram) -> io::Result<$name<H>> {
                socket.set_nonblocking(false)?;
                socket.set_read_timeout(None)?;
                let local = socket.local_addr()?;
                let waker = match local.as_pathname() {
                    Some(path) => Waker::UnixDatagram(path.to_owned()),
                    None => Waker::Unreachable,
                };
                Ok($name {
                    core: Core::new(
                        UnixDatagramSource::new(socket),
                        UnixDatagrams::new(self.handler),
                        self.config,
                        State::new(Addr::Unix(local), waker),
                    )?,
                })
            }
        }
    };
}

unix_datagram_family!(UnixDatagramServer);
unix_datagram_family!(ThreadingUnixDatagramServer);
