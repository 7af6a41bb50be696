//! The seed's UDP greeting client (udp编程 / 客户端), with a receive timeout.
//!
//! ```sh
//! cargo run --example udp_client                      # to 127.0.0.1:9999
//! ```

mod cli;

use clap::Parser;
use socketserver::greet;

/// The seed's UDP greeting client (section udp编程, 客户端).
///
/// Sends each name (default Michael, Tracy, Sarah) as one datagram and
/// prints the reply. UDP can lose a datagram, so instead of waiting forever
/// like the seed, it says so after a timeout, goes on, and exits with
/// status 1 at the end.
#[derive(Parser, Debug)]
#[command(name = "udp_client", version)]
struct Cli {
    #[command(flatten)]
    server: cli::Connect,
    /// The names to send
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    #[command(flatten)]
    timeout: cli::Timeout,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("udp_client: {e}");
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
    let timeout = cli.timeout.timeout;
    let replies = greet::udp_client(&addr.addrs[..], &names, timeout)
        .map_err(|e| addr.error("send to", e))?;
    let mut lost = 0;
    for (name, reply) in names.iter().zip(replies) {
        match reply {
            Some(line) => println!("{line}"),
            None => {
                lost += 1;
                eprintln!(
                    "(no reply to {name} from {addr} within {timeout:?}: the datagram or its reply was lost, or no server is there)"
                );
            }
        }
    }
    if lost > 0 {
        std::process::exit(1);
    }
    Ok(())
}
