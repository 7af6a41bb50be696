//! What the framework survives, quickly: load with every reply checked,
//! faults beside good traffic, and no leaked threads or descriptors.
//! All traffic is on 127.0.0.1 and every loop is bounded.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::frame::{self, FrameLimits, Header};
use socketserver::greet::Greeter;
use socketserver::{Addr, BaseRequestHandler, Connection, HandlerError, ThreadingTcpServer};

const PATIENCE: Duration = Duration::from_secs(20);

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// One greeting client: `rounds` names, each reply checked byte for byte.
fn greet(addr: SocketAddr, client: usize, rounds: usize) -> io::Result<usize> {
    let mut stream = connect(addr);
    let mut banner = [0u8; 8];
    stream.read_exact(&mut banner)?;
    assert_eq!(&banner, b"Welcome!");
    let mut ok = 0;
    for i in 0..rounds {
        let name = format!("c{client}-{i}");
        stream.write_all(name.as_bytes())?;
        let mut reply = vec![0u8; "你好,".len() + name.len()];
        stream.read_exact(&mut reply)?;
        assert_eq!(
            reply,
            format!("你好,{name}").as_bytes(),
            "client {client} round {i}"
        );
        ok += 1;
    }
    stream.write_all(b"exit")?;
    Ok(ok)
}

#[test]
fn greeting_load_loses_and_corrupts_nothing_on_either_policy() {
    const CLIENTS: usize = 64;
    const ROUNDS: usize = 10_000;
    for pool in [None, Some(CLIENTS)] {
        let builder = ThreadingTcpServer::builder(Greeter::new()).graceful_shutdown(PATIENCE);
        let server = match pool {
            Some(n) => builder.pool(n).bind("127.0.0.1:0").unwrap(),
            None => builder.bind("127.0.0.1:0").unwrap(),
        };
        let addr = server.local_addr().unwrap();
        let (stop, info) = (server.shutdown_handle(), server.info());
        let serving = thread::spawn(move || server.serve_forever());
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| thread::spawn(move || greet(addr, c, ROUNDS).unwrap()))
            .collect();
        let served: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        stop.shutdown();
        serving.join().unwrap();
        assert_eq!(served, CLIENTS * ROUNDS, "pool={pool:?}");
        let stats = info.stats();
        assert_eq!(
            (stats.accepted, stats.completed, stats.failed),
            (CLIENTS as u64, CLIENTS as u64, 0)
        );
    }
}

/// Echoes frames; a body of `panic` makes it panic.
struct FramedEcho {
    errors: AtomicU64,
}

impl BaseRequestHandler for FramedEcho {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let limits = FrameLimits::new().max_body_len(8 << 20);
        let mut body = Vec::new();
        while let Some(_header) = frame::read_frame_into(conn, &limits, &mut body)? {
            if body == b"panic" {
                panic!("asked to panic");
            }
            frame::write_frame(conn, &body)?;
        }
        Ok(())
    }

    fn handle_error(&self, _: &Addr, _: &HandlerError) {
        self.errors.fetch_add(1, Ordering::SeqCst);
    }
}

/// A good client: random-size bodies, each echo md5-checked and compared.
fn good_client(addr: SocketAddr, seed: u64, frames: usize) -> usize {
    let mut stream = connect(addr);
    let mut state = seed;
    let mut ok = 0;
    for _ in 0..frames {
        // xorshift: sizes from 0 to 256 KiB, contents that differ per frame.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = (state % (256 << 10)) as usize;
        let body: Vec<u8> = (0..size).map(|i| (i as u64 ^ state) as u8).collect();
        frame::write_frame(&mut stream, &body).unwrap();
        let echo = frame::read_frame_with(&mut stream, &FrameLimits::new())
            .unwrap()
            .unwrap();
        assert_eq!(echo.body, body);
        ok += 1;
    }
    ok
}

/// The faults, each on a connection of its own. Returns how many.
fn faults(addr: SocketAddr) -> u64 {
    let mut wire = Vec::new();
    frame::write_frame(&mut wire, &vec![7u8; 10_000]).unwrap();
    let header_end = 4 + Header::for_body(&[7u8; 10_000]).to_json().len();
    let mut count = 0;
    // Vanish after the length, inside the header, inside the body.
    for cut in [4, 20, header_end + 5_000] {
        let mut s = connect(addr);
        s.write_all(&wire[..cut]).unwrap();
        count += 1;
    }
    // Garbage: a negative header length, then bytes that are no JSON.
    for garbage in [&b"\xff\xff\xff\xffjunk"[..], b"\x05\x00\x00\x00!!!!!"] {
        let mut s = connect(addr);
        s.write_all(garbage).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // closed by the server
        count += 1;
    }
    // A request that makes the handler panic.
    let mut s = connect(addr);
    frame::write_frame(&mut s, b"panic").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "a panicking handler sends nothing more");
    count + 1
}

#[test]
fn faults_close_only_their_own_connections_while_good_clients_go_on() {
    let handler = FramedEcho {
        errors: AtomicU64::new(0),
    };
    let server = ThreadingTcpServer::builder(handler)
        // Far above a good client's pauses on a loaded machine.
        .read_timeout(Some(Duration::from_secs(2)))
        .graceful_shutdown(PATIENCE)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let serving = thread::spawn(move || server.serve_forever());

    let good: Vec<_> = (0..8u64)
        .map(|c| thread::spawn(move || good_client(addr, 0x9e37_79b9_7f4a_7c15 ^ c, 200)))
        .collect();
    let mut faulted = 0;
    // Silent clients hold connections until the read timeout drops them.
    let silent: Vec<_> = (0..4).map(|_| connect(addr)).collect();
    faulted += silent.len() as u64;
    for _ in 0..5 {
        faulted += faults(addr);
    }
    let served: usize = good.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(served, 8 * 200, "every good frame came back intact");
    stop.shutdown();
    serving.join().unwrap(); // graceful: after every connection ended
    drop(silent);

    let stats = info.stats();
    assert_eq!(stats.active, 0);
    assert_eq!(stats.accepted, stats.completed + stats.failed);
    assert_eq!(stats.accepted, 8 + faulted);
    assert_eq!(stats.completed, 8, "only the good clients ended cleanly");
    assert_eq!(
        stats.failed, faulted,
        "every fault failed its own connection"
    );
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
#[cfg(target_os = "linux")]
fn nothing_leaks_after_a_server_has_come_and_gone() {
    // Other tests in this binary run beside this one, so measure in a
    // child process: this test binary, asked to run only the helper below.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "leak_probe",
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("LEAK-FREE"), "{text}");
}

/// Run by the test above in a process of its own.
#[test]
#[ignore = "run by nothing_leaks_after_a_server_has_come_and_gone"]
fn leak_probe() {
    let threads = || count_entries("/proc/self/task");
    let fds = || count_entries("/proc/self/fd");
    let (threads_before, fds_before) = (threads(), fds());
    for pool in [None, Some(8)] {
        let builder = ThreadingTcpServer::builder(Greeter::new()).graceful_shutdown(PATIENCE);
        let server = match pool {
            Some(n) => builder.pool(n).bind("127.0.0.1:0").unwrap(),
            None => builder.bind("127.0.0.1:0").unwrap(),
        };
        let addr = server.local_addr().unwrap();
        let stop = server.shutdown_handle();
        let serving = thread::spawn(move || server.serve_forever());
        let clients: Vec<_> = (0..16)
            .map(|c| thread::spawn(move || greet(addr, c, 50).unwrap()))
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        stop.shutdown();
        serving.join().unwrap(); // the server is dropped with its thread
    }
    // Connection threads end just after their last count; pool workers
    // after their pool is dropped. Wait for them (bounded), then compare.
    let deadline = Instant::now() + PATIENCE;
    while threads() > threads_before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let left = (
        threads() as i64 - threads_before as i64,
        fds() as i64 - fds_before as i64,
    );
    println!("threads and fds left: {left:?}");
    assert_eq!(left, (0, 0));
    println!("LEAK-FREE");
}

#[test]
fn a_flood_past_the_cap_is_held_back_and_then_served() {
    const CAP: usize = 8;
    const FLOOD: usize = 200;
    let server = ThreadingTcpServer::builder(Greeter::new())
        .max_connections(CAP)
        .graceful_shutdown(PATIENCE)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let most = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (info, most) = (info.clone(), Arc::clone(&most));
        thread::spawn(move || {
            // Sample the active count while the flood lasts (bounded).
            let deadline = Instant::now() + PATIENCE;
            while info.stats().completed < FLOOD as u64 && Instant::now() < deadline {
                most.fetch_max(info.stats().active, Ordering::SeqCst);
                thread::yield_now();
            }
        })
    };
    let serving = thread::spawn(move || server.serve_forever());
    let clients: Vec<_> = (0..FLOOD)
        .map(|c| thread::spawn(move || greet(addr, c, 3).unwrap()))
        .collect();
    let served: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    watcher.join().unwrap();
    stop.shutdown();
    serving.join().unwrap();
    assert_eq!(served, FLOOD * 3);
    assert!(
        most.load(Ordering::SeqCst) <= CAP as u64,
        "over the cap: {most:?}"
    );
}

#[test]
fn a_short_soak_loses_nothing() {
    let mut soak = common::example("soak");
    soak.args(["--secs", "2"]);
    let line = common::run_client(soak); // exits non-zero if anything was lost
    assert!(
        line.contains(" lost=0 ") && line.contains(" corrupted=0 "),
        "{line}"
    );
}

#[test]
fn non_utf8_greetings_are_greeted_byte_for_byte() {
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let mut s = connect(addr);
    let mut banner = [0u8; 8];
    s.read_exact(&mut banner).unwrap();
    s.write_all(b"\xff\xfe\x00bytes").unwrap();
    let mut reply = vec![0u8; "你好,".len() + 8];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply["你好,".len()..], b"\xff\xfe\x00bytes");
    stop.shutdown();
    serving.join().unwrap();
}

#[test]
fn an_oversized_datagram_is_refused_by_the_sender_and_the_server_goes_on() {
    use socketserver::{Datagram, UdpServer};
    let server = UdpServer::bind("127.0.0.1:0", |d: &Datagram| d.reply(d.data())).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    // Over the 65,507-byte IPv4 maximum: no such datagram can exist.
    assert!(client.send_to(&vec![0u8; 70_000], addr).is_err());
    // The largest that can exists, and comes back whole.
    let largest = vec![9u8; 65_507];
    client.send_to(&largest, addr).unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &largest[..]);
    stop.shutdown();
    serving.join().unwrap();
}
