//! The PROXY protocol through real sockets on loopback: headers from a
//! trusted balancer reach the handler as the client's address; untrusted
//! sources and bad headers are closed before the handler sees them.
#![cfg(unix)]

mod common;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::server::proxy::{Network, V2_SIGNATURE};
use socketserver::{Addr, BaseRequestHandler, Connection, ThreadingTcpServer};

/// What each connection's handler saw: its peer, its balancer, and the
/// first line the client sent after the header.
type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// A handler that records what it sees, answers `ok`, and refuses the
/// clients `verify_request` is told to.
#[derive(Clone, Default)]
struct Recorder {
    seen: Seen,
    verified: Arc<Mutex<Vec<String>>>,
    refuse: Option<IpAddr>,
}

impl BaseRequestHandler for Recorder {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while conn.read(&mut byte)? == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let peer = conn.peer_addr().to_string();
        let proxy = conn.proxy_addr().map(ToString::to_string);
        let line = String::from_utf8_lossy(&line).into_owned();
        self.seen.lock().unwrap().push((peer.clone(), proxy, line));
        writeln!(conn, "ok {peer}")?;
        // Hold the connection until the client leaves (for the per-peer cap).
        io::copy(conn, &mut io::sink()).map(drop)
    }
    fn verify_request(&self, peer: &Addr) -> bool {
        self.verified.lock().unwrap().push(peer.to_string());
        peer.ip() != self.refuse
    }
}

fn loopback() -> Network {
    "127.0.0.1".parse().unwrap()
}

/// A server behind the PROXY protocol, trusting 127.0.0.1, serving on its
/// own thread; stopped when the returned guard drops.
struct Running {
    addr: SocketAddr,
    stop: socketserver::ShutdownHandle,
    serving: Option<thread::JoinHandle<()>>,
    server_stats: Arc<dyn Fn() -> socketserver::Stats + Send + Sync>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(serving) = self.serving.take() {
            serving.join().unwrap();
        }
    }
}

impl Running {
    fn stats(&self) -> socketserver::Stats {
        (self.server_stats)()
    }
}

fn serve(
    handler: Recorder,
    configure: impl FnOnce(
        socketserver::Builder<Recorder, ThreadingTcpServer<Recorder>>,
    ) -> socketserver::Builder<Recorder, ThreadingTcpServer<Recorder>>,
) -> Running {
    let server = configure(
        ThreadingTcpServer::builder(handler)
            .proxy_protocol([loopback()])
            .graceful_shutdown(Duration::ZERO),
    )
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let server = Arc::new(server);
    let stats_of = Arc::clone(&server);
    let serving = thread::spawn(move || server.serve_forever());
    Running {
        addr,
        stop,
        serving: Some(serving),
        server_stats: Arc::new(move || stats_of.stats()),
    }
}

/// Sends `bytes` from `client`, then reads until the server closes: what
/// came back (empty if the connection was closed unserved).
fn exchange(mut client: TcpStream, bytes: &[u8]) -> String {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A write to a socket the server has closed may fail: it is refused.
    let _ = client.write_all(bytes);
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.ends_with(b"\n") {
                    break; // served: the handler waits for us to leave
                }
            }
            // Closed with our bytes unread: a reset. Closed all the same.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the reply: {e}"),
        }
    }
    String::from_utf8(reply).unwrap()
}

fn v2(command: u8, family: u8, addrs: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[command, family]);
    h.extend_from_slice(&u16::try_from(addrs.len()).unwrap().to_be_bytes());
    h.extend_from_slice(addrs);
    h
}

fn v2_tcp6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16) -> Vec<u8> {
    let mut a = src.octets().to_vec();
    a.extend_from_slice(&dst.octets());
    a.extend_from_slice(&sport.to_be_bytes());
    a.extend_from_slice(&dport.to_be_bytes());
    v2(0x21, 0x21, &a)
}

/// Waits (bounded) for the server's counters to say `done`.
fn until(server: &Running, done: impl Fn(socketserver::Stats) -> bool) -> socketserver::Stats {
    assert!(
        common::within(Duration::from_secs(5), || done(server.stats())),
        "counters never settled: {:?}",
        server.stats()
    );
    server.stats()
}

// Shows: every kind of header a trusted balancer sends (v1 and v2, IPv4,
// IPv6, LOCAL) reaches the handler as the client's address, the balancer's
// in proxy_addr, and the client's first bytes after the header intact.
#[test]
fn headers_from_a_trusted_balancer_name_the_client() {
    let handler = Recorder::default();
    let server = serve(handler.clone(), |b| b);
    let v4 = [203, 0, 113, 7, 192, 0, 2, 1, 0xC7, 0x38, 0x1B, 0x58]; // 51000, 7000
    let cases: Vec<(Vec<u8>, &str, bool)> = vec![
        (
            b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 7000\r\n".to_vec(),
            "203.0.113.7:51000",
            true,
        ),
        (
            b"PROXY TCP6 2001:db8::7 2001:db8::1 51001 7000\r\n".to_vec(),
            "[2001:db8::7]:51001",
            true,
        ),
        (v2(0x21, 0x11, &v4), "203.0.113.7:51000", true),
        (
            v2_tcp6(
                "2001:db8::8".parse().unwrap(),
                51002,
                "2001:db8::1".parse().unwrap(),
                7000,
            ),
            "[2001:db8::8]:51002",
            true,
        ),
        // A health check: served as the balancer itself.
        (v2(0x20, 0x00, &[]), "127.0.0.1", false),
        (b"PROXY UNKNOWN\r\n".to_vec(), "127.0.0.1", false),
    ];
    for (i, (header, client, proxied)) in cases.iter().enumerate() {
        let balancer = TcpStream::connect(server.addr).unwrap();
        let balancer_addr = balancer.local_addr().unwrap().to_string();
        let sent = [&header[..], format!("hello {i}\n").as_bytes()].concat();
        let reply = exchange(balancer, &sent);
        assert!(reply.starts_with(&format!("ok {client}")), "{i}: {reply:?}");
        let seen = handler.seen.lock().unwrap().last().cloned().unwrap();
        assert!(seen.0.starts_with(client), "{i}: {seen:?}");
        let via = proxied.then(|| balancer_addr.clone());
        assert_eq!(seen.1, via, "{i}: the balancer's address");
        assert_eq!(
            seen.2,
            format!("hello {i}"),
            "{i}: the bytes after the header"
        );
    }
    let stats = until(&server, |s| s.completed == 6);
    assert_eq!(stats.refused_proxy, 0);
    // verify_request saw the clients, not the balancer.
    let verified = handler.verified.lock().unwrap().clone();
    assert_eq!(verified[0], "203.0.113.7:51000");
    assert_eq!(verified[1], "[2001:db8::7]:51001");
}

// Shows: a connection from an address outside the trusted list (127.0.0.2,
// trusted: 127.0.0.1) is closed before anything is read or written, and
// never reaches verify_request or the handler, even with a valid header.
#[test]
fn an_untrusted_source_is_closed_unserved() {
    let handler = Recorder::default();
    let server = serve(handler.clone(), |b| b);
    let stranger = common::connect_from("127.0.0.2".parse().unwrap(), server.addr).unwrap();
    let reply = exchange(
        stranger,
        b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 7000\r\nhello\n",
    );
    assert_eq!(reply, "");
    let stats = until(&server, |s| s.refused_proxy == 1);
    assert_eq!((stats.accepted, stats.rejected), (0, 0));
    assert!(handler.seen.lock().unwrap().is_empty());
    assert!(handler.verified.lock().unwrap().is_empty());
    // The trusted balancer is still served.
    let balancer = TcpStream::connect(server.addr).unwrap();
    let reply = exchange(balancer, b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\nhi\n");
    assert!(reply.starts_with("ok 203.0.113.7:1"), "{reply:?}");
}

// Shows: missing, malformed and oversized headers close the connection
// unserved, each counted in refused_proxy and never seen by the handler.
#[test]
fn bad_headers_are_refused_without_reaching_the_handler() {
    let handler = Recorder::default();
    let server = serve(handler.clone(), |b| b);
    let mut oversized_v2 = V2_SIGNATURE.to_vec();
    oversized_v2.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
    oversized_v2.resize(16 + 2000, 0);
    let mut long_v1 = b"PROXY TCP4 ".to_vec();
    long_v1.resize(300, b'1');
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("missing", b"hello there, server\n".to_vec()),
        (
            "missing (v1 in lower case)",
            b"proxy tcp4 203.0.113.7 192.0.2.1 1 2\r\n".to_vec(),
        ),
        (
            "malformed v1",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 99999\r\nhi\n".to_vec(),
        ),
        (
            "malformed v1, bare LF",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\nhi\n".to_vec(),
        ),
        ("malformed v2, version 1", v2(0x11, 0x11, &[0; 12])),
        ("v2, Unix addresses", v2(0x21, 0x31, &[0; 216])),
        ("v2, datagrams", v2(0x21, 0x12, &[0; 12])),
        ("oversized v1", long_v1),
        ("oversized v2", oversized_v2),
    ];
    for (i, (what, bytes)) in bad.iter().enumerate() {
        let balancer = TcpStream::connect(server.addr).unwrap();
        let reply = exchange(balancer, bytes);
        assert_eq!(reply, "", "{what}: served");
        until(&server, |s| s.refused_proxy == i as u64 + 1);
    }
    // A balancer that closes in the middle of its header.
    let mut cut = TcpStream::connect(server.addr).unwrap();
    cut.write_all(b"PROXY TCP4 203.0.").unwrap();
    drop(cut);
    let stats = until(&server, |s| s.refused_proxy == bad.len() as u64 + 1);
    assert_eq!((stats.accepted, stats.active), (0, 0), "{stats:?}");
    assert!(handler.seen.lock().unwrap().is_empty());
    assert!(handler.verified.lock().unwrap().is_empty());
}

// Shows: a trusted balancer that sends nothing, or drips its header a byte
// at a time, is closed at the first-request deadline, and meanwhile the
// serving loop goes on serving others (the header is read on the
// connection's thread, not in the accept loop).
#[test]
fn late_and_dripping_headers_close_at_the_deadline_and_stall_no_one() {
    let handler = Recorder::default();
    let deadline = Duration::from_millis(300);
    let server = serve(handler.clone(), |b| b.initial_deadline(Some(deadline)));
    let start = Instant::now();
    let silent = TcpStream::connect(server.addr).unwrap();
    let dripping = TcpStream::connect(server.addr).unwrap();
    let drip = thread::spawn(move || {
        let mut dripping = dripping;
        for &b in b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 7000\r\n" {
            if dripping.write_all(&[b]).is_err() {
                break; // closed by the server
            }
            thread::sleep(Duration::from_millis(40));
        }
        let mut rest = Vec::new();
        dripping
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = dripping.read_to_end(&mut rest);
        rest
    });
    // Meanwhile a prompt balancer is served at once.
    let prompt = TcpStream::connect(server.addr).unwrap();
    let reply = exchange(prompt, b"PROXY TCP4 198.51.100.1 192.0.2.1 1 2\r\nhi\n");
    assert!(reply.starts_with("ok 198.51.100.1:1"), "{reply:?}");
    assert!(start.elapsed() < deadline, "the prompt one waited");
    assert_eq!(exchange(silent, b""), "", "the silent one was served");
    assert!(
        drip.join().unwrap().is_empty(),
        "the dripping one was served"
    );
    let stats = until(&server, |s| s.refused_proxy == 2);
    assert!(start.elapsed() < deadline * 5, "{:?}", start.elapsed());
    assert_eq!(stats.completed + stats.active, 1, "{stats:?}");
    assert_eq!(handler.seen.lock().unwrap().len(), 1);
}

// Shows: the per-peer cap and verify_request count by the client's
// address: through one balancer, a second connection of one client is
// refused while another client is served, and verify_request refuses by
// the client's address.
#[test]
fn the_per_peer_cap_and_verify_request_see_the_client() {
    let handler = Recorder {
        refuse: Some("198.51.100.66".parse().unwrap()),
        ..Recorder::default()
    };
    let server = serve(handler.clone(), |b| b.max_per_peer(Some(1)));
    let header = |client: &str| format!("PROXY TCP4 {client} 192.0.2.1 1000 7000\r\nhi\n");
    let mut first = TcpStream::connect(server.addr).unwrap();
    first.write_all(header("203.0.113.7").as_bytes()).unwrap();
    let mut ok = [0u8; 3];
    first.read_exact(&mut ok).unwrap(); // served, and held open
    let again = TcpStream::connect(server.addr).unwrap();
    assert_eq!(exchange(again, header("203.0.113.7").as_bytes()), "");
    until(&server, |s| s.refused_per_peer == 1);
    let other = TcpStream::connect(server.addr).unwrap();
    let reply = exchange(other, header("203.0.113.8").as_bytes());
    assert!(reply.starts_with("ok 203.0.113.8"), "{reply:?}");
    let refused = TcpStream::connect(server.addr).unwrap();
    assert_eq!(exchange(refused, header("198.51.100.66").as_bytes()), "");
    let stats = until(&server, |s| s.rejected == 1);
    assert_eq!(stats.refused_proxy, 0);
    assert_eq!(stats.accepted, 2, "{stats:?}");
    drop(first);
}

// Shows: the per-peer cap counts by IPv4 address (any port), an
// IPv4-mapped IPv6 address as its IPv4 one, and IPv6 by /64 (one host's
// block); a refused connection counts only as refused_per_peer; and a
// peer's count comes back when its connection ends. The headers name the
// clients, so any address can be tried from loopback.
#[test]
fn the_per_peer_cap_counts_ipv4_addresses_and_ipv6_slash_64s() {
    let server = serve(Recorder::default(), |b| b.max_per_peer(Some(1)));
    let connect = |proto: &str, client: &str, port: u16| {
        let stream = TcpStream::connect(server.addr).unwrap();
        let header = format!("PROXY {proto} {client} {client} {port} 7000\r\nhi\n");
        exchange(stream.try_clone().unwrap(), header.as_bytes())
            .starts_with("ok ")
            .then_some(stream)
    };
    let first = connect("TCP4", "127.0.0.2", 5000).expect("served");
    assert!(connect("TCP4", "127.0.0.2", 6000).is_none(), "another port");
    let stats = until(&server, |s| s.refused_per_peer == 1);
    assert_eq!(
        (stats.accepted, stats.active),
        (1, 1),
        "refused: not accepted"
    );
    assert!(
        connect("TCP6", "::ffff:127.0.0.2", 5000).is_none(),
        "mapped"
    );
    let _other = connect("TCP4", "127.0.0.1", 5000).expect("another address");
    let _v6 = connect("TCP6", "2001:db8:0:1::1", 1).expect("served");
    assert!(
        connect("TCP6", "2001:db8:0:1:ffff::9", 2).is_none(),
        "same /64"
    );
    let _next = connect("TCP6", "2001:db8:0:2::1", 1).expect("another /64");
    until(&server, |s| s.refused_per_peer == 3);
    drop(first);
    until(&server, |s| s.completed == 1);
    assert!(connect("TCP4", "127.0.0.2", 7000).is_some(), "given back");
}

// Shows: with the protocol off (the default), a connection that starts
// with a PROXY line is served as it is: the handler reads the line, and
// the peer is the socket's.
#[test]
fn with_the_protocol_off_the_header_is_just_bytes() {
    let handler = Recorder::default();
    let server = ThreadingTcpServer::bind("127.0.0.1:0", handler.clone()).unwrap();
    let addr = server.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let mut writer = client.try_clone().unwrap();
    writer
        .write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\n")
        .unwrap();
    server.handle_request().unwrap();
    let reply = exchange(client, b"");
    assert!(reply.starts_with("ok 127.0.0.1:"), "{reply:?}");
    let seen = handler.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.1, None);
    assert_eq!(seen.2, "PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r");
}

// Shows (the attacker's view): a burst of untrusted connections, headerless
// ones and dripping ones ends with every one refused and counted, nothing
// served, no request active, and the server's threads and descriptors back
// where they were (printed; asserted by the counters, since other tests of
// this file share the process).
#[test]
fn a_burst_of_bad_connections_is_refused_and_leaves_nothing_behind() {
    let handler = Recorder::default();
    let server = serve(handler.clone(), |b| {
        b.initial_deadline(Some(Duration::from_millis(200)))
    });
    let me = std::process::id();
    let before = common::figures(me);
    let (strangers, garbage, drips) = (100u64, 100u64, 20u64);
    let mut held = Vec::new();
    for _ in 0..strangers {
        let s = common::connect_from("127.0.0.2".parse().unwrap(), server.addr).unwrap();
        held.push(s);
    }
    for _ in 0..garbage {
        let mut s = TcpStream::connect(server.addr).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
        held.push(s);
    }
    for _ in 0..drips {
        let mut s = TcpStream::connect(server.addr).unwrap();
        let _ = s.write_all(b"PROXY TCP4 1");
        held.push(s);
    }
    let during = common::figures(me);
    let total = strangers + garbage + drips;
    let stats = until(&server, |s| s.refused_proxy == total && s.active == 0);
    drop(held);
    assert_eq!(stats.accepted, 0, "{stats:?}");
    assert!(handler.seen.lock().unwrap().is_empty());
    let after = common::figures(me);
    eprintln!(
        "threads/fds of the test process: before {before:?}, during {during:?}, after {after:?}"
    );
}

// Shows (issue 23): the services take the balancers too. The file service
// behind one answers a client that came through it; the command service
// refuses to serve behind one without a token, since its clients are then
// remote whatever address it listens on.
#[cfg(unix)]
#[test]
fn the_services_serve_behind_a_balancer_and_commands_need_a_token_there() {
    use socketserver::command::{self, CommandConfig};
    use socketserver::files::{self, FileConfig};
    use socketserver::frame::{Header, read_frame, write_frame_with};

    let root = std::env::temp_dir().join(format!("socketserver-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), b"hi").unwrap();
    let server = files::bind(
        "127.0.0.1:0",
        FileConfig::new(&root).proxy_protocol([loopback()]),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let server = Arc::new(server);
    let serving = {
        let server = Arc::clone(&server);
        thread::spawn(move || server.serve_forever())
    };
    let mut balancer = TcpStream::connect(addr).unwrap();
    balancer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    balancer
        .write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 9998\r\n")
        .unwrap();
    write_frame_with(
        &mut balancer,
        &Header::for_body(b"").with("op", "ls").with("name", ""),
        b"",
    )
    .unwrap();
    let listing = read_frame(&mut balancer).unwrap().expect("a listing");
    assert!(
        String::from_utf8_lossy(&listing.body).contains("hello.txt"),
        "{:?} {:?}",
        listing.header,
        String::from_utf8_lossy(&listing.body)
    );
    // Without the header, the same server refuses the connection.
    let mut direct = TcpStream::connect(addr).unwrap();
    direct
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write_frame_with(
        &mut direct,
        &Header::for_body(b"").with("op", "ls").with("name", ""),
        b"",
    )
    .unwrap();
    assert!(matches!(read_frame(&mut direct), Ok(None) | Err(_)));
    server.shutdown_handle().shutdown();
    serving.join().unwrap();
    let _ = std::fs::remove_dir_all(&root);

    let behind = CommandConfig::default().proxy_protocol([loopback()]);
    let refused = command::bind("127.0.0.1:0", behind.clone()).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied, "{refused}");
    assert!(command::bind("127.0.0.1:0", behind.token("s3cret")).is_ok());
}
