//! Beyond one process, beyond one machine: HAProxy in front of two
//! `tcp_server` processes that share one port, run for real on loopback.
//!
//! ```sh
//! sudo apt-get install haproxy                # HAProxy from the system's packages
//! cargo build --example tcp_server            # the backends (built for you if missing)
//! cargo run --example scale_out               # 40 clients from 127.0.0.2, one from 127.0.0.3
//! cargo run --example scale_out -- --clients 20 --haproxy /usr/sbin/haproxy
//! ```
//!
//! Behind a load balancer every client seems to come from the balancer:
//! the seed's log line (`从%s:%s接受新连接`) and the per-address cap would
//! see one address. With `send-proxy-v2` HAProxy opens each backend
//! connection with a PROXY protocol header that names the real client, and
//! `tcp_server --proxy-protocol TRUSTED` reads it from the trusted balancer
//! only. This program starts everything, checks that each backend logs the
//! real clients and that `tcp_server`'s cap (16 connections per client
//! address, per process) holds through the balancer, that a client going
//! round the balancer with a PROXY header of its own is refused, and stops
//! everything it started (also when something fails). Exit status 1 if a
//! check fails.

// The backends are stopped with SIGINT (their Ctrl-C, which prints their
// counters), and the clients bind a source address: Unix calls.
#[cfg(unix)]
mod cli;

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("scale_out: Unix only (it signals processes and binds client source addresses)");
    std::process::exit(1);
}

#[cfg(unix)]
mod unix {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use clap::Parser;

    use crate::cli;

    /// HAProxy (send-proxy-v2) in front of two tcp_server processes on one
    /// port (--reuse-port --proxy-protocol), on loopback.
    ///
    /// Shows that each backend logs the real client, not HAProxy, and that
    /// the per-address cap holds through the balancer: a burst of clients
    /// from 127.0.0.2 is capped, a client from 127.0.0.3 is still served.
    #[derive(Parser, Debug)]
    #[command(name = "scale_out", version)]
    struct Cli {
        /// Connections held open at once from 127.0.0.2 (over the two
        /// backends' caps of 16 each, some are refused)
        #[arg(long, value_name = "N", default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=200))]
        clients: u16,
        /// The HAProxy program
        #[arg(long, value_name = "PATH", default_value = "haproxy")]
        haproxy: PathBuf,
        /// The tcp_server program (default: the one built beside this example)
        #[arg(long = "tcp-server", value_name = "PATH")]
        tcp_server: Option<PathBuf>,
        #[command(flatten)]
        timeout: cli::Timeout,
    }

    /// HAProxy's own address towards the backends (its `source`): not the
    /// clients' 127.0.0.1, so a log line with the balancer's address in it
    /// would stand out. Also the backends' trusted list.
    const BALANCER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);
    /// Where the burst comes from, and the client that must still be served.
    const BURST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
    /// `tcp_server`'s cap: connections at once from one address, per process.
    const CAP: usize = 16;
    /// How long a process has to start listening or to stop.
    const PATIENCE: Duration = Duration::from_secs(10);

    pub fn main() {
        cli::logger::init();
        let cli = Cli::parse();
        let mut procs = Processes::default();
        let result = run(&cli, &mut procs);
        // Every process we started is gone before we say how it went.
        drop(procs);
        match result {
            Ok(()) => println!("scale_out: all checks passed"),
            Err(e) => {
                eprintln!("scale_out: {e}");
                std::process::exit(1);
            }
        }
    }

    fn run(cli: &Cli, procs: &mut Processes) -> io::Result<()> {
        let tcp_server = match &cli.tcp_server {
            Some(path) => path.clone(),
            None => sibling("tcp_server")?,
        };
        let trusted = BALANCER.to_string();
        let backend = |addr: &str| {
            let mut cmd = Command::new(&tcp_server);
            cmd.args([addr, "--reuse-port", "--proxy-protocol", &trusted]);
            cmd
        };
        // The first backend takes a free port (port 0); the second shares it.
        let s1 = procs.start("s1", backend("127.0.0.1:0"))?;
        let port = procs.listening(s1)?.port();
        let s2 = procs.start("s2", backend(&format!("127.0.0.1:{port}")))?;
        procs.listening(s2)?;
        println!("scale_out: s1 and s2 share 127.0.0.1:{port} (SO_REUSEPORT)");

        // HAProxy's configuration needs a port number in it: take a free
        // one by binding port 0 and letting it go. (Another program could
        // take it in between; HAProxy would then fail to start, and we say so.)
        let front = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config = procs.config(&haproxy_config(front, port))?;
        let mut haproxy = Command::new(&cli.haproxy);
        // -db: in the foreground, no daemon; it stops when we kill it.
        haproxy.arg("-f").arg(&config).arg("-db");
        let ha = procs.start("haproxy", haproxy)?;
        procs.wait_for_port(ha, front)?;
        println!("scale_out: HAProxy on {front}, send-proxy-v2 from {BALANCER}");

        // 1. The seed's client, as the seed wrote it, through the balancer.
        seed_client(front)?;

        // 2. A burst from one address, held open: each backend serves at
        //    most CAP of it, and refuses the rest.
        let timeout = cli.timeout.timeout;
        let mut held = Vec::new();
        let mut welcomed = 0;
        for _ in 0..cli.clients {
            let (stream, welcome) = greet(BURST, front, timeout)?;
            welcomed += usize::from(welcome);
            held.push(stream);
        }
        // 3. Another address while the burst holds its places: served.
        let (stranger, other_served) = greet(OTHER, front, timeout)?;
        println!(
            "scale_out: {welcomed} of {} clients from {BURST} welcomed; {OTHER} {}",
            cli.clients,
            if other_served { "welcomed" } else { "REFUSED" }
        );
        for mut stream in held.into_iter().chain([stranger]) {
            let _ = stream.write_all(b"exit");
        }

        // 4. A client that goes round the balancer and writes a PROXY
        //    header of its own, to pass for someone else: it is not the
        //    trusted balancer, so it is closed unread and unserved.
        let mut spoof = TcpStream::connect(("127.0.0.1", port))?;
        spoof.set_read_timeout(Some(timeout))?;
        spoof.write_all(b"PROXY TCP4 203.0.113.66 127.0.0.1 4444 9999\r\n")?;
        let mut heard = Vec::new();
        let _ = spoof.read_to_end(&mut heard);
        let spoof_served = !heard.is_empty();
        println!(
            "scale_out: a client that skips the balancer, claiming 203.0.113.66: {}",
            if spoof_served {
                "SERVED"
            } else {
                "closed unserved"
            }
        );

        // Stop the backends as Ctrl-C would: each prints its counters.
        let mut refused = 0;
        let mut refused_proxy = 0;
        for id in [s1, s2] {
            let line = procs.interrupt(id)?;
            refused_proxy += refused_by_proxy(&line);
            refused +=
                refused_per_peer(&line).ok_or_else(|| other(format!("no counters in {line:?}")))?;
        }

        // The checks.
        let mut failures = Vec::new();
        for id in [s1, s2] {
            let p = &procs.list[id];
            let logged = |ip: IpAddr| p.lines.iter().any(|l| accepted(l) == Some(ip));
            if logged(Ipv4Addr::new(203, 0, 113, 66).into()) {
                failures.push(format!("{} served the spoofed 203.0.113.66", p.name));
            }
            if !logged(BURST.into()) {
                failures.push(format!("{} logged no client from {BURST}", p.name));
            }
            if logged(BALANCER.into()) {
                failures.push(format!(
                    "{} logged the balancer {BALANCER} as a client",
                    p.name
                ));
            }
        }
        let total = usize::from(cli.clients);
        if welcomed > 2 * CAP {
            failures.push(format!(
                "{welcomed} from one address welcomed, over 2 × {CAP}"
            ));
        }
        if welcomed + refused != total + usize::from(!other_served) {
            failures.push(format!(
                "{welcomed} welcomed + {refused} refused is not {total} connections"
            ));
        }
        if spoof_served || refused_proxy != 1 {
            failures.push(format!(
                "the client that skipped the balancer: served {spoof_served}, \
                 {refused_proxy} refused by the PROXY protocol (want 1)"
            ));
        }
        if !other_served {
            failures.push(format!(
                "{OTHER} was refused: the cap counted the balancer, not the client"
            ));
        }
        println!("scale_out: the backends refused {refused} over the per-address cap");
        if failures.is_empty() {
            Ok(())
        } else {
            Err(other(failures.join("; ")))
        }
    }

    /// The balancer's configuration: one frontend, one backend server (the
    /// shared port; the kernel spreads its connections over s1 and s2).
    fn haproxy_config(front: SocketAddr, port: u16) -> String {
        format!(
            "global\n    maxconn 512\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
             frontend greet\n    bind {front}\n    default_backend greeters\n\
             backend greeters\n    server s1 127.0.0.1:{port} send-proxy-v2 source {BALANCER}\n"
        )
    }

    /// Runs the seed's Python client (tests/peers) through the balancer,
    /// where python3 and the source tree are at hand; says so otherwise.
    fn seed_client(front: SocketAddr) -> io::Result<()> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/greet_tcp_client.py");
        let output = match Command::new("python3")
            .arg(&script)
            .arg(front.to_string())
            .output()
        {
            Ok(out) if script.exists() => out,
            _ => {
                println!(
                    "scale_out: (no python3 or no {}: the seed's client skipped)",
                    script.display()
                );
                return Ok(());
            }
        };
        let text = String::from_utf8_lossy(&output.stdout);
        for line in text.lines() {
            println!("[seed client] {line}");
        }
        if !output.status.success() || !text.starts_with("Welcome!") {
            return Err(other(format!(
                "the seed's client failed: {}",
                output.status
            )));
        }
        Ok(())
    }

    /// Connects from `source` and waits for the greeting: whether it came
    /// (`false`: the connection was closed unserved).
    fn greet(source: Ipv4Addr, to: SocketAddr, timeout: Duration) -> io::Result<(TcpStream, bool)> {
        // socket2 makes it close-on-exec on every system (the balancer
        // and the servers are children of this process).
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(source.into(), 0).into())?;
        socket.connect(&to.into())?;
        let mut stream = TcpStream::from(socket);
        stream.set_read_timeout(Some(timeout))?;
        let mut buf = [0u8; 16];
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            // Closed with data unread on the far side: unserved too.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
            Err(e) => return Err(other(format!("waiting for a greeting from {source}: {e}"))),
        };
        Ok((stream, buf[..n].starts_with(b"Welcome!")))
    }

    /// N from the counters' `, N refused by the PROXY protocol` (absent: 0).
    fn refused_by_proxy(line: &str) -> usize {
        line.split_once(" refused by the PROXY protocol")
            .and_then(|(head, _)| head.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// The client's address in the seed's log line `从ADDR接受新连接`.
    fn accepted(line: &str) -> Option<IpAddr> {
        let rest = line.strip_prefix("从")?;
        let addr = &rest[..rest.find("接受新连接")?];
        addr.parse::<SocketAddr>().ok().map(|a| a.ip())
    }

    /// N from the counters' `N refused over the per-peer cap`.
    fn refused_per_peer(line: &str) -> Option<usize> {
        let head = line.split(" refused over the per-peer cap").next()?;
        head.rsplit(' ').next()?.parse().ok()
    }

    /// A program built beside this one (target/<profile>/examples/), built
    /// now if it is not there.
    fn sibling(name: &str) -> io::Result<PathBuf> {
        let path = std::env::current_exe()?.with_file_name(name);
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "--example", name]);
            if !cfg!(debug_assertions) {
                build.arg("--release");
            }
            if !build.status()?.success() {
                return Err(other(format!("cannot build the {name} example")));
            }
        }
        Ok(path)
    }

    fn other(message: String) -> io::Error {
        io::Error::other(message)
    }

    /// One process we started and what it printed so far.
    struct Proc {
        name: &'static str,
        child: Child,
        lines: Vec<String>,
        /// Its stdout and stderr, a line at a time, from two reader threads.
        rx: mpsc::Receiver<String>,
    }

    /// Every process we started and the files we wrote: all killed, waited
    /// for and removed when this goes, on every path out of `run`.
    #[derive(Default)]
    struct Processes {
        list: Vec<Proc>,
        files: Vec<PathBuf>,
    }

    impl Processes {
        fn start(&mut self, name: &'static str, mut cmd: Command) -> io::Result<usize> {
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| other(format!("{}: {e}", Path::new(cmd.get_program()).display())))?;
            println!("scale_out: started {name} (pid {})", child.id());
            let (tx, rx) = mpsc::channel();
            let out: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped"));
            let err: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped"));
            for pipe in [out, err] {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        println!("[{name}] {line}");
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
            }
            self.list.push(Proc {
                name,
                child,
                lines: Vec::new(),
                rx,
            });
            Ok(self.list.len() - 1)
        }

        /// Waits (bounded) for a line that `found` picks a value from.
        fn wait_line<T>(
            &mut self,
            id: usize,
            what: &str,
            found: impl Fn(&str) -> Option<T>,
        ) -> io::Result<T> {
            let p = &mut self.list[id];
            let deadline = Instant::now() + PATIENCE;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match p.rx.recv_timeout(left) {
                    Ok(line) => {
                        let value = found(&line);
                        p.lines.push(line);
                        if let Some(value) = value {
                            return Ok(value);
                        }
                    }
                    Err(_) => {
                        return Err(other(format!("{}: no {what} within {PATIENCE:?}", p.name)));
                    }
                }
            }
        }

        /// The address a `tcp_server` says it listens on.
        fn listening(&mut self, id: usize) -> io::Result<SocketAddr> {
            self.wait_line(id, "listening line", |l| {
                l.split("listening on ").nth(1)?.trim().parse().ok()
            })
        }

        /// Waits (bounded) until HAProxy accepts on `addr`, or has exited.
        /// HAProxy says nothing when it is ready, so we try to connect (the
        /// try that succeeds reaches a backend: the first `从127.0.0.1` line).
        fn wait_for_port(&mut self, id: usize, addr: SocketAddr) -> io::Result<()> {
            let deadline = Instant::now() + PATIENCE;
            loop {
                if TcpStream::connect(addr).is_ok() {
                    return Ok(());
                }
                let p = &mut self.list[id];
                if let Some(status) = p.child.try_wait()? {
                    return Err(other(format!(
                        "{} exited ({status}) before listening on {addr}",
                        p.name
                    )));
                }
                if Instant::now() > deadline {
                    return Err(other(format!(
                        "{} not listening on {addr} within {PATIENCE:?}",
                        p.name
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// Ctrl-C for a backend: SIGINT, then its `stopped: ...` line.
        fn interrupt(&mut self, id: usize) -> io::Result<String> {
            let pid = rustix::process::Pid::from_raw(self.list[id].child.id() as i32)
                .ok_or_else(|| other("no pid".into()))?;
            rustix::process::kill_process(pid, rustix::process::Signal::INT)?;
            let line = self.wait_line(id, "counters after SIGINT", |l| {
                l.strip_prefix("stopped: ").map(str::to_owned)
            })?;
            self.list[id].child.wait()?;
            Ok(line)
        }

        /// Writes a file that goes when we do.
        fn config(&mut self, text: &str) -> io::Result<PathBuf> {
            let path = std::env::temp_dir()
                .join(format!("socketserver-scale-out-{}.cfg", std::process::id()));
            self.files.push(path.clone());
            std::fs::write(&path, text)?;
            Ok(path)
        }
    }

    impl Drop for Processes {
        fn drop(&mut self) {
            for p in &mut self.list {
                // An exited child: kill fails harmlessly, wait returns at once.
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
            for file in &self.files {
                let _ = std::fs::remove_file(file);
            }
        }
    }
}
