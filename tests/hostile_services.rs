//! Hostile peers against the services on their own defaults but for short
//! deadlines: the command service (with a token) and the file service,
//! each with clients from 127.0.0.2 that send nothing or drip a request a
//! byte at a time, while a client on 127.0.0.1 is served; connections idle
//! after a reply; and a download taken a byte at a time. Every loop is
//! bounded, every timing assertion has slack for a loaded two-core
//! machine, and every figure is printed (`--nocapture`).
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::connect_from_with;
use common::files::{Dirs, none, pattern};
use socketserver::command::{self, Client, CommandConfig, Protocol};
use socketserver::files::{self, CHUNK, FileClient, FileConfig};
use socketserver::frame::{Header, read_frame, write_frame_parts};
use socketserver::handler::is_timeout;
use socketserver::{ServerInfo, Stats};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const ANOTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// The time to deliver a first request, and between requests.
const DEADLINE: Duration = Duration::from_millis(1500);
/// How much later than its deadline a connection may close on a loaded
/// machine; the services' default read timeout is 5 minutes.
const SLACK: Duration = Duration::from_millis(1500);
/// Never wait longer than this for anything.
const PATIENCE: Duration = Duration::from_secs(20);
const TOKEN: &str = "hostile-services-token";
/// The services' default cap per address.
const PER_PEER: usize = 8;

/// Reads (and drops) whatever the server sends until it closes the
/// connection, or `limit` passes; returns how long it stayed open from
/// `since`.
fn until_closed(mut stream: TcpStream, since: Instant, limit: Duration) -> Duration {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    while since.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    since.elapsed()
}

/// A framed request that is never finished: the four length bytes at once
/// (so the command service sees our form), then one byte of the header
/// every `every`, until the server closes the connection or `limit`
/// passes. Returns how long it stayed open from `since`.
fn drip_request(
    mut stream: TcpStream,
    since: Instant,
    every: Duration,
    limit: Duration,
) -> Duration {
    let mut wire = vec![200u8, 0, 0, 0];
    wire.extend_from_slice(b"{\"ver\":\"1\",\"md5\":\"");
    wire.resize(204, b'0');
    stream.set_read_timeout(Some(every)).unwrap();
    if stream.write_all(&wire[..4]).is_err() {
        return since.elapsed();
    }
    let mut next = 4;
    let mut buf = [0u8; 512];
    while since.elapsed() < limit && next < wire.len() {
        match stream.read(&mut buf) {
            Ok(0) => break,                // the server closed it
            Ok(_) => continue,             // the challenge, or an error frame
            Err(e) if is_timeout(&e) => {} // still open: drip again
            Err(_) => break,
        }
        if stream.write_all(&wire[next..next + 1]).is_err() {
            break;
        }
        next += 1;
    }
    since.elapsed()
}

/// Opens `count` connections from `source`, the even ones idle, the odd
/// ones dripping a request; each thread returns how long its connection
/// stayed open.
fn attack(
    source: IpAddr,
    addr: SocketAddr,
    count: usize,
) -> Vec<thread::JoinHandle<(bool, Duration)>> {
    (0..count)
        .map(|i| {
            let since = Instant::now();
            let stream = connect_from_with(source, addr, None).unwrap();
            thread::spawn(move || {
                let idle = i % 2 == 0;
                let open = if idle {
                    until_closed(stream, since, PATIENCE)
                } else {
                    drip_request(stream, since, Duration::from_millis(100), PATIENCE)
                };
                (idle, open)
            })
        })
        .collect()
}

/// Waits, bounded, until the server serves no connection.
fn until_quiet(info: &ServerInfo) -> Stats {
    let deadline = Instant::now() + PATIENCE;
    while info.stats().active > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    info.stats()
}

fn threads_and_fds() -> (usize, usize) {
    let count = |dir| fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (count("/proc/self/task"), count("/proc/self/fd"))
}

/// Checks the hostile connections' fates: `served` of them held to the
/// deadline, not later; the rest closed at once by the per-peer cap.
fn check_attack(fates: &[(bool, Duration)], served: usize) {
    let held: Vec<Duration> = fates
        .iter()
        .map(|(_, open)| *open)
        .filter(|open| *open >= DEADLINE - Duration::from_millis(50))
        .collect();
    assert_eq!(held.len(), served, "held to the deadline: {fates:?}");
    for (idle, open) in fates {
        assert!(*open < DEADLINE + SLACK, "idle {idle}: open {open:?}");
    }
    // Both kinds were among the ones held (they alternate).
    assert!(
        fates
            .iter()
            .any(|(idle, open)| *idle && *open >= DEADLINE - Duration::from_millis(50))
    );
    assert!(
        fates
            .iter()
            .any(|(idle, open)| !*idle && *open >= DEADLINE - Duration::from_millis(50))
    );
}

fn summary(fates: &[(bool, Duration)]) -> String {
    let longest = |idle: bool| {
        fates
            .iter()
            .filter(|(i, _)| *i == idle)
            .map(|(_, o)| *o)
            .max()
            .unwrap_or_default()
    };
    let at_once = fates.iter().filter(|(_, o)| *o < DEADLINE / 2).count();
    format!(
        "{} hostile: {at_once} closed at once, longest open idle {:?}, dripping {:?}",
        fates.len(),
        longest(true),
        longest(false)
    )
}

#[test]
fn the_command_service_with_a_token_is_not_held_by_idle_or_dripping_clients() {
    // 24 connections from 127.0.0.2, half idle, half dripping a framed
    // request a byte every 100 ms; the per-peer cap (8) serves 8 of them
    // and closes the rest at once; the 8 are held to the first-request
    // deadline. A client with the token on 127.0.0.1 runs commands all
    // the while.
    let config = CommandConfig::default()
        .token(TOKEN)
        .first_request_timeout(DEADLINE)
        .idle_timeout(DEADLINE);
    let server = command::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let before = threads_and_fds();
    let serving = thread::spawn(move || server.serve_forever());

    let start = Instant::now();
    let hostile = attack(ATTACKER, addr, 3 * PER_PEER);
    let during = threads_and_fds();
    let mut worst = Duration::ZERO;
    let mut requests = 0;
    while start.elapsed() < DEADLINE * 2 && requests < 50 {
        let asked = Instant::now();
        let mut client = Client::connect(addr, Protocol::Framed)
            .unwrap()
            .with_token(TOKEN);
        let reply = client.run("echo hello").unwrap();
        assert_eq!(reply.stdout, b"hello\n");
        worst = worst.max(asked.elapsed());
        requests += 1;
        thread::sleep(Duration::from_millis(50));
    }
    let fates: Vec<(bool, Duration)> = hostile.into_iter().map(|h| h.join().unwrap()).collect();
    let stats = until_quiet(&info);
    let after = threads_and_fds();
    println!(
        "command service, token, first request within {DEADLINE:?}: {requests} commands from \
         127.0.0.1, slowest {worst:?} (connect, challenge, run, reply); {}; {stats:?}; \
         threads/fds before {before:?}, during {during:?}, after {after:?}",
        summary(&fates)
    );
    assert!(worst < Duration::from_secs(1), "slowest {worst:?}");
    assert!(requests >= 5, "only {requests} requests");
    assert_eq!(stats.refused_per_peer, 2 * PER_PEER as u64);
    check_attack(&fates, PER_PEER);
    stop.shutdown();
    serving.join().unwrap();
}

#[test]
fn a_command_connection_idle_after_its_reply_is_closed_at_the_idle_deadline() {
    // The seed's form, no token: one command, then nothing.
    let config = CommandConfig::default()
        .first_request_timeout(PATIENCE)
        .idle_timeout(DEADLINE);
    let server = command::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let serving = thread::spawn(move || server.serve_forever());

    let mut stream = connect_from_with(ANOTHER, addr, None).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"echo hi").unwrap();
    let reply = read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(reply.body, b"hi\n");
    let replied = Instant::now();
    let open = until_closed(stream, replied, PATIENCE);
    let stats = until_quiet(&info);
    println!("idle {DEADLINE:?} after a reply: closed after {open:?}; {stats:?}");
    assert!(open >= DEADLINE - Duration::from_millis(50), "{open:?}");
    assert!(open < DEADLINE + SLACK, "{open:?}");
    assert_eq!(stats.failed, 1, "a timeout is a failed request");
    stop.shutdown();
    serving.join().unwrap();
}

#[test]
fn the_file_service_is_not_held_by_idle_or_dripping_clients() {
    // As for the command service: 24 hostile connections from 127.0.0.2,
    // 8 served and held to the first-request deadline, 16 closed at once;
    // and one from 127.0.0.3 that lists, then drips its next request,
    // held to the idle deadline. A client on 127.0.0.1 lists, uploads and
    // downloads meanwhile.
    let dirs = Dirs::new("hostile-services");
    fs::write(dirs.local("f"), pattern(CHUNK + 1000)).unwrap();
    let config = FileConfig::new(dirs.root())
        .first_request_timeout(DEADLINE)
        .idle_timeout(DEADLINE);
    let server = files::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let before = threads_and_fds();
    let serving = thread::spawn(move || server.serve_forever());

    let start = Instant::now();
    let hostile = attack(ATTACKER, addr, 3 * PER_PEER);
    let idler = thread::spawn(move || {
        let mut stream = connect_from_with(ANOTHER, addr, None).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let ls = Header::for_body(b"").with("op", "ls").with("name", "");
        write_frame_parts(&mut stream, &ls, &[]).unwrap();
        read_frame(&mut stream).unwrap().unwrap();
        let replied = Instant::now();
        drip_request(stream, replied, Duration::from_millis(100), PATIENCE)
    });
    let during = threads_and_fds();
    let mut worst = Duration::ZERO;
    let mut rounds = 0;
    while start.elapsed() < DEADLINE * 2 && rounds < 50 {
        let asked = Instant::now();
        let mut client = FileClient::connect(addr).unwrap();
        let name = format!("legit{rounds}");
        client.put(&dirs.local("f"), &name, false, none).unwrap();
        client.ls("").unwrap();
        client
            .get(&name, &dirs.local(&format!("{name}.copy")), false, none)
            .unwrap();
        worst = worst.max(asked.elapsed());
        rounds += 1;
        thread::sleep(Duration::from_millis(50));
    }
    let fates: Vec<(bool, Duration)> = hostile.into_iter().map(|h| h.join().unwrap()).collect();
    let idled = idler.join().unwrap();
    let stats = until_quiet(&info);
    let after = threads_and_fds();
    println!(
        "file service, first request and idle within {DEADLINE:?}: {rounds} rounds of put, ls, \
         get (1 MiB) from 127.0.0.1, slowest {worst:?}; {}; dripping after a reply: closed \
         after {idled:?}; {stats:?}; threads/fds before {before:?}, during {during:?}, \
         after {after:?}",
        summary(&fates)
    );
    assert!(worst < Duration::from_secs(1), "slowest round {worst:?}");
    assert!(rounds >= 3, "only {rounds} rounds");
    assert_eq!(stats.refused_per_peer, 2 * PER_PEER as u64);
    check_attack(&fates, PER_PEER);
    assert!(idled >= DEADLINE - Duration::from_millis(50), "{idled:?}");
    assert!(idled < DEADLINE + SLACK, "{idled:?}");
    stop.shutdown();
    serving.join().unwrap();
}

#[test]
fn a_download_taken_a_byte_at_a_time_ends_at_its_chunk_timeout() {
    // A 16 MiB file; a client with a 4 KiB receive buffer asks for it and
    // then reads one byte every 100 ms, just inside any write timeout.
    // The kernel's buffers take a few MiB; then the server's write
    // blocks, and the chunk timeout (1 s) ends it.
    let per_chunk = Duration::from_secs(1);
    let dirs = Dirs::new("hostile-download");
    fs::write(dirs.root().join("big"), pattern(16 * CHUNK)).unwrap();
    let config = FileConfig::new(dirs.root()).chunk_timeout(per_chunk);
    let server = files::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, info) = (server.shutdown_handle(), server.info());
    let serving = thread::spawn(move || server.serve_forever());

    let mut stream = connect_from_with(ATTACKER, addr, Some(4096)).unwrap();
    let get = Header::for_body(b"")
        .with("op", "get")
        .with("name", "big")
        .with("offset", 0);
    let asked = Instant::now();
    write_frame_parts(&mut stream, &get, &[]).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reading = Arc::clone(&done);
    let reader = thread::spawn(move || {
        let start = Instant::now();
        let mut taken = 0;
        while start.elapsed() < PATIENCE && !reading.load(Ordering::SeqCst) {
            match stream.read(&mut [0u8; 1]) {
                Ok(1) => taken += 1,
                _ => break,
            }
            thread::sleep(Duration::from_millis(100));
        }
        taken
    });
    // Served (accepted, which may take a moment) until the handler gives
    // up: `active` back to 0.
    let deadline = asked + PATIENCE;
    while info.stats().accepted == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    while info.stats().active > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let ended = asked.elapsed();
    let stats = info.stats();
    done.store(true, Ordering::SeqCst);
    stop.shutdown();
    serving.join().unwrap();
    let taken = reader.join().unwrap();
    println!(
        "a 16 MiB get read a byte every 100 ms, chunk timeout {per_chunk:?}: the server gave \
         up after {ended:?} ({taken} bytes taken by then); {stats:?}"
    );
    assert_eq!(stats.failed, 1, "{stats:?}");
    assert!(ended >= per_chunk - Duration::from_millis(50), "{ended:?}");
    assert!(
        ended < per_chunk + SLACK + Duration::from_secs(1),
        "{ended:?}"
    );
}
