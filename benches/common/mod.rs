//! What the benchmarks share: reading a process's memory and CPU time from
//! /proc, and a server in a child process that says where it listens.
// Each benchmark uses only part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

/// A figure in KiB from /proc/PID/status (`pid` may be `self`): `VmRSS`
/// now, `VmHWM` the peak.
pub fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A process's user + system CPU time so far, from /proc/PID/stat (10 ms
/// ticks).
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime
    // are the 12th and 13th of them.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// A server in a child process, killed when dropped. It prints
/// `LISTENING PORT` (on 127.0.0.1) once bound; the rest of its output is
/// drained so it never blocks on a full pipe.
pub struct ChildServer {
    pub addr: SocketAddr,
    child: Child,
}

impl ChildServer {
    pub fn start(mut command: Command) -> ChildServer {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port: u16 = loop {
            let line = lines.next().expect("a LISTENING line").unwrap();
            if let Some(port) = line.strip_prefix("LISTENING ") {
                break port.trim().parse().unwrap();
            }
        };
        thread::spawn(move || for _ in lines {});
        ChildServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }

    /// The child's process id, as /proc names it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The child's peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        status_kib(&self.pid(), "VmHWM")
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seed's greeting as load: round trips per second, and the
/// interleaved rounds every throughput table is made of.
pub mod greeting {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    const NAME: &[u8] = b"Michael";
    const REPLY_LEN: usize = "你好,Michael".len();
    /// The pause before each server's round, for the last one's threads to end.
    const SETTLE: Duration = Duration::from_millis(50);

    /// Each server's round trips per second in `rounds` rounds of `round`,
    /// sorted. Each round starts with the next server, so each follows
    /// every other as often: a server's round never always inherits the
    /// same neighbour's leftovers (its handler threads exiting, its
    /// sockets closing). A pause lets those settle first.
    pub fn interleaved(
        addrs: &[SocketAddr],
        conns: usize,
        churn: bool,
        round: Duration,
        rounds: usize,
    ) -> Vec<Vec<f64>> {
        let mut taken = vec![Vec::new(); addrs.len()];
        for r in 0..rounds {
            for k in 0..addrs.len() {
                let i = (r + k) % addrs.len();
                thread::sleep(SETTLE);
                taken[i].push(load(addrs[i], conns, churn, round));
            }
        }
        for rounds in &mut taken {
            rounds.sort_by(f64::total_cmp);
        }
        taken
    }

    /// The middle round of sorted `rounds`.
    #[allow(dead_code)] // one benchmark's statistic, not the other's
    pub fn median(rounds: &[f64]) -> f64 {
        rounds[rounds.len() / 2]
    }

    /// The mean of sorted `rounds` without the tenth at either end (a
    /// stalled round, a lucky one). Where the rounds fall into two modes
    /// (see the benchmark docs: a client and its handler on one core or
    /// on two), the mean weighs each by how often it came; the median
    /// jumps from one to the other.
    #[allow(dead_code)] // one benchmark's statistic, not the other's
    pub fn trimmed_mean(rounds: &[f64]) -> f64 {
        let cut = rounds.len() / 10;
        let kept = &rounds[cut..rounds.len() - cut];
        kept.iter().sum::<f64>() / kept.len() as f64
    }

    fn greet_once(stream: &mut TcpStream, reply: &mut [u8]) -> io::Result<()> {
        stream.write_all(NAME)?;
        stream.read_exact(reply)
    }

    /// Round trips per second over `conns` connections kept open, or, with
    /// `churn`, connect + banner + one round trip + close per operation.
    pub fn load(addr: SocketAddr, conns: usize, churn: bool, round: Duration) -> f64 {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let ready = Arc::new(std::sync::Barrier::new(conns + 1));
        let clients: Vec<_> = (0..conns)
            .map(|_| {
                let (stop, done, ready) =
                    (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&ready));
                thread::spawn(move || -> io::Result<()> {
                    let mut banner = [0u8; 8];
                    let mut reply = [0u8; REPLY_LEN];
                    let mut open = if churn {
                        None
                    } else {
                        let mut s = TcpStream::connect(addr)?;
                        s.read_exact(&mut banner)?;
                        Some(s)
                    };
                    ready.wait();
                    let mut count = 0;
                    while !stop.load(Ordering::Relaxed) {
                        match &mut open {
                            Some(stream) => greet_once(stream, &mut reply)?,
                            None => {
                                let mut s = TcpStream::connect(addr)?;
                                s.read_exact(&mut banner)?;
                                greet_once(&mut s, &mut reply)?;
                                s.write_all(b"exit")?;
                                // Let the server close first, so TIME_WAIT
                                // lands on its side, not on our ports.
                                let _ = s.read(&mut banner);
                            }
                        }
                        count += 1;
                    }
                    done.fetch_add(count, Ordering::Relaxed);
                    if let Some(mut s) = open {
                        s.write_all(b"exit")?;
                    }
                    Ok(())
                })
            })
            .collect();
        ready.wait();
        let started = Instant::now();
        thread::sleep(round);
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed();
        for client in clients {
            client.join().unwrap().expect("a client failed");
        }
        done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    }
}
