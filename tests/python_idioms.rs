//! Python's `socketserver` idioms that port line for line: each test is
//! code a Python programmer writes first, and what it must do here.

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;

use socketserver::{
    Connection, Datagram, StreamRequest, StreamRequestHandler, Streamed, TcpServer, UdpServer,
};

/// `self.wfile.write(b"name? "); name = self.rfile.readline()`: the prompt
/// is on the wire before the handler waits for the answer, by each of the
/// three ways of reading (the bounded `read_line`, `rfile` as `BufRead`,
/// `rfile` as `Read`), and the greeting after it arrives whole.
#[test]
fn a_prompt_written_to_wfile_leaves_before_the_handler_reads() {
    struct Ask(u8);
    impl StreamRequestHandler for Ask {
        fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
            request.wfile.write_all(b"name")?; // a prompt written in pieces
            request.wfile.write_all(b"? ")?;
            let name = match self.0 {
                0 => request.read_line(64)?.unwrap_or_default(),
                1 => {
                    let mut line = Vec::new();
                    request.rfile.read_until(b'\n', &mut line)?;
                    line
                }
                _ => {
                    let mut byte = [0u8; 4];
                    request.rfile.read_exact(&mut byte)?;
                    byte.to_vec()
                }
            };
            write!(
                request.wfile,
                "hello {}",
                String::from_utf8_lossy(&name).trim()
            )
        }
    }
    for way in 0..3 {
        let server = TcpServer::bind("127.0.0.1:0", Streamed(Ask(way))).unwrap();
        let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| server.handle_request().unwrap());
            let mut prompt = [0u8; 6];
            client.read_exact(&mut prompt).unwrap();
            assert_eq!(&prompt, b"name? ", "way {way}");
            client.write_all(b"ada\n").unwrap();
            let mut reply = String::new();
            client.read_to_string(&mut reply).unwrap();
            assert_eq!(reply, "hello ada", "way {way}");
        });
        assert_eq!(server.stats().completed, 1);
    }
}

/// `TCPServer(("", port), H)` and `UDPServer(("", port), H)`: the empty
/// host is every IPv4 interface, as in Python. The client stays on
/// loopback.
#[test]
fn the_empty_host_binds_every_interface() {
    let tcp = TcpServer::bind(("", 0), |conn: &mut Connection| conn.write_all(b"hi")).unwrap();
    let addr = tcp.local_addr().unwrap();
    assert!(addr.ip().is_unspecified(), "{addr}");
    let mut client = TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    tcp.handle_request().unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "hi");

    let host = String::new(); // the owned form binds too
    let udp = UdpServer::bind((host, 0), |d: &Datagram| d.reply(d.data())).unwrap();
    let addr = udp.local_addr().unwrap();
    assert!(addr.ip().is_unspecified(), "{addr}");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"ping", ("127.0.0.1", addr.port())).unwrap();
    udp.handle_request().unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(client.recv(&mut buf).unwrap(), 4);
}

/// Set in the child processes of the next test: which half to play.
const CHILD: &str = "SOCKETSERVER_IDIOM_CHILD";

/// A handler's error is never silent: with no logger installed, the
/// default `handle_error` writes Python's one line to stderr; once the
/// program installs a logger, the line goes to it (once) and not to
/// stderr. Each half runs in a child process of this test binary, since a
/// logger, once installed, is the process's for good.
#[test]
fn a_handler_error_reaches_stderr_without_a_logger_and_the_logger_with_one() {
    if let Ok(mode) = std::env::var(CHILD) {
        return fail_one_request(mode == "logger");
    }
    for mode in ["stderr", "logger"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_handler_error_reaches_stderr_without_a_logger_and_the_logger_with_one",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, mode)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{mode}: {stdout}\n{stderr}");
        let line = "error processing request from 127.0.0.1:";
        if mode == "stderr" {
            assert_eq!(stderr.matches(line).count(), 1, "{stderr}");
            assert!(stderr.contains("I/O error: boom"), "{stderr}");
        } else {
            assert_eq!(
                stdout.matches(&format!("LOGGED {line}")).count(),
                1,
                "{stdout}"
            );
            assert!(!stderr.contains(line), "{stderr}");
        }
    }
}

/// The child's half: one request whose handler fails.
fn fail_one_request(with_logger: bool) {
    struct Print;
    impl log::Log for Print {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            println!("LOGGED {}", record.args());
        }
        fn flush(&self) {}
    }
    if with_logger {
        log::set_logger(&Print).unwrap();
        log::set_max_level(log::LevelFilter::Info);
    }
    let server = TcpServer::bind("127.0.0.1:0", |_: &mut Connection| {
        Err(io::Error::other("boom"))
    })
    .unwrap();
    let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    server.handle_request().unwrap();
    assert_eq!(server.stats().failed, 1);
}

/// `server_close()` with `block_on_close`: dropping a threading server
/// served with `handle_request` returns only once its handler threads are
/// done, within the grace period: one still working finishes its work, one
/// waiting for its client's next request sees end of stream at once.
#[test]
fn dropping_a_threading_server_joins_its_handler_threads() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let finished = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&finished);
    let server = socketserver::ThreadingTcpServer::builder(move |conn: &mut Connection| {
        let mut first = [0u8; 4];
        conn.read_exact(&mut first)?;
        if &first == b"work" {
            std::thread::sleep(Duration::from_millis(200)); // a request under way
        } else {
            let _ = conn.read(&mut [0u8; 1])?; // waits for a next request
        }
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .graceful_shutdown(Duration::from_secs(10))
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.local_addr().unwrap();
    let mut worker = TcpStream::connect(addr).unwrap();
    worker.write_all(b"work").unwrap();
    server.handle_request().unwrap();
    let mut idler = TcpStream::connect(addr).unwrap();
    idler.write_all(b"idle").unwrap();
    server.handle_request().unwrap();
    let start = Instant::now();
    drop(server);
    assert_eq!(finished.load(Ordering::SeqCst), 2, "both handlers returned");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// Every server can be shut down whatever its address: a Unix stream
/// server on a Linux abstract name and a Unix datagram server on an
/// unnamed socket (neither can be reached by a wake-up connection or
/// datagram) stop when asked.
#[cfg(target_os = "linux")]
#[test]
fn servers_without_a_reachable_address_still_shut_down() {
    use socketserver::handler::Unix;
    use socketserver::{ThreadingUnixStreamServer, UnixDatagramServer};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};

    let name = format!("socketserver-idiom-{}", std::process::id());
    let abstract_addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&abstract_addr).unwrap();
    let stream = ThreadingUnixStreamServer::builder(|conn: &mut Connection| conn.write_all(b"hi"))
        .from_listener(listener)
        .unwrap();
    let unnamed = UnixDatagram::unbound().unwrap();
    let datagram = UnixDatagramServer::builder(|_: &Datagram<Unix>| Ok(()))
        .from_socket(unnamed)
        .unwrap();
    assert!(datagram.local_addr().unwrap().is_unnamed());
    std::thread::scope(|s| {
        let serving = s.spawn(|| stream.serve_forever());
        let receiving = s.spawn(|| datagram.serve_forever());
        // Served once, so the loop is known to be running.
        let mut client = std::os::unix::net::UnixStream::connect_addr(&abstract_addr).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "hi");
        stream.shutdown_handle().shutdown();
        datagram.shutdown_handle().shutdown();
        serving.join().unwrap();
        receiving.join().unwrap();
    });
    assert_eq!(stream.stats().completed, 1);
}
