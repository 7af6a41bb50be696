//! A chat room (a lesson beyond the seed): every line a client sends
//! reaches every other client.
//!
//! ```sh
//! cargo run --example chat_server                     # 127.0.0.1:9999
//! cargo run --example chat_client                     # in two other terminals
//! nc 127.0.0.1 9999                                   # works too
//! ```

mod cli;

use clap::Parser;
use socketserver::chat;

/// A chat room (a lesson beyond the seed).
///
/// A client's first line is its name; each later line reaches every other
/// client as `name: line`; joins and leaves are announced; `/quit` leaves.
/// A client that stops reading is dropped once its 256-line queue is full
/// and it takes nothing more, so it never stalls the room. Safe by default:
/// at most 8 clients from one address, 30 s to give a name, dropped after
/// 10 minutes without a line (`chat::bind`'s limits). Runs until Ctrl-C,
/// which tells every client the server is stopping, then prints the
/// counters. Try it with `cargo run
/// --example chat_client`, or `nc 127.0.0.1 9999`.
#[derive(Parser, Debug)]
#[command(name = "chat_server", version)]
struct Cli {
    #[command(flatten)]
    listen: cli::Listen,
    #[command(flatten)]
    balanced: cli::Balanced,
}

fn main() {
    cli::logger::init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("chat_server: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> std::io::Result<()> {
    let addr = &cli.listen.addr;
    let server = cli
        .balanced
        .apply(chat::builder())
        .bind(&addr.addrs[..])
        .map_err(|e| addr.error("listen on", e))?;
    // Before saying where we listen: a Ctrl-C from then on stops us cleanly.
    server.shutdown_handle().shutdown_on_ctrl_c()?;
    println!("chat room listening on {}", server.local_addr()?);
    server.serve_forever();
    println!("stopped: {}", server.stats());
    Ok(())
}
