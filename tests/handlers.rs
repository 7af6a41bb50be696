//! The handler traits as users build on them: shared handlers (`Arc`),
//! per-connection state, connection ids, addresses as keys, and the
//! stream handler's `setup` and `finish`. Real sockets on 127.0.0.1.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::handler::{ConnectionHandler, per_connection};
use socketserver::{
    Addr, BaseRequestHandler, Connection, Datagram, DatagramRequestHandler, HandlerError,
    StreamRequest, StreamRequestHandler, Streamed, TcpServer, ThreadingTcpServer, UdpServer,
};

#[derive(Default)]
struct Count(AtomicUsize);

impl BaseRequestHandler for Count {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        conn.write_all(b"ok")
    }
}

impl DatagramRequestHandler for Count {
    fn handle(&self, d: &Datagram) -> io::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        d.reply(b"ok")
    }
}

#[test]
fn an_arc_of_a_handler_is_a_handler_and_the_server_hands_it_back() {
    let shared = Arc::new(Count::default());
    let server = TcpServer::bind("127.0.0.1:0", Arc::clone(&shared)).unwrap();
    let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    server.handle_request().unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "ok");
    assert_eq!(shared.0.load(Ordering::SeqCst), 1);
    assert_eq!(server.handler().0.load(Ordering::SeqCst), 1);

    // The same value serves UDP too, and a trait object in an Arc works.
    let udp = UdpServer::bind("127.0.0.1:0", Arc::clone(&shared)).unwrap();
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(b"x", udp.local_addr().unwrap()).unwrap();
    udp.handle_request().unwrap();
    assert_eq!(c.recv(&mut [0u8; 8]).unwrap(), 2);
    assert_eq!(shared.0.load(Ordering::SeqCst), 2);

    let dynamic: Arc<dyn BaseRequestHandler> = shared.clone();
    let server = TcpServer::bind("127.0.0.1:0", dynamic).unwrap();
    let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    server.handle_request().unwrap();
    assert_eq!(shared.0.load(Ordering::SeqCst), 3);
}

/// Records the order of its calls, for `setup`/`handle`/`finish` checks.
struct Steps(Mutex<Vec<&'static str>>, bool);

impl StreamRequestHandler for Steps {
    fn setup(&self, r: &mut StreamRequest<'_>) -> io::Result<()> {
        self.0.lock().unwrap().push("setup");
        r.wfile.write_all(b"[")
    }
    fn handle(&self, r: &mut StreamRequest<'_>) -> io::Result<()> {
        self.0.lock().unwrap().push("handle");
        r.wfile.write_all(b"body")?;
        if self.1 {
            return Err(io::Error::other("handle failed"));
        }
        Ok(())
    }
    fn finish(&self, r: &mut StreamRequest<'_>) -> io::Result<()> {
        self.0.lock().unwrap().push("finish");
        r.wfile.write_all(b"]")
    }
    fn handle_error(&self, _: &Addr, _: &socketserver::HandlerError) {}
}

#[test]
fn a_stream_handler_gets_setup_and_finish_even_after_a_failed_handle() {
    for fail in [false, true] {
        let steps = Arc::new(Steps(Mutex::new(Vec::new()), fail));
        let server = TcpServer::bind("127.0.0.1:0", Streamed(Arc::clone(&steps))).unwrap();
        let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        server.handle_request().unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(*steps.0.lock().unwrap(), ["setup", "handle", "finish"]);
        // A failed handle's bytes still leave with finish's: one flush.
        assert_eq!(reply, "[body]");
        let stats = server.stats();
        assert_eq!(
            (stats.completed, stats.failed),
            (u64::from(!fail), u64::from(fail))
        );
    }
}

/// Per-connection state: a name from the first line, a count of lines, and
/// the connection's id, with no lock; the room they share is an `Arc`.
struct Session {
    room: Arc<Mutex<Vec<String>>>,
    name: String,
    lines: usize,
    reader: Option<BufReader<Connection>>,
}

impl ConnectionHandler for Session {
    fn setup(&mut self, conn: &mut Connection) -> io::Result<()> {
        let mut reader = BufReader::new(conn.try_clone()?);
        reader.read_line(&mut self.name)?;
        self.name.truncate(self.name.trim_end().len());
        self.reader = Some(reader);
        Ok(())
    }
    fn handle(&mut self, _: &mut Connection) -> io::Result<()> {
        let reader = self.reader.as_mut().expect("setup made it");
        for line in reader.lines() {
            line?;
            self.lines += 1;
        }
        Ok(())
    }
    fn finish(&mut self, conn: &mut Connection) -> io::Result<()> {
        let line = format!("{} #{}: {} lines", self.name, conn.id(), self.lines);
        self.room.lock().unwrap().push(line.clone());
        conn.write_all(line.as_bytes())
    }
}

#[test]
fn per_connection_state_is_made_for_each_connection_and_ids_are_unique() {
    let room = Arc::new(Mutex::new(Vec::new()));
    let factory_room = Arc::clone(&room);
    let server = ThreadingTcpServer::bind(
        "127.0.0.1:0",
        per_connection(move || Session {
            room: Arc::clone(&factory_room),
            name: String::new(),
            lines: 0,
            reader: None,
        }),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());

    let clients: Vec<_> = (0..8)
        .map(|i| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                write!(c, "client{i}\n{}", "line\n".repeat(i)).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut reply = String::new();
                c.read_to_string(&mut reply).unwrap();
                (i, reply)
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for client in clients {
        let (i, reply) = client.join().unwrap();
        // "clientI #ID: I lines"
        let (name, rest) = reply.split_once(" #").unwrap();
        let (id, count) = rest.split_once(": ").unwrap();
        assert_eq!(name, format!("client{i}"));
        assert_eq!(count, format!("{i} lines"));
        assert!(ids.insert(id.parse::<u64>().unwrap()), "id {id} twice");
    }
    assert_eq!(ids, (1..=8).collect());
    stop.shutdown();
    serving.join().unwrap();
    assert_eq!(room.lock().unwrap().len(), 8);
}

#[cfg(unix)]
#[test]
fn unnamed_unix_peers_are_equal_addresses_but_different_connections() {
    use socketserver::ThreadingUnixStreamServer;
    use std::os::unix::net::UnixStream;

    let (tx, rx) = std::sync::mpsc::channel::<(Addr, u64)>();
    let tx = Mutex::new(tx);
    let path =
        std::env::temp_dir().join(format!("socketserver-handlers-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = ThreadingUnixStreamServer::bind(&path, move |conn: &mut Connection| {
        let _ = tx
            .lock()
            .unwrap()
            .send((conn.peer_addr().clone(), conn.id()));
        Ok(())
    })
    .unwrap();
    let _a = UnixStream::connect(&path).unwrap();
    server.handle_request().unwrap();
    let _b = UnixStream::connect(&path).unwrap();
    server.handle_request().unwrap();
    // Handlers run on their own threads: wait for both, bounded.
    let wait = std::time::Duration::from_secs(10);
    let seen = [
        rx.recv_timeout(wait).unwrap(),
        rx.recv_timeout(wait).unwrap(),
    ];
    assert_eq!(seen[0].0, seen[1].0);
    assert_eq!(seen[0].0.to_string(), "(unnamed unix socket)");
    assert_ne!(seen[0].1, seen[1].1);
    // A named peer differs from an unnamed one and from another name.
    let named = Addr::Unix(std::os::unix::net::SocketAddr::from_pathname("/tmp/x").unwrap());
    assert_ne!(named, seen[0].0);
    assert_eq!(named.to_string(), "/tmp/x");
}

/// Reads one byte (after setting a deadline already past, if told to), and
/// keeps the kind and the words of every error `handle_error` hears.
#[derive(Default)]
struct Errors {
    deadline: AtomicBool,
    heard: Mutex<Vec<(io::ErrorKind, String)>>,
}

impl BaseRequestHandler for Errors {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        if self.deadline.load(Ordering::SeqCst) {
            conn.set_deadline(Instant::now());
        }
        conn.read(&mut [0u8; 1]).map(drop)
    }
    fn handle_error(&self, _: &Addr, error: &HandlerError) {
        let HandlerError::Io(e) = error else {
            panic!("{error}")
        };
        self.heard
            .lock()
            .unwrap()
            .push((e.kind(), error.to_string()));
    }
}

// Shows: a socket timeout reaches handle_error as TimedOut on every
// platform (Unix says WouldBlock), and a passed deadline's TimedOut keeps
// its own words.
#[test]
fn timeouts_reach_handle_error_as_timeouts_and_keep_what_they_say() {
    let server = TcpServer::builder(Errors::default())
        .read_timeout(Some(Duration::from_millis(50)))
        .bind("127.0.0.1:0")
        .unwrap();
    for deadline in [false, true] {
        server.handler().deadline.store(deadline, Ordering::SeqCst);
        let _silent = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        server.handle_request().unwrap();
    }
    let heard = server.handler().heard.lock().unwrap();
    assert_eq!(heard[0].0, io::ErrorKind::TimedOut, "{heard:?}");
    assert!(heard[0].1.contains("timed out"), "{heard:?}");
    assert_eq!(heard[1].0, io::ErrorKind::TimedOut, "{heard:?}");
    assert!(heard[1].1.contains("deadline"), "{heard:?}");
}
