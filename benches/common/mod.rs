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
