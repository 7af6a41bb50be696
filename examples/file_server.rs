//! A file server (a lesson beyond the seed): list, download and upload in
//! one directory, over the seed's frame.
//!
//! ```sh
//! cargo run --example file_server -- --root /tmp/shared     # 127.0.0.1:9998
//! ```

mod cli;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use socketserver::files::{self, FileConfig};

/// Serves one directory (a lesson beyond the seed).
///
/// Clients list it, download files from it and upload into it, each file
/// as md5-checked chunks of the seed's frame. Names are confined to DIR.
/// Runs until Ctrl-C, then prints the counters. Try it with `cargo run --example file_client -- ls`.
///
/// Anyone who can reach HOST:PORT can read every file under DIR: keep the
/// default loopback address unless that is what you want.
#[derive(Parser, Debug)]
#[command(name = "file_server", version)]
struct Cli {
    #[command(flatten)]
    listen: cli::Listen,
    #[command(flatten)]
    balanced: cli::Balanced,
    /// The directory served
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// Refuse uploads
    #[arg(long)]
    read_only: bool,
    /// The largest upload, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_MAX_UPLOAD)]
    max_upload: u64,
    /// The most bytes all uploads in flight may declare together; past it
    /// an upload is refused before its data
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_UPLOAD_BUDGET)]
    upload_budget: u64,
    /// The most bytes the uploads in flight from one IP address may
    /// declare together: its share of the budget
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_UPLOAD_BUDGET_PER_PEER)]
    upload_budget_per_peer: u64,
    /// The free space every upload must leave on the disk (0: fill it)
    #[arg(long, value_name = "BYTES", default_value_t = files::DEFAULT_FREE_SPACE_FLOOR)]
    free_space_floor: u64,
    /// How long each 1 MiB of a transfer may take, either way, however its
    /// bytes drip
    #[arg(long = "chunk-timeout-ms", value_name = "MS", default_value = "60000", value_parser = cli::millis)]
    chunk_timeout: Duration,
    /// How long a new connection has to send its whole first request
    #[arg(long = "first-request-ms", value_name = "MS", default_value = "10000", value_parser = cli::millis)]
    first_request: Duration,
    /// How long a connection may take to send its next request
    #[arg(long = "idle-ms", value_name = "MS", default_value = "60000", value_parser = cli::millis)]
    idle: Duration,
    /// The most clients served at once (each a thread)
    #[arg(long, value_name = "N", default_value_t = files::DEFAULT_MAX_CLIENTS)]
    max_clients: usize,
    /// The most clients served at once from one IP address; 0: no cap
    #[arg(long, value_name = "N", default_value_t = files::DEFAULT_MAX_PER_PEER)]
    max_per_peer: usize,
}

const DEFAULT_ADDR: &str = "127.0.0.1:9998";

fn main() {
    cli::logger::init();
    let cli: Cli = cli::parse_with_addr(DEFAULT_ADDR);
    if let Err(e) = run(cli) {
        eprintln!("file_server: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> io::Result<()> {
    let addr = &cli.listen.addr;
    let root = cli.root.display();
    let mut config = FileConfig::new(&cli.root)
        .read_only(cli.read_only)
        .max_upload(cli.max_upload)
        .upload_budget(cli.upload_budget)
        .upload_budget_per_peer(cli.upload_budget_per_peer)
        .free_space_floor(cli.free_space_floor)
        .chunk_timeout(cli.chunk_timeout)
        .first_request_timeout(cli.first_request)
        .idle_timeout(cli.idle)
        .max_clients(cli.max_clients)
        .max_per_peer((cli.max_per_peer > 0).then_some(cli.max_per_peer));
    config.reuse_port = cli.balanced.reuse_port;
    config.proxy_protocol = cli.balanced.proxy_protocol.clone();
    // Checked here so that an error from bind is about the address.
    match std::fs::metadata(&cli.root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(io::Error::other(format!("--root {root}: not a directory"))),
        Err(e) => return Err(io::Error::new(e.kind(), format!("--root {root}: {e}"))),
    }
    let server = files::bind(&addr.addrs[..], config).map_err(|e| addr.error("listen on", e))?;
    let local = server.local_addr()?;
    if !local.ip().is_loopback() {
        eprintln!("warning: serving {root} to every host that can reach {local}");
    }
    // Before saying where we listen: a Ctrl-C from then on stops us cleanly.
    server.shutdown_handle().shutdown_on_ctrl_c()?;
    println!("serving {root}, listening on {local}");
    server.serve_forever();
    println!("stopped: {}", server.stats());
    Ok(())
}
