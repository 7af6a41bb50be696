//! The seed's UDP greeting server (udp编程 / 服务端).
//!
//! ```sh
//! cargo run --example udp_server                      # 127.0.0.1:9999
//! ```

mod args;

use std::time::Duration;

use socketserver::UdpServer;
use socketserver::greet::Greeter;

const USAGE: &str = "
udp_server [ADDR] [--delay-ms N]

The seed's UDP greeting server (section udp编程, 服务端): answers every
datagram with `你好,<message>`. No connections, no banner, no `exit`.
Runs until killed.

  ADDR          where to listen (default 127.0.0.1:9999; port 0 picks one)
  --delay-ms N  wait N ms before each reply (default 0)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("udp_server: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = args::Args::parse(USAGE, &["delay-ms"]);
    let greeter = Greeter::new()
        .delay(Duration::from_millis(args.value("delay-ms", 0)))
        .log(|line| println!("{line}"));
    let server = UdpServer::bind(&args.addr, greeter)?;
    println!(
        "在udp端口{}开启服务 listening on {}",
        server.local_addr()?.port(),
        server.local_addr()?
    );
    server.serve_forever();
    Ok(())
}
