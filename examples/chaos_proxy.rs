//! A chaos proxy: relays TCP from LISTEN to UPSTREAM, re-cut into small
//! delayed pieces, to make 分包 (fragmentation) happen on every message.
//!
//! ```sh
//! cargo run --example tcp_server                       # the greeting server on 9999
//! cargo run --example chaos_proxy -- 127.0.0.1:9998 127.0.0.1:9999 --segment 2 --delay-ms 50
//! python3 tests/peers/greet_tcp_client.py 9998         # the seed's client: replies in pieces
//! ```
//!
//! Every line it prints says what it did to a conversation. With
//! `--html FILE` it writes a sequence diagram of every conversation so far
//! to FILE each time one ends.

mod cli;

use std::process;
use std::thread;
use std::time::Duration;

use clap::Parser;
use cli::Address;
use socketserver::chaos::{Chaos, Proxy};
use socketserver::trace::html;

/// A chaos proxy: makes 分包 (fragmentation) happen on every message.
///
/// Relays every TCP connection made to LISTEN on to UPSTREAM, both ways,
/// re-cut into pieces of at most N bytes, each after D milliseconds, and
/// cuts a conversation once it has moved BYTES. A client that takes one
/// recv() for one message breaks; a client that reads frames does not.
/// Every line it prints says what it did to a conversation.
#[derive(Parser, Debug)]
#[command(name = "chaos_proxy", version)]
struct Cli {
    /// Where clients connect, as HOST:PORT; port 0 picks a free port
    /// (printed)
    #[arg(value_name = "LISTEN", value_parser = Address::parse)]
    listen: Address,
    /// The server to relay to, as HOST:PORT
    #[arg(value_name = "UPSTREAM", value_parser = Address::parse)]
    upstream: Address,
    /// The largest piece forwarded, in bytes (default: as read)
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    segment: Option<u64>,
    /// Wait D milliseconds before forwarding each piece
    #[arg(long = "delay-ms", value_name = "D", default_value = "0",
          value_parser = cli::millis)]
    delay: Duration,
    /// Close a conversation once it has moved BYTES, both ways counted
    #[arg(long, value_name = "BYTES")]
    cut_after: Option<u64>,
    /// Write every conversation's sequence diagram to FILE, each time one
    /// ends
    #[arg(long, value_name = "FILE")]
    html: Option<String>,
    /// Exit after N conversations (default: run until killed)
    #[arg(long, value_name = "N")]
    conversations: Option<u64>,
}

impl Cli {
    /// What the proxy does to each conversation.
    fn chaos(&self) -> Chaos {
        let mut chaos = Chaos::new().delay(self.delay);
        if let Some(n) = self.segment {
            // At most 1 MiB (the parser's range): fits any usize.
            chaos = chaos.segment(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(bytes) = self.cut_after {
            chaos = chaos.cut_after(bytes);
        }
        chaos
            .trace(self.html.is_some())
            .log(|line| println!("{line}"))
    }
}

fn main() {
    // Usage errors exit 2 before anything is bound.
    if let Err(e) = run(Cli::parse()) {
        eprintln!("chaos_proxy: {e}");
        process::exit(1);
    }
}

fn run(options: Cli) -> std::io::Result<()> {
    let chaos = options.chaos();
    let described = chaos.to_string();
    // Connections upstream are made per conversation, each failure logged
    // with the address; the first resolved address is the one used.
    let proxy = Proxy::start(
        &options.listen.addrs[..],
        &options.upstream.addrs[..],
        chaos,
    )
    .map_err(|e| options.listen.error("listen on", e))?;
    println!(
        "chaos proxy on {} → {}: {described}",
        proxy.local_addr(),
        options.upstream
    );
    let mut seen = 0;
    loop {
        let report = proxy.report();
        if report.connections + report.refused > seen {
            seen = report.connections + report.refused;
            if let Some(file) = &options.html {
                let traces = proxy.traces();
                let sections: Vec<_> = traces
                    .iter()
                    .map(|t| html::Section::new(t, described.clone()))
                    .collect();
                std::fs::write(file, html::page("chaos proxy", "en", &sections))?;
                println!("wrote {} diagrams to {file}", sections.len());
            }
            if options.conversations.is_some_and(|n| seen >= n) {
                println!("{}", proxy.shutdown());
                return Ok(());
            }
        }
        // Polling keeps the proxy's library API free of callbacks for this
        // one use; a conversation's end shows within 100 ms.
        thread::sleep(Duration::from_millis(100));
    }
}
