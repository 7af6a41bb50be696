//! Every lesson of the seed in one run, narrated: the crate's main job.
//!
//! ```sh
//! cargo run --example tour                          # narrated in your $LANG: zh* is Chinese
//! cargo run --example tour -- --lang zh --html   # in Chinese, every diagram in target/tour.html
//! ```
//!
//! Each lesson starts its own server on 127.0.0.1 port 0, runs the seed's
//! client against it, checks what came back, and stops the server. The
//! tour exits non-zero if any lesson did not go as the seed says. The
//! sixth goes beyond the seed: files over the same frame; the seventh puts
//! a chaos proxy in the middle to make 分包 certain; the eighth is a chat
//! room, the program every socket course ends with. The tour ends by
//! pointing to the workbook (`exercises/`, `cargo run --example course`),
//! where the learner writes each lesson and a checker says whether it works.
//!
//! Every lesson records its conversation with `socketserver::trace`:
//! `--html [FILE]` writes them all as sequence diagrams on one page
//! (`target/tour.html` when no FILE is given), and `--svg [DIR]` as one SVG
//! file each (`target/wire/` by default; the README's `docs/wire/sticky.svg`
//! is one, written with `--svg docs/wire`).

mod tour_lang;

use std::error::Error;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use socketserver::chaos::{self, Chaos, Proxy};
// The command service is Unix only (process groups, rlimits): elsewhere
// its lesson, and the framed half of the chaos lesson, say they were skipped.
#[cfg(unix)]
use socketserver::command::{self, Client, CommandConfig, Protocol};
use socketserver::files::{self, CHUNK, FileClient, FileConfig, FileError};
#[cfg(unix)]
use socketserver::frame;
use socketserver::greet::{self, Greeter};
use socketserver::trace::{Op, Side, Trace, html};
use socketserver::{BaseRequestHandler, Connection, ThreadingTcpServer, UdpServer, sticky};
use tour_lang::{Lang, Text};

type Outcome = Result<(), Box<dyn Error>>;

/// A lesson's function.
type Lesson = fn(&mut Tour) -> Outcome;

/// A lesson fails with a sentence, not a panic.
fn check(ok: bool, what: &str) -> Outcome {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// Every lesson of the seed, narrated, on 127.0.0.1.
/// 教程的每一课, 带讲解, 都在 127.0.0.1 上运行。
///
/// Each lesson starts its own server on port 0, runs the seed's client
/// against it, checks what came back, and stops the server; the tour exits
/// non-zero if any lesson did not go as the seed says.
/// 每一课在 0 号端口上启动自己的服务端, 运行教程的客户端, 检查结果,
/// 再停止服务端; 只要有一课不符合预期, 退出码就不为 0。
#[derive(Parser, Debug)]
#[command(name = "tour", version, verbatim_doc_comment)]
struct Options {
    /// The narration's language (default: zh if LC_ALL, LC_MESSAGES or
    /// LANG starts with zh, else en)
    /// 讲解的语言 (默认: LC_ALL、LC_MESSAGES 或 LANG 以 zh 开头则为中文)
    #[arg(
        long,
        value_enum,
        value_name = "zh|en",
        hide_possible_values = true,
        verbatim_doc_comment
    )]
    lang: Option<Lang>,
    /// Write every lesson's diagram to one HTML page (no FILE: target/tour.html)
    /// 把每一课的时序图写进一个 HTML 页面 (不给 FILE: target/tour.html)
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = "",
        verbatim_doc_comment
    )]
    html: Option<String>,
    /// Write each diagram as DIR/NAME.svg (no DIR: target/wire)
    /// 把每张图写成 DIR/NAME.svg (不给 DIR: target/wire)
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        default_missing_value = "",
        verbatim_doc_comment
    )]
    svg: Option<String>,
}

/// One recorded conversation, to be drawn.
struct Diagram {
    /// The SVG file's name, without `.svg`.
    name: &'static str,
    heading: String,
    note: String,
    trace: Trace,
}

/// What the lessons share: the narration and the diagrams recorded so far.
struct Tour {
    t: &'static Text,
    title: &'static str,
    diagrams: Vec<Diagram>,
}

impl Tour {
    fn draw(&mut self, name: &'static str, note: &str, trace: Trace) {
        self.diagrams.push(Diagram {
            name,
            heading: self.title.to_string(),
            note: note.to_string(),
            trace,
        });
    }
}

/// A relay on the path that records the conversations it carries.
fn recording_relay(to: SocketAddr) -> io::Result<Proxy> {
    Proxy::start("127.0.0.1:0", to, Chaos::new().trace(true))
}

/// The first conversation a relay recorded.
fn first_trace(proxy: &Proxy) -> Result<Trace, Box<dyn Error>> {
    Ok(proxy
        .traces()
        .into_iter()
        .next()
        .ok_or("the relay recorded nothing")?)
}

fn main() {
    // Usage errors exit 2 before any lesson runs; --help and --version
    // answer and exit 0.
    let options = Options::parse();
    let lang = options.lang.unwrap_or_else(Lang::from_env);
    let t = lang.text();
    let lessons: [Lesson; 8] = [
        tcp_greeting,
        udp_greeting,
        own_handler,
        sticky_packets,
        command_service,
        file_transfer,
        chaos_proxy,
        chat_room,
    ];
    let mut tour = Tour {
        t,
        title: "",
        diagrams: Vec::new(),
    };
    let started = Instant::now();
    let mut failed = 0;
    for (title, lesson) in t.titles.iter().zip(lessons) {
        println!("\n== {title}");
        tour.title = title;
        if let Err(e) = lesson(&mut tour) {
            failed += 1;
            println!("   {}: {e}", t.failed);
        }
    }
    println!(
        "\n{}",
        (t.summary)(lessons.len() - failed, lessons.len(), started.elapsed())
    );
    if let Err(e) = write_diagrams(&tour, &options, lang) {
        eprintln!("tour: {e}");
        failed += 1;
    }
    // The last word: where the learner writes the lessons.
    println!("\n{}", t.workbook);
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Where `--html` and `--svg` write when given no path: `name` in the
/// build's target directory, so following the README leaves the work tree
/// as it was. The tour runs from `target/debug/examples/`; `target/` is
/// three levels up (wherever `CARGO_TARGET_DIR` put it).
fn in_target(name: &str) -> String {
    let target = std::env::current_exe().ok().and_then(|exe| {
        let examples = exe.parent()?;
        (examples.file_name()? == "examples").then_some(())?;
        Some(examples.parent()?.parent()?.to_path_buf())
    });
    target
        .unwrap_or_else(|| "target".into())
        .join(name)
        .display()
        .to_string()
}

fn write_diagrams(tour: &Tour, options: &Options, lang: Lang) -> io::Result<()> {
    let or_target = |given: &Option<String>, name: &str| {
        given.as_ref().map(|path| {
            if path.is_empty() {
                in_target(name)
            } else {
                path.clone()
            }
        })
    };
    if let Some(file) = &or_target(&options.html, "tour.html") {
        let sections: Vec<html::Section> = tour
            .diagrams
            .iter()
            .map(|d| html::Section {
                trace: &d.trace,
                heading: d.heading.clone(),
                note: d.note.clone(),
            })
            .collect();
        let page = html::page(tour.t.page_title, lang.code(), &sections);
        std::fs::write(file, page)?;
        println!("{}", (tour.t.wrote_html)(file, sections.len()));
    }
    if let Some(dir) = &or_target(&options.svg, "wire") {
        std::fs::create_dir_all(dir)?;
        for diagram in &tour.diagrams {
            let path = std::path::Path::new(dir).join(format!("{}.svg", diagram.name));
            std::fs::write(path, html::svg_in(&diagram.trace, &tour.t.labels))?;
        }
        println!("{}", (tour.t.wrote_svg)(dir, tour.diagrams.len()));
    }
    Ok(())
}

fn tcp_greeting(tour: &mut Tour) -> Outcome {
    const DELAY: Duration = Duration::from_millis(200);
    let t = tour.t;
    println!("   {}", (t.tcp_intro)(DELAY));
    println!("   {}", t.tcp_watch);
    let greeter = Greeter::new()
        .delay(DELAY)
        .log(move |line| println!("   {} | {line}", t.server_tag));
    // Graceful: serve_forever waits for both conversations to close.
    let server = ThreadingTcpServer::builder(greeter)
        .graceful_shutdown(Duration::from_secs(5))
        .bind("127.0.0.1:0")?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    // Client B goes through a relay that records its conversation.
    let relay = recording_relay(addr)?;

    let started = Instant::now();
    let clients: Vec<_> = [("A", addr), ("B", relay.local_addr())]
        .into_iter()
        .map(|(who, to)| {
            (
                who,
                thread::spawn(move || greet::tcp_client(to, &greet::SEED_NAMES)),
            )
        })
        .collect();
    let mut transcripts = Vec::new();
    for (who, client) in clients {
        let transcript = client.join().map_err(|_| "a client panicked")??;
        println!("   {} {who} | {}", t.client_tag, transcript.join(" / "));
        transcripts.push(transcript);
    }
    let took = started.elapsed();
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    let trace = first_trace(&relay)?;
    relay.shutdown();
    tour.draw("tcp", &format!("{} {}", t.tcp_note, t.by_relay), trace);

    // Each client waits for three delayed replies.
    let one_at_a_time = DELAY * 3 * 2;
    println!("   {}", (t.tcp_done)(took, one_at_a_time));
    let expected = ["Welcome!", "你好,Michael", "你好,Tracy", "你好,Sarah"];
    check(
        transcripts.iter().all(|t| t == &expected),
        "a client did not get Welcome! and its three greetings",
    )
}

fn udp_greeting(tour: &mut Tour) -> Outcome {
    let t = tour.t;
    println!("   {}", t.udp_intro);
    // The seed's log line stays as the seed wrote it; only our note on
    // it, that this was a datagram, is said in the tour's language.
    let greeter = Greeter::new().log(move |line| {
        println!(
            "   {} | {}",
            t.server_tag,
            line.replace("(a datagram)", t.datagram)
        )
    });
    let server = UdpServer::bind("127.0.0.1:0", greeter)?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let replies = greet::udp_client(addr, &greet::SEED_NAMES, Duration::from_secs(2))?;
    // A datagram is one send and one recv, whole: the client's transcript
    // is the whole conversation.
    let trace = Trace::new("udp");
    for (reply, name) in replies.iter().zip(greet::SEED_NAMES) {
        trace.record(Side::Client, Op::Write, name.as_bytes());
        match reply {
            Some(line) => {
                println!("   {} | {line}", t.client_tag);
                trace.record(Side::Server, Op::Read, name.as_bytes());
                trace.record(Side::Server, Op::Write, line.as_bytes());
                trace.record(Side::Client, Op::Read, line.as_bytes());
            }
            None => println!("   {} | {}", t.client_tag, t.udp_lost),
        }
    }
    tour.draw("udp", t.udp_note, trace);
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
    /// Who prints, in the tour's language: the handler.
    tag: &'static str,
}

impl BaseRequestHandler for Myhandler {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let mut res = [0u8; 1024];
        let n = conn.read(&mut res)?;
        if n > 0 {
            let msg = String::from_utf8_lossy(&res[..n]).into_owned();
            // The seed's Myhandler prints `client:... msg:...`, as here.
            println!("   {} | client:{} msg:{msg:?}", self.tag, conn.peer_addr());
            let _ = self.heard.lock().map(|tx| tx.send(msg));
        }
        Ok(())
    }
}

fn own_handler(tour: &mut Tour) -> Outcome {
    let t = tour.t;
    println!("   {}", t.own_intro);
    let (tx, heard) = mpsc::channel();
    let server = ThreadingTcpServer::builder(Myhandler {
        heard: Mutex::new(tx),
        tag: t.handler_tag,
    })
    .pool(4)
    .bind("127.0.0.1:0")?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let info = server.info();
    let serving = thread::spawn(move || server.serve_forever());
    let relay = recording_relay(addr)?;
    for (msg, to) in [("hello", relay.local_addr()), ("你好", addr)] {
        io::Write::write_all(&mut std::net::TcpStream::connect(to)?, msg.as_bytes())?;
    }
    let mut got = vec![
        heard.recv_timeout(Duration::from_secs(5))?,
        heard.recv_timeout(Duration::from_secs(5))?,
    ];
    got.sort();
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    let trace = first_trace(&relay)?;
    relay.shutdown();
    tour.draw(
        "socketserver",
        &format!("{} {}", t.own_note, t.by_relay),
        trace,
    );
    let stats = info.stats();
    println!(
        "   {}",
        (t.own_counters)(stats.accepted, stats.completed, stats.failed)
    );
    check(
        got == ["hello", "你好"],
        "the handler did not hear both messages",
    )
}

fn sticky_packets(tour: &mut Tour) -> Outcome {
    let t = tour.t;
    let lesson = sticky::Lesson::run(4 << 20)?;
    let size: usize = lesson.reads.iter().sum();
    let min = lesson.reads.iter().min().copied().unwrap_or(0);
    let max = lesson.reads.iter().max().copied().unwrap_or(0);
    println!(
        "   {}",
        (t.sticky_stuck)(&String::from_utf8_lossy(&lesson.stuck))
    );
    println!("   {}", t.sticky_stuck_why);
    println!(
        "   {}",
        (t.sticky_split)(size, lesson.reads.len(), min, max)
    );
    println!("   {}", t.sticky_split_why);
    println!("   {}", t.sticky_fix);
    println!("   {}", (t.sticky_framed)(lesson.framed.len()));

    let (before, after) = sticky::traced(200_000)?;
    println!("   {}", t.sticky_see);
    for trace in [&before, &after] {
        for line in trace.text_in(&t.labels).lines() {
            println!("   {line}");
        }
    }
    let stuck_seen = before.reads().iter().any(|r| r.sticky);
    let split_seen = before.arrows().iter().any(|a| a.split);
    let stuck_after = after.reads().iter().any(|r| r.sticky);
    tour.draw("sticky", t.sticky_before_note, before);
    tour.draw("sticky-framed", t.sticky_after_note, after);

    check(
        lesson.stuck == b"helloworld",
        "the two writes did not stick",
    )?;
    check(lesson.reads.len() > 1, "the large write was not fragmented")?;
    check(
        stuck_seen && split_seen,
        "the trace did not see 粘包 and 分包",
    )?;
    check(!stuck_after, "a frame reader read past its frame")?;
    check(
        lesson.framed.len() == 3
            && lesson.framed[0] == b"hello"
            && lesson.framed[1] == b"world"
            && lesson.framed[2].len() == 4 << 20,
        "frames did not bring back the messages sent",
    )
}

#[cfg(not(unix))]
fn command_service(tour: &mut Tour) -> Outcome {
    println!("   {}", tour.t.unix_only);
    Ok(())
}

#[cfg(unix)]
fn command_service(tour: &mut Tour) -> Outcome {
    let t = tour.t;
    println!("   {}", t.cmd_intro);
    println!("   {}", t.cmd_intro2);
    let config = CommandConfig::default().timeout(Duration::from_millis(500));
    let server = command::bind("127.0.0.1:0", config)?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let relay = recording_relay(addr)?;

    let mut client = Client::connect(relay.local_addr(), Protocol::Framed)?;
    let show = |line: &str, reply: &command::Reply| {
        println!(
            "   {}{}",
            (t.cmd_reply)(
                line,
                &String::from_utf8_lossy(&reply.stdout),
                &String::from_utf8_lossy(&reply.stderr),
                reply.exit,
            ),
            if reply.timed_out { t.cmd_killed } else { "" }
        );
    };
    let hello = client.run("echo hello")?;
    show("echo hello", &hello);
    let missing = client.run("ls /no-such-dir")?;
    show("ls /no-such-dir", &missing);
    let no_shell = client.run("echo a; echo b")?;
    show("echo a; echo b", &no_shell);
    println!("{}", t.cmd_no_shell);
    let slow = client.run("sleep 60")?;
    show("sleep 60", &slow);
    drop(client);

    // The seed's client sends the raw command, unframed; the same port
    // answers it the seed's way.
    let mut seed = std::net::TcpStream::connect(addr)?;
    io::Write::write_all(&mut seed, "echo 你好".as_bytes())?;
    let reply = frame::read_frame(&mut seed)?.ok_or("no reply to the seed's request")?;
    println!(
        "   {}",
        (t.cmd_seed_form)(&String::from_utf8_lossy(&reply.body))
    );
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    let trace = first_trace(&relay)?;
    relay.shutdown();
    tour.draw("command", &format!("{} {}", t.cmd_note, t.by_relay), trace);

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

fn file_transfer(tour: &mut Tour) -> Outcome {
    println!("   {}", tour.t.files_intro);
    println!("   {}", tour.t.files_intro2);
    let dir = std::env::temp_dir().join(format!("socketserver-tour-{}", std::process::id()));
    let (root, local) = (dir.join("root"), dir.join("local"));
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&local)?;
    let outcome = transfer_in(tour, &root, &local);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn transfer_in(tour: &mut Tour, root: &std::path::Path, local: &std::path::Path) -> Outcome {
    let t = tour.t;
    let server = files::bind("127.0.0.1:0", FileConfig::new(root))?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let relay = recording_relay(addr)?;
    let mut client = FileClient::connect(relay.local_addr())?;

    let bytes: Vec<u8> = (0..3 * CHUNK + 1000).map(|i| (i % 251) as u8).collect();
    std::fs::write(local.join("lesson.bin"), &bytes)?;
    let up = client.put(&local.join("lesson.bin"), "lesson.bin", false, |_, _| {})?;
    println!("   {}", (t.files_put)(up.size, &up.digest));
    for entry in client.ls("")? {
        println!("   {}", (t.files_ls)(&entry.name, entry.size));
    }
    // A download cut after two chunks leaves them, verified, in DEST.part.
    let dest = local.join("copy.bin");
    std::fs::write(local.join("copy.bin.part"), &bytes[..2 * CHUNK])?;
    let down = client.get("lesson.bin", &dest, false, |_, _| {})?;
    println!("   {}", (t.files_get)(down.resumed_from, &down.digest));
    let escape = client.get("../etc/passwd", &local.join("x"), false, |_, _| {});
    let again = client.put(&local.join("lesson.bin"), "lesson.bin", false, |_, _| {});
    for refused in [&escape.as_ref().map(|_| ()), &again.as_ref().map(|_| ())] {
        if let Err(e) = refused {
            println!("   {} {e}", t.files_refused);
        }
    }
    drop(client);
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    let trace = first_trace(&relay)?;
    relay.shutdown();
    tour.draw("files", &format!("{} {}", t.files_note, t.by_relay), trace);

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

/// The chat room: `chat::demo_via` runs three clients against a real
/// server, through a recording relay, and checks every line each one hears.
fn chat_room(tour: &mut Tour) -> Outcome {
    let t = tour.t;
    println!("   {}", t.chat_intro);
    let mut relay = None;
    let outcome = socketserver::chat::demo_via(
        |server| {
            let proxy = recording_relay(server)?;
            let addr = proxy.local_addr();
            relay = Some(proxy);
            Ok(addr)
        },
        |line| println!("   {}", (t.chat_line)(line)),
    );
    let relay = relay.ok_or("the chat never started")?;
    // Alice joins first: the relay's first conversation is hers.
    let trace = first_trace(&relay);
    relay.shutdown();
    outcome?;
    tour.draw("chat", &format!("{} {}", t.chat_note, t.by_relay), trace?);
    Ok(())
}

fn chaos_proxy(tour: &mut Tour) -> Outcome {
    let t = tour.t;
    println!("   {}", t.chaos_intro);
    println!("   {}", t.chaos_intro2);
    let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new())?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    // The proxy's own log lines are the library's, in English: the tour
    // says what it set up and what it did in its own words instead.
    let chaos = Chaos::new()
        .segment(2)
        .delay(Duration::from_millis(10))
        .trace(true);
    println!("   {}", (t.proxy_start)(2, 10));
    let proxy = Proxy::start("127.0.0.1:0", addr, chaos)?;
    let heard = chaos::one_recv_client(proxy.local_addr(), &greet::SEED_NAMES)?;
    println!("   {}", t.chaos_seed);
    for message in &heard {
        println!("   {} | recv() → {message:?}", t.client_tag);
    }
    let trace = first_trace(&proxy)?;
    let report = proxy.shutdown();
    println!("   {}", (t.proxy_done)(report.bytes, report.pieces));
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    println!("   {}", t.chaos_seed_broke);
    tour.draw("chaos", t.chaos_seed_note, trace);

    let whole = ["Welcome!", "你好,Michael", "你好,Tracy", "你好,Sarah"];
    check(heard != whole, "the seed's client was not broken by 分包")?;
    chaos_framed(tour)
}

#[cfg(not(unix))]
fn chaos_framed(tour: &mut Tour) -> Outcome {
    println!("   {}", tour.t.unix_only);
    Ok(())
}

/// The second half of the chaos lesson: the framed command client through
/// the same kind of proxy, unharmed.
#[cfg(unix)]
fn chaos_framed(tour: &mut Tour) -> Outcome {
    let t = tour.t;
    println!("   {}", t.chaos_framed);
    let server = command::bind("127.0.0.1:0", CommandConfig::default())?;
    let addr = server.local_addr()?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    let chaos = Chaos::new().segment(3).trace(true);
    println!("   {}", (t.proxy_start)(3, 0));
    let proxy = Proxy::start("127.0.0.1:0", addr, chaos)?;
    let reply = Client::connect(proxy.local_addr(), Protocol::Framed)?.run("echo 你好")?;
    let framed = first_trace(&proxy)?;
    let report = proxy.shutdown();
    println!("   {}", (t.proxy_done)(report.bytes, report.pieces));
    stop.shutdown();
    serving.join().map_err(|_| "the server panicked")?;
    println!(
        "   {}",
        (t.chaos_framed_ok)(&String::from_utf8_lossy(&reply.stdout), report.pieces[1])
    );
    tour.draw("chaos-framed", t.chaos_framed_note, framed);

    check(
        reply.stdout == "你好\n".as_bytes(),
        "the framed reply through the proxy",
    )?;
    check(report.pieces[1] > 1, "the framed reply was not re-cut")
}
