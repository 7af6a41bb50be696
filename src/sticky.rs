//! 粘包 and 分包, made to happen on purpose, and the frame that undoes them.
//!
//! **粘包 (sticky packets)**: two sends, `hello` and `world`, come out of one
//! `recv` as `helloworld`. TCP delivers a stream of bytes, not messages: it
//! keeps what arrives in the receiver's buffer and `recv` returns whatever
//! is there. A busy receiver that reads late finds both; and Nagle's
//! algorithm, which holds small writes back until the previous segment is
//! acknowledged, may even send them as one segment.
//!
//! **分包 (fragmentation)**: one send of a large message comes out of many
//! `recv`s. The sender's bytes are cut into segments of at most one MSS
//! (maximum segment size: the link's MTU less the IP and TCP headers, 1,460
//! bytes on Ethernet, about 64 KiB on loopback), and `recv` returns as soon
//! as some have arrived, and never more than its buffer holds.
//!
//! Both are normal TCP, not faults, and timing decides how often each is
//! seen. The functions here make them certain: [`two_writes_one_read`]
//! waits until both writes are in the receive buffer before reading, and
//! [`one_write_many_reads`] sends more than one read can hold.
//! [`framed_messages`] sends the same traffic as frames and gets back
//! exactly the messages that were sent.
//!
//! ```
//! let lesson = socketserver::sticky::Lesson::run(4 << 20)?;
//! assert_eq!(lesson.stuck, b"helloworld");
//! assert!(lesson.reads.len() >= 4); // 4 MiB through reads of at most 1 MiB
//! assert_eq!(lesson.framed.len(), 3);
//! println!("{lesson}"); // the narration, with this run's numbers
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::frame;
use crate::trace::{Side, Trace};

/// The two messages of the sticky-packet demonstration.
pub const MESSAGES: [&[u8]; 2] = [b"hello", b"world"];

/// The largest single read the fragmentation demonstration makes.
pub const READ_SIZE: usize = 1 << 20;

/// A connected pair of loopback sockets: (writer, reader).
fn pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let writer = TcpStream::connect(listener.local_addr()?)?;
    let (reader, _) = listener.accept()?;
    reader.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok((writer, reader))
}

/// Waits until `n` bytes sit in `reader`'s receive buffer, as a receiver
/// busy elsewhere would find them when it finally calls `recv`.
fn wait_for_bytes(reader: &TcpStream, n: usize) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; n];
    while reader.peek(&mut buf)? < n {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "bytes never arrived",
            ));
        }
        // Bytes in flight on loopback land within microseconds.
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// 粘包: writes `hello` and `world` as two writes (with Nagle off, so they
/// even leave as two segments), lets both arrive, then reads once. Returns
/// what that one read got: `helloworld`.
///
/// # Errors
///
/// Any socket error on loopback.
pub fn two_writes_one_read() -> io::Result<Vec<u8>> {
    let (mut writer, mut reader) = pair()?;
    writer.set_nodelay(true)?;
    for message in MESSAGES {
        writer.write_all(message)?;
    }
    let total = MESSAGES.iter().map(|m| m.len()).sum();
    wait_for_bytes(&reader, total)?;
    let mut buf = [0u8; 1024];
    let n = reader.read(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// 分包: writes `size` bytes with one `write_all` and reads them back with
/// reads of up to [`READ_SIZE`] bytes. Returns the size of every read: more
/// than one whenever `size` is over `READ_SIZE`, and usually many more.
///
/// # Errors
///
/// Any socket error on loopback.
pub fn one_write_many_reads(size: usize) -> io::Result<Vec<usize>> {
    let (mut writer, mut reader) = pair()?;
    let sending = thread::spawn(move || writer.write_all(&vec![b'x'; size]));
    let mut buf = vec![0u8; READ_SIZE];
    let mut reads = Vec::new();
    let mut total = 0;
    while total < size {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        reads.push(n);
        total += n;
    }
    sending
        .join()
        .map_err(|_| io::Error::other("the writer panicked"))??;
    Ok(reads)
}

/// The cure: the same traffic as frames. Writes `hello` and `world` as two
/// frames (stuck together in the receive buffer, as above) and then one
/// large message of `size` bytes, and reads frames until all three are
/// back. Returns the bodies read.
///
/// # Errors
///
/// Any socket error, or a frame error (there is none to find).
pub fn framed_messages(size: usize) -> io::Result<Vec<Vec<u8>>> {
    let (mut writer, mut reader) = pair()?;
    let mut stuck = Vec::new();
    for message in MESSAGES {
        frame::write_frame(&mut stuck, message)?;
    }
    writer.write_all(&stuck)?;
    wait_for_bytes(&reader, stuck.len())?;
    let sending = thread::spawn(move || frame::write_frame(&mut writer, &vec![b'x'; size]));
    let mut bodies = Vec::new();
    while bodies.len() < MESSAGES.len() + 1 {
        match frame::read_frame(&mut reader)? {
            Some(frame) => bodies.push(frame.body),
            None => break,
        }
    }
    sending
        .join()
        .map_err(|_| io::Error::other("the writer panicked"))??;
    Ok(bodies)
}

/// The largest single read in [`traced`]: small enough that a large
/// message needs several.
pub const TRACED_READ_SIZE: usize = 64 * 1024;

/// The lesson's traffic, every call recorded with [`crate::trace`], to be
/// drawn: before the frame, `hello` and `world` read by one read (粘包),
/// then one write of `size` bytes read by several (分包); after it, the
/// same three messages as frames, read back frame by frame.
///
/// ```
/// use socketserver::sticky;
/// let (before, after) = sticky::traced(200_000)?;
/// assert!(before.reads()[0].sticky); // helloworld
/// assert!(before.arrows().iter().any(|a| a.split));
/// assert_eq!(after.reads().iter().filter(|r| r.sticky).count(), 0);
/// println!("{}\n{}", before.text(), after.text());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// Any socket error on loopback.
pub fn traced(size: usize) -> io::Result<(Trace, Trace)> {
    let before = Trace::new("粘包与分包: send/recv");
    let (writer, reader) = pair()?;
    writer.set_nodelay(true)?;
    let mut writer = before.wrap(writer, Side::Client);
    let mut reader = before.wrap(reader, Side::Server);
    for message in MESSAGES {
        writer.write_all(message)?;
    }
    wait_for_bytes(reader.get_ref(), MESSAGES.iter().map(|m| m.len()).sum())?;
    let mut buf = vec![0u8; TRACED_READ_SIZE];
    // One read: it returns both messages, as the trace shows.
    if reader.read(&mut buf)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let sending = thread::spawn(move || writer.write_all(&vec![b'x'; size]));
    let mut total = 0;
    while total < size {
        match reader.read(&mut buf)? {
            0 => break,
            n => total += n,
        }
    }
    sending
        .join()
        .map_err(|_| io::Error::other("the writer panicked"))??;

    let after = Trace::new("粘包与分包: frame");
    let (writer, reader) = pair()?;
    let mut writer = after.wrap(writer, Side::Client);
    let mut reader = after.wrap(reader, Side::Server);
    for message in MESSAGES {
        frame::write_frame(&mut writer, message)?;
    }
    let sending = thread::spawn(move || frame::write_frame(&mut writer, &vec![b'x'; size]));
    for _ in 0..MESSAGES.len() + 1 {
        frame::read_frame(&mut reader)?;
    }
    sending
        .join()
        .map_err(|_| io::Error::other("the writer panicked"))??;
    Ok((before, after))
}

/// The whole lesson: what each demonstration measured, and (through
/// `Display`) the narration the `sticky_packets` example and the tour print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lesson {
    /// What one read returned after two writes: `helloworld`.
    pub stuck: Vec<u8>,
    /// The size of each read that received one large write.
    pub reads: Vec<usize>,
    /// The bodies read back when the same traffic went as frames.
    pub framed: Vec<Vec<u8>>,
}

impl Lesson {
    /// Runs the three demonstrations on loopback, with a large message of
    /// `size` bytes.
    ///
    /// # Errors
    ///
    /// Any socket error on loopback.
    pub fn run(size: usize) -> io::Result<Lesson> {
        Ok(Lesson {
            stuck: two_writes_one_read()?,
            reads: one_write_many_reads(size)?,
            framed: framed_messages(size)?,
        })
    }
}

impl fmt::Display for Lesson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size: usize = self.reads.iter().sum();
        let min = self.reads.iter().min().copied().unwrap_or(0);
        let max = self.reads.iter().max().copied().unwrap_or(0);
        writeln!(
            f,
            "粘包 (sticky packets): the sender wrote \"hello\", then \"world\"."
        )?;
        writeln!(
            f,
            "  One recv() returned {:?}: TCP is a byte stream and keeps no message boundaries.",
            String::from_utf8_lossy(&self.stuck)
        )?;
        writeln!(
            f,
            "  A receiver that reads late finds both; Nagle's algorithm may even send them as one segment."
        )?;
        writeln!(
            f,
            "分包 (fragmentation): the sender wrote {size} bytes in one send."
        )?;
        writeln!(
            f,
            "  The receiver needed {} recv() calls of {min} to {max} bytes: data moves in segments of at most",
            self.reads.len()
        )?;
        writeln!(
            f,
            "  one MSS, and recv() returns what has arrived, never more than its buffer."
        )?;
        writeln!(
            f,
            "The fix, the seed's frame: a 4-byte header length, a JSON header with md5 and lenth, then the body."
        )?;
        write!(
            f,
            "  Framed, the same traffic reads back as exactly {} messages:",
            self.framed.len()
        )?;
        for body in &self.framed {
            if body.len() <= 16 {
                write!(f, " {:?}", String::from_utf8_lossy(body))?;
            } else {
                write!(f, " {} bytes", body.len())?;
            }
        }
        write!(f, ", each md5-checked.")
    }
}
