//! The seed's remote command server (模拟远程执行命令服务端), safe by
//! default.
//!
//! ```sh
//! cargo run --example cmd_server                      # 127.0.0.1:9999
//! cargo run --example cmd_server -- 0.0.0.0:9999 --token s3cret
//! ```

mod args;

use std::time::Duration;

use socketserver::command::{self, CommandConfig};

const USAGE: &str = "
cmd_server [ADDR] [options]

The seed's remote command server (section 模拟远程执行命令服务端): runs each
command a client sends and replies with its output in a frame. Speaks the
seed's raw requests and our framed ones on the same port. Runs until killed.

  ADDR               where to listen (default 127.0.0.1:9999; port 0 picks one)
  --token T          require this token (also read from SOCKETSERVER_TOKEN);
                     needed to listen beyond loopback; refuses raw requests
  --insecure         listen beyond loopback without a token: anyone who can
                     reach the port runs commands as you
  --shell            run lines with `sh -c` (pipes, `;`, globs): any client
                     can then run anything; off by default
  --allow P,Q        only these programs may run
  --timeout-ms N     kill a command after N ms (default 10000)
  --max-output N     keep at most N bytes of output (default 16777216)
  --max-commands N   run at most N commands at once (default 8)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("cmd_server: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = args::Args::parse(
        USAGE,
        &["token", "allow", "timeout-ms", "max-output", "max-commands"],
    );
    let defaults = CommandConfig::default();
    let mut config = CommandConfig::default()
        .shell(args.flag("shell"))
        .timeout(Duration::from_millis(args.value("timeout-ms", 10_000)))
        .max_output(args.value("max-output", defaults.max_output));
    config.max_commands = args.value("max-commands", defaults.max_commands);
    config.insecure = args.flag("insecure");
    let allow: String = args.value("allow", String::new());
    if !allow.is_empty() {
        config = config.allow(allow.split(','));
    }
    let token: String = args.value(
        "token",
        std::env::var("SOCKETSERVER_TOKEN").unwrap_or_default(),
    );
    if !token.is_empty() {
        config = config.token(token);
    }
    if config.shell {
        eprintln!("warning: --shell: every client can run any shell command line as this user");
    }
    let server = command::bind(&args.addr, config)?;
    println!("端口正在监听。。。 listening on {}", server.local_addr()?);
    server.serve_forever();
    Ok(())
}
