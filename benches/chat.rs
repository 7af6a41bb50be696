//! The chat room under pressure: how long a member's line takes to cross
//! while N members never read and one floods, and how long a join takes.
//!
//! ```sh
//! cargo bench --bench chat              # four rows, about 15 s
//! ```
//!
//! Each row is a fresh room (in this process, on 127.0.0.1 port 0): N
//! members with 4 KiB receive buffers that read nothing after their
//! greeting (8 from each of 127.0.0.10, .11, ...: the room's per-address
//! cap), alice and bob, and a member sending 1,000-byte lines as fast as
//! the room takes them. Alice sends a ping every 10 ms for 2 s; bob
//! times each; a newcomer joins every 250 ms. Target (issue 19): every
//! line and every join under 100 ms.

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("the chat benchmark is Unix only (its members bind 127.0.0.x with rustix)");
}

#[cfg(unix)]
mod unix {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use socketserver::chat;

    const PINGS: usize = 200;
    const PING_EVERY: Duration = Duration::from_millis(10);
    const JOIN_EVERY: usize = 25; // pings

    /// A connection from `source`, its receive buffer set before the
    /// handshake when given.
    fn connect(source: IpAddr, to: SocketAddr, rcvbuf: Option<usize>) -> TcpStream {
        // Close-on-exec, as std's sockets are, on every system (socket2
        // sees to it): a child process started meanwhile (an example
        // server) must not inherit it.
        let from = SocketAddr::new(source, 0);
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(from),
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.bind(&from.into()).unwrap();
        socket.connect(&to.into()).unwrap();
        let socket = TcpStream::from(socket);
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        socket
    }

    /// Joins as `name`: reads the welcome, sends the name, reads the hello.
    fn join(socket: &TcpStream, name: &str) -> BufReader<TcpStream> {
        let mut lines = BufReader::new(socket.try_clone().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        (&*socket)
            .write_all(format!("{name}\n").as_bytes())
            .unwrap();
        line.clear();
        lines.read_line(&mut line).unwrap();
        assert!(line.starts_with(&format!("* hello {name};")), "{line}");
        lines
    }

    /// Reads `lines` on a thread until the stream ends, handing each on.
    fn drain(
        mut lines: BufReader<TcpStream>,
        mut seen: impl FnMut(&[u8]) + Send + 'static,
    ) -> thread::JoinHandle<()> {
        thread::spawn(move || {
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => seen(&line),
                }
            }
        })
    }

    /// This process's threads and open descriptors, from /proc.
    fn threads() -> (usize, usize) {
        let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count());
        (count("/proc/self/task"), count("/proc/self/fd"))
    }

    struct Row {
        pings: Vec<Duration>,
        joins: Vec<Duration>,
        dropped: usize,
        flooded: u64,
        /// Threads and descriptors before the round and after it.
        threads: ((usize, usize), (usize, usize)),
    }

    fn round(non_readers: usize) -> Row {
        let threads_before = threads();
        let server = chat::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let stop = server.shutdown_handle();
        let row = thread::scope(|s| {
            s.spawn(|| server.serve_forever());
            let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let mut mute = Vec::new();
            for i in 0..non_readers {
                let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + (i / 8) as u8));
                let socket = connect(source, addr, Some(4096));
                let lines = join(&socket, &format!("mute{i}"));
                mute.push((socket, lines));
            }
            let alice = connect(local, addr, None);
            let alice_lines = join(&alice, "alice");
            let bob = connect(local, addr, None);
            let bob_lines = join(&bob, "bob");
            let flooder = connect(local, addr, None);
            let flooder_lines = join(&flooder, "flood");
            let start = Instant::now();
            let pings: Arc<Mutex<Vec<Duration>>> = Arc::default();
            let dropped = Arc::new(AtomicUsize::new(0));
            let readers = [
                drain(alice_lines, |_| {}),
                drain(flooder_lines, |_| {}),
                drain(bob_lines, {
                    let (pings, dropped) = (Arc::clone(&pings), Arc::clone(&dropped));
                    move |line| {
                        if let Some(sent) = line.strip_prefix(b"alice: ping ") {
                            let sent: u64 = std::str::from_utf8(sent)
                                .ok()
                                .and_then(|s| s.trim().parse().ok())
                                .unwrap_or(0);
                            let took = start.elapsed().saturating_sub(Duration::from_micros(sent));
                            pings.lock().unwrap().push(took);
                        } else if line.ends_with(b"too far behind\n") {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }),
            ];
            let flooding = Arc::new(AtomicBool::new(true));
            let flood = s.spawn({
                let (mut out, flooding) = (flooder.try_clone().unwrap(), Arc::clone(&flooding));
                move || {
                    let line = format!("{}\n", "f".repeat(999));
                    let mut sent = 0u64;
                    while flooding.load(Ordering::Relaxed) && out.write_all(line.as_bytes()).is_ok()
                    {
                        sent += 1;
                    }
                    sent
                }
            });
            let mut joins = Vec::new();
            let mut out = alice.try_clone().unwrap();
            for i in 0..PINGS {
                writeln!(out, "ping {}", start.elapsed().as_micros()).unwrap();
                if i % JOIN_EVERY == JOIN_EVERY / 2 {
                    let t = Instant::now();
                    let newcomer = connect(local, addr, None);
                    join(&newcomer, &format!("new{i}"));
                    joins.push(t.elapsed());
                    let _ = (&newcomer).write_all(b"/quit\n");
                }
                thread::sleep(PING_EVERY);
            }
            flooding.store(false, Ordering::Relaxed);
            let waited = Instant::now();
            while pings.lock().unwrap().len() < PINGS && waited.elapsed() < Duration::from_secs(20)
            {
                thread::sleep(Duration::from_millis(5));
            }
            let flooded = flood.join().unwrap();
            stop.shutdown();
            drop((alice, bob, flooder, mute));
            for reader in readers {
                let _ = reader.join();
            }
            let pings = pings.lock().unwrap().clone();
            Row {
                pings,
                joins,
                dropped: dropped.load(Ordering::Relaxed),
                flooded,
                threads: (threads_before, (0, 0)),
            }
        });
        drop(server); // its listener too
        Row {
            threads: (row.threads.0, threads()),
            ..row
        }
    }

    fn ms(d: Duration) -> String {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }

    pub fn main() {
        println!("# chat: line latency beside N non-readers and a flood\n");
        println!(
            "| non-readers | pings crossed | p50 | p99 | max | slowest join | dropped | flood lines | threads, descriptors before → after |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for n in [0, 16, 48, 96] {
            let row = round(n);
            let mut sorted = row.pings.clone();
            sorted.sort();
            let pick = |q: f64| {
                sorted
                    .get(((sorted.len().max(1) - 1) as f64 * q) as usize)
                    .copied()
                    .unwrap_or_default()
            };
            println!(
                "| {n} | {} of {PINGS} | {} | {} | {} | {} | {} | {} | {}, {} → {}, {} |",
                row.pings.len(),
                ms(pick(0.5)),
                ms(pick(0.99)),
                ms(pick(1.0)),
                ms(row.joins.iter().max().copied().unwrap_or_default()),
                row.dropped,
                row.flooded,
                row.threads.0.0,
                row.threads.0.1,
                row.threads.1.0,
                row.threads.1.1
            );
        }
    }
}
