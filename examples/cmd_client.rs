//! The seed's remote command client (模拟远程执行命令客户端): a `>>>` prompt,
//! or one command and its exit code.
//!
//! ```sh
//! cargo run --example cmd_client                      # to 127.0.0.1:9999
//! cargo run --example cmd_client -- 127.0.0.1:9999 -- ls -l
//! cargo run --example cmd_client -- 127.0.0.1:9999 --protocol seed
//! ```

// The command service is Unix only, and so is its client.
#[cfg(unix)]
mod cli;

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("cmd_client: Unix only, as the command service is");
    std::process::exit(1);
}

#[cfg(unix)]
mod unix {
    use std::io::{self, BufRead, Write};
    use std::path::PathBuf;

    use clap::{Parser, ValueEnum};
    use socketserver::command::{self, Client, CommandError, Protocol, Reply};

    use crate::cli;

    /// The seed's remote command client (section 模拟远程执行命令客户端).
    ///
    /// Type a command at the >>> prompt and see its output; `exit` or end
    /// of input leaves. In our form each command goes on a connection of
    /// its own, so the prompt may wait as long as you like (our server
    /// closes a connection that sends nothing for a while: `cmd_server
    /// --first-request-ms`, `--idle-ms`); in the seed's form all go on one,
    /// as the seed's client does. With a COMMAND after `--`, runs just that and exits
    /// with its exit code: 124 if the server timed it out (as timeout(1)
    /// does), 128+N if a signal N ended it, 1 with a message if the server
    /// refused it or failed.
    #[derive(Parser, Debug)]
    #[command(name = "cmd_client", version)]
    struct Cli {
        #[command(flatten)]
        server: cli::Connect,
        /// framed: ours, with stdout and stderr apart and the exit status;
        /// seed: the seed's raw requests, for the seed's Python server (no
        /// exit status, no token)
        #[arg(long, value_enum, default_value = "framed")]
        protocol: Form,
        /// Prove the server's token (the first line of FILE), the
        /// preferred way to give it; it is never sent. Each request carries
        /// its own proof (command protocol 2), and the server must prove
        /// the token too, or nothing it sends is trusted. Also read from
        /// SOCKETSERVER_TOKEN
        #[arg(long, value_name = "FILE", conflicts_with = "token")]
        token_file: Option<PathBuf>,
        /// The same, on the command line: WARNING, any local user can read
        /// it in /proc/PID/cmdline or ps; use --token-file
        #[arg(long, value_name = "T")]
        token: Option<String>,
        /// Run just this command, and exit with its exit code
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    }

    #[derive(ValueEnum, Clone, Copy, Debug)]
    enum Form {
        Framed,
        Seed,
    }

    pub fn main() {
        match run(Cli::parse()) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("cmd_client: {e}");
                std::process::exit(1);
            }
        }
    }

    fn run(cli: Cli) -> Result<i32, CommandError> {
        let addr = &cli.server.addr;
        let protocol = match cli.protocol {
            Form::Framed => Protocol::Framed,
            Form::Seed => Protocol::Seed,
        };
        let token = token(&cli)?;
        let connect = || -> Result<Client, CommandError> {
            let client = Client::connect(&addr.addrs[..], protocol)
                .map_err(|e| addr.error("connect to", e))?;
            Ok(match &token {
                Some(token) => client.with_token(token.clone()),
                None => client,
            })
        };
        if !cli.command.is_empty() {
            let line = shlex::try_join(cli.command.iter().map(String::as_str))
                .map_err(|e| CommandError::Server(e.to_string()))?;
            return Ok(show(connect()?.run(&line)?));
        }
        // Connected at once, so a wrong address is an error before the
        // prompt. The seed's server takes one connection per session (it
        // runs an empty command for a connection that closes at once).
        let mut session = Some(connect()?).filter(|_| protocol == Protocol::Seed);
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
            let mut client = match (protocol, session.take()) {
                (Protocol::Seed, Some(client)) => client,
                _ => connect()?,
            };
            let outcome = client.run(cmd);
            if protocol == Protocol::Seed {
                session = Some(client);
            }
            match outcome {
                Ok(reply) => {
                    show(reply);
                }
                Err(e) if e.keeps_connection() => eprintln!("error: {e}"),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes a reply's bytes out unchanged, notes anything unusual on
    /// stderr, and returns the exit code a shell would give: the
    /// command's; 124 for a timeout, as `timeout(1)`; 128+N for signal N.
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
    fn token(cli: &Cli) -> Result<Option<String>, CommandError> {
        let token = if let Some(path) = &cli.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CommandError::Io(io::Error::new(
                    e.kind(),
                    format!("--token-file {}: {e}", path.display()),
                ))
            })?;
            Some(text.lines().next().unwrap_or("").trim().to_owned())
        } else if let Some(token) = &cli.token {
            eprintln!("warning: --token is visible to every local user; prefer --token-file");
            Some(token.clone())
        } else {
            std::env::var(command::TOKEN_ENV).ok()
        };
        Ok(token.filter(|t| !t.is_empty()))
    }
}
