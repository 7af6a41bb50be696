//! Shutdown with 1,000 idle connections open: how long until
//! `serve_forever` returns, and what is left of the server then (its
//! threads, the process's descriptors).
//!
//! ```sh
//! cargo bench --bench shutdown          # 3 runs of each (a few seconds)
//! ```
//!
//! Each connection is a greeting client that got its banner and sends
//! nothing: its handler is blocked in `read`, waiting for the next
//! message, the case a shutdown used to wait out. Target: under 100 ms,
//! no thread left.

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use socketserver::ThreadingTcpServer;
use socketserver::greet::Greeter;

const CONNECTIONS: usize = 1000;
const RUNS: usize = 3;

/// Threads in this process: all, and the server's (`socketserver-conn`,
/// which the kernel cuts to 15 bytes).
fn threads() -> (usize, usize) {
    let mut all = 0;
    let mut ours = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        all += 1;
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
        ours += usize::from(comm.starts_with("socketserver-co"));
    }
    (all, ours)
}

fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

struct Run {
    took: Duration,
    threads_before: usize,
    threads_after: usize,
    ours_left: usize,
    fds_before: usize,
    fds_after: usize,
}

fn run(now: bool) -> Run {
    let (threads_before, _) = threads();
    let fds_before = descriptors();
    let server = ThreadingTcpServer::builder(Greeter::new())
        .max_connections(CONNECTIONS + 10)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let took = thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        let clients: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| {
                let mut client = TcpStream::connect(addr).unwrap();
                // The banner: the handler is past it, waiting in `read`.
                client.read_exact(&mut [0u8; 8]).unwrap();
                client
            })
            .collect();
        assert_eq!(server.stats().active, CONNECTIONS as u64);
        let asked = Instant::now();
        if now {
            stop.shutdown_now();
        } else {
            stop.shutdown();
        }
        serving.join().unwrap();
        let took = asked.elapsed();
        drop(clients);
        took
    });
    assert_eq!(server.stats().active, 0);
    let (threads_after, ours_left) = threads();
    drop(server);
    Run {
        took,
        threads_before,
        threads_after,
        ours_left,
        fds_before,
        fds_after: descriptors(),
    }
}

fn main() {
    println!("## Shutdown with {CONNECTIONS} idle connections ({RUNS} runs each)\n");
    println!(
        "| call | median | worst | server threads left | threads before -> after | descriptors before -> after |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, now) in [
        ("`shutdown()` (graceful)", false),
        ("`shutdown_now()`", true),
    ] {
        let mut runs: Vec<Run> = (0..RUNS).map(|_| run(now)).collect();
        runs.sort_by_key(|r| r.took);
        let (median, worst) = (&runs[RUNS / 2], &runs[RUNS - 1]);
        let left = runs.iter().map(|r| r.ours_left).max().unwrap_or(0);
        println!(
            "| {name} | {:.1?} | {:.1?} | {left} | {} -> {} | {} -> {} |",
            median.took,
            worst.took,
            worst.threads_before,
            worst.threads_after,
            worst.fds_before,
            worst.fds_after,
        );
    }
}
