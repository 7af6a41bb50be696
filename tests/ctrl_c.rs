//! Every server example stops on Ctrl-C: SIGINT to the process, with a
//! client connected, and it exits 0 with its one summary line.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::example;

/// Starts an example server on port 0; returns it and where it listens.
// The child goes back to the caller, which waits for it.
#[allow(clippy::zombie_processes)]
fn start(mut command: Command) -> (Child, BufReader<std::process::ChildStdout>, SocketAddr) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server exited before saying where it listens");
        }
        if let Some((_, addr)) = line.split_once("listening on ") {
            return (child, out, addr.trim().parse().expect("an address"));
        }
    }
}

/// Sends SIGINT, waits (bounded) for the exit; returns the time it took,
/// the status and the rest of stdout and stderr.
fn interrupt(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (Duration, std::process::ExitStatus, String, String) {
    let start = Instant::now();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("still running 20 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (took, status, rest, err)
}

#[test]
fn every_server_example_stops_on_ctrl_c_with_a_summary_and_exit_0() {
    let root = std::env::temp_dir().join(format!("socketserver-ctrl-c-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let servers: [(&str, &[&str]); 5] = [
        ("tcp_server", &["127.0.0.1:0"]),
        ("udp_server", &["127.0.0.1:0"]),
        ("socketserver", &["127.0.0.1:0"]),
        (
            "file_server",
            &["127.0.0.1:0", "--root", root.to_str().unwrap()],
        ),
        ("chat_server", &["127.0.0.1:0"]),
    ];
    for (name, args) in servers {
        let mut command = example(name);
        command.args(args);
        let (child, out, addr) = start(command);
        // A client connected (and idle) when the signal comes.
        let _client = (name != "udp_server").then(|| TcpStream::connect(addr).unwrap());
        let (took, status, rest, err) = interrupt(child, out);
        println!(
            "{name}: exited {status} {took:?} after SIGINT; {}",
            rest.trim()
        );
        assert!(status.success(), "{name}: {status}\n{rest}\n{err}");
        assert!(
            rest.lines()
                .any(|l| l.starts_with("stopped: ") && l.contains(" requests: ")),
            "{name}: no summary line in {rest:?}"
        );
        assert!(took < Duration::from_secs(5), "{name}: {took:?}");
        // env_logger's line: `[INFO  socketserver] stopping: ...`.
        assert!(
            err.lines()
                .any(|l| l.contains("INFO") && l.contains("socketserver] stopping")),
            "{name}: logged {err:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// The README's quick start (`examples/quickstart.rs`) serves a client
/// and stops on Ctrl-C with its summary line.
#[test]
fn the_quick_start_serves_and_stops_on_ctrl_c() {
    let mut command = example("quickstart");
    command.arg("127.0.0.1:0");
    let (child, out, addr) = start(command);
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"hello, socketserver\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&client).read_line(&mut reply).unwrap();
    assert_eq!(reply, "HELLO, SOCKETSERVER\n");
    let (took, status, rest, err) = interrupt(child, out);
    assert!(status.success(), "{status}\n{rest}\n{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        rest.lines()
            .any(|l| l.starts_with("stopped: 1 requests: 1 completed")),
        "{rest:?}"
    );
}
