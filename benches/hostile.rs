//! The command service under hostile peers: a legitimate client's latency
//! (p50, p99) with 256 connections from other addresses that send nothing
//! or drip a request a byte a second, next to the same without them, and
//! how long each hostile connection stayed open. The server runs with a
//! token and its default limits (10 s for a first request, 8 connections
//! per address, 512 in all), in a child process whose threads and
//! descriptors are counted from `/proc`.
//!
//! ```sh
//! cargo bench --bench hostile        # about a minute, most of it waiting
//! ```
//!
//! Every hostile connection binds a 127.0.0.x source address before it
//! connects (another peer, still loopback); the legitimate client is
//! 127.0.0.1 and opens a connection per command (connect, challenge,
//! answer, `echo hello`, reply).

#[cfg(target_os = "linux")]
mod common;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the hostile benchmark is Linux only (it counts the server's threads in /proc)");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, Read, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::common::ChildServer;
    use socketserver::command::{self, Client, CommandConfig, Protocol};

    const TOKEN: &str = "hostile-bench-token";
    const HOSTILE: usize = 256;
    /// The service's default time for a first request.
    const DEADLINE: Duration = Duration::from_secs(10);
    /// How often a dripping connection sends its next byte.
    const DRIP: Duration = Duration::from_secs(1);
    /// The longest anything is waited for.
    const PATIENCE: Duration = Duration::from_secs(60);

    pub fn main() {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        if args.first().map(String::as_str) == Some("serve-child") {
            return serve_child(args.get(1).and_then(|n| n.parse().ok()));
        }
        println!("# the command service under hostile peers\n");
        println!(
            "Server: token set, defaults (first request within {DEADLINE:?}, 8 per address, \
             512 in all). Legitimate client on 127.0.0.1: a new connection per `echo hello`. \
             Hostile: {HOSTILE} connections, half idle, half dripping a framed request a byte \
             every {DRIP:?}.\n"
        );
        println!(
            "| scenario | legitimate commands | p50 | p99 | max | hostile: closed at once / held | held: longest open | server threads, fds: before / peak / after |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let server = ours(None);
        scenario(&server, "no hostile peers", 0, 0);
        scenario(&server, "256 from 127.0.0.2", HOSTILE, 1);
        scenario(&server, "256 from 32 addresses (8 each)", HOSTILE, 32);
        drop(server);
        // With 160 descriptors, the cap of 512 is clamped to 96.
        let low = ours(Some(160));
        scenario(
            &low,
            "256 from 32 addresses, `RLIMIT_NOFILE` 160 (cap clamped to 96)",
            HOSTILE,
            32,
        );
    }

    /// The server's side: a token, every other limit its default, and the
    /// descriptor limit (soft and hard) lowered to `nofile` if given.
    fn serve_child(nofile: Option<u64>) {
        if let Some(n) = nofile {
            use rustix::process::{Resource, Rlimit, setrlimit};
            let limit = Rlimit {
                current: Some(n),
                maximum: Some(n),
            };
            setrlimit(Resource::Nofile, limit).unwrap();
        }
        let server = command::bind("127.0.0.1:0", CommandConfig::default().token(TOKEN)).unwrap();
        println!("LISTENING {}", server.local_addr().unwrap().port());
        server.serve_forever();
    }

    fn ours(nofile: Option<u64>) -> ChildServer {
        let mut me = Command::new(std::env::current_exe().unwrap());
        me.arg("serve-child");
        if let Some(n) = nofile {
            me.arg(n.to_string());
        }
        ChildServer::start(me)
    }

    fn connect_from(source: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
        use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
        let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
        bind(&fd, &SocketAddr::new(source, 0))?;
        connect(&fd, &to)?;
        Ok(TcpStream::from(fd))
    }

    fn threads_and_fds(pid: &str) -> (usize, usize) {
        let count = |dir: String| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        (
            count(format!("/proc/{pid}/task")),
            count(format!("/proc/{pid}/fd")),
        )
    }

    /// Until the server closes the connection (or `PATIENCE`): how long it
    /// was open from `since`. Idle connections read; dripping ones send a
    /// framed request's header a byte every [`DRIP`] and never finish it.
    fn hostile(mut stream: TcpStream, since: Instant, drip: bool) -> Duration {
        let mut wire = vec![200u8, 0, 0, 0];
        wire.extend_from_slice(b"{\"ver\":\"1\",\"md5\":\"");
        wire.resize(204, b'0');
        let mut next = 0;
        if drip {
            let _ = stream.write_all(&wire[..4]);
            next = 4;
        }
        let wait = if drip { DRIP } else { PATIENCE };
        let _ = stream.set_read_timeout(Some(wait));
        let mut buf = [0u8; 512];
        while since.elapsed() < PATIENCE {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue, // the challenge, or the timeout's error
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
            if drip && next < wire.len() {
                if stream.write_all(&wire[next..next + 1]).is_err() {
                    break;
                }
                next += 1;
            }
        }
        since.elapsed()
    }

    /// One row: `count` hostile connections spread over `addresses` source
    /// addresses (127.0.0.2 on), then legitimate commands until every
    /// hostile connection is closed.
    fn scenario(server: &ChildServer, name: &str, count: usize, addresses: usize) {
        let pid = server.pid();
        let before = threads_and_fds(&pid);
        let started = Instant::now();
        let attackers: Vec<_> = (0..count)
            .map(|i| {
                let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % addresses) as u8));
                let since = Instant::now();
                let stream = connect_from(source, server.addr).unwrap();
                thread::spawn(move || hostile(stream, since, i % 2 == 1))
            })
            .collect();
        let done = Arc::new(AtomicBool::new(count == 0));
        let watcher = {
            let done = Arc::clone(&done);
            let pid = pid.clone();
            thread::spawn(move || {
                let mut peak = (0, 0);
                while !done.load(Ordering::SeqCst) {
                    let now = threads_and_fds(&pid);
                    peak = (peak.0.max(now.0), peak.1.max(now.1));
                    thread::sleep(Duration::from_millis(50));
                }
                peak
            })
        };
        let mut latencies = Vec::new();
        let mut failed = 0;
        let window = if count == 0 {
            Duration::from_secs(3)
        } else {
            PATIENCE
        };
        while started.elapsed() < window
            && (count == 0 || attackers.iter().any(|a| !a.is_finished()))
        {
            let asked = Instant::now();
            let mut client = Client::connect(server.addr, Protocol::Framed)
                .unwrap()
                .with_token(TOKEN);
            // Waiting in the backlog behind a full cap, the client gives
            // up on the challenge after 5 s: counted, not timed.
            match client.run("echo hello") {
                Ok(reply) => {
                    assert_eq!(reply.stdout, b"hello\n");
                    latencies.push(asked.elapsed());
                }
                Err(_) => failed += 1,
            }
        }
        let open: Vec<Duration> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        let peak = watcher.join().unwrap();
        // Let the server's last handlers count themselves out.
        let mut after = threads_and_fds(&pid);
        for _ in 0..200 {
            if after.0 <= before.0 {
                break;
            }
            thread::sleep(Duration::from_millis(10));
            after = threads_and_fds(&pid);
        }
        latencies.sort();
        let pct = |p: usize| {
            let i = (latencies.len() * p / 100).min(latencies.len().saturating_sub(1));
            latencies.get(i).copied().unwrap_or_default()
        };
        let at_once = open.iter().filter(|o| **o < Duration::from_secs(1)).count();
        let held = open.len() - at_once;
        let longest = open.iter().max().copied().unwrap_or_default();
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {name} | {}{} | {} | {} | {} | {at_once} / {held} | {} | {before:?} / {peak:?} / {after:?} |",
            latencies.len(),
            if failed > 0 {
                format!(" ({failed} gave up waiting)")
            } else {
                String::new()
            },
            ms(pct(50)),
            ms(pct(99)),
            ms(pct(100)),
            if held > 0 {
                format!("{:.2} s", longest.as_secs_f64())
            } else {
                "-".into()
            },
        );
    }
}
