//! The seed's TCP greeting client (tcp编程 / 客户端).
//!
//! ```sh
//! cargo run --example tcp_client                      # to 127.0.0.1:9999
//! cargo run --example tcp_client -- localhost:9999 Ada Grace
//! ```

mod cli;

use clap::Parser;
use socketserver::greet;

/// The seed's TCP greeting client (section tcp编程, 客户端).
///
/// Prints the server's banner, sends each name (default Michael, Tracy,
/// Sarah) and prints each greeting, then sends `exit`. For tcp_server (or
/// the seed's Python server): it waits for their `Welcome!`.
#[derive(Parser, Debug)]
#[command(name = "tcp_client", version)]
struct Cli {
    #[command(flatten)]
    server: cli::Connect,
    /// The names to send
    #[arg(value_name = "NAME")]
    names: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("tcp_client: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> std::io::Result<()> {
    let addr = &cli.server.addr;
    let names: Vec<&str> = if cli.names.is_empty() {
        greet::SEED_NAMES.to_vec()
    } else {
        cli.names.iter().map(String::as_str).collect()
    };
    let transcript =
        greet::tcp_client(&addr.addrs[..], &names).map_err(|e| addr.error("talk to", e))?;
    for line in transcript {
        println!("{line}");
    }
    Ok(())
}
