//! The file server: a [`BaseRequestHandler`] that answers `ls`, `get` and
//! `put` requests on one connection until the client leaves, and [`bind`],
//! which serves it on loopback-friendly defaults.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::name::Root;
use super::pace::{Paced, Way};
use super::temp::{TempFile, remove_stale};
use super::{
    CHUNK, Digest, FileConfig, FileError, MAX_LISTING_BYTES, Version, digest_prefix,
    encode_listing, field, number, receive_chunks, send_chunks,
};
use crate::frame::{FrameError, FrameLimits, Header, read_frame_into, write_frame_parts};
use crate::handler::{BaseRequestHandler, Connection, is_timeout};
use crate::server::{ThreadingTcpServer, peer_key};

/// How long an error frame may take to leave: the connection's deadline
/// may have passed already (that may be the error), and a write after it
/// would fail at once.
const ERROR_GRACE: Duration = Duration::from_secs(1);

/// The largest request body: requests are a header and no body.
const MAX_REQUEST_BODY: u64 = 0;
/// The largest request header: room for a [`MAX_NAME`](super::MAX_NAME)
/// name with every byte escaped, and the other fields.
const MAX_REQUEST_HEADER: usize = 16 * 1024;

/// Serves files from one directory on any stream server.
///
/// ```
/// use socketserver::TcpServer;
/// use socketserver::files::{FileConfig, FileHandler};
///
/// # let root = std::env::temp_dir().join(format!("handler-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&root)?;
/// let handler = FileHandler::new(FileConfig::new(&root).read_only(true))?;
/// let one_at_a_time = TcpServer::bind("127.0.0.1:0", handler)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct FileHandler {
    config: FileConfig,
    root: Root,
    removed_at_start: usize,
    ledger: Mutex<Ledger>,
}

/// The uploads in flight, together: what they declared (for the budget),
/// what each address declared (for its share), and what they have still
/// to write (for the free-space floor).
#[derive(Debug, Default)]
struct Ledger {
    declared: u64,
    per_peer: HashMap<IpAddr, u64>,
    unwritten: u64,
}

/// One upload's share of the [`Ledger`], given back as it is written and
/// when it ends, however it ends.
struct Reservation<'a> {
    ledger: &'a Mutex<Ledger>,
    peer: Option<IpAddr>,
    declared: u64,
    unwritten: u64,
}

impl Reservation<'_> {
    /// Records that the upload has written `total` bytes so far.
    fn written(&mut self, total: u64) {
        let done = (self.declared - self.unwritten).min(total);
        let now = total.min(self.declared) - done;
        if now > 0 {
            crate::lock(self.ledger).unwritten -= now;
            self.unwritten -= now;
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut ledger = crate::lock(self.ledger);
        ledger.declared -= self.declared;
        ledger.unwritten -= self.unwritten;
        if let Some(peer) = self.peer {
            if let Some(mine) = ledger.per_peer.get_mut(&peer) {
                *mine -= self.declared;
                if *mine == 0 {
                    ledger.per_peer.remove(&peer);
                }
            }
        }
    }
}

/// The bytes an unprivileged user may still write on the filesystem of
/// `dir`.
#[cfg(unix)]
fn free_space(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

impl FileHandler {
    /// A handler serving `config.root`.
    ///
    /// Removes the stale temporary uploads under the root first: files
    /// named `.socketserver-PID-N.upload` whose PID is not running and
    /// that no live upload holds locked, left by a server killed
    /// mid-upload (Unix; see
    /// [`removed_at_start`](FileHandler::removed_at_start)).
    ///
    /// # Errors
    ///
    /// The root does not exist or is not a directory.
    pub fn new(config: FileConfig) -> io::Result<FileHandler> {
        let root = Root::new(&config.root)?;
        let removed_at_start = remove_stale(root.path());
        Ok(FileHandler {
            root,
            config,
            removed_at_start,
            ledger: Mutex::default(),
        })
    }

    /// How many stale temporary uploads [`new`](FileHandler::new) removed.
    /// Only files named exactly as this server names its temporary files,
    /// made by a process that is no longer running and locked by no
    /// running upload, are removed; anything else in the root, hidden or
    /// not, is never touched.
    ///
    /// ```
    /// use socketserver::files::{FileConfig, FileHandler};
    /// # let root = std::env::temp_dir().join(format!("stale-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&root)?;
    /// // Left by a process that is gone (no pid is this large).
    /// std::fs::write(root.join(".socketserver-4294967295-0.upload"), "cut short")?;
    /// std::fs::write(root.join(".socketserver-4294967295-0.upload.mine"), "a user's")?;
    /// let handler = FileHandler::new(FileConfig::new(&root))?;
    /// assert_eq!(handler.removed_at_start(), if cfg!(unix) { 1 } else { 0 });
    /// assert!(root.join(".socketserver-4294967295-0.upload.mine").exists());
    /// # std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn removed_at_start(&self) -> usize {
        self.removed_at_start
    }

    /// Serves one request; `Ok` when the connection can take another.
    fn serve(&self, conn: &mut Connection, request: &Header) -> Result<(), FileError> {
        let name = field(request, "name")?
            .as_str()
            .ok_or_else(|| FileError::Protocol("\"name\" is not a string".into()))?;
        match field(request, "op")?.as_str() {
            Some("ls") => {
                let (listing, more) = self.root.list(name)?;
                let (body, cut) = encode_listing(&listing, MAX_LISTING_BYTES);
                let header = Header::for_body(&body)
                    .with("ok", true)
                    .with("truncated", more || cut);
                // Up to 8 MiB: taken at the pace of a download.
                let mut paced = Paced::new(conn, self.config.chunk_timeout, Way::Download);
                Ok(write_frame_parts(&mut paced, &header, &[&body])?)
            }
            Some("get") => {
                let offset = number(request, "offset")?;
                self.get(conn, name, offset)
            }
            Some("put") => {
                let size = number(request, "size")?;
                let overwrite = request.extra.get("overwrite") == Some(&Value::Bool(true));
                self.put(conn, name, size, overwrite)
            }
            other => Err(FileError::Protocol(format!("unknown op {other:?}"))),
        }
    }

    fn get(&self, conn: &mut Connection, name: &str, offset: u64) -> Result<(), FileError> {
        let file = File::open(self.root.existing_file(name)?)?;
        let version = Version::of(&file)?;
        let size = version.len;
        if offset > size || offset % CHUNK as u64 != 0 {
            return Err(FileError::BadOffset { offset, size });
        }
        // The digest covers the whole file, so a resume hashes the part
        // the client already has, here as there.
        let digest = digest_prefix(&mut &file, offset)?;
        let status = Header::for_body(b"")
            .with("ok", true)
            .with("size", size)
            .with("offset", offset)
            .with("chunk", CHUNK as u64);
        // However slowly the client reads, a download holds its thread for
        // at most `chunk_timeout` per chunk.
        let mut paced = Paced::new(conn, self.config.chunk_timeout, Way::Download);
        write_frame_parts(&mut paced, &status, &[])?;
        // A file rewritten meanwhile ends the transfer with an error frame
        // in place of its next chunk: the client keeps nothing.
        let mut unchanged = || version.still(&file, name);
        send_chunks(
            &mut paced,
            &mut &file,
            size - offset,
            digest,
            &mut unchanged,
            &mut |_| {},
        )
    }

    /// Takes `size` bytes of the upload budget and of `peer`'s share of
    /// it, and checks the free space beside `dest`, before the client is
    /// told to send anything.
    fn reserve(
        &self,
        dest: &Path,
        size: u64,
        peer: Option<IpAddr>,
    ) -> Result<Reservation<'_>, FileError> {
        let mut ledger = crate::lock(&self.ledger);
        let budget = self.config.upload_budget;
        if ledger.declared.saturating_add(size) > budget {
            return Err(FileError::OverBudget {
                size,
                in_flight: ledger.declared,
                budget,
            });
        }
        let mine = peer.map_or(0, |peer| ledger.per_peer.get(&peer).copied().unwrap_or(0));
        let share = self.config.upload_budget_per_peer;
        if peer.is_some() && mine.saturating_add(size) > share {
            return Err(FileError::OverPeerBudget {
                size,
                in_flight: mine,
                budget: share,
            });
        }
        #[cfg(unix)]
        {
            let dir = dest.parent().unwrap_or(dest);
            // What the uploads in flight will still write is as good as gone.
            let available = free_space(dir)?.saturating_sub(ledger.unwritten);
            let floor = self.config.free_space_floor;
            if available < size.saturating_add(floor) {
                return Err(FileError::NoSpace {
                    size,
                    available,
                    floor,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = dest;
        ledger.declared += size;
        ledger.unwritten += size;
        if let Some(peer) = peer {
            *ledger.per_peer.entry(peer).or_default() += size;
        }
        Ok(Reservation {
            ledger: &self.ledger,
            peer,
            declared: size,
            unwritten: size,
        })
    }

    fn put(
        &self,
        conn: &mut Connection,
        name: &str,
        size: u64,
        overwrite: bool,
    ) -> Result<(), FileError> {
        if self.config.read_only {
            return Err(FileError::ReadOnly);
        }
        if size > self.config.max_upload {
            return Err(FileError::TooLarge {
                size,
                max: self.config.max_upload,
            });
        }
        let dest = self.root.new_file(name, overwrite)?;
        let peer = peer_key(conn.peer_addr());
        let mut reservation = self.reserve(&dest, size, peer)?;
        let mut temp = TempFile::beside(&dest)?;
        // However slowly it drips, an upload holds its share of the
        // budget for at most `chunk_timeout` per chunk.
        let mut paced = Paced::new(conn, self.config.chunk_timeout, Way::Upload);
        write_frame_parts(&mut paced, &Header::for_body(b"").with("ok", true), &[])?;
        // That was an acknowledgement, not the reply: a shutdown lets the
        // upload finish within its grace period.
        conn.request_continues();
        let (announced, actual) =
            receive_chunks(&mut paced, &mut temp.file, size, Digest::new(), &mut |n| {
                reservation.written(n)
            })?;
        if announced != actual {
            return Err(FileError::DigestMismatch {
                expected: announced,
                actual,
            });
        }
        temp.persist(&dest, overwrite, name)?;
        // Its share is back before the client hears it is done, so that
        // its next upload finds it.
        drop(reservation);
        // The last chunk may have used most of its time, and the file is
        // in place now: the reply saying so gets a chunk's time of its own.
        conn.set_deadline_in(self.config.chunk_timeout);
        let done = Header::for_body(b"")
            .with("ok", true)
            .with("size", size)
            .with("digest", actual);
        Ok(write_frame_parts(conn, &done, &[])?)
    }
}

impl BaseRequestHandler for FileHandler {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        // The whole first request within one deadline, however it drips.
        let mut waited = self.config.first_request_timeout;
        conn.set_deadline_in(waited);
        // Status frames are small and follow each other: send each at once.
        if let Some(tcp) = conn.stream().as_tcp() {
            tcp.set_nodelay(true)?;
        }
        let limits = FrameLimits::new()
            .max_header_len(MAX_REQUEST_HEADER)
            .max_body_len(MAX_REQUEST_BODY);
        let mut body = Vec::new();
        while !conn.server().is_shutdown() {
            let request = match read_frame_into(conn, &limits, &mut body) {
                Ok(Some(request)) => request,
                Ok(None) => return Ok(()),
                Err(e) => return Err(refuse_frame(conn, e, waited)),
            };
            // A transfer moves the deadline as its chunks cross.
            if let Err(e) = self.serve(conn, &request) {
                // Tell the client why; when the stream is out of step,
                // close so that the reply survives what it still sends.
                conn.set_deadline_in(ERROR_GRACE);
                let sent = write_frame_parts(conn, &e.to_wire(), &[]);
                if !e.keeps_connection() || sent.is_err() {
                    conn.linger_close();
                    return Err(io::Error::other(e));
                }
            }
            // Between requests a connection may idle, not forever.
            waited = self.config.idle_timeout;
            conn.set_deadline_in(waited);
        }
        Ok(())
    }
}

/// Answers a request that could not be read: an error frame saying why,
/// sent before the close, as for any other error. After a malformed
/// frame the stream is out of step, so the close lingers (the reply
/// survives what the client still sends); after a timeout (the request
/// did not come whole within `waited`) nothing is coming, and after a
/// broken connection the frame is simply lost.
fn refuse_frame(conn: &mut Connection, e: FrameError, waited: Duration) -> io::Error {
    let timed_out = matches!(&e, FrameError::Io(io) if is_timeout(io));
    let broken = matches!(&e, FrameError::Io(_)) && !timed_out;
    let e = if timed_out {
        FileError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out: no whole request within {waited:?}"),
        ))
    } else {
        FileError::from(e)
    };
    if !broken {
        // The deadline may be what passed: the frame gets a moment of its own.
        conn.set_deadline_in(ERROR_GRACE);
        let _ = write_frame_parts(conn, &e.to_wire(), &[]);
        if !timed_out {
            conn.linger_close();
        }
    }
    io::Error::other(e)
}

/// Binds a threading file server serving `config.root`: a thread per
/// connection, at most [`max_clients`](FileConfig::max_clients) at once and
/// [`max_per_peer`](FileConfig::max_per_peer) from one address.
///
/// Reading and writing files needs no token the way running commands
/// does, but anyone who can reach the address can read everything in the
/// root (and, unless [`FileConfig::read_only`], upload): bind loopback
/// unless that is what you want.
///
/// # Errors
///
/// The root is not a directory, or the address cannot be bound.
pub fn bind(
    addr: impl crate::server::BindAddr,
    config: FileConfig,
) -> io::Result<ThreadingTcpServer<FileHandler>> {
    let (max_clients, max_per_peer) = (config.max_clients, config.max_per_peer);
    let (reuse_port, trusted) = (config.reuse_port, config.proxy_protocol.clone());
    ThreadingTcpServer::builder(FileHandler::new(config)?)
        .max_connections(max_clients)
        .max_per_peer(max_per_peer)
        .balanced(reuse_port, trusted)
        .bind(addr)
}

#[cfg(test)]
mod tests {
    use crate::handler::Addr;
    use crate::server::peer_key;

    #[test]
    fn an_address_s_share_counts_as_the_per_peer_cap_does() {
        let key = |a: &str| peer_key(&Addr::Inet(a.parse().unwrap())).unwrap();
        assert_eq!(key("127.0.0.2:1"), key("127.0.0.2:2"));
        assert_ne!(key("127.0.0.2:1"), key("127.0.0.1:1"));
        assert_eq!(key("[::ffff:127.0.0.2]:1"), key("127.0.0.2:1"), "mapped");
        assert_eq!(
            key("[2001:db8::1]:1"),
            key("[2001:db8::ffff:2]:1"),
            "one /64"
        );
        assert_ne!(key("[2001:db8::1]:1"), key("[2001:db8:0:1::1]:1"));
    }
}
