//! Hostile peers against the framework: clients that send nothing, clients
//! that drip a byte at a time, floods from one address, and a flood past
//! the descriptor limit. The attacker binds 127.0.0.2 as its source
//! address, another peer on loopback; the legitimate client is 127.0.0.1.
//! Every loop is bounded, every timing assertion has slack for a loaded
//! two-core machine, and every figure is printed (`--nocapture`).
#![cfg(target_os = "linux")]

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::frame::read_frame;
use socketserver::handler::is_timeout;
use socketserver::{
    Addr, BaseRequestHandler, Connection, HandlerError, StreamRequest, StreamRequestHandler,
    Streamed, ThreadingTcpServer,
};

use common::connect_from;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PATIENCE: Duration = Duration::from_secs(20);

/// Answers each line with `ok <line>`, one line per request, through the
/// `rfile`/`wfile` path; the server's deadline bounds the first request.
/// Keeps the kind of every error for the test to check, quietly.
#[derive(Default)]
struct Lines {
    errors: Mutex<Vec<io::ErrorKind>>,
}

impl StreamRequestHandler for Lines {
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        while let Some(line) = request.read_line(1024)? {
            request.wfile.write_all(b"ok ")?;
            request.wfile.write_all(&line)?;
            request.wfile.flush()?;
        }
        Ok(())
    }

    fn handle_error(&self, _: &Addr, error: &HandlerError) {
        if let HandlerError::Io(e) = error {
            self.errors.lock().unwrap().push(e.kind());
        }
    }
}

/// One request from 127.0.0.1, timed from connect to reply.
fn legitimate_request(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"hello\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).unwrap();
    assert_eq!(reply, "ok hello\n");
    start.elapsed()
}

/// Sends one byte every `every`, never a newline, until the server closes
/// the connection or `limit` passes; returns how long it stayed open.
fn drip(mut stream: TcpStream, every: Duration, limit: Duration) -> Duration {
    let start = Instant::now();
    stream.set_read_timeout(Some(every)).unwrap();
    while start.elapsed() < limit {
        if stream.write_all(b"x").is_err() {
            break;
        }
        match stream.read(&mut [0u8; 64]) {
            Ok(0) => break,                // the server closed it
            Err(e) if is_timeout(&e) => {} // still open: drip again
            Ok(_) | Err(_) => break,
        }
    }
    start.elapsed()
}

/// Waits, bounded, until the server closes `stream`; returns how long it
/// stayed open from `since`.
fn until_closed(mut stream: TcpStream, since: Instant, limit: Duration) -> Duration {
    stream.set_read_timeout(Some(limit)).unwrap();
    let _ = stream.read(&mut [0u8; 64]);
    since.elapsed()
}

fn threads_and_fds() -> (usize, usize) {
    let count = |dir| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (count("/proc/self/task"), count("/proc/self/fd"))
}

#[test]
fn idle_and_dripping_clients_from_one_address_cannot_hold_a_pool_with_a_deadline() {
    // A pool of 4, each connection 1.5 s to deliver its request, at most 2
    // connections at once from one address. 16 hostile connections from
    // 127.0.0.2, half idle and half dripping a byte every 100 ms, while a
    // client on 127.0.0.1 makes requests.
    const DEADLINE: Duration = Duration::from_millis(1500);
    let handler = Streamed(Lines::default());
    let server = ThreadingTcpServer::builder(handler)
        .pool(4)
        .initial_deadline(Some(DEADLINE))
        .max_per_peer(Some(2))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let before = threads_and_fds();
    let serving = thread::spawn(move || server.serve_forever());

    let attack_start = Instant::now();
    let hostile: Vec<_> = (0..16)
        .map(|i| {
            let stream = connect_from(ATTACKER, addr).unwrap();
            thread::spawn(move || {
                if i % 2 == 0 {
                    until_closed(stream, attack_start, PATIENCE)
                } else {
                    drip(stream, Duration::from_millis(100), PATIENCE)
                }
            })
        })
        .collect();

    // Requests over three deadlines' time, each served in under a second.
    let mut worst = Duration::ZERO;
    let mut requests = 0;
    while attack_start.elapsed() < DEADLINE * 3 && requests < 50 {
        worst = worst.max(legitimate_request(addr));
        requests += 1;
        thread::sleep(Duration::from_millis(100));
    }
    let open_for: Vec<Duration> = hostile.into_iter().map(|h| h.join().unwrap()).collect();
    let longest = open_for.iter().max().copied().unwrap_or_default();
    let stats = info.stats();
    println!(
        "pool of 4, deadline {DEADLINE:?}, 2 per peer: {requests} legitimate requests, \
         slowest {worst:?}; 16 hostile connections, longest open {longest:?}; \
         refused_per_peer {}, failed {}; threads/fds before {before:?}",
        stats.refused_per_peer, stats.failed
    );
    assert!(worst < Duration::from_secs(1), "slowest request {worst:?}");
    assert!(requests >= 5, "only {requests} requests");
    // Two served, held to their deadline; the rest closed at once.
    assert_eq!(stats.refused_per_peer, 14);
    assert!(
        longest < DEADLINE + Duration::from_millis(1500),
        "{longest:?}"
    );
    stop.shutdown();
    serving.join().unwrap();
}

#[test]
fn slow_drip_and_idle_connections_are_closed_at_their_deadline_not_later() {
    // A pool of 2, a read timeout of 500 ms (which a byte every 100 ms
    // never trips) and a deadline of 1 s. Two drippers from 127.0.0.2 take
    // both workers and lose them at the deadline; an idle client after them
    // loses its worker at the read timeout, whichever comes first. No
    // per-peer cap.
    const DEADLINE: Duration = Duration::from_secs(1);
    let lines = Arc::new(Lines::default());
    let handler = Streamed(Shared(Arc::clone(&lines)));
    let server = ThreadingTcpServer::builder(handler)
        .pool(2)
        .read_timeout(Some(Duration::from_millis(500)))
        .initial_deadline(Some(DEADLINE))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let serving = thread::spawn(move || server.serve_forever());

    let drippers: Vec<_> = (0..2)
        .map(|_| {
            let stream = connect_from(ATTACKER, addr).unwrap();
            thread::spawn(move || drip(stream, Duration::from_millis(100), PATIENCE))
        })
        .collect();
    let open_for: Vec<Duration> = drippers.into_iter().map(|d| d.join().unwrap()).collect();
    let idle_since = Instant::now();
    let idle = connect_from(ATTACKER, addr).unwrap();
    let idle_for = until_closed(idle, idle_since, PATIENCE);
    let served_in = legitimate_request(addr);
    stop.shutdown();
    serving.join().unwrap();

    println!(
        "deadline {DEADLINE:?}, read timeout 500 ms, a byte every 100 ms: drippers closed \
         after {open_for:?}, idle after {idle_for:?}; then a request served in {served_in:?}"
    );
    let read_timeout = Duration::from_millis(500);
    for (open, limit) in open_for
        .iter()
        .map(|o| (o, DEADLINE))
        .chain([(&idle_for, read_timeout)])
    {
        // Not before the limit (less timer slack), not long after it.
        assert!(*open >= limit - Duration::from_millis(50), "{open:?}");
        assert!(*open < limit + Duration::from_millis(1500), "{open:?}");
    }
    assert!(served_in < Duration::from_secs(1), "{served_in:?}");
    let errors = lines.errors.lock().unwrap().clone();
    // Deadline or read timeout, read_line says TimedOut (not WouldBlock).
    assert_eq!(errors, vec![io::ErrorKind::TimedOut; 3], "typed timeouts");
    assert_eq!(info.stats().failed, 3);
}

/// A shared handler, so the test can read what it recorded.
struct Shared(Arc<Lines>);

impl StreamRequestHandler for Shared {
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        self.0.handle(request)
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.handle_error(peer, error);
    }
}

#[test]
fn the_per_peer_cap_closes_one_address_at_once_and_spares_another() {
    // Thread per connection, 3 at once per address: 10 connections from
    // 127.0.0.2 and 3 from 127.0.0.1, all held open.
    let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
        conn.write_all(b"welcome\n")?;
        io::copy(conn, &mut io::sink()).map(drop) // until the client leaves
    })
    .max_per_peer(Some(3))
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let serving = thread::spawn(move || server.serve_forever());

    let start = Instant::now();
    let greeted = |mut stream: &TcpStream| {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut got = [0u8; 8];
        match stream.read(&mut got) {
            Ok(8) => true,
            Ok(0) | Err(_) => false,
            Ok(n) => panic!("{n} bytes"),
        }
    };
    let hostile: Vec<TcpStream> = (0..10)
        .map(|_| connect_from(ATTACKER, addr).unwrap())
        .collect();
    let welcomed = hostile.iter().filter(|s| greeted(s)).count();
    let refused_in = start.elapsed();
    let friends: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(friends.iter().all(greeted), "127.0.0.1 refused");
    let stats = info.stats();
    println!(
        "3 per peer: 127.0.0.2 got {welcomed} of 10 served, the rest closed within \
         {refused_in:?}; 127.0.0.1 got 3 of 3; {stats:?}"
    );
    assert_eq!(welcomed, 3);
    assert_eq!(stats.refused_per_peer, 7);
    assert_eq!(stats.active, 6);
    assert!(refused_in < Duration::from_secs(5), "{refused_in:?}");

    // Once 127.0.0.2 leaves, its count is free again.
    drop(hostile);
    let deadline = Instant::now() + PATIENCE;
    while info.stats().active > 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let again = connect_from(ATTACKER, addr).unwrap();
    assert!(greeted(&again), "127.0.0.2 still refused after leaving");
    drop((again, friends));
    stop.shutdown();
    serving.join().unwrap();
}

#[test]
fn frames_writes_and_clones_honour_the_deadline() {
    // Three handlers' ways to meet a deadline of 300 ms: a frame whose
    // header never ends, a reply to a client that never reads, and a
    // reader made with Connection::try_clone.
    const DEADLINE: Duration = Duration::from_millis(300);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&outcomes);
    let server = ThreadingTcpServer::builder(move |conn: &mut Connection| {
        let mut kind = [0u8; 1];
        conn.read_exact(&mut kind)?;
        let start = Instant::now();
        conn.set_deadline(start + DEADLINE);
        let timed_out = match kind[0] {
            b'f' => read_frame(conn).unwrap_err().is_timeout(),
            b'w' => {
                let big = vec![0u8; 64 << 20];
                let e = conn.write_all(&big).unwrap_err();
                e.kind() == io::ErrorKind::TimedOut
            }
            _ => {
                let mut clone = BufReader::new(conn.try_clone()?);
                let e = clone.read_line(&mut String::new()).unwrap_err();
                e.kind() == io::ErrorKind::TimedOut
            }
        };
        seen.lock()
            .unwrap()
            .push((char::from(kind[0]), timed_out, start.elapsed()));
        Ok(())
    })
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let serving = thread::spawn(move || server.serve_forever());

    let mut header_start = b"f".to_vec();
    header_start.extend_from_slice(&40i32.to_le_bytes()); // then 40 bytes, dripped
    let clients: Vec<_> = [header_start, b"w".to_vec(), b"c".to_vec()]
        .into_iter()
        .map(|first| {
            let mut stream = connect_from(ATTACKER, addr).unwrap();
            thread::spawn(move || {
                stream.write_all(&first).unwrap();
                // Drip, never read, until the server gives up.
                drip_without_reading(stream, Duration::from_millis(50), PATIENCE)
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let deadline = Instant::now() + PATIENCE;
    while info.stats().active > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    stop.shutdown();
    serving.join().unwrap();
    let outcomes = outcomes.lock().unwrap().clone();
    println!("deadline {DEADLINE:?}: {outcomes:?}");
    assert_eq!(outcomes.len(), 3);
    for (kind, timed_out, took) in outcomes {
        assert!(timed_out, "{kind}: not a TimedOut");
        assert!(took < DEADLINE + Duration::from_millis(1500), "{took:?}");
    }
}

/// Sends a byte every `every` and never reads, until a write fails (the
/// server closed) or `limit` passes.
fn drip_without_reading(mut stream: TcpStream, every: Duration, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit && stream.write_all(b"{").is_ok() {
        thread::sleep(every);
        if let Ok(Some(_)) = stream.take_error() {
            return;
        }
        let mut probe = [0u8; 1];
        stream.set_nonblocking(true).unwrap();
        let closed = matches!(stream.peek(&mut probe), Ok(0));
        stream.set_nonblocking(false).unwrap();
        if closed {
            return;
        }
    }
}

#[test]
fn a_deadline_moves_and_clearing_it_gives_back_the_servers_timeout() {
    // Moved into the past, a deadline fails the next call at once; moved
    // to 50 ms from now, it shrinks the socket's timeout; cleared, the
    // server's 60 s timeout is back, so a client 300 ms late is still read.
    let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
        conn.set_deadline(Instant::now() - Duration::from_millis(1));
        let e = conn.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        conn.set_deadline(Instant::now() + Duration::from_millis(50));
        let e = conn.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        conn.clear_deadline();
        conn.write_all(b"cleared")?;
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte)?;
        conn.write_all(&byte)
    })
    .read_timeout(Some(Duration::from_secs(60)))
    .initial_deadline(Some(Duration::from_secs(60)))
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut cleared = [0u8; 7];
    client.read_exact(&mut cleared).unwrap();
    thread::sleep(Duration::from_millis(300)); // a slow client, not a wait for the server
    client.write_all(b"z").unwrap();
    let mut echo = [0u8; 1];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"z");
    stop.shutdown();
    serving.join().unwrap();
}

/// A handler that greets and then holds the connection until the client
/// leaves: each connection holds a descriptor as long as its client wants.
struct Hold;

impl BaseRequestHandler for Hold {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        conn.write_all(b"hi\n")?;
        io::copy(conn, &mut io::sink()).map(drop)
    }
    fn handle_error(&self, _: &Addr, _: &HandlerError) {}
}

fn proc_field(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default()
}

/// The child's CPU time so far, in clock ticks (utime + stime).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = proc_field(pid, "stat");
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat; after the name, indexes 11 and 12.
    fields
        .get(11..13)
        .map_or(0, |f| f.iter().map(|t| t.parse::<u64>().unwrap_or(0)).sum())
}

fn child_threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |dir: String| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (
        count(format!("/proc/{pid}/task")),
        count(format!("/proc/{pid}/fd")),
    )
}

#[test]
fn a_flood_past_the_descriptor_limit_degrades_reports_little_and_recovers() {
    use std::process::{Command, Stdio};
    // The server runs in a child process (this test binary, asked to run
    // only the helper below) whose descriptor limit is lowered to 256, most
    // of them then taken, so that a flood of 100 connections runs it out.
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "descriptor_flood_child",
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    for _ in 0..20 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // libtest may print "test NAME ... " on the same line first.
        if let Some((_, a)) = line.trim().split_once("ADDR ") {
            addr = Some(a.parse::<SocketAddr>().unwrap());
            break;
        }
    }
    let addr = addr.expect("the child never said where it listens");
    let before = child_threads_and_fds(pid);

    // The flood: 100 connections from 127.0.0.2, held for 3 s.
    let flood_start = Instant::now();
    let flood: Vec<TcpStream> = (0..100)
        .map(|_| connect_from(ATTACKER, addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(500));
    let (cpu_before, during) = (cpu_ticks(pid), child_threads_and_fds(pid));
    thread::sleep(Duration::from_secs(3));
    let cpu_exhausted = cpu_ticks(pid) - cpu_before;
    let greeted = flood
        .iter()
        .filter(|s| {
            let mut s: &TcpStream = s;
            s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            matches!(s.read(&mut [0u8; 3]), Ok(3))
        })
        .count();
    drop(flood);
    let exhausted_for = flood_start.elapsed();

    // Recovered: a legitimate client is greeted again, with no help.
    let recover_start = Instant::now();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut hi = [0u8; 3];
    client.read_exact(&mut hi).unwrap();
    let recovered_in = recover_start.elapsed();
    drop(client);
    let settle = Instant::now() + PATIENCE;
    while child_threads_and_fds(pid).0 > before.0 && Instant::now() < settle {
        thread::sleep(Duration::from_millis(20));
    }
    let after = child_threads_and_fds(pid);

    child.stdin.take().unwrap().write_all(b"stop\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed:\n{rest}\n{stderr}");
    let accept_lines = stderr.lines().filter(|l| l.contains("accept on")).count();
    println!(
        "descriptor limit 256, ~40 free, 100 connections for {exhausted_for:?}: {greeted} \
         greeted; child threads/fds before {before:?}, exhausted {during:?}, after {after:?}; \
         CPU while exhausted {cpu_exhausted} ticks in 3 s; {accept_lines} accept lines; \
         recovered in {recovered_in:?}\n--- child stderr ---\n{stderr}"
    );
    assert!(greeted > 0 && greeted < 100, "{greeted} greeted");
    assert!(accept_lines >= 1, "no report of the failures");
    // At most one a second, plus the first and a recovery line.
    let bound = exhausted_for.as_secs() as usize + 3;
    assert!(
        accept_lines <= bound,
        "{accept_lines} lines in {exhausted_for:?}"
    );
    assert!(cpu_exhausted < 100, "{cpu_exhausted} ticks: spinning?");
    assert!(recovered_in < Duration::from_secs(3), "{recovered_in:?}");
    assert_eq!(after.0, before.0, "threads left behind");
    assert!(after.1 <= before.1 + 2, "descriptors left behind");
    assert!(
        stderr.contains("serving at most 192 connections at once, not 1024"),
        "no clamp note"
    );
}

/// Run by the test above in a process of its own.
#[test]
#[ignore = "run by a_flood_past_the_descriptor_limit_degrades_reports_little_and_recovers"]
fn descriptor_flood_child() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // The server's lines go through `log`: to stderr here, where the
    // parent counts them.
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            eprintln!("{}: {}", record.target(), record.args());
        }
        fn flush(&self) {}
    }
    log::set_logger(&Stderr).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    // A soft limit under the hard one: bind must raise it.
    let lowered = Rlimit {
        current: Some(128),
        maximum: Some(256),
    };
    setrlimit(Resource::Nofile, lowered).unwrap();
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Hold).unwrap();
    assert_eq!(getrlimit(Resource::Nofile).current, Some(256), "not raised");
    // Take all but ~40 descriptors, as a program's own files would.
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let hog: Vec<std::fs::File> = (open..256 - 40)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let (stop, addr) = (server.shutdown_handle(), server.local_addr().unwrap());
    let serving = thread::spawn(move || server.serve_forever());
    println!("ADDR {addr}");
    io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = io::stdin().read_line(&mut line); // "stop", or the parent is gone
    drop(hog);
    stop.shutdown();
    serving.join().unwrap();
}
