//! The seed's TCP greeting server (tcp编程 / 服务端), on a thread per
//! connection.
//!
//! ```sh
//! cargo run --example tcp_server                      # 127.0.0.1:9999
//! cargo run --example tcp_server -- 127.0.0.1:0 --delay-ms 1000
//! ```

mod args;

use std::time::Duration;

use socketserver::ThreadingTcpServer;
use socketserver::greet::Greeter;

const USAGE: &str = "
tcp_server [ADDR] [--delay-ms N]

The seed's TCP greeting server (section tcp编程, 服务端): sends `Welcome!`,
answers every message with `你好,<message>`, closes on `exit`. Each client
gets its own thread. Runs until killed.

  ADDR          where to listen (default 127.0.0.1:9999; port 0 picks one)
  --delay-ms N  wait N ms before each reply, like the seed's time.sleep(1),
                to watch two clients being served at once (default 0)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("tcp_server: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = args::Args::parse(USAGE, &["delay-ms"]);
    let greeter = Greeter::new()
        .delay(Duration::from_millis(args.value("delay-ms", 0)))
        .log(|line| println!("{line}"));
    let server = ThreadingTcpServer::bind(&args.addr, greeter)?;
    println!("等待连接。。。 listening on {}", server.local_addr()?);
    server.serve_forever();
    Ok(())
}
