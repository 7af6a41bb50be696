//! What the framework says about itself goes through `log` (target
//! `socketserver`): a repeated event at most once a second, with a count
//! of those in between. One test, so that its logger is the process's.

use std::io;
use std::net::TcpStream;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{Connection, ThreadingTcpServer};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "socketserver" {
            LINES.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// The lines about refused connections so far.
fn refused() -> Vec<String> {
    let lines = LINES.lock().unwrap();
    lines
        .iter()
        .filter(|l| l.starts_with("refused "))
        .cloned()
        .collect()
}

// Shows: the first connection over the per-peer cap is reported at once;
// the next five, within the second, only counted; the one after the
// second has passed is reported with the count of those five.
#[test]
fn refused_peers_are_reported_at_most_once_a_second_with_a_count() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let server = ThreadingTcpServer::builder(|conn: &mut Connection| {
        io::copy(conn, &mut io::sink()).map(drop) // until the client leaves
    })
    .max_per_peer(Some(1))
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let _held = TcpStream::connect(addr).unwrap();
    server.handle_request().unwrap();
    let refuse = || {
        let _client = TcpStream::connect(addr).unwrap();
        server.handle_request().unwrap();
    };
    refuse();
    let first = Instant::now(); // just after the first line
    for _ in 0..5 {
        refuse();
    }
    assert!(
        first.elapsed() < Duration::from_millis(900),
        "too slow a test"
    );
    let lines = refused();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("(0 more refused since"), "{lines:?}");
    // A second after the first line, the next one is due (a wait for the
    // clock, not for the server).
    thread::sleep(Duration::from_secs(1).saturating_sub(first.elapsed()));
    refuse();
    let lines = refused();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("(5 more refused since"), "{lines:?}");
    assert_eq!(server.stats().refused_per_peer, 7);
}
