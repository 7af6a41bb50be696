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

/// A process's threads and open descriptors, from /proc (Linux; zeros
/// elsewhere).
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count =
        |what: &str| std::fs::read_dir(format!("/proc/{pid}/{what}")).map_or(0, |d| d.count());
    (count("task"), count("fd"))
}

/// Starts example `name` on 127.0.0.1 port 0 (its notes about refused
/// peers, expected here, not shown), opens `IDLE` connections from
/// 127.0.0.2 that send nothing, runs `legitimate` from 127.0.0.1, and
/// checks it was served within 2 s while all but `cap` of the idle
/// connections were closed at once. Then the crowd leaves, and the
/// server's threads and descriptors come back to where they were.
fn served_beside_an_idle_crowd(name: &str, cap: usize, legitimate: impl FnOnce(SocketAddr)) {
    let mut command = example(name);
    command
        .arg("127.0.0.1:0")
        .stderr(std::process::Stdio::null());
    let server = start_server(command);
    let pid = server.child.id();
    let before = threads_and_fds(pid);
    let mut crowd = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let socket =
            connect_from(ATTACKER, server.addr).expect("the kernel completes the handshake");
        crowd.push(socket);
    }
    let start = Instant::now();
    legitimate(server.addr);
    let took = start.elapsed();
    let during = threads_and_fds(pid);
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
    drop(crowd);
    let mut after = threads_and_fds(pid);
    let settled = Instant::now();
    while after != before && settled.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
        after = threads_and_fds(pid);
    }
    println!(
        "{name}: served in {took:?} beside {IDLE} idle connections from 127.0.0.2, \
         {closed} of them closed at once; threads, descriptors {before:?} -> {during:?} -> {after:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(closed, IDLE - cap, "all but the per-address cap");
    assert_eq!(after, before, "the crowd leaves nothing behind");
}

#[test]
fn tcp_server_greets_127_0_0_1_beside_1030_idle_connections_from_one_address() {
    served_beside_an_idle_crowd("tcp_server", 16, |addr| {
        let transcript = greet::tcp_client(addr, &["Ada"]).expect("served");
        assert_eq!(transcript, ["Welcome!", "你好,Ada"]);
    });
}

#[test]
fn socketserver_serves_127_0_0_1_beside_1030_idle_connections_from_one_address() {
    served_beside_an_idle_crowd("socketserver", 16, |addr| {
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
}

#[test]
fn chat_server_lets_127_0_0_1_join_beside_1030_idle_connections_from_one_address() {
    served_beside_an_idle_crowd("chat_server", socketserver::chat::MAX_PER_PEER, |addr| {
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
}
