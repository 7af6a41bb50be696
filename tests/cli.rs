//! The examples' command lines, run as a new user runs them: what they do
//! not understand is a usage error (exit 2) and nothing is started;
//! `--help` and `--version` answer and exit; addresses are `HOST:PORT`,
//! names resolve, and every bind or connect error names the address.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{example, run_client, start_server};

/// The examples on clap and the shared options: all of them but
/// `quickstart`, which is the README's first server, to copy as it is.
const CONVERTED: [&str; 16] = [
    "tcp_server",
    "tcp_client",
    "udp_server",
    "udp_client",
    "socketserver",
    "socketserver_client",
    "sticky_packets",
    "cmd_server",
    "cmd_client",
    "file_server",
    "file_client",
    "soak",
    "tour",
    "chaos_proxy",
    "chat_server",
    "chat_client",
];

/// Runs a command that must exit by itself; one that is still running
/// after a generous minute (it started serving when it should not have)
/// is killed and fails the test.
fn run_to_exit(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("waits").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not exit: it started instead of refusing its arguments");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("its output")
}

/// A loopback port nobody listens on (bound, read, and let go).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Runs `name args`, expects a usage error: status 2, a message on stderr,
/// nothing on stdout. Returns stderr.
fn usage_error(name: &str, args: &[&str]) -> String {
    let mut command = example(name);
    command.args(args);
    let out = run_to_exit(command);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{name} {args:?} printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // clap's error, or (no subcommand at all) its help, ends with a
    // pointer to --help.
    assert!(stderr.contains("help"), "{name} {args:?}: {stderr}");
    stderr
}

#[test]
fn every_example_answers_help_and_version_and_exits() {
    for name in CONVERTED {
        let help = run_client({
            let mut c = example(name);
            c.arg("--help");
            c
        });
        assert!(
            help.contains(&format!("Usage: {name}")),
            "{name} --help: {help}"
        );
        let short = run_client({
            let mut c = example(name);
            c.arg("-h");
            c
        });
        assert!(short.contains("Usage:"), "{name} -h: {short}");
        let version = run_client({
            let mut c = example(name);
            c.arg("--version");
            c
        });
        assert_eq!(
            version.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
            "{name} --version"
        );
    }
}

#[test]
fn a_server_given_a_flag_it_does_not_know_starts_nothing() {
    // The cases: an unknown flag, a typo, a flag without its
    // suffix (whose value once became the address), a bad value.
    for name in ["tcp_server", "udp_server", "socketserver"] {
        for bad in [
            &["--bogus"][..],
            &["--dealy-ms", "1000"],
            &["--delay", "1000"],
            &["--delay-ms", "x"],
            &["--delay-ms", "-5"],
            &["127.0.0.1:9999", "extra"],
        ] {
            if name == "socketserver" && bad[0].starts_with("--delay-ms") {
                continue;
            }
            let addr = free_port();
            let mut args = vec![addr.to_string()];
            args.extend(bad.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            usage_error(name, &args);
            // Nothing was listening there, and nothing is now: the port
            // can be bound again.
            TcpListener::bind(addr).expect("the port is still free");
            UdpSocket::bind(addr).expect("the port is still free");
        }
    }
    let addr = free_port().to_string();
    usage_error("file_server", &[&addr]); // no --root
    usage_error(
        "file_server",
        &[&addr, "--root", ".", "--max-upload", "lots"],
    );
    usage_error("file_server", &[&addr, "--root", ".", "--read-only", "yes"]);
    usage_error("soak", &["--secs", "ten"]);
    usage_error("soak", &["--seconds", "10"]);
    usage_error("sticky_packets", &["--size", "0"]);
    usage_error("sticky_packets", &["--sise", "10"]);
}

#[test]
fn a_client_given_a_flag_it_does_not_know_connects_nowhere() {
    usage_error("tcp_client", &["--bogus"]);
    usage_error("udp_client", &["--timeout", "200"]);
    usage_error("udp_client", &["--timeout-ms", "soon"]);
    usage_error("socketserver_client", &["--bogus"]);
    usage_error("file_client", &[]); // no operation
    usage_error("file_client", &["frobnicate"]);
    usage_error("file_client", &["get"]); // no name
    usage_error("file_client", &["ls", "--bogus"]);
}

#[test]
fn the_tour_and_the_chaos_proxy_refuse_what_they_do_not_know() {
    usage_error("tour", &["--bogus"]);
    usage_error("tour", &["--lang", "fr"]);
    usage_error("tour", &["--html", "a.html", "b.html"]); // one FILE at most (none: target/tour.html)
    usage_error("tour", &["sticky"]); // no lessons by name
    let (listen, upstream) = (free_port(), free_port().to_string());
    let listen_text = listen.to_string();
    for bad in [
        &[][..], // no UPSTREAM
        &[upstream.as_str(), "--segment", "0"],
        &[upstream.as_str(), "--segmnet", "2"],
        &[upstream.as_str(), "--delay-ms", "soon"],
        &[upstream.as_str(), "--cut-after", "-1"],
        &[upstream.as_str(), "--conversations"],
        &[upstream.as_str(), "extra"],
    ] {
        let mut args = vec![listen_text.as_str()];
        args.extend(bad);
        usage_error("chaos_proxy", &args);
        TcpListener::bind(listen).expect("the proxy listened on nothing");
    }
    let stderr = usage_error("chaos_proxy", &[&listen_text, "localhost"]);
    assert!(stderr.contains("localhost:9999"), "{stderr}");
}

#[test]
fn the_tours_help_is_in_both_languages_and_runs_no_lesson() {
    let help = run_client({
        let mut c = example("tour");
        c.arg("--help");
        c
    });
    for option in [
        "--lang <zh|en>",
        "--html [<FILE>]",
        "--svg [<DIR>]",
        "target/tour.html",
        "--version",
    ] {
        assert!(help.contains(option), "{option}: {help}");
    }
    assert!(help.contains("The narration's language"), "{help}");
    assert!(help.contains("讲解的语言"), "{help}");
    assert!(!help.contains("== 1."), "a lesson ran: {help}");
}

#[test]
fn an_address_without_a_port_gets_a_hint() {
    let stderr = usage_error("tcp_client", &["localhost"]);
    assert!(stderr.contains("HOST:PORT"), "{stderr}");
    assert!(stderr.contains("localhost:9999"), "{stderr}");
    let stderr = usage_error("tcp_server", &["::1"]);
    assert!(stderr.contains("[::1]:9999"), "{stderr}");
    let stderr = usage_error("udp_client", &["127.0.0.1:http"]);
    assert!(stderr.contains("0 to 65535"), "{stderr}");
    let stderr = usage_error("file_client", &["nosuchhost.invalid:9998", "ls"]);
    assert!(
        stderr.contains("cannot resolve nosuchhost.invalid"),
        "{stderr}"
    );
}

#[test]
fn a_hostname_is_resolved() {
    let mut server = example("tcp_server");
    server.arg("127.0.0.1:0");
    let server = start_server(server);
    let mut client = example("tcp_client");
    client.arg(format!("localhost:{}", server.addr.port()));
    let out = run_client(client);
    assert_eq!(out, "Welcome!\n你好,Michael\n你好,Tracy\n你好,Sarah\n");
}

#[test]
fn a_connect_error_names_the_address_tried() {
    for name in ["tcp_client", "socketserver_client", "file_client"] {
        let addr = free_port().to_string();
        let mut command = example(name);
        command.arg(&addr);
        if name == "file_client" {
            command.arg("ls");
        }
        let out = run_to_exit(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&addr), "{name}: {stderr}");
    }
}

#[test]
fn a_bind_error_names_the_address_tried() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let root = std::env::temp_dir();
    for (name, extra) in [
        ("tcp_server", &[][..]),
        ("socketserver", &[]),
        ("file_server", &["--root", root.to_str().unwrap()]),
        ("chaos_proxy", &["127.0.0.1:9"]),
    ] {
        let mut command = example(name);
        command.arg(&addr).args(extra);
        let out = run_to_exit(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot listen on {addr}")),
            "{name}: {stderr}"
        );
    }
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_to_exit({
        let mut c = example("udp_server");
        c.arg(&addr);
        c
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn the_socketserver_example_and_its_client_work_together() {
    let mut server = example("socketserver");
    let mut child = server
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let stdout = guard.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("listening on ")
        .expect(&first)
        .to_owned();
    let mut client = example("socketserver_client");
    client.args([&addr, "你好 socketserver"]);
    let out = run_client(client);
    assert!(out.starts_with("sent 19 bytes to"), "{out}");
    // The client returns once the server has read and hung up, and the
    // server prints before it hangs up.
    let line = lines.next().unwrap().unwrap();
    assert!(
        line.starts_with("client:127.0.0.1:") && line.ends_with("msg:\"你好 socketserver\""),
        "{line}"
    );
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// Shows (issue 23): `tcp_server --proxy-protocol 127.0.0.1` takes a PROXY
// header from this machine, greets the client it names, and the seed's log
// line (从%s接受新连接) shows that client, not the balancer.
#[test]
fn tcp_server_behind_a_balancer_logs_the_real_client() {
    use std::io::{Read, Write};
    let mut child = example("tcp_server")
        .args([
            "127.0.0.1:0",
            "--reuse-port",
            "--proxy-protocol",
            "127.0.0.1,10.0.0.0/8",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let mut lines = BufReader::new(guard.0.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("a line").unwrap();
        if let Some((_, addr)) = line.split_once("listening on ") {
            break addr.trim().parse().unwrap();
        }
    };
    let mut balancer = std::net::TcpStream::connect(addr).unwrap();
    balancer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    balancer
        .write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 9999\r\nMichael")
        .unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while !String::from_utf8_lossy(&reply).contains("Michael") {
        let n = balancer.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&reply), "Welcome!你好,Michael");
    let accepted = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("接受新连接"))
        .expect("the accept line");
    assert!(accepted.contains("203.0.113.7:51000"), "{accepted}");
    drop(guard);
    // A trusted list that does not parse is a usage error, before binding.
    for name in ["tcp_server", "socketserver", "chat_server"] {
        let stderr = usage_error(name, &["--proxy-protocol", "127.0.0.1,10.0.0.0/33"]);
        assert!(stderr.contains("not an address or a network"), "{stderr}");
    }
}
