//! Exercise 7, a reference solution: the seed's command client, framed
//! replies read whole.

use std::io::{self, Write};
use std::net::TcpStream;

use socketserver::frame;

/// Sends `command`, returns the body of the frame that answers it.
pub fn run(stream: &mut TcpStream, command: &str) -> io::Result<Vec<u8>> {
    // The seed's client skips empty input (`if not cmd: continue`): a
    // write of 0 bytes sends nothing, and the server would wait for ever.
    if command.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    }
    // The seed's request is unframed: the command's bytes, one write.
    stream.write_all(command.as_bytes())?;
    // The reply is framed: read_frame reads the length, the header and
    // the body whole however they arrive, bounds them, and checks the md5
    // (a frame error becomes InvalidData through `?`).
    match frame::read_frame(stream)? {
        Some(frame) => Ok(frame.body),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection before it answered",
        )),
    }
}
