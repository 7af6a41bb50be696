//! The remote command service: compatible with the seed's Python client and
//! server, and safe where the seed is not.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::{example, peer, python3, run_client, start_server};
use socketserver::command::{self, Client, CommandConfig, CommandError, Protocol};
use socketserver::frame;

/// Starts a command server on loopback, port 0, and serves it on a thread.
fn serve(config: CommandConfig) -> SocketAddr {
    let server = command::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.serve_forever());
    addr
}

fn framed(addr: SocketAddr) -> Client {
    Client::connect(addr, Protocol::Framed).unwrap()
}

/// The commands of the seed's lesson, with what its client prints for
/// each: output, no output (`ok`), only stderr, and UTF-8.
const SEED_SESSION: &str = "echo hello\ntrue\nls /no-such-dir\necho 你好\nexit\n";

/// Runs the seed's Python client against `addr` and returns what it printed,
/// less the header dicts (ours carry extra keys, which it ignores).
fn seed_client_session(addr: SocketAddr) -> Option<String> {
    let mut python = python3()?;
    let mut child = python
        .arg(peer("cmd_client.py"))
        .args([addr.ip().to_string(), addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SEED_SESSION.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the seed's client failed");
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.replace(">>>", "\n")
            .lines()
            .filter(|l| !l.starts_with("{'ver'") && !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn the_seeds_client_prints_the_same_against_the_seeds_server_and_ours() {
    let Some(mut python) = python3() else {
        return;
    };
    python.arg(peer("cmd_server.py")).arg("0");
    let seed_server = start_server(python);
    let baseline = seed_client_session(seed_server.addr).unwrap();
    assert_eq!(
        baseline,
        "hello\nok\nls: cannot access '/no-such-dir': No such file or directory\n你好"
    );
    let mut ours = example("cmd_server");
    ours.arg("127.0.0.1:0");
    let our_server = start_server(ours);
    assert_eq!(seed_client_session(our_server.addr).unwrap(), baseline);
}

#[test]
fn our_client_speaks_the_seeds_protocol_to_the_seeds_server() {
    let Some(mut python) = python3() else {
        return;
    };
    python.arg(peer("cmd_server.py")).arg("0");
    let seed_server = start_server(python);
    let mut client = Client::connect(seed_server.addr, Protocol::Seed).unwrap();
    assert_eq!(client.run("echo hello").unwrap().stdout, b"hello\n");
    assert_eq!(client.run("true").unwrap().stdout, b"ok");
    assert!(
        client
            .run("ls /no-such-dir")
            .unwrap()
            .stdout
            .starts_with(b"ls: cannot access")
    );
    assert_eq!(client.run("echo 你好").unwrap().stdout, "你好\n".as_bytes());
    // And the example binary, one-shot, the same way.
    let mut one_shot = example("cmd_client");
    one_shot.args([
        &seed_server.addr.to_string(),
        "--protocol",
        "seed",
        "--",
        "echo",
        "hi there",
    ]);
    assert_eq!(run_client(one_shot), "hi there\n");
}

#[test]
fn framed_replies_keep_stdout_stderr_and_the_exit_status() {
    let addr = serve(CommandConfig::default());
    let mut client = framed(addr);
    let reply = client.run("ls / /no-such-dir").unwrap();
    assert!(
        reply.stdout.windows(3).any(|w| w == b"usr"),
        "stdout has the listing"
    );
    assert!(reply.stderr.starts_with(b"ls: cannot access"));
    assert_eq!(reply.exit, Some(2));
    // The same connection goes on.
    assert_eq!(
        client.run("echo 'quoted words' stay").unwrap().stdout,
        b"quoted words stay\n"
    );
}

#[test]
fn the_one_shot_client_exits_with_the_commands_code() {
    let addr = serve(CommandConfig::default());
    let status = example("cmd_client")
        .args([&addr.to_string(), "--", "sh", "-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
}

#[test]
fn large_outputs_arrive_whole_and_verified_from_both_pipes_at_once() {
    // The seed reads stderr to its end before stdout: more than a pipe's
    // 64 KiB on stdout deadlocks it. Here both are read at once.
    let addr = serve(CommandConfig::default().shell(true).max_output(64 << 20));
    let mut client = framed(addr);
    for size in [1usize << 20, 20 << 20] {
        let reply = client
            .run(&format!(
                "head -c {size} /dev/urandom; head -c 100000 /dev/zero >&2"
            ))
            .unwrap(); // the frame reader has checked the md5 of every byte
        assert_eq!(reply.stdout.len(), size);
        assert_eq!(reply.stderr.len(), 100_000);
        assert!(!reply.truncated);
    }
}

#[test]
fn a_command_past_its_timeout_is_killed_and_the_reply_says_so() {
    let addr = serve(CommandConfig::default().timeout(Duration::from_millis(300)));
    let started = Instant::now();
    let reply = framed(addr).run("sleep 60").unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(reply.timed_out);
    assert_eq!(reply.signal, Some(9));
    assert_eq!(reply.exit, None);
}

#[test]
fn output_past_the_cap_is_cut_and_flagged() {
    let addr = serve(CommandConfig::default().max_output(1 << 20));
    let reply = framed(addr).run("head -c 5000000 /dev/zero").unwrap();
    assert!(reply.truncated);
    assert_eq!(reply.stdout.len(), 1 << 20);
}

/// Processes (zombies too) whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> usize {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline == &wanted)
        .count()
}

/// Waits, within a bound, for a condition on the outside world (a process
/// starting or ending: nothing this test can be told about directly).
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_that_leaves_takes_its_command_with_it() {
    let addr = serve(CommandConfig::default());
    let argv = ["sleep", "61.25"];
    let mut stream = TcpStream::connect(addr).unwrap();
    frame::write_frame(&mut stream, b"sleep 61.25").unwrap();
    eventually("the command started", || processes(&argv) == 1);
    drop(stream);
    // Killed and reaped: not even a zombie is left.
    eventually("the command was killed and reaped", || {
        processes(&argv) == 0
    });
}

#[test]
fn bad_requests_get_clear_errors_and_the_connection_goes_on_when_it_can() {
    let addr = serve(CommandConfig::default());
    let mut client = framed(addr);
    let server_error = |r: Result<_, CommandError>| match r {
        Err(CommandError::Server(msg)) => msg,
        other => panic!("expected a server error, got {other:?}"),
    };
    assert_eq!(server_error(client.run("   ")), "empty command");
    assert!(server_error(client.run("no-such-program-here")).contains("no such program"));
    assert!(server_error(client.run("echo 'unclosed")).contains("unclosed quote"));
    assert_eq!(
        client.run("echo still here").unwrap().stdout,
        b"still here\n"
    );

    // Not UTF-8.
    let mut stream = TcpStream::connect(addr).unwrap();
    frame::write_frame(&mut stream, b"echo \xff").unwrap();
    let reply = frame::read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(reply.header.extra["error"], "command is not UTF-8");

    // Over-long: an error, then the connection is closed.
    let mut stream = TcpStream::connect(addr).unwrap();
    frame::write_frame(&mut stream, &vec![b'x'; 100_000]).unwrap();
    let reply = frame::read_frame(&mut stream).unwrap().unwrap();
    assert!(
        reply.header.extra["error"]
            .as_str()
            .unwrap()
            .contains("over the limit")
    );
    assert!(closed(&mut stream));

    // A frame prefix followed by garbage.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"\x0a\x00\x00\x00not json!!").unwrap();
    let reply = frame::read_frame(&mut stream).unwrap().unwrap();
    assert!(
        reply.header.extra["error"]
            .as_str()
            .unwrap()
            .starts_with("bad frame")
    );
    assert!(closed(&mut stream));
}

/// Whether the server has closed `stream` (reads reach the end).
fn closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).is_ok() && rest.is_empty()
}

#[test]
fn with_a_token_only_framed_requests_that_carry_it_run() {
    let addr = serve(CommandConfig::default().token("s3cret"));
    let right = framed(addr).with_token("s3cret").run("echo ok").unwrap();
    assert_eq!(right.stdout, b"ok\n");
    assert!(matches!(
        framed(addr).with_token("wrong").run("echo ok"),
        Err(CommandError::Server(msg)) if msg.starts_with("unauthorized")
    ));
    assert!(matches!(
        framed(addr).run("echo ok"),
        Err(CommandError::Server(_))
    ));
    // The seed's form cannot carry a token: refused, with a body the
    // seed's client prints...
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(b"echo ok").unwrap();
    let reply = frame::read_frame(&mut raw).unwrap().unwrap();
    assert!(
        reply.body.starts_with(b"error: unauthorized"),
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(closed(&mut raw));
    // ...and an error our client recognizes.
    assert!(matches!(
        Client::connect(addr, Protocol::Seed).unwrap().run("echo ok"),
        Err(CommandError::Server(msg)) if msg.starts_with("unauthorized")
    ));
}

#[test]
fn no_shell_by_default_and_the_allowlist_holds() {
    let plain = serve(CommandConfig::default());
    assert_eq!(
        framed(plain).run("echo a; echo b").unwrap().stdout,
        b"a; echo b\n"
    );
    let shell = serve(CommandConfig::default().shell(true));
    assert_eq!(
        framed(shell).run("echo a; echo b").unwrap().stdout,
        b"a\nb\n"
    );
    let listed = serve(CommandConfig::default().allow(["echo"]));
    assert_eq!(framed(listed).run("echo yes").unwrap().stdout, b"yes\n");
    assert!(matches!(
        framed(listed).run("ls /"),
        Err(CommandError::Server(msg)) if msg.contains("allowlist")
    ));
    assert!(
        command::bind(
            "127.0.0.1:0",
            CommandConfig::default().shell(true).allow(["ls"])
        )
        .is_err()
    );
}

#[test]
fn commands_past_the_concurrency_cap_are_told_to_wait() {
    let mut config = CommandConfig::default();
    config.max_commands = 1;
    let addr = serve(config);
    let argv = ["sleep", "1.75"];
    let holder = thread::spawn(move || framed(addr).run("sleep 1.75").unwrap());
    eventually("the first command started", || processes(&argv) == 1);
    assert!(matches!(
        framed(addr).run("echo hi"),
        Err(CommandError::Server(msg)) if msg.starts_with("busy")
    ));
    assert_eq!(holder.join().unwrap().exit, Some(0));
    assert_eq!(framed(addr).run("echo hi").unwrap().stdout, b"hi\n");
}

/// A "server" that takes one connection, reads the request, and hangs up.
fn hangs_up_after_one_request() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.read(&mut [0u8; 1024]);
    });
    addr
}

#[test]
fn a_vanished_server_is_a_clear_error() {
    let err = framed(hangs_up_after_one_request())
        .run("echo hi")
        .unwrap_err();
    assert!(matches!(err, CommandError::Io(_)), "{err}");
    assert!(err.to_string().contains("closed the connection"), "{err}");
    let out = example("cmd_client")
        .args([
            &hangs_up_after_one_request().to_string(),
            "--",
            "echo",
            "hi",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("closed the connection"));
}

#[test]
fn a_framed_reply_streams_output_frames_then_an_end_frame() {
    let addr = serve(CommandConfig::default());
    let mut stream = TcpStream::connect(addr).unwrap();
    frame::write_frame(&mut stream, b"echo hi").unwrap();
    let output = frame::read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(output.header.extra["stream"], "stdout");
    assert_eq!(output.body, b"hi\n");
    let end = frame::read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(end.header.extra["end"], true);
    assert_eq!(end.header.extra["exit"], 0);
    assert_eq!(end.header.extra["timed_out"], false);
    assert!(end.body.is_empty());
}
