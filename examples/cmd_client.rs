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
cmd_client [ADDR] [--protocol framed|seed] [--token T] [-- COMMAND...]

The seed's remote command client (section 模拟远程执行命令客户端): type a
command at the >>> prompt and see its output; `exit` or end of input leaves.
With a COMMAND after `--`, runs just that and exits with its exit code.

  ADDR               the server (default 127.0.0.1:9999)
  --protocol framed  our framed requests, with stdout and stderr apart and
                     the exit status (default)
  --protocol seed    the seed's raw requests, for the seed's Python server
  --token T          the server's token (also read from SOCKETSERVER_TOKEN)
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
    let args = args::Args::parse(USAGE, &["protocol", "token"]);
    let protocol = match args.value("protocol", String::from("framed")).as_str() {
        "seed" => Protocol::Seed,
        "framed" => Protocol::Framed,
        other => return Err(CommandError::Server(format!("unknown protocol {other:?}"))),
    };
    let mut client = Client::connect(&args.addr, protocol)?;
    let token: String = args.value(
        "token",
        std::env::var("SOCKETSERVER_TOKEN").unwrap_or_default(),
    );
    if !token.is_empty() {
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
/// and returns the exit code a shell would give.
fn show(reply: Reply) -> i32 {
    let _ = io::stdout().write_all(&reply.stdout);
    let _ = io::stdout().flush();
    let _ = io::stderr().write_all(&reply.stderr);
    if reply.timed_out {
        eprintln!("[timed out: the server killed it]");
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
