//! The seed's UDP greeting server (udp编程 / 服务端).
//!
//! ```sh
//! cargo run --example udp_server                      # 127.0.0.1:9999
//! ```

mod cli;

use clap::Parser;
use socketserver::UdpServer;
use socketserver::greet::Greeter;

/// The seed's UDP greeting server (section udp编程, 服务端).
///
/// Answers every datagram with `你好,<message>`. No connections, no banner,
/// no `exit`. Runs until Ctrl-C, then prints the counters. Try it with `cargo run --example
/// udp_client`.
#[derive(Parser, Debug)]
#[command(name = "udp_server", version)]
struct Cli {
    #[command(flatten)]
    listen: cli::Listen,
    #[command(flatten)]
    delay: cli::Delay,
}

fn main() {
    cli::logger::init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("udp_server: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> std::io::Result<()> {
    let addr = &cli.listen.addr;
    let greeter = Greeter::new()
        .delay(cli.delay.delay)
        .log(|line| println!("{line}"));
    let server =
        UdpServer::bind(&addr.addrs[..], greeter).map_err(|e| addr.error("listen on", e))?;
    // Before saying where we listen: a Ctrl-C from then on stops us cleanly.
    server.shutdown_handle().shutdown_on_ctrl_c()?;
    println!(
        "在udp端口{}开启服务 listening on {}",
        server.local_addr()?.port(),
        server.local_addr()?
    );
    server.serve_forever();
    println!("stopped: {}", server.stats());
    Ok(())
}
