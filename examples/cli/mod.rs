//! The examples' shared command line, on `clap`: the address every server
//! listens on and every client connects to, the delay and timeout options,
//! and the errors that name the address they tried.
//!
//! Each example derives its own `clap::Parser` and flattens in what it
//! needs from here, so an option means the same thing in every example and
//! is spelt once. Anything clap does not understand (an unknown flag, a
//! value that does not parse, an address without a port) is a usage
//! error: exit status 2, before anything is bound or connected.

// Each example uses only part of this.
#![allow(dead_code)]

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Parser;

/// The examples' logger: `env_logger`.
///
/// The library writes nothing to stderr by itself; it speaks through the
/// `log` facade (a failing `accept`, a peer refused, a grace period
/// overrun, a handler's error, Ctrl-C), and a program decides where that
/// goes. The examples send it to stderr with `env_logger`, at the level
/// `RUST_LOG` names (`off`, `error`, `warn`, `info`, `debug`, `trace`, or
/// per target: `RUST_LOG=socketserver=warn`), `info` when it is not set,
/// so learners see the lines.
pub mod logger {
    /// Installs the logger (once; later calls do nothing).
    pub fn init() {
        let env = env_logger::Env::default().default_filter_or("info");
        let _ = env_logger::Builder::from_env(env).try_init();
    }
}

/// The seed's address: loopback, port 9999.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9999";

/// An address as the user wrote it (`HOST:PORT`) and what it resolved to.
///
/// Resolved while the command line is parsed, so a name that does not
/// resolve is a usage error, and every later error can name both.
#[derive(Clone, Debug)]
pub struct Address {
    /// As written: `localhost:9999`, `127.0.0.1:0`, `[::1]:9999`.
    pub text: String,
    /// Every address it resolved to, in the resolver's order; never empty.
    pub addrs: Vec<SocketAddr>,
}

impl Address {
    /// The `clap` value parser: `HOST:PORT`, the host a name or an IP
    /// address (IPv6 in brackets); a missing port gets a hint.
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Address {
                text: text.to_owned(),
                addrs: vec![addr],
            });
        }
        let hint_port =
            |host: &str| format!("no port in {text:?}: write HOST:PORT, e.g. {host}:9999");
        if let Ok(std::net::IpAddr::V6(ip)) = text.parse() {
            return Err(hint_port(&format!("[{ip}]")));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(hint_port(if text.is_empty() { "127.0.0.1" } else { text }));
        };
        if host.is_empty() {
            return Err(format!(
                "no host in {text:?}: write HOST:PORT, e.g. 127.0.0.1{text}"
            ));
        }
        if host.contains(':') && !host.starts_with('[') {
            return Err(format!(
                "{text:?}: an IPv6 address needs brackets, e.g. [::1]:9999"
            ));
        }
        if port.parse::<u16>().is_err() {
            return Err(format!(
                "{text:?}: the port must be a number from 0 to 65535"
            ));
        }
        match text.to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(format!("{host} resolves to no address"))
                } else {
                    Ok(Address {
                        text: text.to_owned(),
                        addrs,
                    })
                }
            }
            Err(e) => Err(format!("cannot resolve {host}: {e}")),
        }
    }

    /// Adds the address to an error from binding or connecting to it:
    /// `cannot listen on localhost:9999 (127.0.0.1:9999): Address in use`.
    pub fn error(&self, doing: &str, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("cannot {doing} {self}: {e}"))
    }
}

impl fmt::Display for Address {
    /// The address as written, and what a name resolved to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if self.text.parse::<SocketAddr>().is_err() {
            let addrs: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
            write!(f, " ({})", addrs.join(", "))?;
        }
        Ok(())
    }
}

/// A server's address: where to listen.
#[derive(clap::Args, Debug)]
pub struct Listen {
    /// Where to listen, as HOST:PORT; port 0 picks a free port (printed)
    #[arg(
        value_name = "HOST:PORT",
        default_value = DEFAULT_ADDR,
        value_parser = Address::parse
    )]
    pub addr: Address,
}

/// A client's address: the server to talk to.
#[derive(clap::Args, Debug)]
pub struct Connect {
    /// The server, as HOST:PORT (a name such as localhost:9999 is resolved)
    #[arg(
        value_name = "HOST:PORT",
        default_value = DEFAULT_ADDR,
        value_parser = Address::parse
    )]
    pub addr: Address,
}

/// A server's wait before each reply.
#[derive(clap::Args, Debug)]
pub struct Delay {
    /// Wait MS milliseconds before each reply, like the seed's
    /// time.sleep(1), to watch two clients being served at once
    #[arg(long = "delay-ms", value_name = "MS", default_value = "0", value_parser = millis)]
    pub delay: Duration,
}

/// A server that may run as one of several processes on one port, behind a
/// load balancer (the scale-out lesson).
#[derive(clap::Args, Debug)]
pub struct Balanced {
    /// Share the port with other processes started with this flag
    /// (SO_REUSEPORT): the kernel spreads new connections across them
    #[arg(long = "reuse-port")]
    pub reuse_port: bool,
    /// Take HAProxy's PROXY protocol (v1 or v2) from these load balancers
    /// only, comma-separated addresses or networks (127.0.0.1,10.0.0.0/8):
    /// the log shows the real client, and per-address caps count it
    #[arg(
        long = "proxy-protocol",
        value_name = "TRUSTED",
        value_delimiter = ',',
        value_parser = network
    )]
    pub proxy_protocol: Option<Vec<socketserver::server::proxy::Network>>,
}

impl Balanced {
    /// Sets both options on a TCP server's builder.
    pub fn apply<H, P>(
        &self,
        builder: socketserver::Builder<
            H,
            socketserver::server::Server<std::net::TcpListener, H, P>,
        >,
    ) -> socketserver::Builder<H, socketserver::server::Server<std::net::TcpListener, H, P>> {
        let builder = if self.reuse_port {
            builder.reuse_port(true)
        } else {
            builder
        };
        match &self.proxy_protocol {
            Some(trusted) => builder.proxy_protocol(trusted.iter().copied()),
            None => builder,
        }
    }
}

/// The value parser for `--proxy-protocol`: one address or network.
fn network(text: &str) -> Result<socketserver::server::proxy::Network, String> {
    text.trim().parse().map_err(|e| format!("{e}"))
}

/// A client's wait for each reply.
#[derive(clap::Args, Debug)]
pub struct Timeout {
    /// How long to wait for each reply, in milliseconds
    #[arg(long = "timeout-ms", value_name = "MS", default_value = "2000", value_parser = millis)]
    pub timeout: Duration,
}

/// The value parser for every `--...-ms` option: whole milliseconds, at
/// most a day (a larger number is a typo, not a wish).
pub fn millis(text: &str) -> Result<Duration, String> {
    const MAX: u64 = 24 * 60 * 60 * 1000;
    match text.parse::<u64>() {
        Ok(ms) if ms <= MAX => Ok(Duration::from_millis(ms)),
        Ok(_) => Err(format!("at most {MAX} ms (a day)")),
        Err(_) => Err("a whole number of milliseconds, e.g. 1000".into()),
    }
}

/// Parses the command line into `T`, as `T::parse()` does, with the
/// address's default replaced: for an example whose default address is
/// not the seed's (the file service's is 127.0.0.1:9998).
pub fn parse_with_addr<T: Parser>(default_addr: &'static str) -> T {
    let matches = T::command()
        .mut_arg("addr", |arg| arg.default_value(default_addr))
        .get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
