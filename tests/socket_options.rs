//! Python's remaining server knobs over real sockets: the listen backlog,
//! address and port reuse, dual-stack IPv6, and `handle_request` with a
//! timeout calling `handle_timeout`.
// Most of these are Unix (or Linux) only; elsewhere some imports go unused.
#![cfg_attr(not(unix), allow(unused_imports))]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use socketserver::{
    Addr, BaseRequestHandler, Connection, Datagram, DatagramRequestHandler, ServerInfo, TcpServer,
    UdpServer,
};

/// Counts requests and timeouts, and remembers peers.
#[derive(Default)]
struct Probe {
    served: AtomicUsize,
    timeouts: AtomicUsize,
    peers: Mutex<Vec<Addr>>,
}

impl BaseRequestHandler for Probe {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        self.served.fetch_add(1, Ordering::SeqCst);
        self.peers.lock().unwrap().push(conn.peer_addr().clone());
        conn.write_all(b"ok")
    }
    fn verify_request(&self, peer: &Addr) -> bool {
        // The dual-stack test binds a wildcard: serve only this machine.
        peer.ip().is_some_and(|ip| ip.to_canonical().is_loopback())
    }
    fn handle_timeout(&self, _: &ServerInfo) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
    }
}

impl DatagramRequestHandler for Probe {
    fn handle(&self, d: &Datagram) -> io::Result<()> {
        self.served.fetch_add(1, Ordering::SeqCst);
        d.reply(b"ok")
    }
    fn handle_timeout(&self, _: &ServerInfo) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(unix)]
#[test]
fn handle_request_timeout_returns_and_calls_handle_timeout_when_nothing_comes() {
    let probe = Arc::new(Probe::default());
    let server = TcpServer::bind("127.0.0.1:0", Arc::clone(&probe)).unwrap();
    let start = Instant::now();
    assert!(
        !server
            .handle_request_timeout(Duration::from_millis(100))
            .unwrap()
    );
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(probe.timeouts.load(Ordering::SeqCst), 1);

    // A client already waiting is served at once, without a timeout.
    let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    let start = Instant::now();
    // Duration::MAX too: no overflow, no wait.
    assert!(server.handle_request_timeout(Duration::MAX).unwrap());
    assert!(start.elapsed() < Duration::from_secs(5));
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "ok");
    assert_eq!(probe.timeouts.load(Ordering::SeqCst), 1);

    // UDP the same way.
    let udp = UdpServer::bind("127.0.0.1:0", Arc::clone(&probe)).unwrap();
    assert!(
        !udp.handle_request_timeout(Duration::from_millis(50))
            .unwrap()
    );
    assert_eq!(probe.timeouts.load(Ordering::SeqCst), 2);
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(b"x", udp.local_addr().unwrap()).unwrap();
    assert!(udp.handle_request_timeout(Duration::from_secs(30)).unwrap());
    assert_eq!(c.recv(&mut [0u8; 4]).unwrap(), 2);
}

#[cfg(unix)]
#[test]
fn a_shutdown_ends_a_waiting_handle_request_timeout_without_handle_timeout() {
    let probe = Arc::new(Probe::default());
    let server = TcpServer::bind("127.0.0.1:0", Arc::clone(&probe)).unwrap();
    let stop = server.shutdown_handle();
    let waiting = thread::spawn(move || {
        let start = Instant::now();
        let came = server
            .handle_request_timeout(Duration::from_secs(60))
            .unwrap();
        (came, start.elapsed(), server)
    });
    // Whether the shutdown comes before or during the wait, it ends it.
    stop.shutdown();
    let (came, waited, server) = waiting.join().unwrap();
    assert!(!came);
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(probe.timeouts.load(Ordering::SeqCst), 0);
    assert_eq!(server.stats().accepted, 0);
}

#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
#[test]
fn reuse_port_lets_two_servers_share_a_port_and_both_serve() {
    let first = Arc::new(Probe::default());
    let second = Arc::new(Probe::default());
    let a = TcpServer::builder(Arc::clone(&first))
        .reuse_port(true)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = a.local_addr().unwrap();
    // Without the option on both, the port is taken.
    let err = TcpServer::bind(addr, Arc::new(Probe::default())).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    let b = TcpServer::builder(Arc::clone(&second))
        .reuse_port(true)
        .bind(addr)
        .unwrap();
    assert_eq!(b.local_addr().unwrap(), addr);

    const CLIENTS: usize = 32;
    let total = Arc::new(AtomicUsize::new(0));
    // Each server serves with a tick, so neither waits on the other's
    // clients (and no shutdown wake-up lands on the wrong one).
    let serve = |server: TcpServer<Arc<Probe>>, total: Arc<AtomicUsize>| {
        thread::spawn(move || {
            let give_up = Instant::now() + Duration::from_secs(30);
            while total.load(Ordering::SeqCst) < CLIENTS && Instant::now() < give_up {
                if server
                    .handle_request_timeout(Duration::from_millis(20))
                    .unwrap()
                {
                    total.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let serving = [serve(a, Arc::clone(&total)), serve(b, Arc::clone(&total))];
    for _ in 0..CLIENTS {
        let mut c = TcpStream::connect(addr).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "ok");
    }
    for s in serving {
        s.join().unwrap();
    }
    let (one, two) = (
        first.served.load(Ordering::SeqCst),
        second.served.load(Ordering::SeqCst),
    );
    println!("reuse_port: {one} and {two} of {CLIENTS} connections");
    assert_eq!(one + two, CLIENTS);
    // Linux hashes each connection to one listener: all 32 on one side
    // has a chance of 2^-31.
    assert!(one > 0 && two > 0, "{one} / {two}");
}

// Shows (issue 23): two servers sharing a port with SO_REUSEPORT both
// serve under serve_forever, and each stops promptly when asked, the other
// still serving: a shutdown wakes its own server through its own pipe, never
// through the shared port, where the kernel could hand it to the sibling.
#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
#[test]
fn servers_sharing_a_port_each_stop_promptly() {
    let first = Arc::new(Probe::default());
    let second = Arc::new(Probe::default());
    let a = socketserver::ThreadingTcpServer::builder(Arc::clone(&first))
        .reuse_port(true)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = a.local_addr().unwrap();
    let b = socketserver::ThreadingTcpServer::builder(Arc::clone(&second))
        .reuse_port(true)
        .bind(addr)
        .unwrap();
    let (stop_a, stop_b) = (a.shutdown_handle(), b.shutdown_handle());
    let ask = |addr: SocketAddr| {
        let mut reply = String::new();
        TcpStream::connect(addr)
            .unwrap()
            .read_to_string(&mut reply)
            .unwrap();
        reply
    };
    let serving_a = thread::spawn(move || a.serve_forever());
    let serving_b = thread::spawn(move || b.serve_forever());
    let mut served = 0;
    // Until both have served (each connection goes to one, by a hash).
    for _ in 0..200 {
        assert_eq!(ask(addr), "ok");
        served += 1;
        let (one, two) = (
            first.served.load(Ordering::SeqCst),
            second.served.load(Ordering::SeqCst),
        );
        if one > 0 && two > 0 {
            break;
        }
    }
    assert!(
        first.served.load(Ordering::SeqCst) > 0,
        "the first never served"
    );
    assert!(
        second.served.load(Ordering::SeqCst) > 0,
        "the second never served"
    );
    // Stop one: it returns at once, and the other still serves.
    let start = Instant::now();
    stop_a.shutdown();
    serving_a.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let before = second.served.load(Ordering::SeqCst);
    assert_eq!(ask(addr), "ok");
    assert_eq!(second.served.load(Ordering::SeqCst), before + 1);
    let start = Instant::now();
    stop_b.shutdown();
    serving_b.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    println!("served {served} connections before both had some");
}

#[test]
fn dual_stack_serves_ipv4_and_ipv6_clients_on_one_socket() {
    let probe = Arc::new(Probe::default());
    let server = match TcpServer::builder(Arc::clone(&probe))
        .dual_stack(true)
        .bind("[::]:0")
    {
        Ok(server) => server,
        Err(e) => {
            println!("NOTE: no IPv6 here ({e}); dual-stack test skipped");
            return;
        }
    };
    let port = server.local_addr().unwrap().port();
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let mut c4 = TcpStream::connect(v4).unwrap();
    server.handle_request().unwrap();
    let mut reply = String::new();
    c4.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "ok");
    if let Ok(mut c6) = TcpStream::connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))
    {
        server.handle_request().unwrap();
        c6.read_to_string(&mut String::new()).unwrap();
    } else {
        println!("NOTE: no ::1 here; only the IPv4 client was tried");
    }
    let peers = probe.peers.lock().unwrap();
    let first = peers[0].ip().unwrap();
    assert!(
        first.is_ipv6(),
        "an IPv4 client arrives IPv4-mapped: {first}"
    );
    assert_eq!(first.to_canonical(), std::net::Ipv4Addr::LOCALHOST);

    // UDP the same way: an IPv4 sender to a dual-stack socket.
    let udp = UdpServer::builder(Arc::new(Probe::default()))
        .dual_stack(true)
        .bind("[::]:0")
        .unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.send_to(
        b"x",
        SocketAddr::from(([127, 0, 0, 1], udp.local_addr().unwrap().port())),
    )
    .unwrap();
    udp.handle_request().unwrap();
    assert_eq!(c.recv(&mut [0u8; 4]).unwrap(), 2);

    // IPv6 only: the IPv4 client is refused.
    let v6only = TcpServer::builder(Arc::new(Probe::default()))
        .dual_stack(false)
        .bind("[::]:0")
        .unwrap();
    let port = v6only.local_addr().unwrap().port();
    let err = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn dual_stack_on_an_ipv4_address_is_an_error() {
    let err = TcpServer::builder(Arc::new(Probe::default()))
        .dual_stack(true)
        .bind("127.0.0.1:0")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let err = UdpServer::builder(Arc::new(Probe::default()))
        .dual_stack(true)
        .bind("127.0.0.1:0")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// The backlog is what the kernel holds for a server that does not
/// accept: on Linux, `backlog + 1` handshakes complete and the next
/// client's SYN is dropped, so its `connect` does not complete.
#[cfg(target_os = "linux")]
#[test]
fn the_backlog_bounds_the_connections_waiting_for_accept() {
    let waiting = |server: &TcpServer<Arc<Probe>>| {
        let addr = server.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(c) => clients.push(c),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => panic!("{e}"),
            }
        }
        clients.len()
    };
    let small = TcpServer::builder(Arc::new(Probe::default()))
        .backlog(2)
        .bind("127.0.0.1:0")
        .unwrap();
    let held = waiting(&small);
    println!("backlog 2: {held} connections completed before one timed out");
    assert!((2..=4).contains(&held), "{held}");
    // The default (128) holds all eight.
    let default = TcpServer::bind("127.0.0.1:0", Arc::new(Probe::default())).unwrap();
    assert_eq!(waiting(&default), 8);
}

/// A server that closes first leaves its side in TIME_WAIT; binding the
/// port again needs `SO_REUSEADDR`, which a TCP server has on Unix unless
/// `reuse_address(false)`.
#[cfg(target_os = "linux")]
#[test]
fn reuse_address_decides_whether_a_port_in_time_wait_can_be_bound_again() {
    let server = TcpServer::bind("127.0.0.1:0", Arc::new(Probe::default())).unwrap();
    let addr = server.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    server.handle_request().unwrap(); // the handler replies and closes first
    client.read_to_string(&mut String::new()).unwrap();
    drop(client);
    drop(server);

    let err = TcpServer::builder(Arc::new(Probe::default()))
        .reuse_address(false)
        .bind(addr)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    let again = TcpServer::bind(addr, Arc::new(Probe::default())).unwrap();
    assert_eq!(again.local_addr().unwrap(), addr);
}

#[cfg(unix)]
#[test]
fn a_unix_stream_server_takes_a_backlog_too() {
    use socketserver::UnixStreamServer;
    let path =
        std::env::temp_dir().join(format!("socketserver-backlog-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = UnixStreamServer::builder(|conn: &mut Connection| conn.write_all(b"ok"))
        .backlog(4)
        .bind(&path)
        .unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    server.handle_request().unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "ok");
    drop(server);
    assert!(!path.exists(), "the socket file is removed on drop");
}

/// What a handler found on its connection: the read and write timeouts
/// and `nodelay`.
type Seen = (Option<Duration>, Option<Duration>, bool);

/// A handler that sends what it finds on its connection to `tx`.
fn reporter(tx: std::sync::mpsc::Sender<Seen>) -> impl Fn(&mut Connection) -> io::Result<()> {
    let tx = Mutex::new(tx);
    move |conn: &mut Connection| {
        let tcp = conn.stream().as_tcp().expect("a TCP connection");
        let seen = (tcp.read_timeout()?, tcp.write_timeout()?, tcp.nodelay()?);
        tx.lock().unwrap().send(seen).unwrap();
        Ok(())
    }
}

/// Every accepted connection has the server's timeouts and `nodelay`:
/// with a socket the server binds (on Linux the listener passes them on),
/// and with one handed over that had other options and a connection
/// queued already (which it passed its own on to): each connection sets
/// them, whatever they were, off included.
#[test]
fn accepted_connections_have_the_servers_timeouts_and_nodelay() {
    let (tx, seen) = std::sync::mpsc::channel();
    // The defaults: 300 s and 60 s, Nagle on.
    let server = TcpServer::bind("127.0.0.1:0", reporter(tx.clone())).unwrap();
    let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    server.handle_request().unwrap();
    let defaults = (
        Some(socketserver::server::DEFAULT_READ_TIMEOUT),
        Some(socketserver::server::DEFAULT_WRITE_TIMEOUT),
        false,
    );
    assert_eq!(seen.recv().unwrap(), defaults);
    // A timeout under a microsecond is one, as std makes it, not none
    // (the kernel may round it up further: Linux keeps it in ticks).
    let server = TcpServer::builder(reporter(tx.clone()))
        .read_timeout(Some(Duration::from_nanos(500)))
        .bind("127.0.0.1:0")
        .unwrap();
    let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    server.handle_request().unwrap();
    let read = seen.recv().unwrap().0;
    assert!(read.is_some_and(|t| t < Duration::from_secs(1)), "{read:?}");

    // Handed over with options of its own and a client already queued.
    let handed_over = |read: Option<Duration>, write: Option<Duration>, nodelay: bool| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let raw = socket2::SockRef::from(&listener);
        raw.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        raw.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        raw.set_tcp_nodelay(!nodelay).unwrap();
        let addr = listener.local_addr().unwrap();
        let queued = TcpStream::connect(addr).unwrap();
        let server = TcpServer::builder(reporter(tx.clone()))
            .read_timeout(read)
            .write_timeout(write)
            .nodelay(nodelay)
            .from_listener(listener)
            .unwrap();
        let later = TcpStream::connect(addr).unwrap();
        server.handle_request().unwrap();
        server.handle_request().unwrap();
        drop((queued, later));
        [seen.recv().unwrap(), seen.recv().unwrap()]
    };
    let (seven, nine) = (Duration::from_secs(7), Duration::from_secs(9));
    let wanted = (Some(seven), Some(nine), true);
    assert_eq!(handed_over(Some(seven), Some(nine), true), [wanted; 2]);
    assert_eq!(handed_over(None, None, false), [(None, None, false); 2]);
}

/// The write timeout a connection gets holds against a client that never
/// reads: once the client's window and the server's send buffer are
/// full, the handler's write fails with the timeout's error, on time.
#[cfg(unix)]
#[test]
fn the_write_timeout_holds_against_a_client_that_never_reads() {
    let (tx, failed) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let server = TcpServer::builder(move |conn: &mut Connection| {
        let chunk = [7u8; 64 * 1024];
        let start = Instant::now();
        let mut written = 0usize;
        let error = loop {
            // Bounded: 64 MiB is far past any socket buffer here.
            assert!(written < 64 << 20, "the writes never blocked");
            match conn.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
        };
        tx.lock()
            .unwrap()
            .send((error.kind(), start.elapsed(), written))
            .unwrap();
        Ok(())
    })
    .write_timeout(Some(Duration::from_millis(300)))
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let client = common::connect_from_with(addr.ip(), addr, Some(4096)).unwrap();
    // On a thread of its own: a write that never times out fails the
    // test below, not hangs it.
    thread::spawn(move || server.handle_request());
    let (kind, took, written) = failed
        .recv_timeout(Duration::from_secs(20))
        .expect("the write never failed");
    println!("the write failed ({kind:?}) after {took:?} and {written} bytes");
    assert!(
        matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        "{kind:?}"
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(client);
}
