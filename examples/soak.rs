//! The soak runner: load plus faults, in rounds, against servers it starts
//! on 127.0.0.1, until the time is up; then one line of figures.
//!
//! ```sh
//! cargo run --release --example soak -- --secs 600
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use socketserver::frame::{self, FrameLimits, Header};
use socketserver::greet::Greeter;
use socketserver::{
    Addr, BaseRequestHandler, Builder, Connection, HandlerError, ServerInfo, ShutdownHandle,
    ThreadingTcpServer,
};

/// The soak runner: load and faults, in rounds, against servers it starts
/// on 127.0.0.1.
///
/// Runs for SECS seconds, then prints one line of key=value figures:
/// served, faults, lost (must be 0), corrupted (must be 0), the servers'
/// counters, and client errors by kind. Exits non-zero if anything was
/// lost or corrupted.
#[derive(Parser, Debug)]
#[command(name = "soak", version)]
struct Cli {
    /// How long to run, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    secs: u64,
}

/// Every client's read timeout, and the echo server's: far above a good
/// client's pauses on a loaded machine (a thread moving 512 KiB frames
/// can stall for seconds there, and that is no fault).
const PATIENCE: Duration = Duration::from_secs(20);
/// The read timeout of the server the silent clients hold connections
/// on: below how long they hold them, so it is what drops them.
const SILENCE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Tally {
    served: AtomicU64,
    lost: AtomicU64,
    corrupted: AtomicU64,
    faults: AtomicU64,
    timed_out: AtomicU64,
    reset: AtomicU64,
    other: AtomicU64,
}

impl Tally {
    fn error(&self, e: &io::Error) {
        let counter = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => &self.timed_out,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => &self.reset,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Echoes frames; a body of `panic` makes it panic.
struct FramedEcho;

impl BaseRequestHandler for FramedEcho {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let mut body = Vec::new();
        while frame::read_frame_into(conn, &FrameLimits::new(), &mut body)?.is_some() {
            if body == b"panic" {
                panic!("asked to panic");
            }
            frame::write_frame(conn, &body)?;
        }
        Ok(())
    }
    // Faults are expected here: count them (in the server's stats), quietly.
    fn handle_error(&self, _: &Addr, _: &HandlerError) {}
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// Greeting round trips; a wrong byte is corrupted, a missing reply lost.
fn greeter_client(addr: SocketAddr, id: u64, rounds: u64, tally: &Tally) {
    let run = || -> io::Result<()> {
        let mut s = connect(addr)?;
        let mut banner = [0u8; 8];
        s.read_exact(&mut banner)?;
        for i in 0..rounds {
            let name = format!("c{id}-{i}");
            s.write_all(name.as_bytes())?;
            let mut reply = vec![0u8; "你好,".len() + name.len()];
            s.read_exact(&mut reply)?;
            if reply != format!("你好,{name}").as_bytes() {
                tally.corrupted.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            tally.served.fetch_add(1, Ordering::Relaxed);
        }
        s.write_all(b"exit")
    };
    if let Err(e) = run() {
        tally.error(&e);
        tally.lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// Framed round trips of random bodies, each md5-checked and compared.
fn framed_client(addr: SocketAddr, mut state: u64, frames: u64, tally: &Tally) {
    let mut run = || -> io::Result<()> {
        let mut s = connect(addr)?;
        for _ in 0..frames {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let body: Vec<u8> = (0..state % (512 << 10))
                .map(|i| (i ^ state) as u8)
                .collect();
            frame::write_frame(&mut s, &body)?;
            match frame::read_frame(&mut s) {
                Ok(Some(echo)) if echo.body == body => tally.served.fetch_add(1, Ordering::Relaxed),
                Ok(_) | Err(frame::FrameError::Md5Mismatch { .. }) => {
                    tally.corrupted.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(())
    };
    if let Err(e) = run() {
        tally.error(&e);
        tally.lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// One of each fault, on connections of their own.
fn faults(addr: SocketAddr, tally: &Tally) {
    let body = vec![7u8; 10_000];
    let mut wire = Vec::new();
    let _ = frame::write_frame(&mut wire, &body);
    let header_end = 4 + Header::for_body(&body).to_json().len();
    let mut sends: Vec<Vec<u8>> = [4, 20, header_end + 5_000]
        .iter()
        .map(|&cut| wire[..cut].to_vec())
        .collect();
    sends.push(b"\xff\xff\xff\xffjunk".to_vec());
    sends.push(b"\x05\x00\x00\x00!!!!!".to_vec());
    let mut panic = Vec::new();
    let _ = frame::write_frame(&mut panic, b"panic");
    sends.push(panic);
    for bytes in sends {
        if let Ok(mut s) = connect(addr) {
            let _ = s.write_all(&bytes);
            tally.faults.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A server under test: its address, its stop handle, its counters, and
/// the thread serving it.
type Running = (
    SocketAddr,
    ShutdownHandle,
    ServerInfo,
    thread::JoinHandle<()>,
);

/// Binds a server on loopback, graceful on shutdown, and serves it.
fn start<H: BaseRequestHandler>(builder: Builder<H, ThreadingTcpServer<H>>) -> Running {
    let server = builder
        .graceful_shutdown(PATIENCE)
        .bind("127.0.0.1:0")
        .expect("bind on loopback");
    let addr = server.local_addr().expect("an address");
    let (stop, info) = (server.shutdown_handle(), server.info());
    (
        addr,
        stop,
        info,
        thread::spawn(move || server.serve_forever()),
    )
}

fn main() {
    let secs = Cli::parse().secs;
    let tally = Tally::default();
    let per_conn = start(ThreadingTcpServer::builder(Greeter::new()));
    let pooled = start(ThreadingTcpServer::builder(Greeter::new()).pool(32));
    let echo = start(ThreadingTcpServer::builder(FramedEcho).read_timeout(Some(PATIENCE)));
    // Silent clients wait on a server of their own, whose timeout is
    // short: on the echo server's, they would hold out for PATIENCE.
    let quiet = start(ThreadingTcpServer::builder(FramedEcho).read_timeout(Some(SILENCE)));

    // The echo handler's panics are on purpose, and caught; say nothing of
    // them, and everything of any other.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"asked to panic") {
            default_hook(info);
        }
    }));

    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut rounds = 0u64;
    // Silent clients, each held past the read timeout, then let go.
    let mut silent: std::collections::VecDeque<(Instant, TcpStream)> = Default::default();
    while Instant::now() < deadline {
        thread::scope(|scope| {
            for id in 0..16 {
                let addr = if id % 2 == 0 { per_conn.0 } else { pooled.0 };
                let tally = &tally;
                scope.spawn(move || greeter_client(addr, rounds * 16 + id, 200, tally));
            }
            for id in 0..4 {
                let tally = &tally;
                scope.spawn(move || {
                    framed_client(echo.0, 0x9e37_79b9 ^ (rounds << 8) ^ id, 20, tally)
                });
            }
            faults(echo.0, &tally);
        });
        while silent
            .front()
            .is_some_and(|(at, _)| at.elapsed() > SILENCE * 3 / 2)
        {
            silent.pop_front();
        }
        if let Ok(s) = connect(quiet.0) {
            silent.push_back((Instant::now(), s));
            tally.faults.fetch_add(1, Ordering::Relaxed);
        }
        rounds += 1;
    }
    drop(silent);
    let mut failed = 0;
    let mut accepted = 0;
    let mut unbalanced = 0;
    for (_, stop, info, serving) in [per_conn, pooled, echo, quiet] {
        stop.shutdown();
        let _ = serving.join();
        let stats = ServerInfo::stats(&info);
        failed += stats.failed;
        accepted += stats.accepted;
        unbalanced += stats.accepted - stats.completed - stats.failed;
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let lost = get(&tally.lost) + unbalanced;
    println!(
        "secs={secs} rounds={rounds} served={} faults={} lost={lost} corrupted={} accepted={accepted} failed={failed} errors.timeout={} errors.reset={} errors.other={}",
        get(&tally.served),
        get(&tally.faults),
        get(&tally.corrupted),
        get(&tally.timed_out),
        get(&tally.reset),
        get(&tally.other),
    );
    if lost > 0 || get(&tally.corrupted) > 0 {
        std::process::exit(1);
    }
}
