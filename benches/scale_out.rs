//! Scaling out (issue 23): the seed's greeting served by one process beside
//! two processes sharing a port (`SO_REUSEPORT`), each direct and through
//! HAProxy (`send-proxy-v2`, the servers reading the PROXY protocol).
//!
//! ```sh
//! cargo bench --bench scale_out            # about 20 s; needs haproxy on PATH
//! cargo bench --bench scale_out -- quick   # shorter rounds
//! ```
//!
//! The servers are this benchmark's own binary in child processes
//! (`scale-child`): a `ThreadingTcpServer` with a quiet `Greeter`, as
//! `tcp_server` serves it. Every figure is a ratio from one run: each cell
//! is the median of `ROUNDS` short rounds taken in turn with the other
//! setups' rounds, each round starting with the next setup. On a 2-core
//! machine that also runs the load generator (and HAProxy), a second
//! process has no idle core to win; the table says what the hop costs and
//! that sharing a port costs nothing, not how it scales on a big machine.
//! Every process started is killed and waited for when the run ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{ChildServer, greeting};
use socketserver::ThreadingTcpServer;
use socketserver::greet::Greeter;
use socketserver::server::proxy::Network;

const ROUNDS: usize = 9;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("scale-child") {
        return child(&args[1], args.get(2).map(String::as_str) == Some("proxy"));
    }
    let round = if args.iter().any(|a| a == "quick") {
        Duration::from_millis(100)
    } else {
        Duration::from_millis(300)
    };
    println!(
        "# socketserver scale-out benchmark ({} cores)\n",
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    let direct_one = processes(1, false);
    let direct_two = processes(2, false);
    let behind_one = processes(1, true);
    let behind_two = processes(2, true);
    let Some(haproxy) = HaProxy::start(&[behind_one.0, behind_two.0]) else {
        println!("(haproxy not found or did not start: install it, e.g. apt-get install haproxy)");
        return;
    };
    let setups = [
        ("direct, 1 process", direct_one.0),
        ("direct, 2 processes", direct_two.0),
        ("HAProxy, 1 process", haproxy.fronts[0]),
        ("HAProxy, 2 processes", haproxy.fronts[1]),
    ];
    println!(
        "## Greeting round trips per second (median of {ROUNDS} interleaved rounds of {round:?})\n"
    );
    print!("| load |");
    for (name, _) in &setups {
        print!(" {name} |");
    }
    println!(
        " HAProxy / direct (1 process) | 2 processes / 1 (direct) | 2 processes / 1 (HAProxy) |"
    );
    println!("|---|{}---|---|---|", "---|".repeat(setups.len()));
    for (label, conns, churn) in [
        ("1 connection", 1, false),
        ("16 connections", 16, false),
        ("churn (connect, 1 round trip, close), 16 clients", 16, true),
    ] {
        let addrs: Vec<SocketAddr> = setups.iter().map(|s| s.1).collect();
        let rounds = greeting::interleaved(&addrs, conns, churn, round, ROUNDS);
        let m: Vec<f64> = rounds.iter().map(|r| greeting::median(r)).collect();
        print!("| {label} |");
        for v in &m {
            print!(" {v:.0} |");
        }
        println!(
            " {:.2}x | {:.2}x | {:.2}x |",
            m[2] / m[0],
            m[1] / m[0],
            m[3] / m[2]
        );
    }
    drop((direct_one, direct_two, behind_one, behind_two, haproxy));
}

/// A child: the greeting server on `addr`, sharing its port, reading the
/// PROXY protocol from 127.0.0.1 with `proxy`.
fn child(addr: &str, proxy: bool) {
    let mut builder = ThreadingTcpServer::builder(Greeter::new()).reuse_port(true);
    if proxy {
        builder = builder.proxy_protocol(["127.0.0.1".parse::<Network>().unwrap()]);
    }
    let server = builder.bind(addr).expect("the child binds");
    println!("LISTENING {}", server.local_addr().unwrap().port());
    server.serve_forever();
}

/// `n` server processes on one port: the port and the processes (killed
/// when dropped).
fn processes(n: usize, proxy: bool) -> (SocketAddr, Vec<ChildServer>) {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut addr = "127.0.0.1:0".to_string();
    let mut children = Vec::new();
    for _ in 0..n {
        let mut command = Command::new(&exe);
        command.args(["scale-child", &addr, if proxy { "proxy" } else { "" }]);
        let child = ChildServer::start(command);
        addr = child.addr.to_string();
        children.push(child);
    }
    (children[0].addr, children)
}

/// HAProxy with one frontend per backend, killed and waited for when
/// dropped (its configuration file removed).
struct HaProxy {
    fronts: Vec<SocketAddr>,
    child: Child,
    config: std::path::PathBuf,
}

impl HaProxy {
    fn start(backends: &[SocketAddr]) -> Option<HaProxy> {
        let mut text = String::from(
            "global\n    maxconn 4096\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n",
        );
        let mut fronts = Vec::new();
        for (i, backend) in backends.iter().enumerate() {
            // HAProxy's configuration needs port numbers: free ones, taken
            // by binding port 0 and letting go.
            let front = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?;
            text += &format!(
                "frontend f{i}\n    bind {front}\n    default_backend b{i}\n\
                 backend b{i}\n    server s{i} {backend} send-proxy-v2\n"
            );
            fronts.push(front);
        }
        let config = std::env::temp_dir().join(format!(
            "socketserver-bench-scale-out-{}.cfg",
            std::process::id()
        ));
        std::fs::write(&config, text).ok()?;
        let child = Command::new("haproxy")
            .arg("-f")
            .arg(&config)
            .arg("-db")
            .stdin(Stdio::null())
            .spawn();
        let mut haproxy = HaProxy {
            fronts,
            child: match child {
                Ok(child) => child,
                Err(_) => {
                    let _ = std::fs::remove_file(&config);
                    return None;
                }
            },
            config,
        };
        // HAProxy says nothing when it is ready: try to connect, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        for front in haproxy.fronts.clone() {
            while TcpStream::connect(front).is_err() {
                if Instant::now() > deadline || haproxy.child.try_wait().ok()?.is_some() {
                    return None;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Some(haproxy)
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}
