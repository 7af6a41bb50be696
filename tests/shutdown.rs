//! Shutdown ends live connections: idle ones at once, replies in progress
//! within the grace period, stubborn handlers at its end; and nothing of
//! the server runs after `serve_forever` returns.
//!
//! The tests here take one lock each, so only one server runs at a time in
//! this binary and the threads counted in /proc/self/task are ours.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{Addr, BaseRequestHandler, Connection, HandlerError, ThreadingTcpServer};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tests here: the test harness names each test's thread after it
/// (cut to 15 bytes), and starts them when it likes, so they are not
/// counted.
#[cfg(target_os = "linux")]
const TESTS: [&str; 5] = [
    "idle_clients_end_at_once_and_every_thread_is_joined",
    "a_connection_that_starts_during_a_drain_ends_at_once",
    "a_reply_in_progress_completes",
    "a_handler_that_ignores_end_of_stream_is_cut_at_the_deadline",
    "shutdown_now_ends_every_connection_at_once",
];

/// The threads of this process but the harness's test threads, and of
/// those the server's own (`socketserver-conn`, cut to 15 bytes by the
/// kernel). Linux only.
#[cfg(target_os = "linux")]
fn threads() -> (usize, usize) {
    let mut all = 0;
    let mut ours = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
        let comm = comm.trim_end();
        if TESTS.iter().any(|t| t.starts_with(comm)) && comm.len() >= 15 {
            continue;
        }
        all += 1;
        ours += usize::from(comm.starts_with("socketserver-co"));
    }
    (all, ours)
}

#[cfg(not(target_os = "linux"))]
fn threads() -> (usize, usize) {
    (0, 0)
}

/// [`threads`] once the count holds still: a thread the last test joined
/// (a scoped thread, say) can still be on its way out of `/proc` for a
/// moment after its join returned, and would count here.
fn settled_threads() -> (usize, usize) {
    let mut last = threads();
    for _ in 0..500 {
        thread::sleep(Duration::from_millis(2));
        let now = threads();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// An echo handler for lines, which records what `handle_error` hears.
#[derive(Default)]
struct Echo {
    errors: Mutex<Vec<String>>,
}

impl BaseRequestHandler for Echo {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let mut lines = BufReader::new(conn.try_clone()?);
        let mut line = String::new();
        while lines.read_line(&mut line)? > 0 {
            conn.write_all(line.as_bytes())?;
            line.clear();
        }
        Ok(())
    }

    fn handle_error(&self, _: &Addr, error: &HandlerError) {
        self.errors.lock().unwrap().push(error.to_string());
    }
}

/// Waits (bounded) until `active` connections are being served.
fn until_active(stats: impl Fn() -> u64, active: u64) {
    let start = Instant::now();
    while stats() < active {
        assert!(start.elapsed() < Duration::from_secs(20), "never served");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Three idle clients and a 1 s grace: `serve_forever` returns well within
/// the grace, every connection completed (end of stream, not an error),
/// and the thread count is back where it was.
#[test]
fn idle_clients_end_at_once_and_every_thread_is_joined() {
    let _one = one_at_a_time();
    let handler = Arc::new(Echo::default());
    let (before, ours_before) = settled_threads();
    let server = ThreadingTcpServer::builder(SharedEcho(Arc::clone(&handler)))
        .graceful_shutdown(Duration::from_secs(1))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let stop = server.shutdown_handle();
    let (took, during) = thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        until_active(|| server.stats().active, 3);
        // Counted active when handed over, the threads start a moment later.
        let started = Instant::now();
        while threads().1 < ours_before + 3 && started.elapsed() < Duration::from_secs(20) {
            thread::sleep(Duration::from_millis(2));
        }
        let during = threads();
        let start = Instant::now();
        stop.shutdown();
        serving.join().unwrap();
        (start.elapsed(), during)
    });
    let (after, ours_after) = threads();
    println!(
        "3 idle clients: serve_forever returned in {took:?}; threads {before} -> {} -> {after}",
        during.0
    );
    assert_eq!(during.1, ours_before + 3, "a thread per client");
    assert!(
        took < Duration::from_millis(900),
        "well within the grace: {took:?}"
    );
    let stats = server.stats();
    assert_eq!((stats.active, stats.completed, stats.failed), (0, 3, 0));
    assert_eq!(ours_after, ours_before, "no handler thread left");
    assert_eq!(after, before, "the thread count is back where it was");
    assert!(handler.errors.lock().unwrap().is_empty());
    // Each client sees the end of stream.
    for mut client in clients {
        assert_eq!(client.read(&mut [0u8; 8]).unwrap(), 0);
    }
}

/// A handler mid-reply when the shutdown comes writes the whole reply.
#[test]
fn a_reply_in_progress_completes() {
    let _one = one_at_a_time();
    const CHUNKS: usize = 10;
    let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
        let mut request = [0u8; 1];
        conn.read_exact(&mut request)?;
        for i in 0..CHUNKS {
            writeln!(conn, "chunk {i}")?;
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })
    .graceful_shutdown(Duration::from_secs(20))
    .bind("127.0.0.1:0")
    .unwrap();
    let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    client.write_all(b"?").unwrap();
    let stop = server.shutdown_handle();
    let mut reply = String::new();
    thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        // The first chunk is there: the reply is in progress.
        let mut first = [0u8; 8];
        client.read_exact(&mut first).unwrap();
        reply.push_str(std::str::from_utf8(&first).unwrap());
        stop.shutdown();
        client.read_to_string(&mut reply).unwrap();
        serving.join().unwrap();
    });
    assert_eq!(reply.lines().count(), CHUNKS, "every chunk: {reply:?}");
    assert!(reply.ends_with(&format!("chunk {}\n", CHUNKS - 1)));
    assert_eq!((server.stats().completed, server.stats().active), (1, 0));
}

/// A handler that ignores end of stream and reads on is cut when the grace
/// period ends (its reads fail), reported to `handle_error`, and
/// `serve_forever` returns soon after.
#[test]
fn a_handler_that_ignores_end_of_stream_is_cut_at_the_deadline() {
    let _one = one_at_a_time();
    let handler = Arc::new(Stubborn::default());
    let (_, ours_before) = threads();
    let grace = Duration::from_secs(1);
    let server = ThreadingTcpServer::builder(SharedStubborn(Arc::clone(&handler)))
        .graceful_shutdown(grace)
        .bind("127.0.0.1:0")
        .unwrap();
    let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    let stop = server.shutdown_handle();
    let took = thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        until_active(|| server.stats().active, 1);
        let start = Instant::now();
        stop.shutdown();
        serving.join().unwrap();
        start.elapsed()
    });
    println!("a stubborn handler: serve_forever returned in {took:?}");
    assert!(
        took >= grace - Duration::from_millis(50),
        "not before the grace end: {took:?}"
    );
    assert!(
        took < grace + Duration::from_secs(3),
        "soon after it: {took:?}"
    );
    assert_eq!((server.stats().failed, server.stats().active), (1, 0));
    assert_eq!(threads().1, ours_before, "its thread was joined");
    let errors = handler.errors.lock().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("shutdown"), "{errors:?}");
}

/// `shutdown_now` cuts a reply in progress and an idle client at once.
#[test]
fn shutdown_now_ends_every_connection_at_once() {
    let _one = one_at_a_time();
    let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
        let mut request = [0u8; 1];
        conn.read_exact(&mut request)?;
        for _ in 0..1000 {
            conn.write_all(b"slow reply\n")?;
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    })
    .graceful_shutdown(Duration::from_secs(60))
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.write_all(b"?").unwrap();
    let _idle = TcpStream::connect(addr).unwrap();
    let stop = server.shutdown_handle();
    let took = thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        until_active(|| server.stats().active, 2);
        busy.read_exact(&mut [0u8; 4]).unwrap();
        let start = Instant::now();
        stop.shutdown_now();
        serving.join().unwrap();
        start.elapsed()
    });
    println!("shutdown_now: serve_forever returned in {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "not the 60 s grace: {took:?}"
    );
    let stats = server.stats();
    assert_eq!(stats.active, 0);
    assert_eq!(stats.completed + stats.failed, 2);
    assert!(stats.failed >= 1, "the cut reply failed: {stats:?}");
}

/// Reads and ignores end of stream (pausing, not spinning).
#[derive(Default)]
struct Stubborn {
    errors: Mutex<Vec<String>>,
}

impl BaseRequestHandler for Stubborn {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        loop {
            if conn.read(&mut [0u8; 64])? == 0 {
                thread::sleep(Duration::from_millis(10)); // "not yet"
            }
        }
    }

    fn handle_error(&self, _: &Addr, error: &HandlerError) {
        self.errors.lock().unwrap().push(error.to_string());
    }
}

// The handlers are shared with the test, which reads what they recorded.
struct SharedEcho(Arc<Echo>);
impl BaseRequestHandler for SharedEcho {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        self.0.handle(conn)
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.handle_error(peer, error)
    }
}

struct SharedStubborn(Arc<Stubborn>);
impl BaseRequestHandler for SharedStubborn {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        self.0.handle(conn)
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.handle_error(peer, error)
    }
}

/// A connection whose handler starts during a drain (here: one queued for
/// a pool's only worker when the shutdown came) is drained at once: its
/// first read sees end of stream, and its deadline is the end of the grace
/// period, already as it starts. Once `serve_forever` has returned, the
/// drain is forgotten: the next client is served in full.
#[test]
fn a_connection_that_starts_during_a_drain_ends_at_once() {
    let _one = one_at_a_time();
    // What each handler saw: whether it had a deadline as it started, and
    // how many bytes its one read got.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(Mutex::new(0));
    let (record, start) = (Arc::clone(&seen), Arc::clone(&started));
    let server = ThreadingTcpServer::builder(move |conn: &mut Connection| {
        let deadline = conn.deadline().is_some();
        *start.lock().unwrap() += 1;
        let mut buf = [0u8; 8];
        let n = conn.read(&mut buf)?;
        record.lock().unwrap().push((deadline, n));
        conn.write_all(&buf[..n])
    })
    .pool(1)
    .max_connections(2)
    .graceful_shutdown(Duration::from_secs(30))
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let _first = TcpStream::connect(addr).unwrap(); // idle, on the only worker
    let _queued = TcpStream::connect(addr).unwrap(); // accepted, waits for it
    let stop = server.shutdown_handle();
    let took = thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        until_active(|| server.stats().active, 2);
        until_active(|| *started.lock().unwrap(), 1);
        let start = Instant::now();
        stop.shutdown();
        serving.join().unwrap();
        start.elapsed()
    });
    assert!(took < Duration::from_secs(10), "not the grace: {took:?}");
    assert_eq!(*seen.lock().unwrap(), [(false, 0), (true, 0)]);
    // Served again: the request is read and answered, with no deadline.
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hi").unwrap();
    server.handle_request().unwrap();
    let mut reply = [0u8; 2];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"hi");
    assert_eq!(seen.lock().unwrap()[2], (false, 2));
}
