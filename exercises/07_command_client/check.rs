//! Exercise 7's checks: the learner's `run` against the seed's own command
//! server (tests/peers/cmd_server.py, which runs shell lines: it listens on
//! 127.0.0.1 only), and against stand-in servers that reply through the
//! chaos proxy in 1-byte pieces, with a wrong md5, or not at all.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use socketserver::chaos::{Chaos, Proxy};
use socketserver::frame::write_frame;

use crate::harness::{
    Check, Failure, Unblock, diagram, io_failure, listen, peer_server, show, shown, shown_error,
    skipped_no_python, tr,
};

pub const TITLE: (&str, &str) = (
    "Exercise 7: the framed command client",
    "练习 7: 帧格式的远程命令客户端",
);

type Run = fn(&mut TcpStream, &str) -> io::Result<Vec<u8>>;

fn connect(addr: SocketAddr) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect(addr)
        .map_err(|e| io_failure("cannot connect".into(), &e, String::new()))?;
    // A reply that never comes fails the check, never hangs it.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    Ok(stream)
}

/// Expects `run(command)` to return `expected`.
fn expect_reply(
    run: Run,
    stream: &mut TcpStream,
    command: &str,
    expected: &[u8],
    hint: String,
) -> Result<(), Failure> {
    let failure = |what: String| {
        Failure::new(what, hint.clone())
            .sent(show(command.as_bytes()))
            .expected(show(expected))
    };
    match run(stream, command) {
        Ok(body) if body == expected => Ok(()),
        Ok(body) => Err(failure(tr(
            "the body returned is not the reply's body",
            "返回的数据不是回复的数据",
        ))
        .got(show(&body))),
        Err(e) => Err(failure(tr("run failed", "run 失败了")).got(shown_error(&e))),
    }
}

fn frame_hint() -> String {
    tr(
        "send the command's bytes with one write_all (no newline, no frame), then read one frame: socketserver::frame::read_frame(stream) (or your reader from exercise 6) reads it whole; return frame.body.",
        "用一次 write_all 发送命令的字节 (不加换行, 不加帧), 然后读一个帧: socketserver::frame::read_frame(stream) (或你在练习 6 写的读取器) 会完整地读出它; 返回 frame.body。",
    )
}

/// A command server that answers each expected command with `reply`, and
/// tells the check what it received instead when a request is not the
/// command's exact bytes.
fn stand_in(
    script: Vec<(&'static str, Vec<u8>)>,
) -> Result<(SocketAddr, mpsc::Receiver<Vec<u8>>), Failure> {
    let (listener, addr) = listen()?;
    let (tell, told) = mpsc::channel();
    thread::spawn(move || -> io::Result<()> {
        let (mut sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        for (command, reply) in script {
            let mut got = vec![0u8; command.len()];
            sock.read_exact(&mut got)?;
            if got != command.as_bytes() {
                let _ = tell.send(got);
                return Ok(());
            }
            sock.write_all(&reply)?;
        }
        Ok(())
    });
    Ok((addr, told))
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let _ = write_frame(&mut wire, body);
    wire
}

pub fn checks(run: Run) -> Vec<Check> {
    let limit = Duration::from_secs(20);
    vec![
        Check::new(
            tr(
                "two commands on one connection to the seed's own server (cmd_server.py)",
                "在一个连接上向教程自己的服务端 (cmd_server.py) 发两条命令",
            ),
            limit,
            move || {
                let Some(server) = peer_server("cmd_server.py", &[])? else {
                    return Ok(skipped_no_python());
                };
                let mut stream = connect(server.addr)?;
                expect_reply(run, &mut stream, "echo hello", b"hello\n", frame_hint())?;
                expect_reply(
                    run,
                    &mut stream,
                    "echo 你好",
                    "你好\n".as_bytes(),
                    frame_hint(),
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a 48,894-byte reply from the seed's server (seq 1 10000) comes back whole",
                "来自教程服务端的 48894 字节回复 (seq 1 10000) 完整地返回",
            ),
            limit,
            move || {
                let Some(server) = peer_server("cmd_server.py", &[])? else {
                    return Ok(skipped_no_python());
                };
                let mut stream = connect(server.addr)?;
                // Under 64 KiB: the seed's server reads stderr to its end
                // before stdout, so a command that fills the stdout pipe
                // would wait for ever (a bug of the seed's server, fixed in
                // this crate's command module).
                let expected: String = (1..=10_000).map(|i| format!("{i}\n")).collect();
                expect_reply(
                    run,
                    &mut stream,
                    "seq 1 10000",
                    expected.as_bytes(),
                    tr(
                        "the body is lenth bytes, and one recv returns far fewer: read until you have them all (read_exact, or frame::read_frame).",
                        "数据有 lenth 个字节, 一次 recv 返回的远少于此: 一直读到全部收到 (read_exact 或 frame::read_frame)。",
                    ),
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "replies through the chaos proxy in 1-byte pieces",
                "经过 chaos 代理、切成 1 字节小片的回复",
            ),
            limit,
            move || {
                let big = "你好\n".repeat(500).into_bytes();
                let (upstream, told) = stand_in(vec![
                    ("ls", framed(b"a.txt\nb.txt\n")),
                    ("cat big.txt", framed(&big)),
                ])?;
                let _unblock = Unblock(upstream);
                let proxy =
                    Proxy::start("127.0.0.1:0", upstream, Chaos::new().segment(1).trace(true))
                        .map_err(|e| {
                            io_failure("the proxy did not start".into(), &e, String::new())
                        })?;
                let mut stream = connect(proxy.local_addr())?;
                let with_wire = |mut f: Failure| {
                    if let Ok(got) = told.try_recv() {
                        f.what = tr(
                            &format!(
                                "the server received {} where it expected the command's bytes",
                                show(&got)
                            ),
                            &format!("服务端收到的是 {}, 而不是命令的字节", show(&got)),
                        );
                    }
                    if let Some(trace) = proxy.traces().first() {
                        f.diagram = Some(diagram(trace, 30));
                    }
                    f
                };
                expect_reply(run, &mut stream, "ls", b"a.txt\nb.txt\n", frame_hint())
                    .map_err(with_wire)?;
                expect_reply(run, &mut stream, "cat big.txt", &big, frame_hint())
                    .map_err(with_wire)?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a reply whose md5 does not match is InvalidData",
                "md5 不符的回复是 InvalidData",
            ),
            limit,
            move || {
                let mut corrupted = framed(b"hello\n");
                if let Some(last) = corrupted.last_mut() {
                    *last ^= 1;
                }
                let (addr, _) = stand_in(vec![("echo hello", corrupted)])?;
                let _unblock = Unblock(addr);
                let mut stream = connect(addr)?;
                match run(&mut stream, "echo hello") {
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
                    other => Err(Failure::new(
                        tr("a corrupted reply was not refused", "损坏的回复没有被拒绝"),
                        tr(
                            "the header carries the body's md5 so the client can check it: compare, and return InvalidData when they differ (frame::read_frame does).",
                            "报头里带着数据的 md5, 就是为了让客户端检查: 比较它们, 不同就返回 InvalidData (frame::read_frame 会这样做)。",
                        ),
                    )
                    .sent("\"echo hello\"")
                    .got(shown(&other))
                    .expected("Err(InvalidData)")),
                }
            },
        ),
        Check::new(
            tr(
                "a server that closes inside or before the reply is an error, and an empty command is refused",
                "服务端在回复中途或回复之前关闭是错误; 空命令被拒绝",
            ),
            limit,
            move || {
                let reply = framed(b"hello\n");
                let cut = reply[..reply.len() - 3].to_vec();
                let (addr, _) = stand_in(vec![("echo hello", cut)])?;
                let _unblock = Unblock(addr);
                let mut stream = connect(addr)?;
                if let Ok(body) = run(&mut stream, "echo hello") {
                    return Err(Failure::new(
                        tr("a reply cut short was returned as Ok", "被截断的回复作为 Ok 返回了"),
                        tr(
                            "the stream ended 3 bytes before the body's end: that is an error, not a shorter body.",
                            "流在数据结束前 3 个字节就结束了: 这是错误, 而不是更短的数据。",
                        ),
                    )
                    .sent("\"echo hello\"")
                    .got(format!("Ok({})", show(&body)))
                    .expected("Err(..)"));
                }
                // No reply at all: the server read the command and closed.
                let (addr, _) = stand_in(vec![("echo hello", Vec::new())])?;
                let _unblock = Unblock(addr);
                let mut stream = connect(addr)?;
                if let Ok(body) = run(&mut stream, "echo hello") {
                    return Err(Failure::new(
                        tr(
                            "a server that closed without replying got an Ok",
                            "服务端没有回复就关闭了, 却得到了 Ok",
                        ),
                        tr(
                            "read_frame returns Ok(None) when the stream ends before a frame begins. A reader of many frames stops there; run was promised one answer, so for run it is an error: return io::ErrorKind::UnexpectedEof, not an empty body.",
                            "流在一个帧开始之前结束时, read_frame 返回 Ok(None)。读很多帧的读取者到这里就停; run 等的是一个回答, 所以对 run 来说这是错误: 返回 io::ErrorKind::UnexpectedEof, 而不是空的数据。",
                        ),
                    )
                    .sent(tr(
                        "\"echo hello\" (the server read it and closed, with no reply)",
                        "\"echo hello\" (服务端读了它, 然后没有回复就关闭了)",
                    ))
                    .got(format!("Ok({})", show(&body)))
                    .expected("Err(UnexpectedEof)"));
                }
                let (addr, _) = stand_in(vec![])?;
                let _unblock = Unblock(addr);
                let mut stream = connect(addr)?;
                match run(&mut stream, "") {
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(None),
                    other => Err(Failure::new(
                        tr("an empty command was not refused with InvalidInput", "空命令没有以 InvalidInput 拒绝"),
                        tr(
                            "writing 0 bytes sends nothing, so the server never answers: the seed's client skips empty input (`if not cmd: continue`). Return io::ErrorKind::InvalidInput before sending.",
                            "写 0 个字节什么也不会发出, 服务端永远不会回答: 教程的客户端会跳过空输入 (`if not cmd: continue`)。在发送之前返回 io::ErrorKind::InvalidInput。",
                        ),
                    )
                    .sent("\"\"")
                    .got(shown(&other))
                    .expected("Err(InvalidInput)")),
                }
            },
        ),
    ]
}
