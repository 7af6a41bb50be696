//! Exercise 6, a reference solution: the seed's frame, read whole however
//! the bytes arrive.

use std::io::{self, Read};

use socketserver::frame::Header;
use socketserver::frame::serde_json;

/// The longest JSON header accepted, in bytes.
pub const MAX_HEADER: usize = 64 * 1024;
/// The longest body accepted, in bytes.
pub const MAX_BODY: u64 = 16 << 20;

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Reads one frame's body: `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
    // The first read tells a clean end (no byte of a new frame) from a
    // frame cut short; read_exact then fills the rest of the length,
    // however few bytes each read returns.
    let mut length = [0u8; 4];
    let first = loop {
        match r.read(&mut length) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if first == 0 {
        return Ok(None);
    }
    r.read_exact(&mut length[first..])?;
    // struct.pack('i'): a signed 32-bit little-endian number. Checked
    // before anything is allocated: the peer chose it.
    let header_len = i32::from_le_bytes(length);
    let header_len = usize::try_from(header_len)
        .map_err(|_| invalid(format!("negative header length {header_len}")))?;
    if header_len > MAX_HEADER {
        return Err(invalid(format!("header of {header_len} bytes")));
    }
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header)?;
    let header: Header = serde_json::from_slice(&header).map_err(|e| invalid(e.to_string()))?;
    if header.len > MAX_BODY {
        return Err(invalid(format!("body of {} bytes", header.len)));
    }
    // The cast is safe: MAX_BODY fits in any usize.
    let mut body = vec![0u8; header.len as usize];
    r.read_exact(&mut body)?;
    if Header::for_body(&body).md5 != header.md5 {
        return Err(invalid("the body's md5 is not the header's"));
    }
    Ok(Some(body))
}
