//! Exercise 2's checks: the learner's `greet` against this crate's greeting
//! server, the seed's own server (tests/peers/greet_tcp_server.py), a
//! server whose replies the chaos proxy cuts into 2-byte pieces, and a
//! server that hangs up.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use socketserver::chaos::{Chaos, Proxy};
use socketserver::greet::Greeter;

use crate::harness::{
    Check, Failure, Unblock, io_failure, listen, peer_server, serve_tcp, skipped_no_python, tr,
};

pub const TITLE: (&str, &str) = (
    "Exercise 2: the TCP greeting client",
    "练习 2: TCP 问候客户端",
);

type Greet = fn(SocketAddr, &[&str]) -> std::io::Result<Vec<String>>;

const NAMES: [&str; 3] = ["Michael", "Tracy", "Sarah"];
const HEARD: [&str; 4] = ["Welcome!", "你好,Michael", "你好,Tracy", "你好,Sarah"];

/// Compares what `greet` returned with what the server said.
fn expect_heard(result: std::io::Result<Vec<String>>, hint: String) -> Result<(), Failure> {
    let failure = |what: String| {
        Failure::new(what, hint.clone())
            .sent(NAMES.join(", ") + ", exit")
            .expected(format!("{HEARD:?}"))
    };
    match result {
        Ok(heard) if heard == HEARD => Ok(()),
        Ok(heard) => Err(failure(tr(
            "greet returned other replies than the server sent",
            "greet 返回的回复与服务端发送的不同",
        ))
        .got(format!("{heard:?}"))),
        Err(e) => Err(failure(tr("greet failed", "greet 失败了")).got(e.to_string())),
    }
}

/// A greeting server that plays by the protocol exactly, and tells what
/// it received: `Welcome!`, a reply per name (it reads each name whole,
/// however it arrives), then `exit`.
fn strict_server() -> Result<(SocketAddr, mpsc::Receiver<Vec<u8>>), Failure> {
    let (listener, addr) = listen()?;
    let (tell, told) = mpsc::channel();
    thread::spawn(move || -> std::io::Result<()> {
        let (mut sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        sock.write_all(b"Welcome!")?;
        for name in NAMES {
            let mut got = vec![0u8; name.len()];
            sock.read_exact(&mut got)?;
            sock.write_all(&["你好,".as_bytes(), &got].concat())?;
        }
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest);
        let _ = tell.send(rest);
        Ok(())
    });
    Ok((addr, told))
}

pub fn checks(greet: Greet) -> Vec<Check> {
    let limit = Duration::from_secs(10);
    vec![
        Check::new(
            tr(
                "greets this crate's greeting server",
                "向本 crate 的问候服务端问好",
            ),
            limit,
            move || {
                let served = serve_tcp(Greeter::new())?;
                expect_heard(
                    greet(served.addr, &NAMES),
                    tr(
                        "read Welcome! first, then one reply per name, each after sending the name.",
                        "先读 Welcome!, 然后每发一个名字就读它的一条回复。",
                    ),
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "replies cut into 2-byte pieces by the chaos proxy come back whole",
                "被 chaos 代理切成 2 字节小片的回复, 仍然完整地返回",
            ),
            limit,
            move || {
                let (upstream, told) = strict_server()?;
                let _unblock = Unblock(upstream);
                let chaos = Chaos::new()
                    .segment(2)
                    .delay(Duration::from_millis(2))
                    .trace(true);
                let proxy = Proxy::start("127.0.0.1:0", upstream, chaos)
                    .map_err(|e| io_failure("the proxy did not start".into(), &e, String::new()))?;
                let result = greet(proxy.local_addr(), &NAMES);
                let rest = told.recv_timeout(Duration::from_secs(5)).ok();
                let traces = proxy.traces();
                let with_diagram = |f: Failure| match traces.first() {
                    Some(trace) => f.diagram(trace),
                    None => f,
                };
                expect_heard(
                    result,
                    tr(
                        "one read is not one message: the network may cut a reply anywhere, even inside 你 (3 bytes). You know how long each reply is (\"你好,\".len() + name.len()): read until you have that many bytes (read_exact).",
                        "一次读不等于一条消息: 网络可以在任何地方切开回复, 甚至在 你 (3 字节) 的中间。你知道每条回复有多长 (\"你好,\".len() + name.len()): 读到这么多字节为止 (read_exact)。",
                    ),
                )
                .map_err(with_diagram)?;
                match rest {
                    Some(rest) if rest == b"exit" => Ok(None),
                    rest => Err(with_diagram(
                        Failure::new(
                            tr("the client did not end with exit", "客户端没有以 exit 结束"),
                            tr(
                                "send exit (4 bytes, nothing else) after the last reply.",
                                "在最后一条回复之后发送 exit (4 个字节, 别的都不要)。",
                            ),
                        )
                        .got(rest.map_or_else(String::new, |r| crate::harness::show(&r)))
                        .expected("\"exit\""),
                    )),
                }
            },
        ),
        Check::new(
            tr(
                "a server that hangs up before replying is an error, not a hang",
                "服务端在回复之前挂断: 应返回错误, 而不是卡住",
            ),
            limit,
            move || {
                let (listener, addr) = listen()?;
                let _unblock = Unblock(addr);
                thread::spawn(move || -> std::io::Result<()> {
                    let (mut sock, _) = listener.accept()?;
                    sock.write_all(b"Welcome!")?;
                    let mut name = [0u8; 64];
                    let _ = sock.read(&mut name)?;
                    Ok(()) // and the socket closes, with no reply
                });
                match greet(addr, &["Tracy"]) {
                    Err(_) => Ok(None),
                    Ok(heard) => Err(Failure::new(
                        tr(
                            "greet returned Ok although the server closed without replying",
                            "服务端没有回复就关闭了, greet 却返回了 Ok",
                        ),
                        tr(
                            "read() returning 0 means the server closed: that is an error here (io::ErrorKind::UnexpectedEof), and a loop that reads until it has enough must stop on it, or it spins for ever.",
                            "read() 返回 0 表示服务端关闭了: 在这里这是一个错误 (io::ErrorKind::UnexpectedEof); 读到足够为止的循环必须在这时停下, 否则会永远空转。",
                        ),
                    )
                    .sent("\"Tracy\"")
                    .got(format!("Ok({heard:?})"))
                    .expected("Err(..)")),
                }
            },
        ),
        Check::new(
            tr(
                "greets the seed's own server (greet_tcp_server.py)",
                "向教程自己的服务端 (greet_tcp_server.py) 问好",
            ),
            limit,
            move || {
                let Some(server) = peer_server("greet_tcp_server.py", &["0"])? else {
                    return Ok(skipped_no_python());
                };
                expect_heard(
                    greet(server.addr, &NAMES),
                    tr(
                        "the seed's server replies to each recv(1024) with 你好, and what it got.",
                        "教程的服务端对每次 recv(1024) 收到的内容回复 你好, 加上内容。",
                    ),
                )?;
                Ok(None)
            },
        ),
        // Last: a right answer spends its own read timeout (5 s) here.
        Check::new(
            tr(
                "a server that greets and then says nothing is an error within about 5 s, not a hang (takes 5 s)",
                "服务端问候之后一言不发: 大约 5 秒内返回错误, 而不是卡住 (需要 5 秒)",
            ),
            limit,
            move || {
                let (listener, addr) = listen()?;
                let _unblock = Unblock(addr);
                // The server holds the connection open, silent, until the
                // check lets go of `release`: then the socket closes, and
                // a greet still waiting sees the end of the stream and ends.
                let (release, held) = mpsc::channel::<()>();
                thread::spawn(move || -> std::io::Result<()> {
                    let (mut sock, _) = listener.accept()?;
                    sock.write_all(b"Welcome!")?;
                    let _ = held.recv();
                    Ok(())
                });
                let (done, result) = mpsc::channel();
                thread::spawn(move || {
                    let _ = done.send(greet(addr, &["Tracy"]));
                });
                let waited = Duration::from_secs(8);
                let hint = tr(
                    "a server that says nothing must not hold the client for ever: sock.set_read_timeout(Some(Duration::from_secs(5))) right after connecting; a read that times out returns an error (WouldBlock or TimedOut), which greet returns.",
                    "一言不发的服务端不能让客户端永远等下去: 连接之后马上 sock.set_read_timeout(Some(Duration::from_secs(5))); 超时的读返回错误 (WouldBlock 或 TimedOut), greet 把它返回。",
                );
                let sent = tr(
                    "Tracy (the server sent Welcome!, then nothing, and kept the connection open)",
                    "Tracy (服务端发了 Welcome!, 然后什么也不发, 连接一直开着)",
                );
                match result.recv_timeout(waited) {
                    Ok(Err(_)) => Ok(None),
                    Ok(Ok(heard)) => Err(Failure::new(
                        tr(
                            "greet returned Ok although the server never replied",
                            "服务端从未回复, greet 却返回了 Ok",
                        ),
                        hint,
                    )
                    .sent(sent)
                    .got(format!("Ok({heard:?})"))
                    .expected("Err(..)")),
                    Err(_) => {
                        drop(release);
                        Err(Failure::new(
                            tr(
                                &format!("greet was still waiting after {waited:?}"),
                                &format!("{waited:?} 之后 greet 仍在等待"),
                            ),
                            hint,
                        )
                        .sent(sent)
                        .expected(tr("Err(..) within about 5 s", "大约 5 秒内返回 Err(..)")))
                    }
                }
            },
        ),
    ]
}
