//! The seed's UDP greeting client (udp编程 / 客户端), with a receive timeout.
//!
//! ```sh
//! cargo run --example udp_client                      # to 127.0.0.1:9999
//! ```

mod args;

use std::time::Duration;

use socketserver::greet;

const USAGE: &str = "
udp_client [ADDR] [NAME...] [--timeout-ms N]

The seed's UDP greeting client (section udp编程, 客户端): sends each name
(default Michael, Tracy, Sarah) as one datagram and prints the reply. UDP
can lose a datagram, so instead of waiting forever like the seed, it says
so after a timeout and goes on.

  ADDR            the server (default 127.0.0.1:9999)
  --timeout-ms N  how long to wait for each reply (default 2000)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("udp_client: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = args::Args::parse(USAGE, &["timeout-ms"]);
    let names: Vec<&str> = if args.rest.is_empty() {
        greet::SEED_NAMES.to_vec()
    } else {
        args.rest.iter().map(String::as_str).collect()
    };
    let timeout = Duration::from_millis(args.value("timeout-ms", 2000));
    let replies = greet::udp_client(&args.addr, &names, timeout)?;
    let mut lost = 0;
    for (name, reply) in names.iter().zip(replies) {
        match reply {
            Some(line) => println!("{line}"),
            None => {
                lost += 1;
                eprintln!(
                    "(no reply to {name} within {timeout:?}: the datagram or its reply was lost, or no server is there)"
                );
            }
        }
    }
    if lost > 0 {
        std::process::exit(1);
    }
    Ok(())
}
