//! Unix-domain stream servers: the same handlers over a socket file instead
//! of a TCP port, like Python's `UnixStreamServer` and
//! `ThreadingUnixStreamServer`.
//!
//! Only processes on this machine that may open the file can connect, which
//! makes Unix sockets a good home for local control services.

use std::io;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;

use super::core::{Core, Streams, UnixSource};
use super::state::{State, Waker};
use super::{Builder, Connected, Threaded, Threading, server_type};
use crate::handler::{Addr, BaseRequestHandler};

server_type! {
    /// A Unix-domain stream server that serves one connection at a time.
    ///
    /// ```
    /// use std::io::{self, Read, Write};
    /// use socketserver::{Connection, UnixStreamServer};
    ///
    /// let path = std::env::temp_dir().join(format!("socketserver-doc-{}.sock", std::process::id()));
    /// let server = UnixStreamServer::bind(&path, |conn: &mut Connection| conn.write_all(b"hi"))?;
    /// let mut client = std::os::unix::net::UnixStream::connect(&path)?;
    /// server.handle_request()?;
    /// let mut reply = String::new();
    /// client.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "hi");
    /// drop(server); // removes the socket file
    /// assert!(!path.exists());
    /// # Ok::<(), io::Error>(())
    /// ```
    UnixStreamServer<H: BaseRequestHandler>, UnixSource, Streams, Threading::Inline,
    example: ("std::env::temp_dir().join(format!(\"socketserver-doc-{}-{}.sock\", std::process::id(), line!()))", "|_: &mut socketserver::Connection| Ok(())")
}

server_type! {
    /// A Unix-domain stream server that serves each connection on a thread
    /// or a pool, like [`ThreadingTcpServer`](crate::ThreadingTcpServer).
    ThreadingUnixStreamServer<H: BaseRequestHandler>, UnixSource, Streams, Threading::PerConnection,
    example: ("std::env::temp_dir().join(format!(\"socketserver-doc-{}-{}.sock\", std::process::id(), line!()))", "|_: &mut socketserver::Connection| Ok(())")
}

impl<H: BaseRequestHandler> Threaded for ThreadingUnixStreamServer<H> {}
impl<H: BaseRequestHandler> Connected for UnixStreamServer<H> {}
impl<H: BaseRequestHandler> Connected for ThreadingUnixStreamServer<H> {}

macro_rules! unix_family {
    ($name:ident) => {
        impl<H: BaseRequestHandler> $name<H> {
            /// Creates the socket file at `path` and listens on it, with the
            /// default options. The file is removed when the server is
            /// dropped.
            ///
            /// # Errors
            ///
            /// If `path` exists already (remove a stale socket first) or
            /// cannot be created.
            pub fn bind(path: impl AsRef<Path>, handler: H) -> io::Result<Self> {
                Self::builder(handler).bind(path)
            }

            /// The address the server listens on.
            ///
            /// # Errors
            ///
            /// As `UnixListener::local_addr`.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.core.source().listener.local_addr()
            }
        }

        impl<H: BaseRequestHandler> Builder<H, $name<H>> {
            /// Creates the socket file at `path` and listens on it.
            ///
            /// # Errors
            ///
            /// If `path` exists or cannot be created, or a pool of 0 was
            /// asked for.
            pub fn bind(self, path: impl AsRef<Path>) -> io::Result<$name<H>> {
                let path = path.as_ref();
                let listener = self.config.socket.unix_listener(path)?;
                match self.from_listener(listener) {
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

            /// Serves on a listener you bound yourself; its file is left in
            /// place when the server is dropped.
            ///
            /// # Errors
            ///
            /// If the listener's address cannot be read, or a pool of 0 was
            /// asked for.
            pub fn from_listener(self, listener: UnixListener) -> io::Result<$name<H>> {
                listener.set_nonblocking(false)?;
                let local = listener.local_addr()?;
                let waker = match local.as_pathname() {
                    Some(path) => Waker::Unix(path.to_owned()),
                    None => Waker::Unreachable,
                };
                let source = UnixSource {
                    listener,
                    created: None,
                };
                Ok($name {
                    core: Core::new(
                        source,
                        Streams::new(self.handler),
                        self.config,
                        State::new(Addr::Unix(local), waker),
                    )?,
                })
            }
        }
    };
}

unix_family!(UnixStreamServer);
unix_family!(ThreadingUnixStreamServer);
