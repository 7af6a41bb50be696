//! Exercise 5, a reference solution: 粘包 and 分包 made to happen.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread;

use socketserver::trace::Traced;

/// Two writes, one read: 粘包.
pub fn make_sticky(
    client: &mut Traced<TcpStream>,
    server: &mut Traced<TcpStream>,
) -> io::Result<Vec<u8>> {
    client.write_all(b"hello")?;
    client.write_all(b"world")?;
    // The read must come late, once both writes are in the receive
    // buffer: peek (which the trace does not count as a read) until all
    // 10 bytes are there. On loopback they land within microseconds.
    let mut peeked = [0u8; 10];
    while server.get_ref().peek(&mut peeked)? < peeked.len() {
        thread::yield_now();
    }
    let mut buf = [0u8; 1024];
    let n = server.read(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// One write, many reads: 分包.
pub fn make_split(
    mut client: Traced<TcpStream>,
    server: &mut Traced<TcpStream>,
    message: Vec<u8>,
) -> io::Result<Vec<u8>> {
    let len = message.len();
    // The write gets a thread of its own: a write larger than the
    // kernel's buffers waits until the reader has made room, and the
    // reader is here, so one thread doing both would wait for ever.
    let writer = thread::spawn(move || client.write_all(&message));
    let mut received = Vec::with_capacity(len);
    let mut buf = vec![0u8; 64 * 1024];
    while received.len() < len {
        let n = server.read(&mut buf)?;
        if n == 0 {
            break; // the writer closed early: return what came
        }
        received.extend_from_slice(&buf[..n]);
    }
    writer
        .join()
        .map_err(|_| io::Error::other("the writer panicked"))??;
    Ok(received)
}
