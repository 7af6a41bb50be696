//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod files;
#[cfg(target_os = "linux")]
pub mod warm;

use std::path::PathBuf;
use std::process::Command;

/// `python3`, for tests that run a peer in the seed's style.
///
/// Missing python3 fails the test in CI (`CI` set), where it is required,
/// and skips it with a loud note on a developer machine.
pub fn python3() -> Option<Command> {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let mut python = Command::new("python3");
            // The seed prints Chinese; make that independent of the locale.
            python.env("PYTHONIOENCODING", "utf-8");
            Some(python)
        }
        _ if std::env::var_os("CI").is_some() => {
            panic!("python3 is required in CI for the interop tests, and it is missing")
        }
        _ => {
            eprintln!("SKIPPED: python3 not found; interop test not run");
            None
        }
    }
}

/// The path of a peer program under `tests/peers/`.
pub fn peer(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// A reader that hands out one byte per `read`: the worst fragmentation.
pub struct OneByte<'a>(pub &'a [u8]);

impl std::io::Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

/// A writer that accepts at most 3 bytes per call, vectored or not.
pub struct ShortWrites(pub Vec<u8>);

impl std::io::Write for ShortWrites {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A malformed input for the frame reader, and the error it must get.
pub struct Malformed {
    /// What is wrong with it.
    pub name: &'static str,
    /// The bytes a peer sends, then it closes its side.
    pub wire: Vec<u8>,
    /// Whether the reader's error is the right one.
    pub expect: fn(&socketserver::frame::FrameError) -> bool,
}

/// A frame with a hand-written header.
pub fn raw_frame(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut wire = (header.len() as i32).to_le_bytes().to_vec();
    wire.extend_from_slice(header);
    wire.extend_from_slice(body);
    wire
}

/// Every way a frame can be wrong, each with its typed error: the frame
/// tests read them from memory, the reliability tests send them to a
/// server over a socket.
pub fn malformed_frames() -> Vec<Malformed> {
    use socketserver::frame::{FrameError as E, FramePart, write_frame};
    let mut hello = Vec::new();
    write_frame(&mut hello, b"hello").expect("writes to a Vec");
    let mut corrupted = hello.clone();
    *corrupted.last_mut().expect("a body") ^= 1;
    let cut = |n: usize| hello[..n].to_vec();
    vec![
        Malformed {
            name: "ends inside the header length",
            wire: cut(2),
            expect: |e| {
                matches!(
                    e,
                    E::Truncated {
                        part: FramePart::HeaderLength,
                        expected: 4,
                        received: 2
                    }
                )
            },
        },
        Malformed {
            name: "ends inside the header",
            wire: cut(30),
            expect: |e| {
                matches!(
                    e,
                    E::Truncated {
                        part: FramePart::Header,
                        expected: 62,
                        received: 26
                    }
                )
            },
        },
        Malformed {
            name: "ends inside the body",
            wire: cut(69),
            expect: |e| {
                matches!(
                    e,
                    E::Truncated {
                        part: FramePart::Body,
                        expected: 5,
                        received: 3
                    }
                )
            },
        },
        Malformed {
            name: "negative header length",
            wire: (-1i32).to_le_bytes().to_vec(),
            expect: |e| matches!(e, E::NegativeHeaderLength(-1)),
        },
        Malformed {
            name: "header length over the limit",
            wire: (1i32 << 20).to_le_bytes().to_vec(),
            expect: |e| {
                matches!(
                    e,
                    E::HeaderTooLong {
                        len: 1_048_576,
                        max: 65_536
                    }
                )
            },
        },
        Malformed {
            name: "header not UTF-8",
            wire: raw_frame(b"\xff\xfe", b""),
            expect: |e| matches!(e, E::HeaderNotUtf8(_)),
        },
        Malformed {
            name: "header not JSON",
            wire: raw_frame(b"not json", b""),
            expect: |e| matches!(e, E::InvalidHeader(_)),
        },
        Malformed {
            name: "header without md5",
            wire: raw_frame(br#"{"ver":"1","lenth":0}"#, b""),
            expect: |e| matches!(e, E::InvalidHeader(why) if why.contains("md5")),
        },
        Malformed {
            name: "length is a string",
            wire: raw_frame(br#"{"ver":"1","md5":"x","lenth":"5"}"#, b""),
            expect: |e| matches!(e, E::InvalidHeader(_)),
        },
        Malformed {
            name: "negative body length",
            wire: raw_frame(br#"{"ver":"1","md5":"x","lenth":-5}"#, b""),
            expect: |e| matches!(e, E::InvalidHeader(_)),
        },
        Malformed {
            name: "header is not an object",
            wire: raw_frame(b"[1,2,3]", b""),
            expect: |e| matches!(e, E::InvalidHeader(_)),
        },
        Malformed {
            name: "unknown version",
            wire: raw_frame(br#"{"ver":"2","md5":"x","lenth":0}"#, b""),
            expect: |e| matches!(e, E::UnsupportedVersion(v) if v == "2"),
        },
        Malformed {
            name: "body length over the limit",
            wire: raw_frame(br#"{"ver":"1","md5":"x","lenth":99999999999}"#, b""),
            expect: |e| {
                matches!(
                    e,
                    E::BodyTooLong {
                        len: 99_999_999_999,
                        ..
                    }
                )
            },
        },
        Malformed {
            name: "a body byte changed",
            wire: corrupted,
            expect: |e| match e {
                E::Md5Mismatch { expected, actual } => {
                    expected == "5d41402abc4b2a76b9719d911017c592"
                        && *actual == format!("{:x}", md5::compute(b"helln"))
                }
                _ => false,
            },
        },
    ]
}

/// A command that runs one of the crate's examples, built if need be.
///
/// `cargo test` builds the examples before it runs the tests; a filtered
/// run (`cargo test --test lessons`) does not, and would find a missing or
/// stale binary, so build it when it is older than this test.
pub fn example(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory")
        .join("examples");
    let path = examples.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&path) < modified(&exe) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--example", name]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo runs").success(),
            "cannot build example {name}"
        );
    }
    Command::new(path)
}

/// A server process that is killed when the test lets go of it.
pub struct Running {
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server and waits for the line that says where it listens: our
/// examples print `... listening on ADDR`, the Python peers `LISTENING PORT`
/// (on 127.0.0.1). No sleeps: the line comes once the socket is bound.
pub fn start_server(mut command: Command) -> Running {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => {
                let _ = child.kill();
                panic!("the server exited before saying where it listens");
            }
        };
        if let Some((_, addr)) = line.split_once("listening on ") {
            break addr.trim().parse().expect("an address");
        }
        if let Some(port) = line.strip_prefix("LISTENING ") {
            break format!("127.0.0.1:{}", port.trim())
                .parse()
                .expect("a port");
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running { child, addr }
}

/// Runs a client to its end and returns its standard output, checking it
/// exited with success.
pub fn run_client(mut command: Command) -> String {
    let out = command.output().expect("the client runs");
    assert!(
        out.status.success(),
        "client failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A TCP connection from `source` (a loopback address such as 127.0.0.2,
/// to be another peer; port chosen by the system) to `to`.
pub fn connect_from(
    source: std::net::IpAddr,
    to: std::net::SocketAddr,
) -> std::io::Result<std::net::TcpStream> {
    connect_from_with(source, to, None)
}

/// [`connect_from`], with a receive buffer of `rcvbuf` bytes if given, set
/// before the handshake (so the window it advertises is small from the
/// start: a client that stops reading fills it quickly).
pub fn connect_from_with(
    source: std::net::IpAddr,
    to: std::net::SocketAddr,
    rcvbuf: Option<usize>,
) -> std::io::Result<std::net::TcpStream> {
    let from = std::net::SocketAddr::new(source, 0);
    // Close-on-exec, as std's sockets are, on every system (socket2 sees
    // to it): a child process started meanwhile (an example server) must
    // not inherit it.
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(from),
        socket2::Type::STREAM,
        None,
    )?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(&from.into())?;
    socket.connect(&to.into())?;
    Ok(std::net::TcpStream::from(socket))
}

/// A figure in KiB from `/proc/PID/status` (`VmRSS` now, `VmHWM` the peak).
#[cfg(target_os = "linux")]
pub fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("a figure in kB")
}

/// Polls `condition` for up to `within`; whether it came true.
pub fn within(within: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Threads and open descriptors of process `pid`, from `/proc`.
pub fn figures(pid: u32) -> (usize, usize) {
    let count = |dir: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .unwrap()
            .count()
    };
    (count("task"), count("fd"))
}

/// The pids of live processes (and zombies not yet emptied) whose command
/// line is exactly `argv`: what the process tests count their escapees by,
/// each `sleep` given arguments of its own (`sleep 43.11`).
pub fn pids(argv: &[&str]) -> Vec<i32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            (std::fs::read(e.path().join("cmdline")).ok()? == wanted).then_some(pid)
        })
        .collect()
}

/// Processes (zombies too) whose parent is `pid`: how many
/// [`children_of`] finds.
pub fn children(pid: u32) -> usize {
    children_of(pid).len()
}

/// A command server in this process on 127.0.0.1, port 0, serving on a
/// thread; the handle stays with the test, to ask how many commands run.
#[cfg(unix)]
pub fn serve_commands(
    config: socketserver::command::CommandConfig,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<socketserver::ThreadingTcpServer<socketserver::command::CommandHandler>>,
) {
    let server = std::sync::Arc::new(socketserver::command::bind("127.0.0.1:0", config).unwrap());
    let addr = server.local_addr().unwrap();
    let serving = std::sync::Arc::clone(&server);
    std::thread::spawn(move || serving.serve_forever());
    (addr, server)
}

/// Whether commands can run in PID namespaces here (as root, or in a user
/// namespace where the system allows unprivileged ones).
#[cfg(unix)]
pub fn namespaces_here() -> bool {
    use socketserver::command::{CommandConfig, CommandHandler, Containment};
    CommandHandler::new(CommandConfig::default().containment(Containment::Namespace)).is_ok()
}

/// Whether `program` is on the PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh directory of `suite`'s test `name` under the temporary
/// directory, open to every user (a server run as `nobody` executes what
/// is in it).
#[cfg(unix)]
pub fn scratch(suite: &str, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "socketserver-{suite}-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Whether PID namespaces can be made here; if not, says the test is
/// skipped, for the test to return.
#[cfg(unix)]
pub fn namespaces_or_skip() -> bool {
    let here = namespaces_here();
    if !here {
        eprintln!("SKIPPED: needs PID namespaces");
    }
    here
}

/// `cmd_server` on 127.0.0.1, port 0, with `args`, in a process group of
/// its own (so an escape has a group to aim at, and the test can count).
#[cfg(unix)]
pub fn cmd_server(args: &[&str]) -> Running {
    use std::os::unix::process::CommandExt;
    let mut command = example("cmd_server");
    command.arg("127.0.0.1:0").args(args).process_group(0);
    start_server(command)
}

/// Kills whatever runs `argv` (SIGKILL, by pid) and says how many there
/// were: what a process test does with what it finds left before it fails.
#[cfg(target_os = "linux")]
pub fn kill_all(argv: &[&str]) -> usize {
    let left = pids(argv);
    for pid in &left {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    left.len()
}

/// The children of `pid` (zombies too), with their state letter, from
/// `/proc`.
pub fn children_of(pid: u32) -> Vec<(u32, char)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.chars().next()?;
            (fields.next()? == pid.to_string()).then_some((child, state))
        })
        .collect()
}

/// Whether this test runs as root.
#[cfg(unix)]
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A client of ours on `addr`.
#[cfg(unix)]
pub fn framed(addr: std::net::SocketAddr) -> socketserver::command::Client {
    socketserver::command::Client::connect(addr, socketserver::command::Protocol::Framed).unwrap()
}

/// Fails unless, within `wait`, the server `pid` has no child (no zombie
/// either) and its threads and descriptors are `before` again.
#[cfg(target_os = "linux")]
pub fn assert_back_to(pid: u32, before: (usize, usize), wait: std::time::Duration) {
    assert!(
        within(wait, || children_of(pid).is_empty()
            && figures(pid) == before),
        "children {:?}, figures {:?} (before {before:?})",
        children_of(pid),
        figures(pid)
    );
}

/// A `cmd_server` that does not run as root: as `nobody` through setpriv
/// when the test runs as root (the server then uses a user namespace),
/// else as the test's own user. `None` where that cannot be arranged.
#[cfg(unix)]
pub fn unprivileged_server(args: &[&str]) -> Option<Running> {
    use std::os::unix::process::CommandExt;
    let mut command = if is_root() {
        let exe = example("cmd_server").get_program().to_owned();
        let reachable = std::process::Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "test",
                "-x",
            ])
            .arg(&exe)
            .status()
            .is_ok_and(|s| s.success());
        if !reachable {
            return None;
        }
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(exe);
        c
    } else {
        example("cmd_server")
    };
    command.arg("127.0.0.1:0").args(args).process_group(0);
    Some(start_server(command))
}
