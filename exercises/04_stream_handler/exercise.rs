//! Exercise 4: a `socketserver` handler (the seed's socketserver编程): a
//! `StreamRequestHandler` that numbers each connection's lines.
//!
//! Read README.md beside this file, replace the `todo!()` with your code,
//! and check it with `cargo run --example course -- check 4`.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::io::{self, Write};

use socketserver::{StreamRequest, StreamRequestHandler};

/// The longest line a client may send, `\n` included.
pub const MAX_LINE: usize = 1024;

/// Answers each line `L` a client sends with `N: L`, where `N` counts the
/// lines of this connection from 1. One value serves every connection.
#[derive(Debug, Default)]
pub struct Numbered;

impl StreamRequestHandler for Numbered {
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        todo!(
            "read lines from request (at most MAX_LINE bytes each); write `N: line` to request.wfile"
        )
    }
}
