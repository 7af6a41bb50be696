//! The framework's benchmark: throughput of the greeting protocol served by
//! this crate against a minimal hand-written std server and Python's
//! `socketserver`, memory with 1,000 idle connections, shutdown latency,
//! and idle CPU.
//!
//! ```sh
//! cargo bench --bench server            # everything (about a minute)
//! cargo bench --bench server -- quick   # shorter rounds
//! ```
//!
//! Servers and clients share the machine, and on a virtual machine a
//! round's figure swings with where the scheduler puts the threads, so
//! every figure is a ratio from one run: each cell is the mean of
//! `ROUNDS` short rounds less the tenth at either end, taken in turn with
//! the other servers' rounds (each round starting with the next server,
//! so none always follows the same neighbour), so every server meets the
//! same luck. With many connections a round falls into one of two modes
//! (each client on its handler's core, or many a pair split across the
//! two, some 40% slower), set as its connections start; a mean over many
//! rounds weighs the two as often as they come, where a median jumps
//! between them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::greeting;

use socketserver::greet::Greeter;
use socketserver::{Connection, ThreadingTcpServer};

const ROUNDS: usize = 31;
const IDLE_CONNECTIONS: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("idle-child") {
        return idle_child(&args[1]);
    }
    let quick = args.iter().any(|a| a == "quick");
    let round = if quick {
        Duration::from_millis(50)
    } else {
        Duration::from_millis(150)
    };
    println!(
        "# socketserver benchmark ({} cores)\n",
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    throughput(round);
    idle_memory();
    shutdown_latency();
    idle_cpu();
}

// ---------------------------------------------------------------- servers

/// The greeting protocol on a bare std server: accept, spawn, loop. What
/// any of us would write by hand, and the baseline to beat. With `pool`,
/// the same on a pool of that many workers of the `threadpool` crate
/// (ours uses it too): the baseline for our pool.
fn minimal_server(live: Option<Arc<AtomicUsize>>, pool: Option<usize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let pool = pool.map(threadpool::ThreadPool::new);
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let live = live.clone();
            let job = move || greet_minimally(stream, live);
            match &pool {
                Some(pool) => pool.execute(job),
                None => drop(thread::spawn(job)),
            }
        }
    });
    addr
}

/// One connection of the minimal server: the banner, then a greeting for
/// each name until `exit`.
fn greet_minimally(mut stream: TcpStream, live: Option<Arc<AtomicUsize>>) {
    let _ = stream.write_all(b"Welcome!");
    if let Some(live) = &live {
        live.fetch_add(1, Ordering::SeqCst);
    }
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || &buf[..n] == b"exit" {
            break;
        }
        let reply = ["你好,".as_bytes(), &buf[..n]].concat();
        if stream.write_all(&reply).is_err() {
            break;
        }
    }
}

fn serve(server: ThreadingTcpServer<Greeter>) -> SocketAddr {
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.serve_forever());
    addr
}

/// Our server with its defaults, on a pool of `pool` or a thread per
/// connection, optionally with the socket timeouts off (they cost a timer
/// per blocking read; the column shows what that safety costs).
fn our_server(pool: Option<usize>, timeouts: bool) -> SocketAddr {
    let mut builder = ThreadingTcpServer::builder(Greeter::new());
    if !timeouts {
        builder = builder.timeout(None);
    }
    serve(match pool {
        Some(n) => builder.pool(n).bind("127.0.0.1:0").unwrap(),
        None => builder.bind("127.0.0.1:0").unwrap(),
    })
}

struct Python(Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_server() -> Option<(SocketAddr, Python)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/greet_socketserver.py"
    );
    let mut child = Command::new("python3")
        .args([script, "0"])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let port: u16 = line.strip_prefix("LISTENING ")?.trim().parse().ok()?;
    Some((SocketAddr::from(([127, 0, 0, 1], port)), Python(child)))
}

fn throughput(round: Duration) {
    let python = python_server();
    if python.is_none() {
        println!("(python3 not found: the Python column is left out)\n");
    }
    let mut servers = vec![
        ("minimal std", minimal_server(None, None)),
        ("minimal std, pool of 64", minimal_server(None, Some(64))),
        ("ours, thread per connection", our_server(None, true)),
        (
            "ours, thread per connection, timeouts off",
            our_server(None, false),
        ),
        ("ours, pool of 64", our_server(Some(64), true)),
    ];
    if let Some((addr, _)) = &python {
        servers.push(("Python ThreadingTCPServer", *addr));
    }
    println!(
        "## Greeting round trips per second (trimmed mean of {ROUNDS} interleaved rounds of {round:?})\n"
    );
    print!("| load |");
    for (name, _) in &servers {
        print!(" {name} |");
    }
    println!(" per-conn / minimal | timeouts off / minimal | pool / minimal pool |");
    println!("|---|{}---|---|---|", "---|".repeat(servers.len()));
    for (label, conns, churn) in [
        ("1 connection", 1, false),
        ("16 connections", 16, false),
        ("64 connections", 64, false),
        ("churn, 16 clients", 16, true),
    ] {
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.1).collect();
        let rounds = greeting::interleaved(&addrs, conns, churn, round, ROUNDS);
        let mean: Vec<f64> = rounds.iter().map(|r| greeting::trimmed_mean(r)).collect();
        print!("| {label} |");
        for m in &mean {
            print!(" {m:.0} |");
        }
        println!(
            " {:.2}x | {:.2}x | {:.2}x |",
            mean[2] / mean[0],
            mean[3] / mean[0],
            mean[4] / mean[1]
        );
    }
    println!();
}

// ----------------------------------------------------------------- memory

/// Runs in a child process, so the clients' memory is not counted: serves
/// until `IDLE_CONNECTIONS` connections are open, prints its RSS, exits.
fn idle_child(which: &str) {
    let live = Arc::new(AtomicUsize::new(0));
    let addr = if which == "ours" {
        let counted = Arc::clone(&live);
        let server = ThreadingTcpServer::builder(move |conn: &mut Connection| {
            conn.write_all(b"Welcome!")?;
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            while conn.read(&mut buf)? > 0 {}
            Ok(())
        })
        .max_connections(IDLE_CONNECTIONS + 10)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.local_addr().unwrap();
        thread::spawn(move || server.serve_forever());
        addr
    } else {
        minimal_server(Some(Arc::clone(&live)), None)
    };
    println!("LISTENING {addr}");
    let baseline = common::status_kib("self", "VmRSS");
    println!("BASELINE {baseline}");
    while live.load(Ordering::SeqCst) < IDLE_CONNECTIONS {
        thread::sleep(Duration::from_millis(10));
    }
    println!("RSS {}", common::status_kib("self", "VmRSS"));
}

fn idle_memory() {
    println!(
        "## Resident memory with {IDLE_CONNECTIONS} idle connections, thread per connection\n"
    );
    println!(
        "| server | stack per thread | RSS before | RSS with {IDLE_CONNECTIONS} connections |"
    );
    println!("|---|---|---|---|");
    for (which, label, stack) in [
        ("ours", "ThreadingTcpServer", "2 MiB (`DEFAULT_STACK_SIZE`)"),
        ("minimal", "minimal std", "2 MiB (std default)"),
    ] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["idle-child", which])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = |key: &str| -> String {
            let line = lines.next().unwrap().unwrap();
            line.strip_prefix(key).unwrap().trim().to_owned()
        };
        let addr: SocketAddr = next("LISTENING").parse().unwrap();
        let baseline: u64 = next("BASELINE").parse().unwrap();
        let mut clients = Vec::with_capacity(IDLE_CONNECTIONS);
        for _ in 0..IDLE_CONNECTIONS {
            let mut s = TcpStream::connect(addr).expect("connect (is `ulimit -n` at least 2048?)");
            let mut banner = [0u8; 8];
            s.read_exact(&mut banner).unwrap();
            clients.push(s);
        }
        let rss: u64 = next("RSS").parse().unwrap();
        let _ = child.wait();
        drop(clients);
        println!(
            "| {label} | {stack} | {:.1} MB | {:.1} MB |",
            baseline as f64 / 1024.0,
            rss as f64 / 1024.0
        );
    }
    println!();
}

// --------------------------------------------------------------- shutdown

fn shutdown_latency() {
    const RUNS: usize = 20;
    let mut outside = Vec::new();
    let mut inside = Vec::new();
    for _ in 0..RUNS {
        let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
        let addr = server.local_addr().unwrap();
        let stop = server.shutdown_handle();
        let serving = thread::spawn(move || server.serve_forever());
        socketserver::greet::tcp_client(addr, &["x"]).unwrap();
        let asked = Instant::now();
        stop.shutdown();
        serving.join().unwrap();
        outside.push(asked.elapsed());

        let asked_at = Arc::new(Mutex::new(None));
        let mark = Arc::clone(&asked_at);
        let server = ThreadingTcpServer::bind("127.0.0.1:0", move |conn: &mut Connection| {
            *mark.lock().unwrap() = Some(Instant::now());
            conn.server().shutdown_handle().shutdown();
            Ok(())
        })
        .unwrap();
        let addr = server.local_addr().unwrap();
        let serving = thread::spawn(move || server.serve_forever());
        drop(TcpStream::connect(addr).unwrap());
        serving.join().unwrap();
        let asked = asked_at.lock().unwrap().expect("the handler ran");
        inside.push(asked.elapsed());
    }
    outside.sort();
    inside.sort();
    println!("## Shutdown latency: `shutdown()` to `serve_forever` returning ({RUNS} runs)\n");
    println!("| called from | median | worst |");
    println!("|---|---|---|");
    println!(
        "| another thread | {:.2?} | {:.2?} |",
        outside[RUNS / 2],
        outside[RUNS - 1]
    );
    println!(
        "| inside a handler | {:.2?} | {:.2?} |",
        inside[RUNS / 2],
        inside[RUNS - 1]
    );
    println!();
}

// ---------------------------------------------------------------- idle cpu

fn idle_cpu() {
    let server = ThreadingTcpServer::builder(Greeter::new())
        .pool(8)
        .bind("127.0.0.1:0")
        .unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let window = Duration::from_secs(2);
    let before = common::cpu_time("self");
    thread::sleep(window);
    let used = common::cpu_time("self").saturating_sub(before);
    stop.shutdown();
    serving.join().unwrap();
    println!("## Idle server\n");
    println!(
        "A pool-of-8 server with no clients used {used:?} of CPU in {window:?} ({:.1}%): nothing polls.",
        100.0 * used.as_secs_f64() / window.as_secs_f64()
    );
}
