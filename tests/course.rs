//! The workbook (`exercises/`) kept honest: every exercise's checks pass
//! on its reference solution and fail on its skeleton, on real sockets,
//! each check bounded in time by the same harness the runner uses; and the
//! runner (`examples/course.rs`) lists them and checks one with the exit
//! codes it promises.
//!
//! The learner edits the skeletons in place: once an exercise file has no
//! `todo!()` left, it is the learner's answer, no longer a skeleton, and is
//! not required to fail (except under CI, where every file must be the
//! skeleton as shipped).

// A check's failure carries the whole story for the learner (what was
// sent, what came back, the wire); it is made once, on the way out.
#![allow(clippy::result_large_err)]

mod common;

use std::time::{Duration, Instant};

use common::example;

#[path = "../exercises/harness.rs"]
mod harness;

use harness::Check;
#[path = "../exercises/01_tcp_server/check.rs"]
#[allow(dead_code)]
mod check01;
#[path = "../exercises/02_tcp_client/check.rs"]
#[allow(dead_code)]
mod check02;
#[path = "../exercises/03_udp_greeting/check.rs"]
#[allow(dead_code)]
mod check03;
#[path = "../exercises/04_stream_handler/check.rs"]
#[allow(dead_code)]
mod check04;
#[path = "../exercises/05_sticky_packets/check.rs"]
#[allow(dead_code)]
mod check05;
#[path = "../exercises/06_frame_reader/check.rs"]
#[allow(dead_code)]
mod check06;
#[path = "../exercises/07_command_client/check.rs"]
#[allow(dead_code)]
mod check07;
#[path = "../exercises/08_chat_broadcast/check.rs"]
#[allow(dead_code)]
mod check08;
#[path = "../exercises/01_tcp_server/exercise.rs"]
#[allow(dead_code)]
mod exercise01;
#[path = "../exercises/02_tcp_client/exercise.rs"]
#[allow(dead_code)]
mod exercise02;
#[path = "../exercises/03_udp_greeting/exercise.rs"]
#[allow(dead_code)]
mod exercise03;
#[path = "../exercises/04_stream_handler/exercise.rs"]
#[allow(dead_code)]
mod exercise04;
#[path = "../exercises/05_sticky_packets/exercise.rs"]
#[allow(dead_code)]
mod exercise05;
#[path = "../exercises/06_frame_reader/exercise.rs"]
#[allow(dead_code)]
mod exercise06;
#[path = "../exercises/07_command_client/exercise.rs"]
#[allow(dead_code)]
mod exercise07;
#[path = "../exercises/08_chat_broadcast/exercise.rs"]
#[allow(dead_code)]
mod exercise08;
#[path = "../exercises/01_tcp_server/solution.rs"]
#[allow(dead_code)]
mod solution01;
#[path = "../exercises/02_tcp_client/solution.rs"]
#[allow(dead_code)]
mod solution02;
#[path = "../exercises/03_udp_greeting/solution.rs"]
#[allow(dead_code)]
mod solution03;
#[path = "../exercises/04_stream_handler/solution.rs"]
#[allow(dead_code)]
mod solution04;
#[path = "../exercises/05_sticky_packets/solution.rs"]
#[allow(dead_code)]
mod solution05;
#[path = "../exercises/06_frame_reader/solution.rs"]
#[allow(dead_code)]
mod solution06;
#[path = "../exercises/07_command_client/solution.rs"]
#[allow(dead_code)]
mod solution07;
#[path = "../exercises/08_chat_broadcast/solution.rs"]
#[allow(dead_code)]
mod solution08;

/// Every check passes on the reference solution.
fn passes(checks: Vec<Check>) {
    assert!(!checks.is_empty());
    for check in checks {
        let name = check.name.clone();
        if let Err(failure) = harness::run_one(check) {
            panic!(
                "{name}: fails on the solution:\n{}",
                harness::describe(&failure)
            );
        }
    }
}

/// Every check fails on the skeleton, promptly: a `todo!()` panics at once,
/// so no check waits out its time limit on one.
fn fails(dir: &str, checks: Vec<Check>) {
    let file = format!("{}/exercises/{dir}/exercise.rs", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&file).expect("the exercise file");
    if !text.contains("todo!(") {
        assert!(
            std::env::var_os("CI").is_none(),
            "{file} has no todo!() left: the shipped skeleton must have one"
        );
        eprintln!("NOTE: {file} has been answered: not checked as a skeleton");
        return;
    }
    for check in checks {
        let name = check.name.clone();
        let started = Instant::now();
        assert!(
            harness::run_one(check).is_err(),
            "{name}: passes on the skeleton"
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{name}: took {:?} to fail on the skeleton",
            started.elapsed()
        );
    }
}

#[test]
fn exercise_01_tcp_server() {
    passes(check01::checks(solution01::serve));
    fails("01_tcp_server", check01::checks(exercise01::serve));
}

#[test]
fn exercise_02_tcp_client() {
    passes(check02::checks(solution02::greet));
    fails("02_tcp_client", check02::checks(exercise02::greet));
}

#[test]
fn exercise_03_udp_greeting() {
    passes(check03::checks(solution03::serve));
    fails("03_udp_greeting", check03::checks(exercise03::serve));
}

#[test]
fn exercise_04_stream_handler() {
    passes(check04::checks::<solution04::Numbered>());
    fails(
        "04_stream_handler",
        check04::checks::<exercise04::Numbered>(),
    );
}

#[test]
fn exercise_05_sticky_packets() {
    passes(check05::checks(
        solution05::make_sticky,
        solution05::make_split,
    ));
    fails(
        "05_sticky_packets",
        check05::checks(exercise05::make_sticky, exercise05::make_split),
    );
}

#[test]
fn exercise_06_frame_reader() {
    passes(check06::checks(solution06::read_frame));
    fails("06_frame_reader", check06::checks(exercise06::read_frame));
}

#[test]
fn exercise_07_command_client() {
    passes(check07::checks(solution07::run));
    fails("07_command_client", check07::checks(exercise07::run));
}

#[test]
fn exercise_08_chat_broadcast() {
    passes(check08::checks::<solution08::Room>());
    fails("08_chat_broadcast", check08::checks::<exercise08::Room>());
}

/// `course list`: one line per exercise, each starting with its number
/// from 1, and its state; exit 0.
#[test]
fn the_runner_lists_every_exercise() {
    let out = example("course")
        .args(["--lang", "en", "list"])
        .output()
        .expect("the runner runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    for number in 1..=8 {
        let line = lines
            .iter()
            .find(|line| line.starts_with(&format!("{number} ")))
            .unwrap_or_else(|| panic!("no line for exercise {number}: {text}"));
        assert!(line.contains('✓') || line.contains('✗'), "{line}");
    }
    assert!(text.contains("of 8 exercises pass"), "{text}");
}

/// `course check N --solution` exits 0 with every check passed;
/// `course check N` on the skeleton exits 1 with a hint; an exercise that
/// does not exist is a usage error (2).
#[test]
fn the_runner_checks_one_exercise() {
    let solution = example("course")
        .args(["check", "6", "--solution", "--lang", "en"])
        .output()
        .expect("the runner runs");
    let text = String::from_utf8_lossy(&solution.stdout);
    assert_eq!(solution.status.code(), Some(0), "{text}");
    assert!(text.contains("all 6 checks pass"), "{text}");

    let zh = example("course")
        .args(["--lang", "zh", "check", "6", "--solution"])
        .output()
        .expect("the runner runs");
    assert!(String::from_utf8_lossy(&zh.stdout).contains("项检查全部通过"));

    let skeleton = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/exercises/06_frame_reader/exercise.rs"
    ))
    .expect("the exercise file");
    if skeleton.contains("todo!(") {
        let out = example("course")
            .args(["check", "6", "--lang", "en"])
            .output()
            .expect("the runner runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("not yet implemented"), "{text}");
        assert!(text.contains("hint:"), "{text}");
        assert!(
            text.contains("exercises/06_frame_reader/README.md"),
            "{text}"
        );
    }

    let missing = example("course")
        .args(["check", "99"])
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
}

/// Learners' mistakes, written as a learner writes them: each must fail
/// the check named, with the failure saying what went wrong. (Some once
/// passed the checks: the reply's tail was taken for an answer to `exit`,
/// a read of 0 bytes answered with "你好," went unseen, and so did a
/// server's silence returned as an empty body.)
mod mistakes {
    use std::io::{self, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    /// The seed's habit, with the whole buffer sent back.
    pub fn whole_buffer(listener: TcpListener) {
        serve(listener, |sock| tcplink(sock, true, true));
    }

    /// `Ok(0)` taken for an empty message.
    pub fn no_end_of_stream(listener: TcpListener) {
        serve(listener, |sock| tcplink(sock, false, false));
    }

    fn serve(listener: TcpListener, link: fn(TcpStream) -> io::Result<()>) {
        for sock in listener.incoming().flatten() {
            thread::spawn(move || link(sock));
        }
    }

    fn tcplink(mut sock: TcpStream, whole: bool, stop_at_0: bool) -> io::Result<()> {
        sock.write_all(b"Welcome!")?;
        let mut data = [0u8; 1024];
        loop {
            let n = sock.read(&mut data)?;
            if (n == 0 && stop_at_0) || &data[..n] == b"exit" {
                return Ok(());
            }
            let mut reply = "你好,".as_bytes().to_vec();
            reply.extend_from_slice(if whole { &data } else { &data[..n] });
            sock.write_all(&reply)?;
        }
    }

    /// A command client that takes the server's silence for an empty
    /// answer (`read_frame`'s `Ok(None)`).
    pub fn empty_for_none(stream: &mut TcpStream, command: &str) -> io::Result<Vec<u8>> {
        if command.is_empty() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        stream.write_all(command.as_bytes())?;
        let frame = socketserver::frame::read_frame(stream)?;
        Ok(frame.map(|f| f.body).unwrap_or_default())
    }

    /// A frame reader that trusts the header length (`as usize` makes -1
    /// huge) but is otherwise right.
    pub fn trusts_the_length(r: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        if r.read(&mut len[..1])? == 0 {
            return Ok(None);
        }
        r.read_exact(&mut len[1..])?;
        let mut head = vec![0u8; i32::from_le_bytes(len) as usize];
        r.read_exact(&mut head)?;
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        let header: socketserver::frame::Header =
            socketserver::frame::serde_json::from_slice(&head).map_err(invalid)?;
        if header.len > 1 << 20 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let mut body = vec![0u8; header.len as usize];
        r.read_exact(&mut body)?;
        Ok(Some(body))
    }
}

/// Runs the check whose name starts with `name` and returns its failure.
fn failure_of(checks: Vec<Check>, name: &str) -> harness::Failure {
    let check = checks
        .into_iter()
        .find(|c| c.name.starts_with(name))
        .unwrap_or_else(|| panic!("no check named {name}"));
    match harness::run_one(check) {
        Ok(_) => panic!("{name}: passes a wrong answer"),
        Err(failure) => failure,
    }
}

#[test]
fn the_checks_catch_the_learners_mistakes() {
    let whole = failure_of(check01::checks(mistakes::whole_buffer), "Tracy gets");
    assert!(whole.what.contains("1019 more"), "{}", whole.what);
    assert!(whole.hint.contains("&data[..n]"), "{}", whole.hint);

    let endless = failure_of(
        check01::checks(mistakes::no_end_of_stream),
        "a client that hangs up",
    );
    assert!(endless.got.as_deref().is_some_and(|g| g.contains("你好,")));
    assert!(endless.hint.contains("Ok(0)"), "{}", endless.hint);

    let silent = failure_of(
        check07::checks(mistakes::empty_for_none),
        "a server that closes inside or before",
    );
    assert!(silent.hint.contains("Ok(None)"), "{}", silent.hint);

    let trusting = failure_of(
        check06::checks(mistakes::trusts_the_length),
        "a frame that lies",
    );
    assert!(trusting.what.contains("negative"), "{}", trusting.what);
    assert!(
        trusting
            .got
            .as_deref()
            .is_some_and(|g| g.contains("panicked")),
        "{trusting:?}"
    );
}
