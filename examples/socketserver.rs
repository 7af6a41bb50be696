//! The seed's socketserver lesson (socketserver编程): a request handler you
//! write yourself, on a `ThreadingTcpServer`.
//!
//! ```sh
//! cargo run --example socketserver                    # 127.0.0.1:9999
//! ```
//!
//! Python's version:
//!
//! ```python
//! class Myhandler(socketserver.BaseRequestHandler):
//!     def handle(self):
//!         res = self.request.recv(1024)
//!         if res:
//!             print('client:%s msg:%s' % (self.client_address, res))
//!
//! s = socketserver.ThreadingTCPServer(('127.0.0.1', 9999), Myhandler)
//! s.serve_forever()
//! ```

mod args;

use std::io::{self, Read};

use socketserver::{BaseRequestHandler, Connection, ThreadingTcpServer};

const USAGE: &str = "
socketserver [ADDR]

The seed's socketserver lesson (section socketserver编程): a handler class of
our own, Myhandler, on a ThreadingTcpServer. Each connection's first
message is printed with the client's address. Try it with
`cargo run --example tcp_client`, or `nc 127.0.0.1 9999`. Runs until killed.

  ADDR  where to listen (default 127.0.0.1:9999; port 0 picks one)
";

/// The request handler class: the framework accepts, threads and closes;
/// this only says what to do with one client.
struct Myhandler;

impl BaseRequestHandler for Myhandler {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let mut res = [0u8; 1024];
        let n = conn.read(&mut res)?;
        if n > 0 {
            let msg = String::from_utf8_lossy(&res[..n]);
            println!("client:{} msg:{msg:?}", conn.peer_addr());
        }
        Ok(())
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("socketserver: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let args = args::Args::parse(USAGE, &[]);
    let server = ThreadingTcpServer::bind(&args.addr, Myhandler)?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever();
    Ok(())
}
