//! The remote command service: compatible with the seed's Python client and
//! server, and safe where the seed is not.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::{children, example, figures, peer, python3, run_client, start_server};
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
/// header dicts and all.
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
            .filter(|l| !l.is_empty())
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
    let output: Vec<&str> = baseline
        .lines()
        .filter(|l| !l.starts_with("{'ver'"))
        .collect();
    assert_eq!(
        output.join("\n"),
        "hello\nok\nls: cannot access '/no-such-dir': No such file or directory\n你好"
    );
    assert!(
        baseline.contains("{'ver': '1', 'md5': 'b1946ac92492d2347c6235b4d2611184', 'lenth': 6}"),
        "{baseline}"
    );
    // Header dicts included: exactly the seed's three keys, byte for byte.
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
    common::pids(argv).len()
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
fn with_a_token_only_a_client_that_proves_it_runs_commands() {
    let addr = serve(CommandConfig::default().token("s3cret"));
    let mut right = framed(addr).with_token("s3cret");
    assert_eq!(right.run("echo ok").unwrap().stdout, b"ok\n");
    assert_eq!(right.run("echo again").unwrap().stdout, b"again\n");
    // A wrong answer costs about a second, then the connection closes.
    let started = Instant::now();
    let wrong = framed(addr).with_token("wrong").run("echo ok");
    assert!(
        matches!(&wrong, Err(CommandError::Server(msg)) if msg.starts_with("unauthorized")),
        "{wrong:?}"
    );
    let cost = started.elapsed();
    assert!(
        cost >= Duration::from_millis(900),
        "a wrong answer took {cost:?}"
    );
    // No token at all: the challenge is where a reply was expected.
    assert!(matches!(
        framed(addr).run("echo ok"),
        Err(CommandError::Unauthorized)
    ));
    // The seed's form cannot answer: it is shown a note, then refused.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(b"echo ok").unwrap();
    let challenge = frame::read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(challenge.header.extra["nonce"].as_str().unwrap().len(), 64);
    assert!(challenge.body.starts_with(b"this server needs a token"));
    let refused = frame::read_frame(&mut raw).unwrap().unwrap();
    assert!(
        refused.header.extra.is_empty(),
        "the seed's three keys only"
    );
    assert!(
        refused.body.starts_with(b"error: unauthorized"),
        "{:?}",
        String::from_utf8_lossy(&refused.body)
    );
    assert!(closed(&mut raw));
}

/// A fake server that sends a challenge and keeps what the client sends.
fn records_the_answer(nonce: [u8; 32]) -> (SocketAddr, thread::JoinHandle<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let header = frame::Header::for_body(b"")
            .with("nonce", hex)
            .with("proto", command::PROTOCOL);
        frame::write_frame_with(&mut stream, &header, b"").unwrap();
        let request = frame::read_frame(&mut stream).unwrap().unwrap();
        let mut wire = Vec::new();
        frame::write_frame_with(&mut wire, &request.header, &request.body).unwrap();
        wire
    });
    (addr, handle)
}

#[test]
fn the_token_never_crosses_the_wire_only_an_hmac_of_both_nonces_and_the_request() {
    use hmac::{Hmac, Mac};
    let nonce = [0x5a; 32];
    let (addr, recorded) = records_the_answer(nonce);
    // The fake server cannot prove the token: the client refuses it.
    let refused = framed(addr).with_token("s3cret-token").run("echo hi");
    assert!(
        matches!(
            refused,
            Err(CommandError::ServerUnproven) | Err(CommandError::Io(_))
        ),
        "{refused:?}"
    );
    let wire = recorded.join().unwrap();
    let request = frame::read_frame(&mut &wire[..]).unwrap().unwrap();
    let text = String::from_utf8_lossy(&wire);
    assert!(!text.contains("s3cret-token"), "{text}");
    let extra = &request.header.extra;
    assert_eq!(extra["proto"], 2);
    let cnonce: Vec<u8> = {
        let hex = extra["cnonce"].as_str().unwrap();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    assert_eq!(cnonce.len(), 32);
    assert_ne!(cnonce, nonce, "the client's own nonce");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret-token").unwrap();
    for part in [
        &b"socketserver command v2 client\0"[..],
        &nonce,
        &cnonce,
        &0u64.to_be_bytes(),
        b"echo hi",
    ] {
        mac.update(part);
    }
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(extra["auth"], expected.as_str());
}

#[test]
fn an_empty_token_is_refused_by_the_library() {
    let err = command::bind("127.0.0.1:0", CommandConfig::default().token("")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(command::CommandHandler::new(CommandConfig::default().token("")).is_err());
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn the_examples_read_the_token_from_a_file_and_commands_never_see_it() {
    let file = TempFile::new("cmd-token", "t0ken-from-file\n");
    let mut server = example("cmd_server");
    server
        .args(["127.0.0.1:0", "--token-file"])
        .arg(&file.0)
        .env(command::TOKEN_ENV, "ignored-when-a-file-is-given");
    let server = start_server(server);
    let out = example("cmd_client")
        .arg(server.addr.to_string())
        .arg("--token-file")
        .arg(&file.0)
        .args(["--", "echo", "in"])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        b"in\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // From the environment: the server uses it, and no command sees it.
    let mut server = example("cmd_server");
    server
        .arg("127.0.0.1:0")
        .env(command::TOKEN_ENV, "env-t0ken");
    let server = start_server(server);
    let mut client = framed(server.addr).with_token("env-t0ken");
    let reply = client.run("printenv SOCKETSERVER_TOKEN").unwrap();
    assert_eq!((reply.stdout.as_slice(), reply.exit), (&b""[..], Some(1)));

    let help = run_client({
        let mut c = example("cmd_server");
        c.arg("--help");
        c
    });
    assert!(help.contains("--token-file"));
    assert!(help.contains("WARNING, any local user"), "{help}");
}

#[test]
fn no_shell_by_default_and_the_allowlist_holds_whole_command_lines() {
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
    let listed = serve(CommandConfig::default().allow(["uname -a", "ls", "echo *"]));
    let mut client = framed(listed);
    assert_eq!(client.run("uname -a").unwrap().exit, Some(0));
    assert_eq!(client.run("ls").unwrap().exit, Some(0));
    assert_eq!(client.run("echo any words").unwrap().stdout, b"any words\n");
    for refused in [
        "uname -r",
        "ls /etc",
        "/usr/bin/uname -a",
        "env sh -c id",
        "find /etc/hostname -exec id ;",
        "sh -c id",
    ] {
        match client.run(refused) {
            Err(CommandError::Server(msg)) => {
                assert!(msg.contains("not on this server's allowlist"), "{msg}");
                assert!(msg.contains(refused.split(' ').next().unwrap()), "{msg}");
            }
            other => panic!("{refused}: ran: {other:?}"),
        }
    }
    assert_eq!(
        client.run("ls").unwrap().exit,
        Some(0),
        "the connection goes on"
    );
    assert!(
        command::bind(
            "127.0.0.1:0",
            CommandConfig::default().shell(true).allow(["ls"])
        )
        .is_err()
    );
    for bad in ["", "ls * -l", "*"] {
        assert!(
            command::bind("127.0.0.1:0", CommandConfig::default().allow([bad])).is_err(),
            "{bad:?}"
        );
    }
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

/// Commands that try to outlive their reply, each leaving a `sleep` with
/// arguments of its own so the test can count what is left of it.
const ESCAPES: [(&str, &str); 5] = [
    (
        "background job",
        "sh -c 'sleep 41.1 >/dev/null 2>&1 & echo bg'",
    ),
    ("setsid", "setsid sleep 41.2"),
    ("nohup", "sh -c 'nohup sleep 41.3 >/dev/null 2>&1 &'"),
    (
        "double fork",
        "sh -c '(sh -c \"sleep 41.4 & exit\" &) ; echo df'",
    ),
    ("env -i setsid", "env -i setsid sleep 41.5"),
];

#[test]
fn every_process_a_command_starts_ends_with_its_reply() {
    let mut server = example("cmd_server");
    server.args(["127.0.0.1:0", "--timeout-ms", "3000"]);
    let server = start_server(server);
    let pid = server.child.id();
    // The baseline: listening, no client connected yet.
    let baseline = figures(pid);
    let rounds = 4;
    for round in 0..rounds {
        let mut client = framed(server.addr);
        for (what, line) in ESCAPES {
            let started = Instant::now();
            let reply = client.run(line).unwrap();
            let took = started.elapsed();
            assert!(!reply.timed_out, "{what}: waited for the timeout");
            assert!(took < Duration::from_millis(2500), "{what}: took {took:?}");
            let sleep_arg = line.split("sleep ").nth(1).unwrap();
            let arg: String = sleep_arg.chars().take(4).collect();
            assert_eq!(
                processes(&["sleep", &arg]),
                0,
                "{what} (round {round}): a process outlived the reply"
            );
        }
    }
    let until = Instant::now() + Duration::from_secs(10);
    let mut after = figures(pid);
    while after != baseline && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
        after = figures(pid);
    }
    assert_eq!(after, baseline, "(threads, fds) after vs before");
    assert_eq!(children(pid), 0, "no child process, not even a zombie");
    println!(
        "{} escaping commands: threads {} -> {}, fds {} -> {}",
        rounds * ESCAPES.len(),
        baseline.0,
        after.0,
        baseline.1,
        after.1
    );
}

#[test]
fn a_background_job_on_a_running_command_is_killed_at_its_timeout() {
    let addr = serve(CommandConfig::default().timeout(Duration::from_millis(500)));
    let started = Instant::now();
    let reply = framed(addr)
        .run("sh -c 'setsid sleep 42.1 & sleep 42.2'")
        .unwrap();
    assert!(reply.timed_out);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(processes(&["sleep", "42.1"]), 0);
    assert_eq!(processes(&["sleep", "42.2"]), 0);
}

/// Connects, asks for endless output, and lets `read` take it (or not).
fn endless_output(addr: SocketAddr, tag: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    frame::write_frame(&mut stream, format!("yes {tag}").as_bytes()).unwrap();
    eventually("the command started", || processes(&["yes", tag]) == 1);
    stream
}

#[test]
fn the_deadline_holds_against_a_client_that_never_reads() {
    let timeout = Duration::from_millis(1000);
    let addr = serve(CommandConfig::default().timeout(timeout));
    let started = Instant::now();
    let mut stream = endless_output(addr, "never-reads");
    eventually("the command was killed", || {
        processes(&["yes", "never-reads"]) == 0
    });
    let killed = started.elapsed();
    println!("never reads: killed after {killed:?} (timeout {timeout:?})");
    assert!(killed < timeout + Duration::from_millis(1500), "{killed:?}");
    // What the client finds when it reads at last: the output sent before
    // the deadline, then the end, which says so (or, had the server been
    // unable to send even that, a hang-up).
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    loop {
        match frame::read_frame(&mut stream) {
            Ok(Some(f)) if f.header.extra.get("end").is_some() => {
                assert_eq!(f.header.extra["timed_out"], true);
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_deadline_holds_against_a_client_that_reads_slowly() {
    let timeout = Duration::from_millis(1000);
    let addr = serve(CommandConfig::default().timeout(timeout));
    let started = Instant::now();
    let mut stream = endless_output(addr, "reads-slowly");
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        for _ in 0..5 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => thread::sleep(Duration::from_secs(2)),
            }
        }
    });
    eventually("the command was killed", || {
        processes(&["yes", "reads-slowly"]) == 0
    });
    let killed = started.elapsed();
    println!("reads 4 KiB / 2 s: killed after {killed:?} (timeout {timeout:?})");
    assert!(killed < timeout + Duration::from_millis(1500), "{killed:?}");
    reader.join().unwrap();
}

/// Runs the one-shot client and returns its exit code and stderr.
fn one_shot(addr: SocketAddr, command: &[&str]) -> (Option<i32>, String) {
    let out = example("cmd_client")
        .arg(addr.to_string())
        .arg("--")
        .args(command)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_one_shot_client_exits_124_on_timeout_128_plus_n_on_signal_1_when_refused() {
    let addr = serve(
        CommandConfig::default()
            .timeout(Duration::from_millis(300))
            .allow(["sleep 5", "sh -c *", "true"]),
    );
    let (code, err) = one_shot(addr, &["sleep", "5"]);
    assert_eq!(code, Some(124), "{err}");
    assert!(err.contains("timed out"));
    assert_eq!(one_shot(addr, &["sh", "-c", "kill -TERM $$"]).0, Some(143));
    assert_eq!(one_shot(addr, &["true"]).0, Some(0));
    let (code, err) = one_shot(addr, &["setsid", "sleep", "77"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not on this server's allowlist"), "{err}");
}

#[test]
fn without_the_subreaper_escaped_processes_are_still_found_by_their_marker() {
    let mut config = CommandConfig::default();
    config.subreaper = false;
    let addr = serve(config);
    let mut client = framed(addr);
    client.run("setsid sleep 47.1").unwrap();
    client
        .run("sh -c 'sleep 47.2 >/dev/null 2>&1 & echo bg'")
        .unwrap();
    assert_eq!(processes(&["sleep", "47.1"]), 0);
    // Adopted by init (or another subreaper) once killed: gone when reaped.
    eventually("the escaped sleeps are gone", || {
        processes(&["sleep", "47.2"]) == 0
    });
}
