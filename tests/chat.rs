//! The chat lesson against real sockets: three clients broadcasting, a
//! client that never reads dropped without stalling the others, and a
//! shutdown with clients connected.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{Stats, ThreadingTcpServer, chat};

struct Client {
    socket: TcpStream,
    lines: io::Lines<BufReader<TcpStream>>,
}

impl Client {
    /// Connects and gives `name`; the welcome lines are read.
    fn join(addr: SocketAddr, name: &str) -> Client {
        let socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut client = Client {
            lines: BufReader::new(socket.try_clone().unwrap()).lines(),
            socket,
        };
        assert_eq!(client.next(), "* welcome! your name?");
        client.send(name);
        assert!(
            client
                .next()
                .starts_with(&format!("* hello {name}; here: "))
        );
        client
    }

    fn send(&mut self, line: &str) {
        writeln!(self.socket, "{line}").unwrap();
    }

    fn next(&mut self) -> String {
        self.lines.next().expect("a line").expect("no error")
    }
}

/// Serves a chat room on 127.0.0.1 port 0 while `body` runs with its
/// address and server, then shuts it down with what `body` returned (its
/// clients) still connected, waits for `serve_forever`, and returns the
/// counters.
fn in_room<T>(body: impl FnOnce(SocketAddr, &ThreadingTcpServer<chat::Room>) -> T) -> Stats {
    let server = chat::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        let connected = body(addr, &server);
        stop.shutdown();
        serving.join().unwrap();
        drop(connected);
    });
    server.stats()
}

/// Every client hears every other's lines, and joins and leaves.
#[test]
fn three_clients_hear_each_other() {
    let stats = in_room(|addr, _| {
        let mut alice = Client::join(addr, "alice");
        let mut bob = Client::join(addr, "bob");
        assert_eq!(alice.next(), "* bob joined");
        let mut carol = Client::join(addr, "carol");
        assert_eq!(alice.next(), "* carol joined");
        assert_eq!(bob.next(), "* carol joined");
        // A taken name is refused, and the newcomer asked again.
        let mut late = TcpStream::connect(addr).unwrap();
        let mut late_lines = BufReader::new(late.try_clone().unwrap()).lines();
        late_lines.next().unwrap().unwrap();
        late.write_all(b"bob\n").unwrap();
        assert_eq!(
            late_lines.next().unwrap().unwrap(),
            "* bob is taken; your name?"
        );
        drop((late, late_lines));

        alice.send("hi from alice");
        bob.send("hi from bob");
        carol.send("hi from carol");
        let heard = |c: &mut Client| {
            let mut two = [c.next(), c.next()];
            two.sort();
            two
        };
        assert_eq!(
            heard(&mut alice),
            ["bob: hi from bob", "carol: hi from carol"]
        );
        assert_eq!(
            heard(&mut bob),
            ["alice: hi from alice", "carol: hi from carol"]
        );
        assert_eq!(
            heard(&mut carol),
            ["alice: hi from alice", "bob: hi from bob"]
        );
        carol.send("/quit");
        assert_eq!(alice.next(), "* carol left");
        assert_eq!(bob.next(), "* carol left");
        assert!(carol.lines.next().is_none(), "carol's connection ends");
        (alice, bob, carol)
    });
    assert_eq!(stats.active, 0);
}

/// A client that never reads (a small receive buffer, full) is dropped
/// once its queue is full; the others go on hearing every line at once.
#[cfg(unix)]
#[test]
fn a_client_that_never_reads_is_dropped_and_stalls_no_one() {
    let stats = in_room(|addr, server| {
        let stalled = Client::join(addr, "stalled");
        rustix::net::sockopt::set_socket_recv_buffer_size(&stalled.socket, 4096).unwrap();
        let mut alice = Client::join(addr, "alice");
        let mut bob = Client::join(addr, "bob");
        assert_eq!(alice.next(), "* bob joined");
        // Alice talks, bob listens; each line bob hears before alice says
        // the next, so bob is never behind. Stalled reads nothing more.
        let line = "x".repeat(1000);
        let start = Instant::now();
        let mut slowest = Duration::ZERO;
        let mut sent = 0;
        let dropped = loop {
            assert!(sent < 50_000, "stalled never dropped");
            let t = Instant::now();
            alice.send(&line);
            sent += 1;
            let heard = bob.next();
            slowest = slowest.max(t.elapsed());
            if heard.starts_with("* stalled was dropped") {
                break heard;
            }
            assert_eq!(heard, format!("alice: {line}"));
            // The drop notice may come just before alice's line.
        };
        println!(
            "stalled dropped after {sent} lines of 1000 bytes, {:?}; bob's slowest line {slowest:?}",
            start.elapsed()
        );
        assert_eq!(dropped, "* stalled was dropped: too far behind");
        assert_eq!(alice.next(), "* stalled was dropped: too far behind");
        assert!(
            slowest < Duration::from_secs(2),
            "bob was held up: {slowest:?}"
        );
        // The room goes on.
        bob.send("still here");
        // Alice hears it, possibly after her own last line reached bob.
        assert_eq!(alice.next(), "bob: still here");
        // The stalled client's connection is over on the server's side
        // (its handler and its writer thread ended), unread lines or not.
        let ended = Instant::now();
        while server.stats().active > 2 {
            assert!(ended.elapsed() < Duration::from_secs(20), "still served");
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(server.stats().completed, 1);
        drop(stalled);
        (alice, bob)
    });
    assert_eq!(stats.active, 0);
}

/// A burst from one client (many more lines at once than a queue holds)
/// reaches a client that reads, if slowly (a small receive buffer): the
/// sender is slowed to the reader's pace, and no one is dropped.
#[cfg(unix)]
#[test]
fn a_burst_from_one_client_drops_no_one_who_reads() {
    let stats = in_room(|addr, _| {
        let mut alice = Client::join(addr, "alice");
        let mut bob = Client::join(addr, "bob");
        rustix::net::sockopt::set_socket_recv_buffer_size(&bob.socket, 4096).unwrap();
        assert_eq!(alice.next(), "* bob joined");
        let lines = 16 * chat::QUEUE;
        let pad = "y".repeat(100);
        let hearing = thread::spawn(move || {
            for i in 0..lines {
                assert_eq!(bob.next(), format!("alice: {i} {pad}"));
            }
            bob
        });
        let pad = "y".repeat(100);
        let burst: String = (0..lines).map(|i| format!("{i} {pad}\n")).collect();
        alice.socket.write_all(burst.as_bytes()).unwrap();
        let mut bob = hearing.join().unwrap();
        bob.send("all here");
        assert_eq!(alice.next(), "bob: all here");
        (alice, bob)
    });
    assert_eq!(stats.failed, 0);
}

/// On shutdown every client is told, its stream ends, and the server is
/// done within a second.
#[test]
fn shutdown_with_clients_connected_tells_them_and_ends_within_a_second() {
    let server = chat::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let mut clients = Vec::new();
    let took = thread::scope(|s| {
        let serving = s.spawn(|| server.serve_forever());
        for name in ["alice", "bob", "carol"] {
            clients.push(Client::join(addr, name));
        }
        while server.stats().active < 3 {
            thread::sleep(Duration::from_millis(2));
        }
        let start = Instant::now();
        stop.shutdown();
        serving.join().unwrap();
        start.elapsed()
    });
    println!("3 chat clients: serve_forever returned in {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    for mut client in clients {
        let rest: Vec<String> = client.lines.by_ref().map(|l| l.unwrap()).collect();
        assert_eq!(
            rest.last().map(String::as_str),
            Some("* the server is stopping"),
            "{rest:?}"
        );
    }
    let stats = server.stats();
    assert_eq!((stats.active, stats.completed), (0, 3));
}
