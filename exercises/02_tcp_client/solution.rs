//! Exercise 2, a reference solution: the seed's TCP greeting client, made
//! safe from 分包.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connects, reads `Welcome!`, greets each name, sends `exit`; returns
/// every reply.
pub fn greet(addr: SocketAddr, names: &[&str]) -> io::Result<Vec<String>> {
    let mut sock = TcpStream::connect(addr)?;
    // A server that says nothing must not hold the client for ever.
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut heard = vec![reply(&mut sock, b"Welcome!".len())?];
    for name in names {
        sock.write_all(name.as_bytes())?;
        heard.push(reply(&mut sock, "你好,".len() + name.len())?);
    }
    sock.write_all(b"exit")?;
    Ok(heard)
}

/// Reads a reply of `len` bytes however the network cut it: one `recv` is
/// not one message.
fn reply(sock: &mut TcpStream, len: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; len];
    // read_exact loops over short reads, and fails (UnexpectedEof) where
    // a hand-written loop would spin on read() == 0 for ever.
    sock.read_exact(&mut bytes)?;
    // Whole replies: a character can no longer be cut in two here.
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
