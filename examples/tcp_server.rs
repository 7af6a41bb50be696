//! The seed's TCP greeting server (tcp编程 / 服务端), on a thread per
//! connection.
//!
//! ```sh
//! cargo run --example tcp_server                      # 127.0.0.1:9999
//! cargo run --example tcp_server -- 127.0.0.1:0 --delay-ms 1000
//! ```

mod cli;

use clap::Parser;
use socketserver::ThreadingTcpServer;
use socketserver::greet::Greeter;

/// The seed's TCP greeting server (section tcp编程, 服务端).
///
/// Sends `Welcome!`, answers every message with `你好,<message>`, closes on
/// `exit`. Each client gets its own thread. Runs until Ctrl-C, which lets
/// replies under way finish, then prints the counters. Try it with
/// `cargo run --example tcp_client`.
#[derive(Parser, Debug)]
#[command(name = "tcp_server", version)]
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
        eprintln!("tcp_server: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> std::io::Result<()> {
    let addr = &cli.listen.addr;
    let greeter = Greeter::new()
        .delay(cli.delay.delay)
        .log(|line| println!("{line}"));
    let server = ThreadingTcpServer::bind(&addr.addrs[..], greeter)
        .map_err(|e| addr.error("listen on", e))?;
    // Before saying where we listen: a Ctrl-C from then on stops us cleanly.
    server.shutdown_handle().shutdown_on_ctrl_c()?;
    println!("等待连接。。。 listening on {}", server.local_addr()?);
    server.serve_forever();
    println!("stopped: {}", server.stats());
    Ok(())
}
