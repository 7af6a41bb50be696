//! Exercise 2: the TCP greeting client (the seed's tcp编程, 客户端).
//!
//! Read README.md beside this file, replace the `todo!()` with your code,
//! and check it with `cargo run --example course -- check 2`.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connects to a greeting server, reads its `Welcome!`, sends each name
/// and reads the reply to it, then sends `exit`. Returns what it heard, in
/// order: `["Welcome!", "你好,Michael", ...]`.
///
/// # Errors
///
/// If the server cannot be reached, closes the connection before a reply
/// is whole, or sends nothing for 5 seconds.
pub fn greet(addr: SocketAddr, names: &[&str]) -> io::Result<Vec<String>> {
    todo!("connect; read the banner; for each name: send it, read its reply; send exit")
}
