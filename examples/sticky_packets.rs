//! The seed's 粘包与分包 lesson: sticky packets and fragmentation shown on
//! loopback, then undone by the frame.
//!
//! ```sh
//! cargo run --example sticky_packets
//! ```

mod args;

use socketserver::sticky;

const USAGE: &str = "
sticky_packets [--size BYTES]

The seed's 粘包与分包 lesson (sticky packets and fragmentation) on loopback:
two writes read back as one, one write read back in many pieces, and the
same traffic through the seed's frame read back exactly as sent.

  --size BYTES  the large message (default 4194304: 4 MiB)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("sticky_packets: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = args::Args::parse(USAGE, &["size"]);
    println!("{}", sticky::Lesson::run(args.value("size", 4 << 20))?);
    Ok(())
}
