//! The seed's socketserver lesson (socketserver编程): a request handler you
//! write yourself, on a `ThreadingTcpServer`.
//!
//! ```sh
//! cargo run --example socketserver                    # 127.0.0.1:9999
//! cargo run --example socketserver_client -- 127.0.0.1:9999 hello
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

mod cli;

use std::io::{self, Read};
use std::time::Duration;

use clap::Parser;
use socketserver::{BaseRequestHandler, Connection, ThreadingTcpServer};

/// The seed's socketserver lesson (section socketserver编程).
///
/// A handler class of our own, Myhandler, on a ThreadingTcpServer: each
/// connection's first message (up to 1024 bytes) is printed with the
/// client's address, then the connection is closed. Safe by default (unlike
/// Python's): at most 16 clients from one IP address, and 10 s for the
/// message, so one address cannot hold every slot. Runs until Ctrl-C, then
/// prints the counters.
///
/// The seed has no client for it, and the greeting client would wait for a
/// banner this server never sends. Try it with `cargo run --example
/// socketserver_client -- 127.0.0.1:9999 hello`, or `nc 127.0.0.1 9999`
/// (type a line; the server prints it and hangs up).
#[derive(Parser, Debug)]
#[command(name = "socketserver", version)]
struct Cli {
    #[command(flatten)]
    listen: cli::Listen,
    #[command(flatten)]
    balanced: cli::Balanced,
}

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

/// Clients at once from one IP address.
const MAX_PER_PEER: usize = 16;
/// How long a client has to send its message.
const MESSAGE_TIME: Duration = Duration::from_secs(10);

fn main() {
    cli::logger::init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("socketserver: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> io::Result<()> {
    let addr = &cli.listen.addr;
    // Python's ThreadingTCPServer takes any number of clients for ever;
    // these two limits keep one address from holding every slot.
    let server = cli
        .balanced
        .apply(ThreadingTcpServer::builder(Myhandler))
        .max_per_peer(Some(MAX_PER_PEER))
        .initial_deadline(Some(MESSAGE_TIME))
        .bind(&addr.addrs[..])
        .map_err(|e| addr.error("listen on", e))?;
    // Before saying where we listen: a Ctrl-C from then on stops us cleanly.
    server.shutdown_handle().shutdown_on_ctrl_c()?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever();
    println!("stopped: {}", server.stats());
    Ok(())
}
