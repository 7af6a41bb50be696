//! Exercise 4, a reference solution: a `StreamRequestHandler` with
//! per-connection state.

use std::io::{self, Write};

use socketserver::{StreamRequest, StreamRequestHandler};

/// The longest line a client may send, `\n` included.
pub const MAX_LINE: usize = 1024;

/// Numbers each connection's lines.
#[derive(Debug, Default)]
pub struct Numbered;

impl StreamRequestHandler for Numbered {
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        // Python keeps per-connection state in `self.count`, because it
        // makes a handler object per connection. Here one `Numbered` serves
        // every connection at once, so this connection's count lives where
        // this connection's call lives: in a local variable.
        let mut count = 0u64;
        // read_line puts lines back together however they arrived, and
        // splits two that arrived together; a line over MAX_LINE is an
        // error, which closes this connection only.
        while let Some(line) = request.read_line(MAX_LINE)? {
            count += 1;
            write!(request.wfile, "{count}: ")?;
            request.wfile.write_all(&line)?;
            // Gathered into one send; it also leaves by itself before the
            // next read_line waits.
            request.wfile.flush()?;
        }
        Ok(())
    }
}
