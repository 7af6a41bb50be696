//! A chat client (a lesson beyond the seed): your lines to the room, the
//! room's lines to your screen.
//!
//! ```sh
//! cargo run --example chat_client                     # 127.0.0.1:9999
//! ```

mod cli;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;

use clap::Parser;

/// A chat client (a lesson beyond the seed).
///
/// Type your name first, then lines to say; `/quit` (or end of input,
/// Ctrl-D) leaves. What the room says is printed as it comes, while
/// another thread reads the keyboard: waiting for both at once is why.
/// Ends when the server closes the connection. Start the
/// server with `cargo run --example chat_server`.
#[derive(Parser, Debug)]
#[command(name = "chat_client", version)]
struct Cli {
    #[command(flatten)]
    connect: cli::Connect,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("chat_client: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> io::Result<()> {
    let addr = &cli.connect.addr;
    let socket = TcpStream::connect(&addr.addrs[..]).map_err(|e| addr.error("connect to", e))?;
    // Each line is one write: without this, a line typed (or pasted) right
    // after another waits for the server's delayed ACK of the first, up to
    // 40 ms (Nagle's algorithm), as the server's own lines would.
    socket.set_nodelay(true)?;
    // Our lines to the room, on their own thread, until /quit or the end
    // of input; then our end of the stream, and the server closes its side.
    let to_room = socket.try_clone()?;
    thread::spawn(move || {
        let mut out = &to_room;
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if out.write_all(format!("{line}\n").as_bytes()).is_err() || line == "/quit" {
                break;
            }
        }
        let _ = to_room.shutdown(Shutdown::Write);
    });
    // The room's lines, printed as they come, until the server closes:
    // then we are done, whatever the keyboard thread is waiting for.
    let mut out = io::stdout();
    for line in BufReader::new(&socket).lines() {
        writeln!(out, "{}", line?)?;
    }
    Ok(())
}
