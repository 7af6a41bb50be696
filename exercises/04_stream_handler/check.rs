//! Exercise 4's checks: the learner's `StreamRequestHandler`, wrapped in
//! `Streamed` on this crate's `ThreadingTcpServer`, spoken to by clients
//! the checker plays: lines one by one, two in one write, one in 1-byte
//! pieces through the chaos proxy, two clients interleaved, a line too
//! long.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use socketserver::chaos::{Chaos, Proxy};
use socketserver::{StreamRequestHandler, Streamed};

use crate::harness::{
    Check, CloseStory, Failure, Served, expect_closed, expect_reply, io_failure, serve_tcp, show,
    tr,
};

pub const TITLE: (&str, &str) = (
    "Exercise 4: a socketserver handler with per-connection state",
    "练习 4: 带有每连接状态的 socketserver 处理器",
);

const WAIT: Duration = Duration::from_secs(2);

fn start<H: StreamRequestHandler + Default>() -> Result<Served, Failure> {
    serve_tcp(Streamed(H::default()))
}

fn connect(addr: SocketAddr) -> Result<TcpStream, Failure> {
    TcpStream::connect(addr).map_err(|e| io_failure("cannot connect".into(), &e, String::new()))
}

/// Sends `line` (in one write) and expects `reply`.
fn exchange(
    client: &mut TcpStream,
    line: &[u8],
    reply: &[u8],
    hint: String,
) -> Result<(), Failure> {
    client
        .write_all(line)
        .map_err(|e| io_failure("cannot send".into(), &e, hint.clone()).sent(show(line)))?;
    expect_reply(
        client,
        reply,
        WAIT,
        tr(
            "the reply is not the numbered line",
            "回复不是编了号的那一行",
        ),
        hint,
    )
    .map_err(|f| f.sent(show(line)))
}

fn counting_hint() -> String {
    tr(
        "answer each line L with `N: L` (L keeps its \\n), N counting this connection's lines from 1; request.read_line(MAX_LINE) gives one line at a time.",
        "对每一行 L 回复 `N: L` (L 保留它的 \\n), N 从 1 开始数这个连接的行; request.read_line(MAX_LINE) 一次给出一行。",
    )
}

pub fn checks<H: StreamRequestHandler + Default>() -> Vec<Check> {
    let limit = Duration::from_secs(10);
    vec![
        Check::new(
            tr("each line comes back numbered", "每一行都编上号返回"),
            limit,
            || {
                let served = start::<H>()?;
                let mut client = connect(served.addr)?;
                exchange(&mut client, b"hello\n", b"1: hello\n", counting_hint())?;
                exchange(&mut client, b"world\n", b"2: world\n", counting_hint())?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "two lines in one write get two replies (粘包 on the way in)",
                "一次写入的两行得到两条回复 (进来的方向上的粘包)",
            ),
            limit,
            || {
                let served = start::<H>()?;
                let mut client = connect(served.addr)?;
                exchange(
                    &mut client,
                    b"one\ntwo\n",
                    b"1: one\n2: two\n",
                    tr(
                        "one read can return two lines: a line ends at \\n, not where a read ends. read_line splits them.",
                        "一次读可能返回两行: 一行在 \\n 处结束, 而不是在一次读结束的地方。read_line 会把它们分开。",
                    ),
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a line in 1-byte pieces (chaos proxy) is one line (分包 on the way in)",
                "被切成 1 字节小片的一行 (chaos 代理) 仍是一行 (进来的方向上的分包)",
            ),
            limit,
            || {
                let served = start::<H>()?;
                let chaos = Chaos::new().segment(1).trace(true);
                let proxy = Proxy::start("127.0.0.1:0", served.addr, chaos)
                    .map_err(|e| io_failure("the proxy did not start".into(), &e, String::new()))?;
                let mut client = connect(proxy.local_addr())?;
                exchange(
                    &mut client,
                    "你好 Tracy\n".as_bytes(),
                    "1: 你好 Tracy\n".as_bytes(),
                    tr(
                        "a read can return part of a line, even part of a character: read until \\n (read_line does).",
                        "一次读可能只返回一行的一部分, 甚至一个字符的一部分: 读到 \\n 为止 (read_line 就是这样)。",
                    ),
                )
                .map_err(|f| match proxy.traces().first() {
                    Some(trace) => f.diagram(trace),
                    None => f,
                })?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "two clients at once keep separate counts",
                "两个同时连接的客户端各自计数",
            ),
            limit,
            || {
                let served = start::<H>()?;
                let mut a = connect(served.addr)?;
                let mut b = connect(served.addr)?;
                let hint = tr(
                    "one handler value serves every connection, at the same time, on different threads: a count kept in the handler (a field, a static) is shared by all of them. Keep this connection's state in handle's local variables.",
                    "一个处理器值同时在不同线程上服务所有连接: 放在处理器里的计数 (字段、static) 被所有连接共享。把这个连接的状态放在 handle 的局部变量里。",
                );
                // Each step says who sent what, so far: the count that
                // went wrong is the one a shared counter would give.
                let steps: [(&str, &[u8], &[u8]); 4] = [
                    ("A", b"a\n", b"1: a\n"),
                    ("B", b"x\n", b"1: x\n"),
                    ("A", b"b\n", b"2: b\n"),
                    ("B", b"y\n", b"2: y\n"),
                ];
                let mut story = Vec::new();
                for (who, line, reply) in steps {
                    story.push(format!("{who}: {}", show(line)));
                    let client = if who == "A" { &mut a } else { &mut b };
                    exchange(client, line, reply, hint.clone()).map_err(|f| Failure {
                        what: tr(
                            &format!("client {who}'s reply is not its own count"),
                            &format!("客户端 {who} 的回复不是它自己的计数"),
                        ),
                        sent: Some(story.join(", ")),
                        ..f
                    })?;
                }
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a line over 1,024 bytes closes that connection, and only that one",
                "超过 1024 字节的一行关闭这个连接, 只关闭这一个",
            ),
            limit,
            || {
                let served = start::<H>()?;
                let mut other = connect(served.addr)?;
                exchange(&mut other, b"a\n", b"1: a\n", counting_hint())?;
                let mut long = connect(served.addr)?;
                let mut line = vec![b'x'; 4000];
                line.push(b'\n');
                let hint = tr(
                    "bound every line: request.read_line(MAX_LINE) returns an error for a longer one; return it from handle (`?`), and the server closes this connection.",
                    "给每一行设上限: 行太长时 request.read_line(MAX_LINE) 返回错误; 从 handle 把它返回 (`?`), 服务端就会关闭这个连接。",
                );
                let _ = long.write_all(&line);
                expect_closed(
                    &mut long,
                    WAIT,
                    CloseStory {
                        sent: show(&line),
                        answered: tr(
                            "a 4,001-byte line was answered",
                            "4001 字节的一行得到了回复",
                        ),
                        answered_hint: hint.clone(),
                        open: tr(
                            "a 4,001-byte line left the connection open",
                            "4001 字节的一行之后连接仍然开着",
                        ),
                        open_hint: hint,
                    },
                )?;
                exchange(&mut other, b"b\n", b"2: b\n", counting_hint())?;
                Ok(None)
            },
        ),
    ]
}
