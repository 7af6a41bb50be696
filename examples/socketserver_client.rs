//! A client for the `socketserver` example (socketserver编程): one
//! message, as `nc` would send it.
//!
//! ```sh
//! cargo run --example socketserver                    # 127.0.0.1:9999
//! cargo run --example socketserver_client -- 127.0.0.1:9999 hello
//! ```

mod cli;

use std::io::{self, Read, Write};
use std::net::TcpStream;

use clap::Parser;

/// A client for the socketserver example (section socketserver编程).
///
/// Connects, sends MESSAGE in one write, and waits for the server to hang
/// up, which Myhandler does once it has printed the message. The seed has
/// no client for this lesson; this is what `nc` would do.
#[derive(Parser, Debug)]
#[command(name = "socketserver_client", version)]
struct Cli {
    #[command(flatten)]
    server: cli::Connect,
    /// What to send (Myhandler reads at most 1024 bytes of it)
    #[arg(default_value = "hello")]
    message: String,
    #[command(flatten)]
    timeout: cli::Timeout,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("socketserver_client: {e}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> io::Result<()> {
    let addr = &cli.server.addr;
    let mut stream =
        TcpStream::connect(&addr.addrs[..]).map_err(|e| addr.error("connect to", e))?;
    let peer = stream.peer_addr()?;
    stream.set_read_timeout(Some(cli.timeout.timeout))?;
    stream.write_all(cli.message.as_bytes())?;
    // The server answers nothing; its hanging up says it has read.
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        // A reset after the server read and closed still means it read.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "{addr} did not hang up within {:?}: is it the socketserver example?",
                    cli.timeout.timeout
                ),
            ));
        }
        Err(e) => return Err(e),
    }
    println!("sent {} bytes to {peer}; it hung up", cli.message.len());
    Ok(())
}
