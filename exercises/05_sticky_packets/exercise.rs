//! Exercise 5: making 粘包 and 分包 happen, and seeing them (the seed's
//! 粘包与分包).
//!
//! Read README.md beside this file, replace each `todo!()` with your code,
//! and check it with `cargo run --example course -- check 5`: it draws
//! what your calls did on the wire.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread;

use socketserver::trace::Traced;

/// 粘包: on `client`, write `hello` and `world` as two writes; on
/// `server` (the other end of the same connection), make one single read
/// return both. Returns what that one read returned.
pub fn make_sticky(
    client: &mut Traced<TcpStream>,
    server: &mut Traced<TcpStream>,
) -> io::Result<Vec<u8>> {
    todo!("two writes on client; then one read on server that gets helloworld")
}

/// 分包: write all of `message` on `client` in one write, and receive it
/// on `server` (reads of at most 64 KiB). Returns everything the server
/// received.
pub fn make_split(
    client: Traced<TcpStream>,
    server: &mut Traced<TcpStream>,
    message: Vec<u8>,
) -> io::Result<Vec<u8>> {
    todo!("one write of message on client, while server reads until it has it all")
}
