//! The chaos proxy on real loopback sockets: framed traffic survives any
//! re-cutting byte for byte, the seed's one-recv client does not, and a cut
//! conversation is cut.

mod common;

use std::thread;
use std::time::Duration;

use socketserver::ThreadingTcpServer;
use socketserver::chaos::{self, Chaos, Proxy};
use socketserver::greet::{self, Greeter};

/// Framed command output through pieces of 3 bytes equals the output
/// straight from the server, stdout, stderr and exit status alike.
#[cfg(unix)]
#[test]
fn framed_command_output_survives_segment_3() {
    use socketserver::command::{self, Client, CommandConfig, Protocol};
    use socketserver::trace::Side;

    let server = command::bind("127.0.0.1:0", CommandConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let proxy = Proxy::start("127.0.0.1:0", addr, Chaos::new().segment(3).trace(true)).unwrap();

    for line in ["seq 1 3000", "ls /no-such-dir", "echo 你好"] {
        let direct = Client::connect(addr, Protocol::Framed)
            .unwrap()
            .run(line)
            .unwrap();
        let through = Client::connect(proxy.local_addr(), Protocol::Framed)
            .unwrap()
            .run(line)
            .unwrap();
        assert_eq!(through.stdout, direct.stdout, "{line}");
        assert_eq!(through.stderr, direct.stderr, "{line}");
        assert_eq!(through.exit, direct.exit, "{line}");
    }
    let traces = proxy.traces();
    let report = proxy.shutdown();
    stop.shutdown();
    serving.join().unwrap();
    assert_eq!(report.connections, 3);
    // `seq 1 3000` is 13,893 bytes of output: thousands of 3-byte pieces.
    assert!(report.pieces[1] * 3 >= report.bytes[1]);
    assert!(report.bytes[1] > 13_893);
    // The trace sees the frame in both directions and the re-cutting.
    assert!(traces[0].framed(Side::Client) && traces[0].framed(Side::Server));
    assert!(traces[0].arrows().iter().any(|a| a.split));
}

/// A file put and got back through pieces of 3 bytes is the same file.
#[test]
fn file_transfer_survives_segment_3() {
    use socketserver::files::{self, FileClient, FileConfig};

    let dir = std::env::temp_dir().join(format!("socketserver-chaos-{}", std::process::id()));
    let (root, local) = (dir.join("root"), dir.join("local"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&local).unwrap();
    let server = files::bind("127.0.0.1:0", FileConfig::new(&root)).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let proxy = Proxy::start("127.0.0.1:0", addr, Chaos::new().segment(3)).unwrap();

    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(local.join("a.bin"), &bytes).unwrap();
    let mut client = FileClient::connect(proxy.local_addr()).unwrap();
    let up = client
        .put(&local.join("a.bin"), "a.bin", false, |_, _| {})
        .unwrap();
    let down = client
        .get("a.bin", &local.join("b.bin"), false, |_, _| {})
        .unwrap();
    drop(client);
    let report = proxy.shutdown();
    stop.shutdown();
    serving.join().unwrap();
    let (stored, copy) = (
        std::fs::read(root.join("a.bin")).unwrap(),
        std::fs::read(local.join("b.bin")).unwrap(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(stored, bytes);
    assert_eq!(copy, bytes);
    assert_eq!(up.digest, down.digest);
    assert!(report.pieces[0] >= 100_000 / 3 && report.pieces[1] >= 100_000 / 3);
}

/// The seed's greeting client, one recv per message, through pieces of 2
/// bytes: what it takes for messages are pieces of them.
#[test]
fn one_recv_client_sees_messages_cut_by_segment_2() {
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let chaos = Chaos::new().segment(2).delay(Duration::from_millis(20));
    let proxy = Proxy::start("127.0.0.1:0", addr, chaos).unwrap();

    let names = greet::SEED_NAMES;
    let direct = chaos::one_recv_client(addr, &names).unwrap();
    assert_eq!(
        direct,
        ["Welcome!", "你好,Michael", "你好,Tracy", "你好,Sarah"]
    );
    let cut = chaos::one_recv_client(proxy.local_addr(), &names).unwrap();
    assert_ne!(cut, direct);
    // Every recv got at least one byte and at most what the server sent;
    // a 2-byte piece can even split a Chinese character.
    assert!(cut.iter().all(|m| !m.is_empty()), "{cut:?}");
    // The server takes one recv for one name too, so even a client that
    // reads whole replies gets greetings for pieces of names: without
    // frames, both ends are wrong.
    let patient = greet::tcp_client(proxy.local_addr(), &names).unwrap();
    assert_eq!(patient[0], "Welcome!");
    assert_ne!(patient, direct);
    proxy.shutdown();
    stop.shutdown();
    serving.join().unwrap();
}

/// --cut-after: the conversation ends after that many bytes, both sides
/// closed, and the report says so.
#[test]
fn cut_after_closes_the_conversation() {
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = lines.clone();
    let chaos = Chaos::new()
        .cut_after(12)
        .log(move |line| log.lock().unwrap().push(line.to_string()));
    let proxy = Proxy::start("127.0.0.1:0", addr, chaos).unwrap();
    // Welcome! is 8 bytes; Michael 7 more reaches 12: the rest never comes.
    let result = greet::tcp_client(proxy.local_addr(), &greet::SEED_NAMES);
    assert!(result.is_err(), "{result:?}");
    let report = proxy.shutdown();
    stop.shutdown();
    serving.join().unwrap();
    assert_eq!(report.cut, 1);
    assert_eq!(report.bytes[0] + report.bytes[1], 12);
    let lines = lines.lock().unwrap();
    assert!(
        lines.iter().any(|l| l.contains("cut after 12 B")),
        "{lines:?}"
    );
}

/// Shutting the proxy down ends a conversation still open, and returns.
#[test]
fn shutdown_ends_open_conversations() {
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let proxy = Proxy::start("127.0.0.1:0", addr, Chaos::new()).unwrap();
    let mut idle = std::net::TcpStream::connect(proxy.local_addr()).unwrap();
    let mut banner = [0u8; 8];
    std::io::Read::read_exact(&mut idle, &mut banner).unwrap();
    let report = proxy.shutdown();
    assert_eq!(report.connections, 1);
    assert_eq!(std::io::Read::read(&mut idle, &mut banner).unwrap(), 0);
    stop.shutdown();
    serving.join().unwrap();
}

/// Past MAX_CONNECTIONS open conversations, the next is refused and
/// counted; shutdown then ends all of them.
#[test]
fn conversations_are_capped() {
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let proxy = Proxy::start("127.0.0.1:0", addr, Chaos::new()).unwrap();
    let mut open = Vec::new();
    for _ in 0..chaos::MAX_CONNECTIONS {
        let mut client = std::net::TcpStream::connect(proxy.local_addr()).unwrap();
        // The banner has come through: this conversation is relayed.
        let mut banner = [0u8; 8];
        std::io::Read::read_exact(&mut client, &mut banner).unwrap();
        open.push(client);
    }
    let mut extra = std::net::TcpStream::connect(proxy.local_addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Refused: closed without a byte.
    let mut buf = [0u8; 8];
    assert_eq!(std::io::Read::read(&mut extra, &mut buf).unwrap_or(0), 0);
    let report = proxy.shutdown();
    assert_eq!(report.refused, 1);
    assert_eq!(report.connections, chaos::MAX_CONNECTIONS as u64);
    stop.shutdown();
    serving.join().unwrap();
}

/// The example: relays, says what it did to each conversation, writes its
/// diagrams, and exits after --conversations.
#[test]
fn the_chaos_proxy_example_says_what_it_did() {
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let page = std::env::temp_dir().join(format!("socketserver-chaos-{}.html", std::process::id()));
    let mut proxy = common::example("chaos_proxy")
        .args(["127.0.0.1:0", &addr.to_string()])
        // 20 ms between pieces: with none, a client slow to call `recv`
        // (a loaded machine) finds every piece of a message there, whole.
        .args(["--segment", "2", "--delay-ms", "20"])
        .args(["--conversations", "1", "--html"])
        .arg(&page)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its first line says where it listens: "chaos proxy on ADDR → ...".
    let mut stdout = std::io::BufReader::new(proxy.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let listen: std::net::SocketAddr = first
        .strip_prefix("chaos proxy on ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let heard = chaos::one_recv_client(listen, &["Tracy"]).unwrap();
    let mut out = first;
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    assert!(proxy.wait().unwrap().success());
    stop.shutdown();
    serving.join().unwrap();
    let html = std::fs::read_to_string(&page).unwrap_or_default();
    let _ = std::fs::remove_file(&page);
    assert_ne!(heard, ["Welcome!", "你好,Tracy"]);
    assert!(out.contains("re-cut into pieces of at most 2 B"), "{out}");
    assert!(out.contains("connection 1: client→server"), "{out}");
    assert!(out.contains("wrote 1 diagrams to"), "{out}");
    assert!(html.contains("<svg"), "{html}");
}
