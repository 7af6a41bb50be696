//! The workbook's checker: runs one exercise's checks, each against real
//! sockets on 127.0.0.1 port 0, each on a thread of its own with a time
//! limit, and says what failed in the learner's terms.
//!
//! A skeleton's `todo!()` panics: that panic is caught and becomes a failed
//! check ("your code panicked: not yet implemented"). A learner's code that
//! waits for ever becomes a failed check when its time is up: the check's
//! thread is left behind (it cannot be stopped from outside), and the
//! process it lives in ends soon after. Nothing a learner writes can hang
//! the checker.
//!
//! Included with `#[path]` by each exercise's checker binary
//! (`exercises/NN_*/main.rs`, built by `cargo run --example course -- check
//! N`) and by `tests/course.rs`, so the runner and `cargo test` run the same
//! checks.
#![allow(dead_code)] // each includer uses its own part of it

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::trace::{Labels, Trace};

/// Whether the checker speaks Chinese (`--lang zh`); English otherwise.
static ZH: AtomicBool = AtomicBool::new(false);

/// The last panics seen anywhere in the process (message and place), when
/// [`quiet_panics`] is on: a panic on a thread the learner's code started
/// (a server's connection thread) is reported too.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Chooses the checker's language.
pub fn set_chinese(on: bool) {
    ZH.store(on, Ordering::Relaxed);
}

/// `en` or `zh`, in the checker's language.
pub fn tr(en: &str, zh: &str) -> String {
    if ZH.load(Ordering::Relaxed) { zh } else { en }.to_string()
}

/// The diagrams' words in the checker's language.
pub fn labels() -> Labels {
    Labels::for_lang(if ZH.load(Ordering::Relaxed) {
        "zh"
    } else {
        "en"
    })
}

/// Bytes as the learner reads them: text where it is text, `\n` and
/// `\xNN` where it is not (the trace module's escape), quoted; a run of
/// one byte repeated is written once with its count (`"x"×4000`), so a
/// 4,001-byte line reads as what it is.
pub fn show(bytes: &[u8]) -> String {
    const MAX: usize = 160;
    /// A run shorter than this is written out.
    const RUN: usize = 16;
    let mut parts: Vec<String> = Vec::new();
    let mut text: Vec<u8> = Vec::new();
    let mut shown = 0;
    let mut i = 0;
    while i < bytes.len() && shown < MAX {
        let run = bytes[i..].iter().take_while(|&&b| b == bytes[i]).count();
        if run >= RUN {
            if !text.is_empty() {
                parts.push(format!("\"{}\"", socketserver::trace::escape(&text)));
                text.clear();
            }
            let one = socketserver::trace::escape(&bytes[i..i + 1]);
            parts.push(format!("\"{one}\"×{run}"));
            shown += one.len() + 8;
            i += run;
        } else {
            let take = run.min(MAX - shown);
            text.extend_from_slice(&bytes[i..i + take]);
            shown += take;
            i += take;
        }
    }
    if !text.is_empty() || parts.is_empty() {
        parts.push(format!("\"{}\"", socketserver::trace::escape(&text)));
    }
    let mut out = parts.join(" + ");
    if i < bytes.len() {
        let _ = write!(out, "… ({} B)", bytes.len());
    }
    out
}

/// A trace as a terminal sequence diagram, at most `max` lines of it.
pub fn diagram(trace: &Trace, max: usize) -> String {
    let text = trace.text_in(&labels());
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max {
        return text;
    }
    let mut out = lines[..max].join("\n");
    let _ = write!(
        out,
        "\n    … {}",
        tr(
            &format!("{} more lines", lines.len() - max),
            &format!("还有 {} 行", lines.len() - max)
        )
    );
    out
}

/// What went wrong, in the learner's terms: what the checker (playing the
/// peer) sent, what came back, what was expected, the wire where bytes
/// matter, and a hint.
#[derive(Debug, Default)]
pub struct Failure {
    /// One sentence: what did not happen.
    pub what: String,
    /// What the peer sent.
    pub sent: Option<String>,
    /// What came back.
    pub got: Option<String>,
    /// What should have come back.
    pub expected: Option<String>,
    /// The conversation drawn by `socketserver::trace`.
    pub diagram: Option<String>,
    /// What to look at.
    pub hint: String,
    /// The check did not finish in its time: its thread is still busy
    /// with the code under test, which is likely to hang the next check
    /// the same way.
    pub unfinished: bool,
}

impl Failure {
    /// A failure saying `what`, with `hint`.
    pub fn new(what: String, hint: String) -> Failure {
        Failure {
            what,
            hint,
            ..Failure::default()
        }
    }
    pub fn sent(mut self, sent: impl Into<String>) -> Failure {
        self.sent = Some(sent.into());
        self
    }
    pub fn got(mut self, got: impl Into<String>) -> Failure {
        self.got = Some(got.into());
        self
    }
    pub fn expected(mut self, expected: impl Into<String>) -> Failure {
        self.expected = Some(expected.into());
        self
    }
    pub fn diagram(mut self, trace: &Trace) -> Failure {
        self.diagram = Some(diagram(trace, 40));
        self
    }
}

/// Turns an I/O error into a failure: the error as it came, and the hint.
pub fn io_failure(what: String, error: &io::Error, hint: String) -> Failure {
    let got = if is_timeout(error) {
        tr(
            "nothing, until the checker stopped waiting",
            "什么也没有, 直到检查器不再等待",
        )
    } else {
        format!("{} ({:?})", error, error.kind())
    };
    Failure::new(what, hint).got(got)
}

/// A socket timeout, as Unix (`WouldBlock`) or Windows (`TimedOut`) says it.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One check: its name, how long it may take, and what it does. `Ok` holds
/// something to show even when it passes (a diagram), or nothing.
pub struct Check {
    pub name: String,
    pub limit: Duration,
    pub run: Box<dyn FnOnce() -> Result<Option<String>, Failure> + Send>,
}

impl Check {
    pub fn new(
        name: String,
        limit: Duration,
        run: impl FnOnce() -> Result<Option<String>, Failure> + Send + 'static,
    ) -> Check {
        Check {
            name,
            limit,
            run: Box::new(run),
        }
    }
}

/// Runs one check on a thread of its own: a panic in it (a skeleton's
/// `todo!()`) or its time running out is a failure, never the checker's
/// end.
pub fn run_one(check: Check) -> Result<Option<String>, Failure> {
    let Check { name, limit, run } = check;
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let (done, result) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name(format!("check: {name}"))
        .spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(run));
            let _ = done.send(outcome);
        });
    if let Err(e) = spawned {
        return Err(io_failure(
            tr("the checker could not start", "检查器无法启动"),
            &e,
            String::new(),
        ));
    }
    let outcome = match result.recv_timeout(limit) {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => Err(caught(payload)),
        Err(_) => Err({
            // The check is abandoned: so is any seed server it started.
            stop_peer_servers();
            Failure {
                unfinished: true,
                ..Failure::new(
                    tr(
                        &format!("no result within {limit:?}"),
                        &format!("{limit:?} 内没有结果"),
                    ),
                    tr(
                        "something waits for ever: a read that nothing will answer, a lock held across a wait, a thread that is never joined or a loop that never ends.",
                        "有东西在永远等待: 一次不会有人回应的读、等待时还持有的锁、从未结束的线程或循环。",
                    ),
                )
            }
        }),
    };
    outcome.map_err(|mut failure| {
        let panics = PANICS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !panics.is_empty()
            && !failure
                .what
                .starts_with(&tr("your code panicked", "你的代码 panic"))
        {
            let _ = write!(
                failure.what,
                "\n    {}",
                tr(
                    &format!("(meanwhile: {})", panics.join("; ")),
                    &format!("(同时: {})", panics.join("; "))
                )
            );
            if panics.iter().any(|p| p.starts_with("not yet implemented")) {
                // The cause is a todo!() left in, not what the check saw.
                failure.hint = tr(
                    "your code reached a `todo!()` (the line above says where), which panics with \"not yet implemented\": replace it with your code.",
                    "你的代码执行到了一个 `todo!()` (上面一行指出了位置), 它会以 \"not yet implemented\" panic: 把它换成你的代码。",
                );
            }
        }
        failure
    })
}

/// A panic caught in the code under test, as a failure; it is not
/// reported a second time as "meanwhile".
pub fn caught(payload: Box<dyn std::any::Any + Send>) -> Failure {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let failure = panicked(&message);
    PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| !p.starts_with(&message));
    failure
}

/// A failure for a panic with `message` in the code under test: where
/// it happened (the panic hook recorded the place), and, unless it is a
/// skeleton's `todo!()`, what a panic costs a server.
pub fn panicked(message: &str) -> Failure {
    let place = PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .rev()
        .find(|p| p.starts_with(message))
        .and_then(|p| p[message.len()..].trim().strip_prefix('('))
        .and_then(|p| p.strip_suffix(')'))
        // A place inside the standard library ("capacity overflow") says
        // nothing to the learner; the case that caused it does.
        .filter(|p| !p.starts_with("/rustc/"))
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let hint = if message.starts_with("not yet implemented") {
        tr(
            "`todo!()` panics with \"not yet implemented\": replace each one with your code.",
            "`todo!()` 会以 \"not yet implemented\" panic: 把每一个都换成你的代码。",
        )
    } else {
        tr(
            "A panic (unwrap, expect, an index out of range, an allocation too big for its size type) ends the thread it happens on: a connection's thread, or a whole server if it is the accept loop. Where a peer's bytes or a socket's error can cause it, return an io::Error instead.",
            "panic (unwrap、expect、越界的下标、超出大小类型的分配) 会结束它所在的线程: 一个连接的线程, 如果发生在 accept 循环里就是整个服务端。对方的字节或套接字的错误可能引起它的地方, 改为返回 io::Error。",
        )
    };
    Failure::new(
        tr(
            &format!("your code panicked: {message}{place}"),
            &format!("你的代码 panic 了: {message}{place}"),
        ),
        hint,
    )
}

/// From now on a panic is recorded for the report, not printed: the
/// checker's own output says what happened.
pub fn quiet_panics() {
    panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let mut panics = PANICS.lock().unwrap_or_else(|e| e.into_inner());
        if panics.len() < 3 {
            panics.push(format!("{message}{place}"));
        }
    }));
}

/// The server's log lines (a handler's error, a panic the framework
/// caught), kept for the report as a panic is, not printed.
struct Recorder;

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut panics = PANICS.lock().unwrap_or_else(|e| e.into_inner());
            if panics.len() < 3 {
                panics.push(record.args().to_string());
            }
        }
    }
    fn flush(&self) {}
}

/// Writes one failure as the learner reads it.
pub fn describe(failure: &Failure) -> String {
    let mut out = format!("    {}\n", failure.what);
    let rows = [
        (tr("sent", "发送"), &failure.sent),
        (tr("got", "收到"), &failure.got),
        (tr("expected", "期望"), &failure.expected),
    ];
    for (label, value) in rows {
        if let Some(value) = value {
            let _ = writeln!(out, "    {label:<9} {value}");
        }
    }
    if let Some(diagram) = &failure.diagram {
        let _ = writeln!(out, "    {}:", tr("the wire", "线上的字节"));
        for line in diagram.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !failure.hint.is_empty() {
        let _ = writeln!(out, "    {} {}", tr("hint:", "提示:"), failure.hint);
    }
    out
}

/// Runs every check in order, printing each as it ends (so a learner's
/// code that ends the process still leaves the checks before it on the
/// screen); the full story for the first failure, the name for later
/// ones. Returns how many failed.
pub fn run_and_print(title: &str, checks: Vec<Check>) -> usize {
    println!("{title}");
    let all = checks.len();
    let mut failed = 0;
    let mut unfinished = false;
    for check in checks {
        let name = check.name.clone();
        if unfinished {
            // One hang is enough to wait out: the rest would wait the same.
            println!(
                "  ✗ {name} {}",
                tr(
                    "(not run: the check above did not finish)",
                    "(未运行: 上面的检查没有结束)"
                )
            );
            failed += 1;
            continue;
        }
        let started = Instant::now();
        // The check's name while it runs: if the code under test ends the
        // whole process (an abort on an allocation of a size the peer
        // chose), the screen still says which check it was, and what the
        // process said as it ended follows on that line; the result line
        // then writes over it. (Only on a terminal: in a log the check
        // that ended it is the one after the last line.)
        let redo = if io::stdout().is_terminal() {
            print!("  … {name}: ");
            let _ = io::stdout().flush();
            "\r\x1b[2K"
        } else {
            ""
        };
        match run_one(check) {
            Ok(note) => {
                println!("{redo}  ✓ {name} ({:.0?})", started.elapsed());
                if let Some(note) = note {
                    for line in note.lines() {
                        println!("      {line}");
                    }
                }
            }
            Err(failure) => {
                unfinished = failure.unfinished;
                println!("{redo}  ✗ {name}");
                if failed == 0 {
                    print!("{}", describe(&failure));
                }
                failed += 1;
            }
        }
    }
    if failed == 0 {
        println!(
            "{}",
            tr(
                &format!("all {all} checks pass."),
                &format!("{all} 项检查全部通过。")
            )
        );
    } else {
        println!(
            "{}",
            tr(
                &format!("{failed} of {all} checks fail."),
                &format!("{all} 项检查中 {failed} 项未通过。")
            )
        );
    }
    failed
}

/// The checker binary's `main`: `--solution` checks the reference
/// solution, `--lang zh|en` picks the language, `--quiet` prints one line.
/// Exits 0 when every check passes, 1 otherwise.
pub fn main(title: (&str, &str), exercise: fn() -> Vec<Check>, solution: fn() -> Vec<Check>) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lang = args
        .iter()
        .position(|a| a == "--lang")
        .and_then(|i| args.get(i + 1));
    set_chinese(lang.is_some_and(|l| l.starts_with("zh")));
    quiet_panics();
    if log::set_logger(&Recorder).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let checks = if args.iter().any(|a| a == "--solution") {
        solution()
    } else {
        exercise()
    };
    let failed = if args.iter().any(|a| a == "--quiet") {
        let all = checks.len();
        // As run_and_print: after a check that did not finish, the rest
        // are counted as failed without waiting them out too.
        let mut failed = 0;
        let mut unfinished = false;
        for check in checks {
            if unfinished {
                failed += 1;
            } else if let Err(failure) = run_one(check) {
                unfinished = failure.unfinished;
                failed += 1;
            }
        }
        println!("{}/{all}", all - failed);
        failed
    } else {
        run_and_print(&tr(title.0, title.1), checks)
    };
    // Leave at once: a learner's server thread may still wait in accept.
    stop_peer_servers();
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// Reads exactly `len` bytes, waiting at most `within` in all; on a short
/// read, what came and why it stopped.
pub fn read_exactly(
    stream: &mut TcpStream,
    len: usize,
    within: Duration,
) -> Result<Vec<u8>, (Vec<u8>, io::Error)> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = vec![0u8; len.min(64 * 1024)];
    while got.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((got, io::ErrorKind::TimedOut.into()));
        }
        if let Err(e) = stream.set_read_timeout(Some(left)) {
            return Err((got, e));
        }
        let want = (len - got.len()).min(buf.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) => return Err((got, io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((got, e)),
        }
    }
    Ok(got)
}

/// Expects exactly `expected` from `stream` within `within`; otherwise a
/// failure saying what came instead.
pub fn expect_bytes(
    stream: &mut TcpStream,
    expected: &[u8],
    within: Duration,
    what: String,
    hint: String,
) -> Result<(), Failure> {
    match read_exactly(stream, expected.len(), within) {
        Ok(got) if got == expected => Ok(()),
        Ok(got) => Err(Failure::new(what, hint).got(show(&got))),
        Err((got, e)) => {
            let why = if e.kind() == io::ErrorKind::UnexpectedEof {
                tr("the connection closed", "连接关闭了")
            } else if is_timeout(&e) {
                tr(
                    &format!("nothing more in {within:?}"),
                    &format!("等了 {within:?} 再没有别的"),
                )
            } else {
                e.to_string()
            };
            let got = if got.is_empty() {
                tr(&format!("nothing: {why}"), &format!("什么也没有: {why}"))
            } else {
                tr(
                    &format!("{} then {why}", show(&got)),
                    &format!("{} 然后{why}", show(&got)),
                )
            };
            Err(Failure::new(what, hint).got(got))
        }
    }
    .map_err(|f| f.expected(show(expected)))
}

/// Expects a whole reply to one request: exactly `expected` within
/// `within`, and nothing after it that has already arrived. For lock-step
/// conversations only (the peer sends nothing more until it is asked): a
/// reply that runs on (the whole 1,024-byte buffer sent back, not the
/// bytes read) is caught here, as what it is, not taken for an answer to
/// the next request.
pub fn expect_reply(
    stream: &mut TcpStream,
    expected: &[u8],
    within: Duration,
    what: String,
    hint: String,
) -> Result<(), Failure> {
    expect_bytes(stream, expected, within, what.clone(), hint.clone())?;
    let surplus = already_there(stream);
    if surplus.is_empty() {
        return Ok(());
    }
    let mut got = expected.to_vec();
    got.extend_from_slice(&surplus);
    Err(Failure::new(
        tr(
            &format!("{what}: the right bytes came, then {} more", surplus.len()),
            &format!("{what}: 正确的字节之后, 又多来了 {} 个字节", surplus.len()),
        ),
        hint,
    )
    .got(show(&got))
    .expected(show(expected)))
}

/// What has already arrived on `stream`, read without waiting.
fn already_there(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    if stream.set_nonblocking(true).is_err() {
        return got;
    }
    let mut buf = [0u8; 4096];
    // What a reply could have run on by, at most: enough to show it.
    while got.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let _ = stream.set_nonblocking(false);
    got
}

/// How a stream the peer should close went.
#[derive(Debug)]
pub enum Close {
    /// `read` returned 0 (or the peer reset it), after `extra` bytes.
    Closed { extra: Vec<u8> },
    /// It stayed open: `error` (a timeout, most often) after `extra`
    /// bytes, or more than 64 KiB came and the checker stopped reading.
    Open { extra: Vec<u8>, error: io::Error },
}

/// Expects the peer to close: `read` returns 0 within `within`. Whatever
/// came first is kept, also when the stream stays open (a server that
/// answers a line it should refuse, and then waits), and at most 64 KiB of
/// it is read (a server that writes for ever cannot hold the check).
pub fn expect_close(stream: &mut TcpStream, within: Duration) -> Close {
    let mut extra = Vec::new();
    if let Err(error) = stream.set_read_timeout(Some(within)) {
        return Close::Open { extra, error };
    }
    let mut buf = [0u8; 4096];
    loop {
        if extra.len() >= 64 * 1024 {
            let error = io::Error::other(tr(
                "it kept sending: the checker stopped reading after 64 KiB",
                "它一直在发: 检查器读了 64 KiB 后停止",
            ));
            return Close::Open { extra, error };
        }
        match stream.read(&mut buf) {
            Ok(0) => return Close::Closed { extra },
            Ok(n) => extra.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Close::Closed { extra },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Close::Open { extra, error },
        }
    }
}

/// What a check says when a stream it expects closed was not: what the
/// peer sent, then the failure and hint for a reply that came (the
/// bytes are shown) and for a stream left open.
pub struct CloseStory {
    pub sent: String,
    pub answered: String,
    pub answered_hint: String,
    pub open: String,
    pub open_hint: String,
}

/// Expects the peer to close without sending anything more, within
/// `within`; otherwise the failure `story` tells.
pub fn expect_closed(
    stream: &mut TcpStream,
    within: Duration,
    story: CloseStory,
) -> Result<(), Failure> {
    let end = tr("the end of the stream", "流结束");
    match expect_close(stream, within) {
        Close::Closed { extra } | Close::Open { extra, .. } if !extra.is_empty() => {
            Err(Failure::new(story.answered, story.answered_hint)
                .sent(story.sent)
                .got(show(&extra))
                .expected(end))
        }
        Close::Closed { .. } => Ok(()),
        Close::Open { error, .. } => Err(io_failure(story.open, &error, story.open_hint)
            .sent(story.sent)
            .expected(end)),
    }
}

/// The seed's programs, `tests/peers/NAME`.
pub fn peer_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// `python3`, or `None` (the check then says it was skipped; under CI,
/// where the interop tests need it, it fails).
pub fn python3() -> Result<Option<Command>, Failure> {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let mut python = Command::new("python3");
            python.env("PYTHONIOENCODING", "utf-8");
            Ok(Some(python))
        }
        _ if std::env::var_os("CI").is_some() => Err(Failure::new(
            "python3 is required in CI and is missing".into(),
            String::new(),
        )),
        _ => Ok(None),
    }
}

/// What a check says when python3 is missing.
pub fn skipped_no_python() -> Option<String> {
    Some(tr(
        "(skipped: python3 not found, so the seed's own program did not run)",
        "(跳过: 没有 python3, 教程自己的程序没有运行)",
    ))
}

/// One of the seed's servers, running: killed when dropped.
pub struct PeerServer {
    child: Arc<Mutex<Child>>,
    pub addr: SocketAddr,
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        stop(&self.child);
        SERVERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| !Arc::ptr_eq(c, &self.child));
    }
}

/// Every seed server running, also where its `PeerServer` is held by a
/// check whose time ran out (and so is never dropped): the seed's command
/// server runs shell lines for anyone who connects, so none may outlive
/// its check.
static SERVERS: Mutex<Vec<Arc<Mutex<Child>>>> = Mutex::new(Vec::new());

fn stop(child: &Mutex<Child>) {
    let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops every seed server still running.
pub fn stop_peer_servers() {
    let servers = std::mem::take(&mut *SERVERS.lock().unwrap_or_else(|e| e.into_inner()));
    for child in servers {
        stop(&child);
    }
}

/// Starts the seed's server `script` on 127.0.0.1 port 0 (its
/// `LISTENING PORT` line says where); `None` without python3.
pub fn peer_server(script: &str, args: &[&str]) -> Result<Option<PeerServer>, Failure> {
    let Some(mut python) = python3()? else {
        return Ok(None);
    };
    let started = python
        .arg(peer_script(script))
        .arg("127.0.0.1:0")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = started
        .map_err(|e| io_failure(format!("python3 {script} did not start"), &e, String::new()))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(Failure::new("no stdout".into(), String::new()));
    };
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(port) = line.strip_prefix("LISTENING ") {
                    break port.trim().parse::<u16>().ok();
                }
            }
            _ => break None,
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    thread::spawn(move || for _ in lines {});
    let child = Arc::new(Mutex::new(child));
    SERVERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::clone(&child));
    let server = PeerServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0))),
    };
    match port {
        Some(_) => Ok(Some(server)),
        None => Err(Failure::new(
            format!("python3 {script} exited before saying where it listens"),
            String::new(),
        )),
    }
}

/// Runs one of the seed's clients against `addr` to its end, at most
/// `within`; returns its exit success and its output. `None` without
/// python3.
pub fn peer_client(
    script: &str,
    addr: SocketAddr,
    within: Duration,
) -> Result<Option<(bool, String)>, Failure> {
    let Some(mut python) = python3()? else {
        return Ok(None);
    };
    let mut child = python
        .arg(peer_script(script))
        .arg(addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io_failure(format!("python3 {script} did not start"), &e, String::new()))?;
    // Its output is drained on threads so it never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            text
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + within;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut text = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
    match status {
        Some(status) => Ok(Some((status.success(), text))),
        None => Ok(Some((
            false,
            format!(
                "{text}{}",
                tr(
                    &format!("(still waiting after {within:?}: stopped)"),
                    &format!("({within:?} 后仍在等待: 已停止)"),
                )
            ),
        ))),
    }
}

/// A server of this crate serving on a thread of its own; shut down and
/// joined when dropped.
pub struct Served {
    pub addr: SocketAddr,
    stop: socketserver::ShutdownHandle,
    serving: Option<thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(serving) = self.serving.take() {
            let _ = serving.join();
        }
    }
}

/// Serves `handler` on a `ThreadingTcpServer` at 127.0.0.1 port 0, with a
/// short grace period, so a handler that ignores the shutdown holds a
/// check up for 200 ms, not 5 s.
pub fn serve_tcp<H: socketserver::BaseRequestHandler>(handler: H) -> Result<Served, Failure> {
    let server = socketserver::ThreadingTcpServer::builder(handler)
        .graceful_shutdown(Duration::from_millis(200))
        .bind("127.0.0.1:0")
        .map_err(|e| io_failure("cannot listen on 127.0.0.1:0".into(), &e, String::new()))?;
    let addr = server
        .local_addr()
        .map_err(|e| io_failure("no local address".into(), &e, String::new()))?;
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever());
    Ok(Served {
        addr,
        stop,
        serving: Some(serving),
    })
}

/// A TCP listener on 127.0.0.1 port 0, and where it listens.
pub fn listen() -> Result<(std::net::TcpListener, SocketAddr), Failure> {
    let setup = |e: io::Error| io_failure("cannot listen on 127.0.0.1:0".into(), &e, String::new());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    let addr = listener.local_addr().map_err(setup)?;
    Ok((listener, addr))
}

/// `Ok(body)` or `Err(kind: error)`, as the learner reads a result.
pub fn shown(result: &io::Result<Vec<u8>>) -> String {
    match result {
        Ok(body) => format!("Ok({})", show(body)),
        Err(e) => shown_error(e),
    }
}

/// `Err(kind: error)`.
pub fn shown_error(e: &io::Error) -> String {
    format!("Err({:?}: {e})", e.kind())
}

/// A TCP connection whose peer sends `bytes` and then closes its side: how
/// the checks feed a reader exactly the bytes they mean, over a real
/// socket.
pub fn fed(bytes: Vec<u8>) -> Result<TcpStream, Failure> {
    use std::io::Write;
    let (listener, addr) = listen()?;
    let reader = TcpStream::connect(addr)
        .map_err(|e| io_failure("cannot connect".into(), &e, String::new()))?;
    let (mut writer, _) = listener
        .accept()
        .map_err(|e| io_failure("cannot accept".into(), &e, String::new()))?;
    // The writer has its own thread: a reader that reads nothing must not
    // leave a large write blocked in the check itself.
    thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    Ok(reader)
}

/// Releases a stand-in server's thread that may still wait in `accept`
/// (the code under test panicked before it connected): when dropped, it
/// connects once. Refused, harmlessly, once the stand-in is gone.
pub struct Unblock(pub SocketAddr);

impl Drop for Unblock {
    fn drop(&mut self) {
        let _ = TcpStream::connect_timeout(&self.0, Duration::from_secs(1));
    }
}
