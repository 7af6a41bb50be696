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

use std::process;
use std::thread;
use std::time::Duration;

use socketserver::chaos::{Chaos, Proxy};
use socketserver::trace::html;

const USAGE: &str = "
chaos_proxy LISTEN UPSTREAM [--segment N] [--delay-ms D] [--cut-after BYTES]
                            [--html FILE] [--conversations N]

Relays every TCP connection made to LISTEN on to UPSTREAM, both ways,
re-cut into pieces of at most N bytes, each after D milliseconds, and cuts
a conversation once it has moved BYTES. A client that takes one recv() for
one message breaks; a client that reads frames does not.

  --segment N        the largest piece forwarded (default: as read)
  --delay-ms D       wait before each piece (default 0)
  --cut-after BYTES  close a conversation after BYTES, both ways counted
  --html FILE        write every conversation's sequence diagram to FILE
  --conversations N  exit after N conversations (default: run until killed)
";

/// The command line, parsed in this one place.
struct Options {
    listen: String,
    upstream: String,
    chaos: Chaos,
    html: Option<String>,
    conversations: Option<u64>,
}

fn fail(why: &str) -> ! {
    eprintln!("chaos_proxy: {why}\n{}", USAGE.trim_end());
    process::exit(2);
}

fn parse() -> Options {
    let mut positional = Vec::new();
    let mut chaos = Chaos::new();
    let (mut html, mut conversations) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{}", USAGE.trim());
            process::exit(0);
        }
        if !arg.starts_with("--") {
            positional.push(arg);
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        let number = || -> u64 {
            value
                .parse()
                .unwrap_or_else(|_| fail(&format!("{arg}: not a number: {value:?}")))
        };
        match arg.as_str() {
            "--segment" => chaos = chaos.segment(number() as usize),
            "--delay-ms" => chaos = chaos.delay(Duration::from_millis(number())),
            "--cut-after" => chaos = chaos.cut_after(number()),
            "--conversations" => conversations = Some(number()),
            "--html" => html = Some(value),
            _ => fail(&format!("unknown option {arg}")),
        }
    }
    let [listen, upstream] =
        <[String; 2]>::try_from(positional).unwrap_or_else(|_| fail("give LISTEN and UPSTREAM"));
    Options {
        listen,
        upstream,
        chaos: chaos.trace(html.is_some()).log(|line| println!("{line}")),
        html,
        conversations,
    }
}

fn main() {
    if let Err(e) = run(parse()) {
        eprintln!("chaos_proxy: {e}");
        process::exit(1);
    }
}

fn run(options: Options) -> std::io::Result<()> {
    let described = options.chaos.to_string();
    let proxy = Proxy::start(&options.listen, &options.upstream, options.chaos)?;
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
