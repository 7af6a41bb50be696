//! The seed's remote command server (模拟远程执行命令服务端), safe by
//! default.
//!
//! ```sh
//! cargo run --example cmd_server                      # 127.0.0.1:9999
//! cargo run --example cmd_server -- --allow "uname -a,df -h,ls"
//! cargo run --example cmd_server -- 0.0.0.0:9999 --token-file ~/.cmd_token
//! ```

mod args;

use std::time::Duration;

use socketserver::command::{self, CommandConfig};

const USAGE: &str = "
cmd_server [ADDR] [options]

The seed's remote command server (section 模拟远程执行命令服务端): runs each
command a client sends and replies with its output in a frame. Speaks the
seed's raw requests and our framed ones on the same port. Runs until killed.

Without --allow, anyone who may connect runs any program as you (`sh -c` is
just another program): remote code execution by design, for loopback and
trusted users only.

  ADDR               where to listen (default 127.0.0.1:9999; port 0 picks one)
  --allow LIST       only these command lines, comma-separated, as sudoers
                     writes them: `uname -a` exactly; a bare `ls` with no
                     arguments; `df *` with any arguments (which trusts the
                     program with them: `find *` is `find -exec`, `env *` is
                     anything); a program given as a path only if listed so
  --token-file FILE  require clients to prove this token (first line of
                     FILE); needed to listen beyond loopback; refuses the
                     seed's raw requests, which cannot. Also read from the
                     SOCKETSERVER_TOKEN variable, never passed to commands
  --token T          the same, on the command line: WARNING, any local user
                     can read it in /proc/PID/cmdline or ps; use --token-file
  --insecure         listen beyond loopback without a token: anyone who can
                     reach the port runs commands as you
  --shell            run lines with `sh -c` (pipes, `;`, globs); cannot be
                     combined with --allow
  --timeout-ms N     kill a command and all it started after N ms of wall
                     clock (default 10000)
  --max-output N     keep at most N bytes of output (default 16777216)
  --max-commands N   run at most N commands at once (default 8)

The token never crosses the wire, but commands and output do, in clear:
beyond loopback, put an SSH tunnel or a TLS terminator in front.
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
        &[
            "token",
            "token-file",
            "allow",
            "timeout-ms",
            "max-output",
            "max-commands",
        ],
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
    if let Some(token) = token(&args)? {
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

/// The token from --token-file, --token or SOCKETSERVER_TOKEN, in that
/// order; an empty one is an error, not "no token".
fn token(args: &args::Args) -> std::io::Result<Option<String>> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let token = if args.flag("token-file") {
        let path: String = args.value("token-file", String::new());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| invalid(format!("--token-file {path}: {e}")))?;
        Some(text.lines().next().unwrap_or("").trim().to_owned())
    } else if args.flag("token") {
        eprintln!("warning: --token is visible to every local user; prefer --token-file");
        Some(args.value("token", String::new()))
    } else {
        std::env::var(command::TOKEN_ENV).ok()
    };
    match token {
        Some(t) if t.is_empty() => Err(invalid("the token is empty".into())),
        other => Ok(other),
    }
}
