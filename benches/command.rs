//! The command service's benchmark, against the seed's Python server and
//! client: commands per second, large-output throughput with md5 checked,
//! the client's time to receive 10 MB, and the server's peak memory.
//!
//! ```sh
//! cargo bench --bench command
//! ```
//!
//! Our server runs in a child process of this benchmark, so its memory can
//! be read on its own; the Python servers are the seed's, from
//! `tests/peers/`.

// The command service is Unix only (it spawns process groups and kills
// them with rustix), and so is its benchmark.
#[cfg(unix)]
mod common;

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("the command benchmark is Unix only, as the command service is");
}

#[cfg(unix)]
mod unix {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::common::ChildServer;
    use socketserver::command::{self, Client, CommandConfig, Containment, Protocol};

    const MIB: f64 = 1024.0 * 1024.0;
    const BIG: usize = 50_000_000;
    const TEN_MB: usize = 10_000_000;

    pub fn main() {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        if args.first().map(String::as_str) == Some("serve-child") {
            return serve_child(args.get(1).map(String::as_str));
        }
        println!("# command service benchmark\n");
        let scan = ours("scan");
        let bare = ours("bare");
        let ours = ours("namespace");
        let seed = python("cmd_server.py");
        echo_rate(&ours, &scan, &bare, &seed);
        drop(bare);
        if args.iter().any(|a| a == "echo") {
            return; // `cargo bench --bench command -- echo`: that table only
        }
        drop(scan);
        let mended = python("cmd_server_communicate.py");
        large_output(&ours, &seed, &mended);
        client_receive(&ours);
        println!(
            "Our server's peak resident memory over the whole run (VmHWM), after {BIG}-byte replies: {:.1} MB ({:.2}x the output)",
            ours.peak_rss_kib() as f64 / 1024.0,
            ours.peak_rss_kib() as f64 * 1024.0 / BIG as f64
        );
    }

    /// Our server's side of [`ours`].
    fn serve_child(containment: Option<&str>) {
        if containment == Some("bare") {
            return serve_bare();
        }
        let containment = match containment {
            Some("scan") => Containment::Scan,
            _ => Containment::Namespace,
        };
        let config = CommandConfig::default()
            .max_output(64 << 20)
            .containment(containment);
        let server = command::bind("127.0.0.1:0", config).unwrap();
        println!("LISTENING {}", server.local_addr().unwrap().port());
        server.serve_forever();
    }

    /// The floor our server is measured against, measured the same way:
    /// a server in a child process that answers our client's framed
    /// requests with a bare spawn (`std::process::Command::output`, which
    /// is `posix_spawn`), the output in one frame per stream and the
    /// closing frame, over one connection. No containment, no timeout, no
    /// cap, no token: nothing but the spawn and the frames.
    fn serve_bare() {
        use socketserver::frame::{Header, read_frame, write_frame_parts};
        use std::os::unix::process::ExitStatusExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        println!("LISTENING {}", listener.local_addr().unwrap().port());
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            conn.set_nodelay(true).unwrap();
            thread::spawn(move || {
                while let Ok(Some(request)) = read_frame(&mut conn) {
                    let line = String::from_utf8_lossy(&request.body).into_owned();
                    let words: Vec<&str> = line.split_whitespace().collect();
                    let out = Command::new(words[0]).args(&words[1..]).output().unwrap();
                    for (stream, body) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                        if !body.is_empty() {
                            let header = Header::for_body(body).with("stream", stream);
                            write_frame_parts(&mut conn, &header, &[body]).unwrap();
                        }
                    }
                    let end = Header::for_body(b"")
                        .with("exit", out.status.code())
                        .with("signal", out.status.signal())
                        .with("timed_out", false)
                        .with("truncated", false)
                        .with("stragglers", 0)
                        .with("end", true);
                    write_frame_parts(&mut conn, &end, &[]).unwrap();
                }
            });
        }
    }

    /// Our server, in this benchmark's own child process, its commands
    /// contained as `containment` says (`namespace` or `scan`; `bare` is
    /// [`serve_bare`]).
    fn ours(containment: &str) -> ChildServer {
        let mut me = Command::new(std::env::current_exe().unwrap());
        me.args(["serve-child", containment]);
        ChildServer::start(me)
    }

    /// One of the seed's Python servers from `tests/peers/`.
    fn python(script: &str) -> ChildServer {
        let mut python = Command::new("python3");
        python
            .arg(format!(
                "{}/tests/peers/{script}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg("0");
        ChildServer::start(python)
    }

    /// Commands per second for `echo hello`, one client, one connection.
    fn echo_rate(ours: &ChildServer, scan: &ChildServer, bare: &ChildServer, seed: &ChildServer) {
        let rate = |addr, protocol, window: Duration| {
            let mut client = Client::connect(addr, protocol).unwrap();
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < window {
                assert_eq!(client.run("echo hello").unwrap().stdout, b"hello\n");
                n += 1;
            }
            n as f64 / started.elapsed().as_secs_f64()
        };
        // The floor below that: what spawning `echo hello` with its output
        // piped and waiting for it costs here, with nothing around it (no
        // connection, no frames, no server).
        let in_process = |window: Duration| {
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < window {
                let out = Command::new("echo").arg("hello").output().unwrap();
                assert_eq!(out.stdout, b"hello\n");
                n += 1;
            }
            n as f64 / started.elapsed().as_secs_f64()
        };
        // Round by round, so drift and order do not pass for a difference;
        // the median of five one-second rounds each.
        let one = Duration::from_secs(1);
        let mut rounds = [const { Vec::new() }; 4];
        for _ in 0..5 {
            rounds[0].push(rate(ours.addr, Protocol::Framed, one));
            rounds[1].push(rate(scan.addr, Protocol::Framed, one));
            rounds[2].push(rate(bare.addr, Protocol::Framed, one));
            rounds[3].push(in_process(one));
        }
        let [ns, sc, spawn, local] = rounds.map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        });
        let theirs = rate(seed.addr, Protocol::Seed, Duration::from_secs(3));
        println!("## `echo hello`, one client\n");
        println!("| server | commands/s |");
        println!("|---|---|");
        println!("| ours, each command in a PID namespace (the default) | {ns:.0} |");
        println!("| ours, contained by the scan | {sc:.0} |");
        println!(
            "| a bare spawn behind the same client and connection (a minimal framed server, `Command::output`) | {spawn:.0} |"
        );
        println!(
            "| a bare spawn of `echo hello`, piped, in this process (no connection) | {local:.0} |"
        );
        println!("| the seed's | {theirs:.1} |");
        println!(
            "\nOurs is **{:.0}x** the seed's, and {:.2}x a bare spawn measured the same way ({:.2}x with the scan).\n",
            ns / theirs,
            ns / spawn,
            sc / spawn
        );
    }

    /// One large output end to end: spawn, output, transfer, md5 check.
    fn large_output(ours: &ChildServer, seed: &ChildServer, mended: &ChildServer) {
        let line = format!("head -c {BIG} /dev/zero");
        let run = |addr, protocol| -> Option<f64> {
            let mut client = Client::connect(addr, protocol).unwrap();
            let started = Instant::now();
            let reply = client.run(&line).ok()?; // md5 checked by the frame reader
            assert_eq!(reply.stdout.len(), BIG);
            Some(BIG as f64 / MIB / started.elapsed().as_secs_f64())
        };
        let best = |addr, protocol| {
            (0..3)
                .filter_map(|_| run(addr, protocol))
                .fold(0.0, f64::max)
        };
        let our = best(ours.addr, Protocol::Framed);
        let their = best(mended.addr, Protocol::Seed);
        let md5 = {
            let data = vec![0u8; BIG];
            let t = Instant::now();
            std::hint::black_box(md5::compute(&data));
            BIG as f64 / MIB / t.elapsed().as_secs_f64()
        };
        // The seed's own server reads stderr to its end first: the command
        // blocks on a full stdout pipe, and no reply ever comes.
        let deadlocked = {
            let addr = seed.addr;
            let line = line.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            thread::spawn(move || {
                let mut client = Client::connect(addr, Protocol::Seed).unwrap();
                let _ = tx.send(client.run(&line).is_ok());
            });
            rx.recv_timeout(Duration::from_secs(10)).is_err()
        };
        println!("## A {BIG}-byte output, end to end, md5 checked (best of 3)\n");
        println!("| server | MiB/s |");
        println!("|---|---|");
        println!("| ours | {our:.0} |");
        println!("| the seed's, deadlock mended (`communicate()`) | {their:.0} |");
        println!(
            "| the seed's own | {} |",
            if deadlocked {
                "no reply in 10 s: deadlocked"
            } else {
                "replied"
            }
        );
        println!(
            "\nOurs is **{:.2}x** the mended seed server and **{:.2}x** md5 alone ({md5:.0} MiB/s).\n",
            our / their,
            our / md5
        );
    }

    /// The client's time to receive a 10 MB reply: ours, and the seed's Python
    /// client (`data_buffers += recv(1024)`), both from our server.
    fn client_receive(ours: &ChildServer) {
        let line = format!("head -c {TEN_MB} /dev/zero");
        let mut client = Client::connect(ours.addr, Protocol::Seed).unwrap();
        let our = (0..3)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(client.run(&line).unwrap().stdout.len(), TEN_MB);
                t.elapsed()
            })
            .min()
            .unwrap();
        let script = format!("{}/tests/peers/cmd_client.py", env!("CARGO_MANIFEST_DIR"));
        let t = Instant::now();
        let mut python = Command::new("python3")
            .args([script, "127.0.0.1".into(), ours.addr.port().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        python
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{line}\nexit\n").as_bytes())
            .unwrap();
        assert!(python.wait().unwrap().success());
        let theirs = t.elapsed();
        println!("## Receiving a {TEN_MB}-byte reply\n");
        println!("| client | time |");
        println!("|---|---|");
        println!("| ours (one buffer) | {our:.1?} |");
        println!("| the seed's (`data_buffers += recv(1024)`) | {theirs:.1?} |");
        println!(
            "\nOurs is **{:.0}x** faster.\n",
            theirs.as_secs_f64() / our.as_secs_f64()
        );
    }
}
