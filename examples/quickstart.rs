//! Your first server on this crate, as the README's "Use it in your
//! project" shows it: compiled and run by the tests, so it cannot rot.
//! Copy it into your own `src/main.rs` as it is.
//!
//! ```sh
//! cargo run --example quickstart   # then, in another terminal:
//! nc 127.0.0.1 9999                # type lines: each comes back in capitals
//! ```
// README: from here to the end of the file is the README's code block.

use std::io::{self, Write};

use socketserver::{StreamRequest, StreamRequestHandler, Streamed, ThreadingTcpServer};

/// Python's `class Upper(socketserver.StreamRequestHandler)`: one value
/// serves every connection, each on a thread of its own.
struct Upper;

impl StreamRequestHandler for Upper {
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        // A line at a time, 1 KiB at most: a longer one ends this
        // connection with an error, and only this one.
        while let Some(line) = request.read_line(1024)? {
            request.wfile.write_all(&line.to_ascii_uppercase())?;
            request.wfile.flush()?;
        }
        Ok(())
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let addr = addr.as_deref().unwrap_or("127.0.0.1:9999");
    let server = ThreadingTcpServer::bind(addr, Streamed(Upper))?;
    // Ctrl-C (or SIGTERM): requests under way finish, then serve_forever
    // returns; a second Ctrl-C closes every connection at once.
    server.shutdown_handle().shutdown_on_ctrl_c()?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever();
    println!("stopped: {}", server.stats());
    Ok(())
}
