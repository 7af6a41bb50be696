//! Unix-domain datagram servers over real socket files: a round trip, a
//! threading server stopped by its shutdown handle, an unnamed sender that
//! cannot be answered, a datagram too long to take, and the socket file
//! removed on drop.
#![cfg(unix)]

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use socketserver::handler::{Datagram, DatagramFamily, DatagramRequestHandler, Unix};
use socketserver::{
    Addr, HandlerError, ThreadingUnixDatagramServer, UdpServer, UnixDatagramServer,
};

fn path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "socketserver-udg-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Echoes, for any family; keeps the errors it is told of.
#[derive(Default)]
struct Echo(Mutex<Vec<String>>);

impl<F: DatagramFamily> DatagramRequestHandler<F> for Echo {
    fn handle(&self, d: &Datagram<F>) -> io::Result<()> {
        d.reply(&[b"echo:", d.data()].concat())
    }
    fn handle_error(&self, peer: &Addr, error: &HandlerError) {
        self.0.lock().unwrap().push(format!("{peer}: {error}"));
    }
}

#[test]
fn a_unix_datagram_round_trip_and_the_file_is_removed_on_drop() {
    let server_path = path("rt");
    let client_path = path("rt-client");
    let echo = Arc::new(Echo::default());
    let server = UnixDatagramServer::bind(&server_path, Arc::clone(&echo)).unwrap();
    assert_eq!(
        server.local_addr().unwrap().as_pathname(),
        Some(server_path.as_path())
    );
    let client = UnixDatagram::bind(&client_path).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for msg in [&b"one"[..], b"", &[7u8; 65_536]] {
        client.send_to(msg, &server_path).unwrap();
        server.handle_request().unwrap();
        let mut buf = vec![0u8; 70_000];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], [&b"echo:"[..], msg].concat());
    }
    // The same handler value serves UDP too.
    let _udp = UdpServer::bind("127.0.0.1:0", Arc::clone(&echo)).unwrap();
    assert_eq!(server.stats().completed, 3);
    drop(server);
    assert!(!server_path.exists());
    std::fs::remove_file(&client_path).unwrap();
}

#[test]
fn an_unnamed_sender_is_heard_not_answered_and_a_long_datagram_is_refused_whole() {
    let server_path = path("unnamed");
    let echo = Arc::new(Echo::default());
    let server = UnixDatagramServer::bind(&server_path, Arc::clone(&echo)).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"hello", &server_path).unwrap();
    server.handle_request().unwrap();
    client.send_to(&vec![1u8; 100_000], &server_path).unwrap();
    server.handle_request().unwrap();
    let errors = echo.0.lock().unwrap().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("(unnamed unix socket): "),
        "{errors:?}"
    );
    assert!(errors[0].contains("unnamed"), "{errors:?}");
    assert!(errors[1].contains("longer than 65536 bytes"), "{errors:?}");
    assert_eq!(server.stats().failed, 2);
}

#[test]
fn a_threading_unix_datagram_server_serves_until_shut_down() {
    let server_path = path("threading");
    let client_path = path("threading-client");
    let server = ThreadingUnixDatagramServer::builder(|d: &Datagram<Unix>| d.reply(d.data()))
        .pool(2)
        .bind(&server_path)
        .unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let client = UnixDatagram::bind(&client_path).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..20u8 {
        client.send_to(&[i], &server_path).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(client.recv(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], i);
    }
    stop.shutdown(); // an empty datagram wakes the loop
    serving.join().unwrap();
    std::fs::remove_file(&client_path).unwrap();
}
