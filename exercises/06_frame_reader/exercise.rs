//! Exercise 6: a frame reader that survives any split (the seed's 范例:
//! 4-byte length, JSON header, body).
//!
//! Read README.md beside this file, replace the `todo!()` with your code,
//! and check it with `cargo run --example course -- check 6`: the checker
//! feeds it through the chaos proxy, one byte at a time.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::io::{self, Read};

use socketserver::frame::Header;
use socketserver::frame::serde_json;

/// The longest JSON header accepted, in bytes.
pub const MAX_HEADER: usize = 64 * 1024;
/// The longest body accepted, in bytes.
pub const MAX_BODY: u64 = 16 << 20;

/// Reads one frame from `r` and returns its body, checked against the
/// header's `md5`.
///
/// * `Ok(None)`: the stream ended cleanly, before a new frame began;
/// * `Err` with `io::ErrorKind::UnexpectedEof`: it ended inside a frame;
/// * `Err` with `io::ErrorKind::InvalidData`: a negative header length, a
///   header over [`MAX_HEADER`] or not the seed's JSON, a body over
///   [`MAX_BODY`], or a body whose md5 is not the header's.
pub fn read_frame(r: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
    todo!(
        "4 bytes of length (i32, little-endian); that many bytes of JSON header; lenth bytes of body"
    )
}
