//! Every lesson of the seed in one run, narrated: the crate's main job.
//!
//! ```sh
//! cargo run --example tour
//! ```
//!
//! Each lesson starts its own server on 127.0.0.1 port 0, runs the seed's
//! client against it, checks what came back, and stops the server. The
//! tour exits non-zero if any lesson did not go as the seed says. The
//! sixth goes beyond the seed: files over the same frame.

use std::error::Error;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use socketserver::command::{self, Client, CommandConfig, Protocol};
use socketserver::files::{self, CHUNK, FileClient, FileConfig, FileError};
use socketserver::frame;
use socketserver::greet::{self, Greeter};
use socketserver::{BaseRequestHandler, Connection, ThreadingTcpServer, UdpServer, sticky};

type Outcome = Result<(), Box<dyn Error>>;

/// A lesson's title and the function that runs it.
type Lesson = (&'static str, fn() -> Outcome);

/// A lesson fails with a sentence, not a panic.
fn check(ok: bool, what: &str) -> Outcome {
    if ok { Ok(()) } else { Err(what.into()) }
}

fn main() {
    let lessons: [Lesson; 6] = [
        (
            "1. tcp编程: a TCP greeting server, two clients at once",
            tcp_greeting,
        ),
        ("2. udp编程: the same greeting over UDP", udp_greeting),
        (
            "3. socketserver编程: your own handler on a ThreadingTcpServer",
            own_handler,
        ),
        (
            "4. 粘包与分包: sticky packets, fragmentation, and the frame",
            sticky_packets,
        ),
        (
            "5. 模拟远程执行命令: the command service, in its safe mode",
            command_service,
        ),
        (
            "6. beyond the seed: files over the frame, verified and resumed",
            file_transfer,
        ),
    ];
    let started = Instant::now();
    let mut failed = 0;
    for (title, lesson) in lessons {
        println!("\n== {title}");
        if let Err(e) = lesson() {
            failed += 1;
            println!("   FAILED: {e}");
        }
    }
    println!(
        "\n{} of {} lessons went as they should, in {:.1?}.",
        lessons.len() - failed,
        lessons.len(),
        started.elapsed()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

fn tcp_greeting() -> Outcome {
    const DELAY: Duration = Duration::from_millis(200);
    println!(
        "   The server greets each client on its own thread, waiting {DELAY:?} before each reply"
    );
    println!("   (the seed's time.sleep(1), shortened). Watch both clients being served at once:");
    let greeter = Greeter::new()
        .delay(DELAY)
        .log(|line| println!("   server | {line}"));
    // Graceful: serve_forever waits for both conversations to close.
    let server = ThreadingTcpServer::builder(greeter)
        .graceful_shutdown(Duration::from_secs(5))
        .bind("127.0.0.1:0")?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());

    let started = Instant::now();
    let clients: Vec<_> = ["A", "B"]
        .into_iter()
        .map(|who| {
            (
                who,
                thread::spawn(move || greet::tcp_client(addr, &greet::SEED_NAMES)),
            )
        })
        .collect();
    let mut transcripts = Vec::new();
    for (who, client) in clients {
        let transcript = client.join().map_err(|_| "a client panicked")??;
        println!("   client {who} | {}", transcript.join(" / "));
        transcripts.push(transcript);
    }
    let took = started.elapsed();
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;

    // Each client waits for three delayed replies.
    let one_at_a_time = DELAY * 3 * 2;
    println!(
        "   Both done in {took:.2?}; served one at a time it would take at least {one_at_a_time:?}."
    );
    let expected = ["Welcome!", "你好,Michael", "你好,Tracy", "你好,Sarah"];
    check(
        transcripts.iter().all(|t| t == &expected),
        "a client did not get Welcome! and its three greetings",
    )
}

fn udp_greeting() -> Outcome {
    println!(
        "   No connection, no banner: each name is one datagram, each greeting one datagram back."
    );
    let greeter = Greeter::new().log(|line| println!("   server | {line}"));
    let server = UdpServer::bind("127.0.0.1:0", greeter)?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let replies = greet::udp_client(addr, &greet::SEED_NAMES, Duration::from_secs(2))?;
    for reply in &replies {
        match reply {
            Some(line) => println!("   client | {line}"),
            None => println!("   client | (no reply: lost)"),
        }
    }
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    check(
        replies
            .iter()
            .zip(greet::SEED_NAMES)
            .all(|(reply, name)| reply.as_deref() == Some(&format!("你好,{name}")[..])),
        "a greeting did not come back",
    )
}

/// The seed's `Myhandler`: the only code a socketserver user writes.
struct Myhandler {
    heard: Mutex<mpsc::Sender<String>>,
}

impl BaseRequestHandler for Myhandler {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let mut res = [0u8; 1024];
        let n = conn.read(&mut res)?;
        if n > 0 {
            let msg = String::from_utf8_lossy(&res[..n]).into_owned();
            println!("   handler | client:{} msg:{msg:?}", conn.peer_addr());
            let _ = self.heard.lock().map(|tx| tx.send(msg));
        }
        Ok(())
    }
}

fn own_handler() -> Outcome {
    println!("   The server class binds, accepts and threads; the handler class only handles.");
    let (tx, heard) = mpsc::channel();
    let server = ThreadingTcpServer::builder(Myhandler {
        heard: Mutex::new(tx),
    })
    .pool(4)
    .bind("127.0.0.1:0")?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let info = server.info();
    let serving = thread::spawn(move || server.serve_forever());
    for msg in ["hello", "你好"] {
        io::Write::write_all(&mut std::net::TcpStream::connect(addr)?, msg.as_bytes())?;
    }
    let mut got = vec![
        heard.recv_timeout(Duration::from_secs(5))?,
        heard.recv_timeout(Duration::from_secs(5))?,
    ];
    got.sort();
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    let stats = info.stats();
    println!(
        "   The server's counters: accepted {}, completed {}, failed {}.",
        stats.accepted, stats.completed, stats.failed
    );
    check(
        got == ["hello", "你好"],
        "the handler did not hear both messages",
    )
}

fn sticky_packets() -> Outcome {
    let lesson = sticky::Lesson::run(4 << 20)?;
    for line in lesson.to_string().lines() {
        println!("   {line}");
    }
    check(
        lesson.stuck == b"helloworld",
        "the two writes did not stick",
    )?;
    check(lesson.reads.len() > 1, "the large write was not fragmented")?;
    check(
        lesson.framed.len() == 3
            && lesson.framed[0] == b"hello"
            && lesson.framed[1] == b"world"
            && lesson.framed[2].len() == 4 << 20,
        "frames did not bring back the messages sent",
    )
}

fn command_service() -> Outcome {
    println!(
        "   The seed's server runs any shell line for anyone. Ours binds loopback, runs programs"
    );
    println!("   without a shell, and kills what runs too long (here: 500 ms).");
    let config = CommandConfig::default().timeout(Duration::from_millis(500));
    let server = command::bind("127.0.0.1:0", config)?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());

    let mut client = Client::connect(addr, Protocol::Framed)?;
    let show = |line: &str, reply: &command::Reply| {
        println!(
            "   >>>{line}\n      stdout {:?}  stderr {:?}  exit {:?}{}",
            String::from_utf8_lossy(&reply.stdout),
            String::from_utf8_lossy(&reply.stderr),
            reply.exit,
            if reply.timed_out {
                "  (timed out: killed)"
            } else {
                ""
            }
        );
    };
    let hello = client.run("echo hello")?;
    show("echo hello", &hello);
    let missing = client.run("ls /no-such-dir")?;
    show("ls /no-such-dir", &missing);
    let no_shell = client.run("echo a; echo b")?;
    show("echo a; echo b", &no_shell);
    println!("      (no shell: `;` is just an argument to echo)");
    let slow = client.run("sleep 60")?;
    show("sleep 60", &slow);

    // The seed's client sends the raw command, unframed; the same port
    // answers it the seed's way.
    let mut seed = std::net::TcpStream::connect(addr)?;
    io::Write::write_all(&mut seed, "echo 你好".as_bytes())?;
    let reply = frame::read_frame(&mut seed)?.ok_or("no reply to the seed's request")?;
    println!(
        "   The seed's raw request on the same port gets the seed's reply: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;

    check(
        hello.stdout == b"hello\n" && hello.exit == Some(0),
        "echo hello",
    )?;
    check(
        missing.exit == Some(2) && !missing.stderr.is_empty(),
        "stderr and exit status",
    )?;
    check(no_shell.stdout == b"a; echo b\n", "no shell")?;
    check(slow.timed_out, "the timeout")?;
    check(reply.body == "你好\n".as_bytes(), "the seed's form")
}

fn file_transfer() -> Outcome {
    println!("   A file travels as 1 MiB chunks, each a seed frame with its own md5, then an end");
    println!("   frame with the digest of the whole; it gets its name only once all match.");
    let dir = std::env::temp_dir().join(format!("socketserver-tour-{}", std::process::id()));
    let (root, local) = (dir.join("root"), dir.join("local"));
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&local)?;
    let outcome = transfer_in(&root, &local);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn transfer_in(root: &std::path::Path, local: &std::path::Path) -> Outcome {
    let server = files::bind("127.0.0.1:0", FileConfig::new(root))?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let mut client = FileClient::connect(addr)?;

    let bytes: Vec<u8> = (0..3 * CHUNK + 1000).map(|i| (i % 251) as u8).collect();
    std::fs::write(local.join("lesson.bin"), &bytes)?;
    let up = client.put(&local.join("lesson.bin"), "lesson.bin", false, |_, _| {})?;
    println!(
        "   put lesson.bin: {} bytes in 4 chunks, digest {}",
        up.size, up.digest
    );
    for entry in client.ls("")? {
        println!("   ls: {} ({} bytes)", entry.name, entry.size);
    }
    // A download cut after two chunks leaves them, verified, in DEST.part.
    let dest = local.join("copy.bin");
    std::fs::write(local.join("copy.bin.part"), &bytes[..2 * CHUNK])?;
    let down = client.get("lesson.bin", &dest, false, |_, _| {})?;
    println!(
        "   get lesson.bin, cut earlier after 2 chunks: resumed at byte {}, digest {}",
        down.resumed_from, down.digest
    );
    let escape = client.get("../etc/passwd", &local.join("x"), false, |_, _| {});
    let again = client.put(&local.join("lesson.bin"), "lesson.bin", false, |_, _| {});
    for refused in [&escape.as_ref().map(|_| ()), &again.as_ref().map(|_| ())] {
        if let Err(e) = refused {
            println!("   refused: {e}");
        }
    }
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;

    check(up.digest == down.digest, "the digests differ")?;
    check(
        down.resumed_from == 2 * CHUNK as u64,
        "the download did not resume",
    )?;
    check(std::fs::read(&dest)? == bytes, "the copy differs")?;
    check(
        matches!(escape, Err(FileError::BadName { .. })),
        "a path escape",
    )?;
    check(
        matches!(again, Err(FileError::AlreadyExists(_))),
        "an overwrite",
    )
}
