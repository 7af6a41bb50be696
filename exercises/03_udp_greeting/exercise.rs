//! Exercise 3: the UDP greeting server (the seed's udp编程, 服务端).
//!
//! Read README.md beside this file, replace the `todo!()` with your code,
//! and check it with `cargo run --example course -- check 3`.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::io;
use std::net::UdpSocket;

/// Answers every datagram on `socket` for ever: `你好,` and the datagram's
/// bytes, sent back to whoever sent it.
pub fn serve(socket: UdpSocket) {
    todo!("recv_from a datagram; send_to its sender 你好, + its bytes; again")
}
