//! A file server (a lesson beyond the seed): list, download and upload in
//! one directory, over the seed's frame.
//!
//! ```sh
//! cargo run --example file_server -- --root /tmp/shared     # 127.0.0.1:9998
//! ```

mod args;

use socketserver::files::{self, DEFAULT_MAX_UPLOAD, FileConfig};

const USAGE: &str = "
file_server [ADDR] --root DIR [options]

Serves one directory (a lesson beyond the seed): clients list it, download
files from it and upload into it, each file as md5-checked chunks of the
seed's frame. Names are confined to DIR. Runs until killed.

  ADDR               where to listen (default 127.0.0.1:9998; port 0 picks one)
  --root DIR         the directory served (required)
  --read-only        refuse uploads
  --max-upload N     the largest upload, in bytes (default 4294967296)

Anyone who can reach ADDR can read every file under DIR: keep the default
loopback address unless that is what you want.
";

const DEFAULT_ADDR: &str = "127.0.0.1:9998";

fn main() {
    if let Err(e) = run() {
        eprintln!("file_server: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = args::Args::parse_at(USAGE, &["root", "max-upload"], DEFAULT_ADDR);
    let root: String = args.value("root", String::new());
    if root.is_empty() {
        eprintln!("file_server: --root DIR is required\n{}", USAGE.trim());
        std::process::exit(2);
    }
    let config = FileConfig::new(&root)
        .read_only(args.flag("read-only"))
        .max_upload(args.value("max-upload", DEFAULT_MAX_UPLOAD));
    let server = files::bind(&args.addr, config)?;
    let addr = server.local_addr()?;
    if !addr.ip().is_loopback() {
        eprintln!("warning: serving {root} to every host that can reach {addr}");
    }
    println!("serving {root}, listening on {addr}");
    server.serve_forever();
    Ok(())
}
