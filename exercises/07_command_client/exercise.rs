//! Exercise 7: the framed command client (the seed's 模拟远程执行命令客户端).
//!
//! Read README.md beside this file, replace the `todo!()` with your code,
//! and check it with `cargo run --example course -- check 7`: against the
//! seed's own Python server, and through the chaos proxy.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::io::{self, Write};
use std::net::TcpStream;

use socketserver::frame;

/// Sends one command line to a command server in the seed's form (the
/// command's bytes, as they are) and returns the body of the one frame
/// that answers it. Called again on the same stream for the next command.
///
/// # Errors
///
/// `InvalidInput` for an empty command (nothing would be sent, and the
/// server would never answer); otherwise any I/O or frame error, and
/// `UnexpectedEof` if the server closes before it answers.
pub fn run(stream: &mut TcpStream, command: &str) -> io::Result<Vec<u8>> {
    todo!("send the command; read one frame; return its body")
}
