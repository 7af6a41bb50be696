//! A graceful shutdown finishes what is under way (issue 19): a connection
//! that waits for its next request ends at once, one whose request is
//! still arriving gets the grace period to finish it, through the frame, a
//! line protocol and the file service.
//!
//! "Under way" is read from the kernel, not guessed with sleeps: a test
//! waits until the server's side of the connection has taken the bytes
//! sent so far out of its receive queue (`/proc/net/tcp`), so the handler
//! is inside the request when the shutdown comes.
#![cfg(target_os = "linux")]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socketserver::frame::{read_frame, write_frame};
use socketserver::{Connection, StreamRequest, StreamRequestHandler, Streamed, ThreadingTcpServer};

/// Waits (5 s at most) until the server's end of `client`'s connection has
/// nothing left in its receive queue: the handler has read what was sent.
fn server_has_read(server: SocketAddr, client: &TcpStream) {
    let client_port = client.local_addr().unwrap().port();
    let wanted = (server.port(), client_port);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let queue = table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
            let (local, remote) = (port(fields.get(1)?)?, port(fields.get(2)?)?);
            let rx = fields.get(4)?.split(':').nth(1)?;
            ((local, remote) == wanted).then(|| u64::from_str_radix(rx, 16).ok())?
        });
        if queue == Some(0) {
            return;
        }
        assert!(Instant::now() < until, "the server never read: {queue:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `client` sees end of stream within `within`.
fn ended_within(client: &mut TcpStream, within: Duration) -> bool {
    client.set_read_timeout(Some(within)).unwrap();
    matches!(client.read(&mut [0u8; 1]), Ok(0))
}

/// A threading server for `handler` on 127.0.0.1 with a 5 s grace period,
/// serving on a thread: its address, the server, and the serving thread.
fn serve<H: socketserver::BaseRequestHandler>(
    handler: H,
) -> (
    SocketAddr,
    Arc<ThreadingTcpServer<H>>,
    thread::JoinHandle<()>,
) {
    let server = ThreadingTcpServer::builder(handler)
        .graceful_shutdown(Duration::from_secs(5))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let server = Arc::new(server);
    let serving = Arc::clone(&server);
    (addr, server, thread::spawn(move || serving.serve_forever()))
}

#[test]
fn a_frame_still_arriving_at_shutdown_is_finished_and_an_idle_one_ends_at_once() {
    let echo = |conn: &mut Connection| -> io::Result<()> {
        while let Some(frame) = read_frame(conn).map_err(io::Error::other)? {
            write_frame(conn, &frame.body)?;
        }
        Ok(())
    };
    let (addr, server, serving) = serve(echo);

    // An idle client: one exchange, then nothing.
    let mut idle = TcpStream::connect(addr).unwrap();
    write_frame(&mut idle, b"first").unwrap();
    assert_eq!(read_frame(&mut idle).unwrap().unwrap().body, b"first");

    // A busy one: its frame's length, header and half its body are in.
    let mut busy = TcpStream::connect(addr).unwrap();
    let mut wire = Vec::new();
    write_frame(&mut wire, &[7u8; 4096]).unwrap();
    let (sent, rest) = wire.split_at(wire.len() - 2048);
    busy.write_all(sent).unwrap();
    server_has_read(addr, &busy);

    let stopping = Instant::now();
    server.shutdown_handle().shutdown();
    assert!(
        ended_within(&mut idle, Duration::from_secs(1)),
        "the idle connection was not ended at once"
    );
    // The rest of the request arrives during the grace period: answered.
    busy.write_all(rest).unwrap();
    let echoed = read_frame(&mut busy).unwrap().expect("the echo");
    assert_eq!(echoed.body, vec![7u8; 4096]);
    // Then the connection is at a boundary, and ends.
    assert!(ended_within(&mut busy, Duration::from_secs(1)));
    serving.join().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "serve_forever took {:?}: it waited for the grace period",
        stopping.elapsed()
    );
}

struct Lines;

impl StreamRequestHandler for Lines {
    fn handle(&self, request: &mut StreamRequest<'_>) -> io::Result<()> {
        while let Some(line) = request.read_line(1024)? {
            request.wfile.write_all(&line)?;
        }
        Ok(())
    }
}

#[test]
fn a_line_still_arriving_at_shutdown_is_answered_and_an_idle_one_ends_at_once() {
    let (addr, server, serving) = serve(Streamed(Lines));

    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"one\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&idle).read_line(&mut reply).unwrap();
    assert_eq!(reply, "one\n");

    let mut busy = TcpStream::connect(addr).unwrap();
    busy.write_all(b"hel").unwrap();
    server_has_read(addr, &busy);

    server.shutdown_handle().shutdown();
    assert!(ended_within(&mut idle, Duration::from_secs(1)));
    busy.write_all(b"lo\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&busy).read_line(&mut reply).unwrap();
    assert_eq!(reply, "hello\n");
    assert!(ended_within(&mut busy, Duration::from_secs(1)));
    serving.join().unwrap();
}

#[test]
fn an_upload_still_arriving_at_shutdown_completes() {
    use socketserver::files::{FileConfig, FileHandler};
    use socketserver::frame::{Header, write_frame_with};
    let root = std::env::temp_dir().join(format!("socketserver-grace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let handler = FileHandler::new(FileConfig::new(&root)).unwrap();
    let (addr, server, serving) = serve(handler);

    // The file service's upload on the wire: the request, the server's
    // go-ahead, 1 MiB chunks (each a frame with its md5), an end frame
    // with the md5 of the chunks' md5s; then the server's reply.
    const CHUNK: usize = 1 << 20;
    let data: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    let mut digest = md5::Context::new();
    for chunk in data.chunks(CHUNK) {
        write_frame(&mut wire, chunk).unwrap();
        digest.consume(format!("{:x}", md5::compute(chunk)).as_bytes());
    }
    let end = Header::for_body(b"")
        .with("end", true)
        .with("digest", format!("{:x}", digest.finalize()));
    write_frame_with(&mut wire, &end, b"").unwrap();

    let mut client = TcpStream::connect(addr).unwrap();
    let request = Header::for_body(b"")
        .with("op", "put")
        .with("name", "upload.bin")
        .with("size", data.len() as u64)
        .with("overwrite", false);
    write_frame_with(&mut client, &request, b"").unwrap();
    let go = read_frame(&mut client).unwrap().unwrap();
    assert_eq!(go.header.extra.get("ok"), Some(&true.into()));
    // A chunk and a half are in when the shutdown comes.
    let (sent, rest) = wire.split_at(CHUNK + CHUNK / 2);
    client.write_all(sent).unwrap();
    server_has_read(addr, &client);
    let stopping = Instant::now();
    server.shutdown_handle().shutdown();
    client.write_all(rest).unwrap();
    let done = read_frame(&mut client)
        .unwrap()
        .expect("the server's reply");
    assert_eq!(
        done.header.extra.get("ok"),
        Some(&true.into()),
        "{:?}",
        done.header
    );
    assert_eq!(std::fs::read(root.join("upload.bin")).unwrap(), data);
    // Done: at its boundary the connection ends, and so does the server.
    assert!(ended_within(&mut client, Duration::from_secs(1)));
    serving.join().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(3));
    let _ = std::fs::remove_dir_all(&root);
}
