//! The seed's remote command client (模拟远程执行命令客户端): a `>>>` prompt,
//! or one command and its exit code.
//!
//! ```sh
//! cargo run --example cmd_client                      # to 127.0.0.1:9999
//! cargo run --example cmd_client -- 127.0.0.1:9999 -- ls -l
//! cargo run --example cmd_client -- 127.0.0.1:9999 --protocol seed
//! ```

mod args;

use std::io::{self, BufRead, Write};

use socketserver::command::{Client, CommandError, Protocol, Reply};

const USAGE: &str = "
cmd_client [ADDR] [--protocol framed|seed] [--token-file FILE] [-- COMMAND...]

The seed's remote command client (section 模拟远程执行命令客户端): type a
command at the >>> prompt and see its output; `exit` or end of input leaves.
With a COMMAND after `--`, runs just that and exits with its exit code:
124 if the server timed it out (as timeout(1) does), 128+N if a signal N
ended it, 1 with a message if the server refused it or failed.

  ADDR               the server (default 127.0.0.1:9999)
  --protocol framed  our framed requests, with stdout and stderr apart and
                     the exit status (default)
  --protocol seed    the seed's raw requests, for the seed's Python server
                     (no exit status, no token)
  --token-file FILE  prove the server's token (first line of FILE); it is
                     never sent. Also read from SOCKETSERVER_TOKEN
  --token T          the same: WARNING, any local user can read it in
                     /proc/PID/cmdline or ps; use --token-file
";

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("cmd_client: {e}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<i32, CommandError> {
    let args = args::Args::parse(USAGE, &["protocol", "token", "token-file"]);
    let protocol = match args.value("protocol", String::from("framed")).as_str() {
        "seed" => Protocol::Seed,
        "framed" => Protocol::Framed,
        other => return Err(CommandError::Server(format!("unknown protocol {other:?}"))),
    };
    let mut client = Client::connect(&args.addr, protocol)?;
    if let Some(token) = token(&args)? {
        client = client.with_token(token);
    }
    if !args.rest.is_empty() {
        let line = shlex::try_join(args.rest.iter().map(String::as_str))
            .map_err(|e| CommandError::Server(e.to_string()))?;
        return Ok(show(client.run(&line)?));
    }
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        print!(">>>");
        io::stdout().flush()?;
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            println!();
            return Ok(0);
        }
        let cmd = line.trim();
        if cmd.is_empty() {
            continue;
        }
        if cmd == "exit" {
            return Ok(0);
        }
        match client.run(cmd) {
            Ok(reply) => {
                show(reply);
            }
            Err(e) if e.keeps_connection() => eprintln!("error: {e}"),
            Err(e) => return Err(e),
        }
    }
}

/// Writes a reply's bytes out unchanged, notes anything unusual on stderr,
/// and returns the exit code a shell would give: the command's; 124 for a
/// timeout, as `timeout(1)`; 128+N for signal N.
fn show(reply: Reply) -> i32 {
    let _ = io::stdout().write_all(&reply.stdout);
    let _ = io::stdout().flush();
    let _ = io::stderr().write_all(&reply.stderr);
    if reply.timed_out {
        eprintln!("[timed out: the server killed it]");
        return 124;
    }
    if reply.truncated {
        eprintln!("[output truncated at the server's cap]");
    }
    match (reply.exit, reply.signal) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 0,
    }
}

/// The token from --token-file, --token or SOCKETSERVER_TOKEN.
fn token(args: &args::Args) -> Result<Option<String>, CommandError> {
    let token = if args.flag("token-file") {
        let path: String = args.value("token-file", String::new());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CommandError::Io(io::Error::new(
                e.kind(),
                format!("--token-file {path}: {e}"),
            ))
        })?;
        Some(text.lines().next().unwrap_or("").trim().to_owned())
    } else if args.flag("token") {
        eprintln!("warning: --token is visible to every local user; prefer --token-file");
        Some(args.value("token", String::new()))
    } else {
        std::env::var(socketserver::command::TOKEN_ENV).ok()
    };
    Ok(token.filter(|t| !t.is_empty()))
}
