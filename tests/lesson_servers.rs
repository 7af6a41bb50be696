//! The lesson servers are safe by default too (issue 19): `tcp_server`,
//! `socketserver` and `chat_server` each cap the connections from one
//! address and give a new connection a deadline for its first message, so
//! 1,030 idle connections from 127.0.0.2 (more than the 1,024 a threading
//! server serves at once) leave room for a client from 127.0.0.1. Each
//! example runs as its own process; the attacker's sockets are this test's.
#![cfg(unix)]

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{connect_from, example, start_server};
use socketserver::greet;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const IDLE: usize = 1030;

/// Opens `IDLE` connections from 127.0.0.2 that send nothing, then runs
/// `legitimate` from 127.0.0.1 and returns how long it took, and how many
/// of the idle connections the server had closed by then (the rest it
/// holds until their deadline).
fn beside_idle_crowd(addr: SocketAddr, legitimate: impl FnOnce(SocketAddr)) -> (Duration, usize) {
    let mut crowd = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let socket = connect_from(ATTACKER, addr).expect("the kernel completes the handshake");
        crowd.push(socket);
    }
    let start = Instant::now();
    legitimate(addr);
    let took = start.elapsed();
    // A closed connection reads as the end of the stream (or a reset) at
    // once, after its banner if it got one; a held one would block.
    let mut closed = 0;
    for socket in &crowd {
        socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        closed += loop {
            match (&*socket).read(&mut buf) {
                Ok(0) => break 1,
                Ok(_) => continue, // a banner: read past it
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(_) => break 1, // reset
            }
        };
    }
    (took, closed)
}

#[test]
fn tcp_server_greets_127_0_0_1_beside_1030_idle_connections_from_one_address() {
    let server = start_server({
        let mut command = example("tcp_server");
        // Its notes about refused peers are expected here.
        command
            .arg("127.0.0.1:0")
            .stderr(std::process::Stdio::null());
        command
    });
    let (took, closed) = beside_idle_crowd(server.addr, |addr| {
        let transcript = greet::tcp_client(addr, &["Ada"]).expect("served");
        assert_eq!(transcript, ["Welcome!", "你好,Ada"]);
    });
    println!("tcp_server: greeted in {took:?}; {closed} of {IDLE} idle connections closed at once");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(closed, IDLE - 16, "all but the per-address cap");
}

#[test]
fn socketserver_serves_127_0_0_1_beside_1030_idle_connections_from_one_address() {
    let server = start_server({
        let mut command = example("socketserver");
        // Its notes about refused peers are expected here.
        command
            .arg("127.0.0.1:0")
            .stderr(std::process::Stdio::null());
        command
    });
    let (took, closed) = beside_idle_crowd(server.addr, |addr| {
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.write_all(b"hello").unwrap();
        // The handler prints the message and hangs up: the end of stream.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).expect("served and closed");
        assert!(rest.is_empty());
    });
    println!(
        "socketserver: served in {took:?}; {closed} of {IDLE} idle connections closed at once"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(closed, IDLE - 16, "all but the per-address cap");
}

#[test]
fn chat_server_lets_127_0_0_1_join_beside_1030_idle_connections_from_one_address() {
    let server = start_server({
        let mut command = example("chat_server");
        // Its notes about refused peers are expected here.
        command
            .arg("127.0.0.1:0")
            .stderr(std::process::Stdio::null());
        command
    });
    let (took, closed) = beside_idle_crowd(server.addr, |addr| {
        let socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut lines = BufReader::new(socket.try_clone().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "* welcome! your name?");
        (&socket).write_all(b"carol\n").unwrap();
        let hello = lines.next().unwrap().unwrap();
        assert!(hello.starts_with("* hello carol;"), "{hello}");
    });
    println!("chat_server: joined in {took:?}; {closed} of {IDLE} idle connections closed at once");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        closed,
        IDLE - socketserver::chat::MAX_PER_PEER,
        "all but the per-address cap"
    );
}
