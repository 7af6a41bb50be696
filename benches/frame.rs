//! The frame codec's benchmark: frames per second for small bodies, MiB/s
//! for large ones, in memory and over loopback TCP, next to the `md5`
//! crate's own throughput; and round-trip latency of small frames, ours
//! (one write per frame) against the seed's (three writes per frame).
//!
//! ```sh
//! cargo bench --bench frame
//! ```
//!
//! md5 is the one real cost of a large frame (each side hashes the body
//! once), so large-frame figures are quoted as a fraction of md5's.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::frame::{
    FrameLimits, Header, read_frame, read_frame_into, read_frame_with, write_frame,
    write_frame_with,
};

const MIB: f64 = 1024.0 * 1024.0;
const ROUNDS: usize = 3;

fn main() {
    println!("# frame benchmark\n");
    let md5 = md5_mib_s();
    println!("`md5` crate, one core: **{md5:.0} MiB/s** (best of {ROUNDS})\n");
    in_memory(md5);
    loopback(md5);
    latency();
}

/// Best of `ROUNDS` runs of `f`, which returns (units done, seconds taken).
fn best(mut f: impl FnMut() -> (f64, f64)) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let (units, secs) = f();
            units / secs
        })
        .fold(0.0, f64::max)
}

fn md5_mib_s() -> f64 {
    let data = vec![0x5au8; 64 << 20];
    best(|| {
        let t = Instant::now();
        std::hint::black_box(md5::compute(&data));
        (data.len() as f64 / MIB, t.elapsed().as_secs_f64())
    })
}

/// How many frames of `size` to move per measurement: about 256 MiB, and
/// no fewer than 2 or more than 200,000.
fn count_for(size: usize) -> usize {
    ((256 << 20) / size.max(1)).clamp(2, 200_000)
}

fn rate(size: usize, per_sec: f64) -> String {
    if size >= 1 << 20 {
        format!("{:.0} MiB/s", per_sec * size as f64 / MIB)
    } else {
        format!("{per_sec:.0} frames/s")
    }
}

fn versus_md5(size: usize, per_sec: f64, md5: f64) -> String {
    if size >= 1 << 20 {
        format!("{:.2}x", per_sec * size as f64 / MIB / md5)
    } else {
        "—".into()
    }
}

const SIZES: [(usize, &str); 4] = [
    (16, "16 B"),
    (1024, "1 KiB"),
    (1 << 20, "1 MiB"),
    (64 << 20, "64 MiB"),
];

fn in_memory(md5: f64) {
    let limits = FrameLimits::new().max_body_len(u64::MAX);
    println!("## In memory (one thread)\n");
    println!(
        "| body | write_frame | vs md5 | read_frame | vs md5 | read_frame_into (buffer reused) | vs md5 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (size, label) in SIZES {
        let body = vec![0x5au8; size];
        let n = count_for(size);
        let mut out = Vec::new();
        let write = best(|| {
            let t = Instant::now();
            for _ in 0..n {
                out.clear();
                write_frame(&mut out, &body).unwrap();
            }
            (n as f64, t.elapsed().as_secs_f64())
        });
        let mut wire = Vec::new();
        let reps = n.min(64);
        for _ in 0..reps {
            write_frame(&mut wire, &body).unwrap();
        }
        let read = best(|| {
            let t = Instant::now();
            let mut done = 0;
            while done < n {
                let mut input = &wire[..];
                while let Some(frame) = read_frame_with(&mut input, &limits).unwrap() {
                    std::hint::black_box(frame);
                    done += 1;
                }
            }
            (done as f64, t.elapsed().as_secs_f64())
        });
        let mut reused = Vec::new();
        let read_into = best(|| {
            let t = Instant::now();
            let mut done = 0;
            while done < n {
                let mut input = &wire[..];
                while read_frame_into(&mut input, &limits, &mut reused)
                    .unwrap()
                    .is_some()
                {
                    done += 1;
                }
            }
            (done as f64, t.elapsed().as_secs_f64())
        });
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} |",
            rate(size, write),
            versus_md5(size, write, md5),
            rate(size, read),
            versus_md5(size, read, md5),
            rate(size, read_into),
            versus_md5(size, read_into, md5)
        );
    }
    println!();
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (a, b)
}

fn loopback(md5: f64) {
    let limits = FrameLimits::new().max_body_len(u64::MAX);
    println!("## Loopback TCP, one writer thread and one reader thread\n");
    println!(
        "The reader (`read_frame_into`, one reused buffer) checks every byte's md5. The header carries the digest before the body,"
    );
    println!("so a writer must hash a body before sending it: either for each frame, or once,");
    println!("when the body's digest is known ahead (a cached file digest, say).\n");
    println!("| body | writer | throughput | vs md5 |");
    println!("|---|---|---|---|");
    for (size, label) in SIZES {
        for precomputed in [false, true] {
            if precomputed && size < 1 << 20 {
                continue;
            }
            let n = count_for(size);
            let per_sec = best(|| {
                let (mut tx, mut rx) = pair();
                let body = vec![0x5au8; size];
                let t = Instant::now();
                let writer = thread::spawn(move || {
                    let known = Header::for_body(&body);
                    for _ in 0..n {
                        if precomputed {
                            write_frame_with(&mut tx, &known, &body).unwrap();
                        } else {
                            write_frame(&mut tx, &body).unwrap();
                        }
                    }
                });
                let mut body = Vec::new();
                for _ in 0..n {
                    read_frame_into(&mut rx, &limits, &mut body)
                        .unwrap()
                        .unwrap();
                }
                writer.join().unwrap();
                (n as f64, t.elapsed().as_secs_f64())
            });
            let writer = if precomputed {
                "digest known"
            } else {
                "hashes each frame"
            };
            println!(
                "| {label} | {writer} | {} | {} |",
                rate(size, per_sec),
                versus_md5(size, per_sec, md5)
            );
        }
    }
    println!();
}

/// The seed's way of sending a frame: length, header, body, three sends.
fn write_frame_seed_style(w: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let header = Header::for_body(body).to_json();
    w.write_all(&(header.len() as i32).to_le_bytes())?;
    w.write_all(&header)?;
    w.write_all(body)
}

/// Round trips of a 16-byte request answered by a 16-byte frame.
fn round_trips(seed_style: bool, count: usize) -> Vec<Duration> {
    let (mut client, mut server) = pair();
    let echo = thread::spawn(move || {
        while let Ok(Some(frame)) = read_frame(&mut server) {
            let sent = if seed_style {
                write_frame_seed_style(&mut server, &frame.body)
            } else {
                write_frame(&mut server, &frame.body)
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let body = [7u8; 16];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        write_frame(&mut client, &body).unwrap();
        read_frame(&mut client).unwrap().unwrap();
        times.push(t.elapsed());
    }
    drop(client);
    echo.join().unwrap();
    times.sort();
    times
}

fn latency() {
    println!("## Round trip of a 16-byte frame over loopback (Nagle on, as by default)\n");
    println!("| reply written as | round trips | median | p99 |");
    println!("|---|---|---|---|");
    for (seed_style, count, label) in [
        (false, 10_000, "one write per frame (`write_frame`)"),
        (true, 50, "three writes per frame (the seed's server)"),
    ] {
        let t = round_trips(seed_style, count);
        println!(
            "| {label} | {count} | {:.1?} | {:.1?} |",
            t[count / 2],
            t[count * 99 / 100]
        );
    }
    println!();
}
