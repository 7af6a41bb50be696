//! The seed's 粘包与分包 lesson: sticky packets and fragmentation shown on
//! loopback, then undone by the frame.
//!
//! ```sh
//! cargo run --example sticky_packets
//! ```

use clap::Parser;
use socketserver::sticky;

/// The seed's 粘包与分包 lesson (sticky packets and fragmentation).
///
/// On loopback: two writes read back as one, one write read back in many
/// pieces, and the same traffic through the seed's frame read back exactly
/// as sent. Starts its own server on 127.0.0.1, port 0.
#[derive(Parser, Debug)]
#[command(name = "sticky_packets", version)]
struct Cli {
    /// The large message, in bytes (at most 64 MiB, the frame's body limit)
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20,
          value_parser = clap::value_parser!(u64).range(1..=64 << 20))]
    size: u64,
}

fn main() {
    let cli = Cli::parse();
    match sticky::Lesson::run(cli.size as usize) {
        Ok(lesson) => println!("{lesson}"),
        Err(e) => {
            eprintln!("sticky_packets: {e}");
            std::process::exit(1);
        }
    }
}
