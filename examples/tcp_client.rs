//! The seed's TCP greeting client (tcp编程 / 客户端).
//!
//! ```sh
//! cargo run --example tcp_client                      # to 127.0.0.1:9999
//! cargo run --example tcp_client -- 127.0.0.1:9999 Ada Grace
//! ```

mod args;

use socketserver::greet;

const USAGE: &str = "
tcp_client [ADDR] [NAME...]

The seed's TCP greeting client (section tcp编程, 客户端): prints the server's
banner, sends each name (default Michael, Tracy, Sarah) and prints each
greeting, then sends `exit`.

  ADDR  the server (default 127.0.0.1:9999)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("tcp_client: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = args::Args::parse(USAGE, &[]);
    let names: Vec<&str> = if args.rest.is_empty() {
        greet::SEED_NAMES.to_vec()
    } else {
        args.rest.iter().map(String::as_str).collect()
    };
    for line in greet::tcp_client(&args.addr, &names)? {
        println!("{line}");
    }
    Ok(())
}
