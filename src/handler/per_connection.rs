//! Per-connection state without a `Mutex`: Python's handler instance.
//!
//! Python makes a new handler object for every request, so `setup`,
//! `handle` and `finish` hand state to each other through `self.x`. Here
//! one handler value serves every connection, so its methods take `&self`;
//! [`per_connection`] gives back Python's model: a factory makes a fresh
//! [`ConnectionHandler`] for each connection, whose methods take `&mut self`.

use std::io;

use super::{BaseRequestHandler, Connection};

/// A handler made for one connection and dropped when it ends: its fields
/// are that connection's state, shared by `setup`, `handle` and `finish`
/// through `&mut self`, with no lock. Serve it with [`per_connection`].
///
/// The server calls `setup`, then `handle`, then `finish` (even if `handle`
/// failed), as [`BaseRequestHandler`] does; an error from `setup` skips the
/// other two.
pub trait ConnectionHandler: Send + 'static {
    /// Called before `handle`; an error here skips `handle` and `finish`.
    ///
    /// # Errors
    ///
    /// Any error ends the connection and goes to `handle_error`.
    fn setup(&mut self, conn: &mut Connection) -> io::Result<()> {
        let _ = conn;
        Ok(())
    }

    /// Serves the connection.
    ///
    /// # Errors
    ///
    /// Any error ends the connection and goes to `handle_error`.
    fn handle(&mut self, conn: &mut Connection) -> io::Result<()>;

    /// Called after `handle`, even when it failed.
    ///
    /// # Errors
    ///
    /// Any error goes to `handle_error`.
    fn finish(&mut self, conn: &mut Connection) -> io::Result<()> {
        let _ = conn;
        Ok(())
    }
}

/// Serves each connection with a fresh [`ConnectionHandler`] from `factory`:
/// Python's one handler instance per request.
///
/// The factory runs on the connection's own thread, after the server's
/// checks (`verify_request`, the per-peer cap), so a refused client costs
/// nothing. Anything the connections share (a room, a counter) the
/// factory's closure captures, as an `Arc`.
///
/// ```
/// use std::io::{self, BufRead, BufReader, Write};
/// use socketserver::handler::{ConnectionHandler, per_connection};
/// use socketserver::{Connection, TcpServer};
///
/// /// One client's session: its name (from the first line) and a count.
/// #[derive(Default)]
/// struct Session {
///     lines: Option<BufReader<Connection>>,
///     name: String,
///     count: usize,
/// }
///
/// impl ConnectionHandler for Session {
///     fn setup(&mut self, conn: &mut Connection) -> io::Result<()> {
///         // One reader for the whole connection: what it reads ahead for
///         // `setup` is still there for `handle`.
///         let lines = self.lines.insert(BufReader::new(conn.try_clone()?));
///         lines.read_line(&mut self.name)?;
///         self.name.truncate(self.name.trim_end().len());
///         Ok(())
///     }
///     fn handle(&mut self, _: &mut Connection) -> io::Result<()> {
///         for line in self.lines.as_mut().expect("made in setup").lines() {
///             line?;
///             self.count += 1;
///         }
///         Ok(())
///     }
///     fn finish(&mut self, conn: &mut Connection) -> io::Result<()> {
///         write!(conn, "bye {}, {} lines", self.name, self.count)
///     }
/// }
///
/// let server = TcpServer::bind("127.0.0.1:0", per_connection(Session::default))?;
/// let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
/// client.write_all(b"ada\none\ntwo\n")?;
/// client.shutdown(std::net::Shutdown::Write)?;
/// server.handle_request()?;
/// let mut reply = String::new();
/// io::Read::read_to_string(&mut client, &mut reply)?;
/// assert_eq!(reply, "bye ada, 2 lines");
/// # Ok::<(), io::Error>(())
/// ```
///
/// The reader reads through a [`Connection::try_clone`], so it honours
/// the connection's deadline.
pub fn per_connection<F, C>(factory: F) -> PerConnection<F>
where
    F: Fn() -> C + Send + Sync + 'static,
    C: ConnectionHandler,
{
    PerConnection { factory }
}

/// The handler [`per_connection`] returns: a factory of
/// [`ConnectionHandler`]s, itself a [`BaseRequestHandler`].
#[derive(Debug, Clone)]
pub struct PerConnection<F> {
    factory: F,
}

impl<F, C> BaseRequestHandler for PerConnection<F>
where
    F: Fn() -> C + Send + Sync + 'static,
    C: ConnectionHandler,
{
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let mut session = (self.factory)();
        session.setup(conn)?;
        let handled = session.handle(conn);
        let finished = session.finish(conn);
        handled.and(finished)
    }
}
