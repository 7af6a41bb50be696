//! The seed's remote command server (模拟远程执行命令服务端), safe by
//! default.
//!
//! ```sh
//! cargo run --example cmd_server                      # 127.0.0.1:9999
//! cargo run --example cmd_server -- --allow "uname -a,df -h,ls"
//! cargo run --example cmd_server -- 0.0.0.0:9999 --token-file ~/.cmd_token
//! ```
//!
//! Give a token with `--token-file` (`--token` shows it to every local user
//! in `ps`; `SOCKETSERVER_TOKEN` is taken out of the environment and the
//! process made non-dumpable, see `from_environment`).

// The command service is Unix only (process groups, a subreaper), and so
// is this example.
#[cfg(unix)]
mod cli;

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("cmd_server: Unix only, as the command service is");
    std::process::exit(1);
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::path::PathBuf;
    use std::time::Duration;

    use clap::{Parser, ValueEnum};
    use socketserver::command::{self, CommandConfig, Containment};

    use crate::cli;

    /// The seed's remote command server (section 模拟远程执行命令服务端).
    ///
    /// Runs each command a client sends and replies with its output in a
    /// frame. Speaks the seed's raw requests and our framed ones on the
    /// same port; refuses (and logs once per address) anything that looks
    /// like HTTP, which a web page can make a browser send. Runs until
    /// Ctrl-C or SIGTERM, which stop every running command too.
    ///
    /// Without --allow, anyone who may connect runs any program as you
    /// (`sh -c` is just another program): remote code execution by design,
    /// for loopback and trusted users only. The token never crosses the
    /// wire, but commands and output do, in clear: beyond loopback, put an
    /// SSH tunnel or a TLS terminator in front.
    #[derive(Parser, Debug)]
    #[command(name = "cmd_server", version)]
    struct Cli {
        #[command(flatten)]
        listen: cli::Listen,
        #[command(flatten)]
        balanced: cli::Balanced,
        /// Only these command lines, comma-separated (or --allow given
        /// again), as sudoers writes them: `uname -a` exactly; a bare `ls`
        /// with no arguments; `df *` with any arguments (which trusts the
        /// program with them: `find *` is `find -exec`, `env *` is
        /// anything); a program given as a path only if listed so
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        allow: Vec<String>,
        /// Require clients to prove this token (the first line of FILE),
        /// the preferred way to give it; needed to listen beyond loopback;
        /// refuses the seed's raw requests, which cannot. Clients must
        /// speak command protocol 2: each request is bound to its proof,
        /// and the server proves the token too. Also read from the
        /// SOCKETSERVER_TOKEN variable: then removed from this process's
        /// environment, never passed to commands, and the process made
        /// non-dumpable (Linux) so that commands cannot read its original
        /// environment in /proc
        #[arg(long, value_name = "FILE", conflicts_with = "token")]
        token_file: Option<PathBuf>,
        /// The same, on the command line: WARNING, any local user can read
        /// it in /proc/PID/cmdline or ps; use --token-file
        #[arg(long, value_name = "T")]
        token: Option<String>,
        /// Listen beyond loopback without a token: anyone who can reach the
        /// port runs commands as you
        #[arg(long)]
        insecure: bool,
        /// Run lines with `sh -c` (pipes, `;`, globs); cannot be combined
        /// with --allow
        #[arg(long, conflicts_with = "allow")]
        shell: bool,
        /// Kill a command and all it started after MS milliseconds of wall
        /// clock
        #[arg(long = "timeout-ms", value_name = "MS", default_value = "10000", value_parser = cli::millis)]
        timeout: Duration,
        /// Keep at most BYTES of output
        #[arg(long, value_name = "BYTES", default_value_t = CommandConfig::default().max_output)]
        max_output: usize,
        /// Run at most N commands at once
        #[arg(long, value_name = "N", default_value_t = CommandConfig::default().max_commands)]
        max_commands: usize,
        /// Run at most N commands at once for one IP address [default:
        /// half of --max-commands, at least 1]
        #[arg(long, value_name = "N")]
        max_commands_per_peer: Option<usize>,
        /// How long a new connection has to send its whole first request
        /// (with a token, the answer to the challenge), however it drips
        #[arg(long = "first-request-ms", value_name = "MS", default_value = "10000", value_parser = cli::millis)]
        first_request: Duration,
        /// How long a connection may take to send its next request
        #[arg(long = "idle-ms", value_name = "MS", default_value = "60000", value_parser = cli::millis)]
        idle: Duration,
        /// The most clients connected at once (each a thread)
        #[arg(long, value_name = "N", default_value_t = CommandConfig::default().max_clients)]
        max_clients: usize,
        /// The most clients connected at once from one IP address; 0: no cap
        #[arg(long, value_name = "N", default_value_t = CommandConfig::default().max_per_peer.unwrap_or(0))]
        max_per_peer: usize,
        /// How every process a command starts is made to end with it:
        /// `namespace`, a PID namespace per command that the kernel ends as
        /// a whole (Linux); `scan`, looking for them in /proc; `auto`, a
        /// namespace where the system allows one
        #[arg(long, value_enum, default_value_t = Contain::Auto)]
        containment: Contain,
    }

    #[derive(ValueEnum, Clone, Copy, Debug)]
    enum Contain {
        Auto,
        Namespace,
        Scan,
    }

    pub fn main() {
        cli::logger::init();
        let cli = Cli::parse();
        if let Err(e) = run(cli) {
            eprintln!("cmd_server: {e}");
            std::process::exit(1);
        }
    }

    fn run(cli: Cli) -> io::Result<()> {
        let addr = &cli.listen.addr;
        let mut config = CommandConfig::default()
            .shell(cli.shell)
            .timeout(cli.timeout)
            .max_output(cli.max_output)
            .first_request_timeout(cli.first_request)
            .idle_timeout(cli.idle)
            .max_clients(cli.max_clients)
            .max_per_peer((cli.max_per_peer > 0).then_some(cli.max_per_peer))
            .containment(match cli.containment {
                Contain::Auto => Containment::Auto,
                Contain::Namespace => Containment::Namespace,
                Contain::Scan => Containment::Scan,
            });
        config.max_commands = cli.max_commands;
        if let Some(n) = cli.max_commands_per_peer {
            config = config.max_commands_per_peer(n);
        }
        config.insecure = cli.insecure;
        config.reuse_port = cli.balanced.reuse_port;
        config.proxy_protocol = cli.balanced.proxy_protocol.clone();
        let allow: Vec<&str> = cli
            .allow
            .iter()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .collect();
        if !cli.allow.is_empty() && allow.is_empty() {
            // Not "no allowlist": that would allow everything.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--allow lists no command line",
            ));
        }
        if !allow.is_empty() {
            config = config.allow(allow);
        }
        if let Some(token) = token(&cli)? {
            config = config.token(token);
        }
        if config.shell {
            eprintln!("warning: --shell: every client can run any shell command line as this user");
        }
        let server =
            command::bind(&addr.addrs[..], config).map_err(|e| addr.error("listen on", e))?;
        // Before saying where we listen: a Ctrl-C (or SIGTERM) from then on
        // stops us cleanly, and every running command with us.
        server.shutdown_handle().shutdown_on_ctrl_c()?;
        println!("端口正在监听。。。 listening on {}", server.local_addr()?);
        server.serve_forever();
        println!("stopped: {}", server.stats());
        Ok(())
    }

    /// The token from --token-file, --token or SOCKETSERVER_TOKEN, in that
    /// order; an empty one is an error, not "no token".
    fn token(cli: &Cli) -> io::Result<Option<String>> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        let token = if let Some(path) = &cli.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                io::Error::new(e.kind(), format!("--token-file {}: {e}", path.display()))
            })?;
            Some(text.lines().next().unwrap_or("").trim().to_owned())
        } else if let Some(token) = &cli.token {
            eprintln!("warning: --token is visible to every local user; prefer --token-file");
            Some(token.clone())
        } else {
            from_environment()?
        };
        match token {
            Some(t) if t.is_empty() => Err(invalid("the token is empty".into())),
            other => Ok(other),
        }
    }

    /// The token from SOCKETSERVER_TOKEN, taken out of reach of commands:
    /// removed from the environment (so nothing this process starts
    /// inherits it), and, since the C library leaves the original
    /// environment block in place (still shown in /proc/PID/environ), the
    /// process made non-dumpable: its /proc files are then root's, and a
    /// command running as the same user can read neither its environment
    /// nor its memory. Also no core dumps, which would hold the token.
    fn from_environment() -> io::Result<Option<String>> {
        let Some(token) = std::env::var_os(command::TOKEN_ENV) else {
            return Ok(None);
        };
        // SAFETY: no other thread exists yet (main has started none, nor
        // has argument parsing), so nothing reads the environment while it
        // changes.
        unsafe { std::env::remove_var(command::TOKEN_ENV) };
        #[cfg(target_os = "linux")]
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
        token.into_string().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not UTF-8", command::TOKEN_ENV),
            )
        })
    }
}
