//! Exercise 6's checks: the learner's `read_frame` on TCP connections
//! whose peer writes frames with this crate's `frame::write_frame`:
//! through the chaos proxy in 1-byte pieces, a large one as loopback cuts
//! it, and every way a frame can be cut short or lie.

use std::io::{self, Read};
use std::net::TcpStream;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use socketserver::chaos::{Chaos, Proxy};
use socketserver::frame::{Header, write_frame};
use socketserver::trace::{Side, Trace};

use crate::harness::{
    Check, Failure, caught, diagram, fed, io_failure, listen, show, shown_error, tr,
};

pub const TITLE: (&str, &str) = (
    "Exercise 6: a frame reader that survives any split",
    "练习 6: 经得起任意切分的帧读取器",
);

/// A sentence in English and in Chinese.
type Words = (&'static str, &'static str);

type ReadFrame = fn(&mut dyn Read) -> io::Result<Option<Vec<u8>>>;

/// Frames with these bodies, back to back.
fn frames(bodies: &[&[u8]]) -> Vec<u8> {
    let mut wire = Vec::new();
    for body in bodies {
        // Writing to a Vec cannot fail.
        let _ = write_frame(&mut wire, body);
    }
    wire
}

/// A frame with a hand-written header length and header.
fn raw(header_len: i32, header: &[u8], body: &[u8]) -> Vec<u8> {
    [&header_len.to_le_bytes()[..], header, body].concat()
}

/// What `read_frame` returned, as the learner reads it.
fn outcome(result: &io::Result<Option<Vec<u8>>>) -> String {
    match result {
        Ok(Some(body)) => format!("Ok(Some({}))", show(body)),
        Ok(None) => "Ok(None)".into(),
        Err(e) => shown_error(e),
    }
}

/// The bodies `read_frame` reads from `stream` until `Ok(None)` or an
/// error, at most `max` of them.
fn read_all(read_frame: ReadFrame, stream: &mut dyn Read, max: usize) -> (Vec<Vec<u8>>, String) {
    let mut bodies = Vec::new();
    while bodies.len() <= max {
        match read_frame(stream) {
            Ok(Some(body)) => bodies.push(body),
            end => return (bodies, outcome(&end)),
        }
    }
    (
        bodies,
        tr("(more frames than were sent)", "(比发送的帧还多)"),
    )
}

fn whole_hint() -> String {
    tr(
        "a read returns what has arrived, as little as 1 byte: read_exact loops until its buffer is full. Read exactly 4 bytes (i32::from_le_bytes), then exactly that many bytes of header (serde_json::from_slice::<Header>), then exactly header.len bytes of body.",
        "一次读返回已经到达的字节, 少到 1 个字节: read_exact 会一直读到缓冲区满。先读正好 4 个字节 (i32::from_le_bytes), 再读正好这么多字节的报头 (serde_json::from_slice::<Header>), 再读正好 header.len 个字节的数据。",
    )
}

/// Expects `read_frame` on a stream carrying `wire` to return `expected`
/// (an error is compared by kind).
fn expect_outcome(
    read_frame: ReadFrame,
    name: String,
    wire: Vec<u8>,
    expected: &io::Result<Option<Vec<u8>>>,
    hint: String,
) -> Result<(), Failure> {
    let mut stream = fed(wire.clone())?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    // A panic is this case's failure, named as the case: "capacity
    // overflow" alone does not say which length did it.
    let got = match panic::catch_unwind(AssertUnwindSafe(|| read_frame(&mut stream))) {
        Ok(got) => got,
        Err(payload) => {
            let panicked = caught(payload);
            return Err(Failure::new(name, format!("{hint} {}", panicked.hint))
                .sent(format!(
                    "{} {}",
                    show(&wire),
                    tr("then the end of the stream", "然后流结束")
                ))
                .got(panicked.what)
                .expected(outcome(expected)));
        }
    };
    let same = match (&got, expected) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.kind() == b.kind(),
        _ => false,
    };
    if same {
        return Ok(());
    }
    Err(Failure::new(name, hint)
        .sent(format!(
            "{} {}",
            show(&wire),
            tr("then the end of the stream", "然后流结束")
        ))
        .got(outcome(&got))
        .expected(outcome(expected)))
}

fn eof() -> io::Result<Option<Vec<u8>>> {
    Err(io::ErrorKind::UnexpectedEof.into())
}

fn invalid() -> io::Result<Option<Vec<u8>>> {
    Err(io::ErrorKind::InvalidData.into())
}

pub fn checks(read_frame: ReadFrame) -> Vec<Check> {
    let limit = Duration::from_secs(20);
    vec![
        Check::new(
            tr(
                "three frames through the chaos proxy, 1 byte at a time",
                "三个帧经过 chaos 代理, 每次 1 个字节",
            ),
            limit,
            move || {
                let hello: &[u8] = b"hello";
                let long = "你好".repeat(300).into_bytes();
                let long_copy = long.clone();
                let sent: Vec<Vec<u8>> = vec![hello.to_vec(), Vec::new(), long];
                // Both ends recorded in one trace, as each sees the
                // conversation: the diagram shows the learner's own reads.
                let trace = Trace::new(tr(
                    "your reader, through 1-byte pieces",
                    "你的读取器, 经过 1 字节小片",
                ));
                let (sender, upstream) = listen()?;
                let writing = trace.clone();
                thread::spawn(move || -> io::Result<()> {
                    let (sock, _) = sender.accept()?;
                    let mut sock = writing.wrap(sock, Side::Server);
                    for body in [hello, &[][..], &long_copy[..]] {
                        write_frame(&mut sock, body)?;
                    }
                    Ok(())
                });
                let proxy = Proxy::start("127.0.0.1:0", upstream, Chaos::new().segment(1))
                    .map_err(|e| io_failure("the proxy did not start".into(), &e, String::new()))?;
                let stream = TcpStream::connect(proxy.local_addr())
                    .map_err(|e| io_failure("cannot connect".into(), &e, String::new()))?;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut stream = trace.wrap(stream, Side::Client);
                let (bodies, end) = read_all(read_frame, &mut stream, 3);
                if bodies == sent && end == "Ok(None)" {
                    return Ok(None);
                }
                let listed = |b: &[Vec<u8>]| match b {
                    [] => tr("(no frame)", "(没有帧)"),
                    b => b.iter().map(|b| show(b)).collect::<Vec<_>>().join(", "),
                };
                // The first frames right and a later one wrong: the
                // reader is whole, but it reads past a frame's end and
                // loses those bytes (a BufReader made per call).
                let lost_ahead = !bodies.is_empty() && sent.starts_with(&bodies);
                let hint = if lost_ahead {
                    tr(
                        "the first frame came back whole and the next did not: the bytes read past the end of a frame were lost. A BufReader made inside read_frame reads ahead (the wire: one read spans two frames) and is dropped with what it read. Read from r itself, asking for exactly what the frame still needs (read_exact); the caller keeps any buffer.",
                        "第一个帧完整返回了, 下一个却没有: 读过一个帧结尾的那些字节丢了。在 read_frame 里新建的 BufReader 会预读 (线上的字节: 一次读跨了两个帧), 然后连同读到的东西一起被丢掉。直接从 r 读, 每次只要这个帧还需要的字节 (read_exact); 缓冲由调用者负责。",
                    )
                } else {
                    whole_hint()
                };
                let mut failure = Failure::new(
                    tr(
                        "the frames did not come back whole, then Ok(None)",
                        "帧没有完整返回, 之后也不是 Ok(None)",
                    ),
                    hint,
                )
                .sent(tr(
                    "3 frames (bodies \"hello\", \"\", and 1,800 bytes of 你好), in 1-byte pieces, then the end of the stream",
                    "3 个帧 (数据 \"hello\"、\"\" 和 1800 字节的 你好), 切成 1 字节小片, 然后流结束",
                ))
                .got(format!("{}; {end}", listed(&bodies)))
                .expected(format!("{}; Ok(None)", listed(&sent)));
                failure.diagram = Some(diagram(&trace, 30));
                Err(failure)
            },
        ),
        Check::new(
            tr(
                "a 1 MiB body, as loopback cuts it (分包)",
                "1 MiB 的数据, 按 loopback 切开的样子 (分包)",
            ),
            limit,
            move || {
                let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
                let mut stream = fed(frames(&[&body]))?;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let (bodies, end) = read_all(read_frame, &mut stream, 1);
                if bodies.len() == 1 && bodies[0] == body && end == "Ok(None)" {
                    return Ok(None);
                }
                Err(Failure::new(
                    tr(
                        "the 1 MiB body did not come back whole",
                        "1 MiB 的数据没有完整返回",
                    ),
                    whole_hint(),
                )
                .sent(tr(
                    "1 frame with a 1,048,576-byte body",
                    "1 个帧, 数据 1048576 字节",
                ))
                .got(format!(
                    "{} frame(s) of {:?} B; {end}",
                    bodies.len(),
                    bodies.iter().map(Vec::len).collect::<Vec<_>>()
                ))
                .expected("1 frame of [1048576] B; Ok(None)"))
            },
        ),
        Check::new(
            tr(
                "a clean end before any frame is Ok(None)",
                "在任何帧之前干净地结束, 返回 Ok(None)",
            ),
            limit,
            move || {
                expect_outcome(
                    read_frame,
                    tr("an empty stream is not Ok(None)", "空的流没有返回 Ok(None)"),
                    Vec::new(),
                    &Ok(None),
                    tr(
                        "if the very first read returns 0 bytes, no frame began: that is the clean end, Ok(None). read_exact cannot tell it apart from a cut frame, so make that first read yourself.",
                        "如果第一次读就返回 0 个字节, 说明没有帧开始: 这是干净的结束, Ok(None)。read_exact 分不清这种情况和被截断的帧, 所以第一次读要自己做。",
                    ),
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a frame cut short is UnexpectedEof, wherever the cut",
                "被截断的帧是 UnexpectedEof, 不管截在哪里",
            ),
            limit,
            move || {
                let hello = frames(&[b"hello"]);
                let hint = tr(
                    "a stream that ends inside a frame lost part of a message: that is an error (read_exact gives UnexpectedEof), never Ok(None) and never a shorter body.",
                    "在帧中间结束的流丢了消息的一部分: 这是错误 (read_exact 给出 UnexpectedEof), 绝不是 Ok(None), 也不是更短的数据。",
                );
                let length_hint = tr(
                    "read_exact says UnexpectedEof whether 0 or 2 of the 4 length bytes came, so its error cannot tell the clean end from a cut: read the first byte yourself (r.read(&mut len[..1])); Ok(0) there, and only there, is Ok(None); then read_exact(&mut len[1..]).",
                    "无论 4 个长度字节来了 0 个还是 2 个, read_exact 都报 UnexpectedEof, 它的错误分不清干净的结束和截断: 第一个字节自己读 (r.read(&mut len[..1])); 在那里、也只有在那里的 Ok(0) 才是 Ok(None); 然后 read_exact(&mut len[1..])。",
                );
                for (cut, part) in [
                    (2, ("the length", "长度")),
                    (30, ("the header", "报头")),
                    (69, ("the body", "数据")),
                ] {
                    let hint = if cut == 2 {
                        length_hint.clone()
                    } else {
                        hint.clone()
                    };
                    expect_outcome(
                        read_frame,
                        tr(
                            &format!("a stream that ends inside {} is not UnexpectedEof", part.0),
                            &format!("在{}中间结束的流没有得到 UnexpectedEof", part.1),
                        ),
                        hello[..cut].to_vec(),
                        &eof(),
                        hint,
                    )?;
                }
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a frame that lies is InvalidData: a negative or huge header length, bad JSON, a wrong md5",
                "说谎的帧是 InvalidData: 负的或过大的报头长度、坏的 JSON、错误的 md5",
            ),
            limit,
            move || {
                let mut corrupted = frames(&[b"hello"]);
                if let Some(last) = corrupted.last_mut() {
                    *last ^= 1;
                }
                let cases: Vec<(Words, Vec<u8>, Words)> = vec![
                    (
                        ("a negative header length", "负的报头长度"),
                        raw(-1, b"", b""),
                        (
                            "i32::from_le_bytes can be negative: a length under 0 is InvalidData (usize::try_from fails on it).",
                            "i32::from_le_bytes 可能是负数: 小于 0 的长度是 InvalidData (usize::try_from 会失败)。",
                        ),
                    ),
                    (
                        (
                            "a header length over MAX_HEADER",
                            "超过 MAX_HEADER 的报头长度",
                        ),
                        raw(1 << 20, b"", b""),
                        (
                            "check the length against MAX_HEADER before reading (or allocating) anything: the peer chose that number.",
                            "在读 (或分配) 任何东西之前先把长度和 MAX_HEADER 比较: 这个数是对方选的。",
                        ),
                    ),
                    (
                        ("a header that is not JSON", "不是 JSON 的报头"),
                        raw(5, b"hello", b""),
                        (
                            "a header serde_json cannot parse is InvalidData: map its error (io::Error::new(io::ErrorKind::InvalidData, e)).",
                            "serde_json 解析不了的报头是 InvalidData: 转换它的错误 (io::Error::new(io::ErrorKind::InvalidData, e))。",
                        ),
                    ),
                    (
                        (
                            "a body whose md5 is not the header's",
                            "md5 与报头不符的数据",
                        ),
                        corrupted,
                        (
                            "compare Header::for_body(&body).md5 with the header's md5: a changed byte is InvalidData.",
                            "比较 Header::for_body(&body).md5 和报头里的 md5: 改过一个字节就是 InvalidData。",
                        ),
                    ),
                ];
                for (what, wire, hint) in cases {
                    expect_outcome(
                        read_frame,
                        tr(
                            &format!("{} is not InvalidData", what.0),
                            &format!("{}没有得到 InvalidData", what.1),
                        ),
                        wire,
                        &invalid(),
                        tr(hint.0, hint.1),
                    )?;
                }
                Ok(None)
            },
        ),
        // Last, on its own: a reader that trusts this lenth asks for 1 TiB,
        // and a failed allocation aborts the whole checker (no panic to
        // catch), so every other check has already been reported.
        Check::new(
            tr(
                "a lenth of 1 TiB is InvalidData, refused before the body is allocated",
                "1 TiB 的 lenth 是 InvalidData, 在分配数据之前就拒绝",
            ),
            limit,
            move || {
                let huge = Header::for_body(b"").to_json();
                let huge = String::from_utf8_lossy(&huge)
                    .replace("\"lenth\":0", "\"lenth\":1099511627776");
                expect_outcome(
                    read_frame,
                    tr(
                        "a lenth of 1 TiB is not InvalidData",
                        "1 TiB 的 lenth 没有得到 InvalidData",
                    ),
                    raw(huge.len() as i32, huge.as_bytes(), b""),
                    &invalid(),
                    tr(
                        "check header.len against MAX_BODY before allocating the body: vec![0; 1 << 40] ends the whole program.",
                        "分配数据之前先把 header.len 和 MAX_BODY 比较: vec![0; 1 << 40] 会让整个程序结束。",
                    ),
                )?;
                Ok(None)
            },
        ),
    ]
}
