//! Exercise 1: the TCP greeting server (the seed's tcp编程, 服务端).
//!
//! Read README.md beside this file, replace each `todo!()` with your code,
//! and check it with `cargo run --example course -- check 1`.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// Accepts connections for ever, and runs [`tcplink`] for each on a thread
/// of its own (the seed's `while True: s.accept()` and
/// `threading.Thread(target=tcplink)`).
pub fn serve(listener: TcpListener) {
    todo!("accept each connection; start a thread that runs tcplink on it")
}

/// One client's conversation: send `Welcome!`, then answer every message
/// with `你好,` and the message, until the client sends `exit` or hangs up.
pub fn tcplink(mut sock: TcpStream) -> io::Result<()> {
    todo!("greet, then recv / reply until exit or end of stream")
}
