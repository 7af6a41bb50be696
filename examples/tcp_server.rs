//! The seed's TCP greeting server (tcp编程 / 服务端), on a thread per
//! connection.
//!
//! ```sh
//! cargo run --example tcp_server                      # 127.0.0.1:9999
//! cargo run --example tcp_server -- 127.0.0.1:0 --delay-ms 1000
//! # behind a load balancer on this machine, one of several processes:
//! cargo run --example tcp_server -- --reuse-port --proxy-protocol 127.0.0.1
//! ```

mod cli;

use std::time::Duration;

use clap::Parser;
use socketserver::ThreadingTcpServer;
use socketserver::greet::Greeter;

/// The seed's TCP greeting server (section tcp编程, 服务端).
///
/// Sends `Welcome!`, answers every message with `你好,<message>`, closes on
/// `exit`. Each client gets its own thread. Safe by default: at most 16
/// clients from one IP address, and 10 s for a client's first message
/// (then the socket's 5-minute read timeout between messages), so one
/// address cannot hold every slot. Runs until Ctrl-C, which lets replies
/// under way finish, then prints the counters. Try it with
/// `cargo run --example tcp_client`.
#[derive(Parser, Debug)]
#[command(name = "tcp_server", version)]
struct Cli {
    #[command(flatten)]
    listen: cli::Listen,
    #[command(flatten)]
    delay: cli::Delay,
    #[command(flatten)]
    balanced: cli::Balanced,
}

/// Clients at once from one IP address: 1,030 idle connections from one
/// address no longer fill the 1,024 places.
const MAX_PER_PEER: usize = 16;
/// How long a client has for its first message (`Greeter` clears the
/// deadline once it comes).
const FIRST_MESSAGE: Duration = Duration::from_secs(10);

fn main() {
    cli::logger::init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("tcp_server: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> std::io::Result<()> {
    let addr = &cli.listen.addr;
    let greeter = Greeter::new()
        .delay(cli.delay.delay)
        .log(|line| println!("{line}"));
    let server = cli
        .balanced
        .apply(ThreadingTcpServer::builder(greeter))
        .max_per_peer(Some(MAX_PER_PEER))
        .initial_deadline(Some(FIRST_MESSAGE))
        .bind(&addr.addrs[..])
        .map_err(|e| addr.error("listen on", e))?;
    // Before saying where we listen: a Ctrl-C from then on stops us cleanly.
    server.shutdown_handle().shutdown_on_ctrl_c()?;
    println!("等待连接。。。 listening on {}", server.local_addr()?);
    server.serve_forever();
    println!("stopped: {}", server.stats());
    Ok(())
}
