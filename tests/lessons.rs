//! The seed's lessons, run as a learner runs them: our examples against the
//! seed's Python programs and the other way round, the sticky-packet lesson,
//! and the tour.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use common::{example, peer, python3, run_client, start_server};
use socketserver::ThreadingTcpServer;
use socketserver::greet::Greeter;

/// One of the seed's protocols, with its programs on both sides.
struct Protocol {
    seed_server: &'static str,
    seed_server_args: &'static [&'static str],
    seed_client: &'static str,
    our_server: &'static str,
    our_client: &'static str,
    /// What the seed's client prints against the seed's own server.
    transcript: &'static str,
}

const TCP: Protocol = Protocol {
    seed_server: "greet_tcp_server.py",
    seed_server_args: &["0", "0"], // any port, no delay
    seed_client: "greet_tcp_client.py",
    our_server: "tcp_server",
    our_client: "tcp_client",
    transcript: "Welcome!\n你好,Michael\n你好,Tracy\n你好,Sarah\n",
};

const UDP: Protocol = Protocol {
    seed_server: "greet_udp_server.py",
    seed_server_args: &["0"],
    seed_client: "greet_udp_client.py",
    our_server: "udp_server",
    our_client: "udp_client",
    transcript: "你好,Michael\n你好,Tracy\n你好,Sarah\n",
};

fn python_client(script: &str, addr: std::net::SocketAddr) -> Option<String> {
    let mut python = python3()?;
    // HOST:PORT, the examples' form; tests/command.rs uses the seed-era
    // HOST PORT, so both stay working.
    python.arg(peer(script)).arg(addr.to_string());
    Some(run_client(python))
}

fn our_client(name: &str, addr: std::net::SocketAddr) -> String {
    let mut client = example(name);
    client.arg(addr.to_string());
    run_client(client)
}

/// The seed's client prints the same against the seed's server and ours;
/// our client prints the same against both too.
fn interop_both_ways(protocol: &Protocol) {
    let Some(mut python) = python3() else {
        return;
    };
    python
        .arg(peer(protocol.seed_server))
        .args(protocol.seed_server_args);
    let seed_server = start_server(python);
    let mut ours = example(protocol.our_server);
    ours.arg("127.0.0.1:0");
    let our_server = start_server(ours);

    let baseline = python_client(protocol.seed_client, seed_server.addr).unwrap();
    assert_eq!(baseline, protocol.transcript, "the seed against itself");
    assert_eq!(
        python_client(protocol.seed_client, our_server.addr).unwrap(),
        baseline,
        "the seed's client against our server"
    );
    assert_eq!(
        our_client(protocol.our_client, seed_server.addr),
        baseline,
        "our client against the seed's server"
    );
    assert_eq!(
        our_client(protocol.our_client, our_server.addr),
        baseline,
        "our client against our server"
    );
}

#[test]
fn tcp_greeting_interoperates_with_the_seeds_programs_both_ways() {
    interop_both_ways(&TCP);
}

#[test]
fn udp_greeting_interoperates_with_the_seeds_programs_both_ways() {
    interop_both_ways(&UDP);
}

#[test]
fn a_character_split_across_reads_neither_crashes_nor_garbles() {
    // 分包 inside a character: "你好" is six bytes; send two, then four.
    // The seed's server would raise on decode; ours greets bytes, so the
    // two replies together carry the character intact.
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());

    let mut client = TcpStream::connect(addr).unwrap();
    let mut banner = [0u8; 8];
    client.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"Welcome!");
    let name = "你好".as_bytes();
    let prefix = "你好,".as_bytes();
    let mut received = Vec::new();
    for part in [&name[..2], &name[2..]] {
        client.write_all(part).unwrap();
        let mut reply = vec![0u8; prefix.len() + part.len()];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[..prefix.len()], prefix);
        received.extend_from_slice(&reply[prefix.len()..]);
    }
    assert_eq!(received, name);
    // The connection is still in step: exit closes it cleanly.
    client.write_all(b"exit").unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    stop.shutdown();
    serving.join().unwrap();
}

#[test]
fn the_sticky_packet_lesson_shows_all_three_outcomes() {
    let lesson = socketserver::sticky::Lesson::run(4 << 20).unwrap();
    // Two writes, one read.
    assert_eq!(lesson.stuck, b"helloworld");
    // One write, many reads: never more than a read's buffer at a time.
    assert!(lesson.reads.len() >= 4, "{:?}", lesson.reads);
    assert_eq!(lesson.reads.iter().sum::<usize>(), 4 << 20);
    // Frames: exactly the messages sent.
    assert_eq!(lesson.framed.len(), 3);
    assert_eq!(lesson.framed[0], b"hello");
    assert_eq!(lesson.framed[1], b"world");
    assert_eq!(lesson.framed[2], vec![b'x'; 4 << 20]);
}

#[test]
fn every_example_explains_itself_and_names_its_seed_section() {
    for (name, section) in [
        ("tcp_server", "tcp编程"),
        ("tcp_client", "tcp编程"),
        ("udp_server", "udp编程"),
        ("udp_client", "udp编程"),
        ("socketserver", "socketserver编程"),
        ("socketserver_client", "socketserver编程"),
        ("sticky_packets", "粘包与分包"),
        ("cmd_server", "模拟远程执行命令服务端"),
        ("cmd_client", "模拟远程执行命令客户端"),
        ("file_server", "a lesson beyond the seed"),
        ("file_client", "a lesson beyond the seed"),
    ] {
        let mut help = example(name);
        help.arg("--help");
        let text = run_client(help);
        assert!(text.contains(section), "{name} --help: {text}");
    }
}

#[test]
fn the_tour_runs_every_lesson_and_all_go_as_they_should() {
    let mut tour = example("tour");
    tour.args(["--lang", "en"]);
    let out = run_client(tour);
    assert!(out.contains("8 of 8 lessons went as they should"), "{out}");
    assert!(out.contains("resumed at byte 2097152"), "{out}");
    assert!(out.contains("你好,Sarah"));
    assert!(out.contains("\"helloworld\""));
}

#[test]
fn the_udp_client_says_when_a_reply_is_lost() {
    // Nobody listens on this port: the datagrams go nowhere.
    let nobody = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = nobody.local_addr().unwrap();
    drop(nobody);
    let out = example("udp_client")
        .args([&addr.to_string(), "Michael", "--timeout-ms", "200"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no reply to Michael"), "{stderr}");
}
