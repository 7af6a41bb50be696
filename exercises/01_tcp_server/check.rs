//! Exercise 1's checks: the learner's `serve` on a listener of 127.0.0.1
//! port 0, spoken to by a client the checker plays and by the seed's own
//! client (tests/peers/greet_tcp_client.py).

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crate::harness::{
    Check, CloseStory, Failure, expect_bytes, expect_closed, expect_reply, io_failure, listen,
    peer_client, show, skipped_no_python, tr,
};

pub const TITLE: (&str, &str) = (
    "Exercise 1: the TCP greeting server",
    "练习 1: TCP 问候服务端",
);

/// How long a reply may take.
const WAIT: Duration = Duration::from_secs(2);

/// The learner's server on a fresh listener; its thread is left to wait in
/// `accept` (a server runs for ever) and ends with the process.
fn start(serve: fn(TcpListener)) -> Result<SocketAddr, Failure> {
    let (listener, addr) = listen()?;
    thread::spawn(move || serve(listener));
    Ok(addr)
}

/// A client connected to the learner's server.
fn connect(addr: SocketAddr) -> Result<TcpStream, Failure> {
    TcpStream::connect(addr).map_err(|e| {
        io_failure(
            tr("could not connect to your server", "连不上你的服务端"),
            &e,
            tr(
                "serve gets a listener that is already bound: accept from it, do not bind another.",
                "serve 拿到的 listener 已经绑定好了: 从它 accept, 不要再绑定一个。",
            ),
        )
    })
}

fn welcome(client: &mut TcpStream) -> Result<(), Failure> {
    expect_bytes(
        client,
        b"Welcome!",
        WAIT,
        tr(
            "a client connected and did not get Welcome! first",
            "客户端连上后, 第一个收到的不是 Welcome!",
        ),
        tr(
            "the seed's tcplink sends 'Welcome!' before it reads anything; send it as it is, with no newline.",
            "教程的 tcplink 在读任何东西之前先发 'Welcome!'; 原样发送, 不加换行。",
        ),
    )
    .map_err(|f| f.sent(tr("(nothing: it only connected)", "(什么也没发: 只是连上)")))
}

fn send(client: &mut TcpStream, bytes: &[u8]) -> Result<(), Failure> {
    client.write_all(bytes).map_err(|e| {
        io_failure(
            tr("could not send to your server", "无法向你的服务端发送"),
            &e,
            tr(
                "the connection was closed early: does tcplink return too soon?",
                "连接过早关闭: tcplink 是否返回得太早?",
            ),
        )
        .sent(show(bytes))
    })
}

pub fn checks(serve: fn(TcpListener)) -> Vec<Check> {
    let limit = Duration::from_secs(10);
    vec![
        Check::new(
            tr("a new client gets Welcome!", "新客户端收到 Welcome!"),
            limit,
            move || {
                let addr = start(serve)?;
                welcome(&mut connect(addr)?)?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "Tracy gets 你好,Tracy; exit ends the connection",
                "Tracy 收到 你好,Tracy; exit 结束连接",
            ),
            limit,
            move || {
                let addr = start(serve)?;
                let mut client = connect(addr)?;
                welcome(&mut client)?;
                send(&mut client, b"Tracy")?;
                expect_reply(
                    &mut client,
                    "你好,Tracy".as_bytes(),
                    WAIT,
                    tr("the reply to Tracy is not 你好,Tracy", "对 Tracy 的回复不是 你好,Tracy"),
                    tr(
                        "the client sends Tracy (5 bytes, no newline) and waits for the answer: read once into the buffer (let n = sock.read(&mut data)?), and reply '你好,' followed by exactly the bytes that read returned, &data[..n], not the whole buffer (a read_line would wait for a newline that never comes).",
                        "客户端发送 Tracy (5 个字节, 没有换行) 然后等回复: 读一次到缓冲区 (let n = sock.read(&mut data)?), 回复 '你好,' 加上这次读到的字节 &data[..n], 而不是整个缓冲区 (read_line 会等一个永远不来的换行)。",
                    ),
                )
                .map_err(|f| f.sent("\"Tracy\""))?;
                send(&mut client, b"exit")?;
                expect_closed(
                    &mut client,
                    WAIT,
                    CloseStory {
                        sent: "\"exit\"".into(),
                        answered: tr(
                            "after exit the server sent more",
                            "收到 exit 之后服务端还发了东西",
                        ),
                        answered_hint: tr(
                            "exit is not greeted: compare what the read returned (&data[..n]) with b\"exit\", and return from tcplink before replying.",
                            "exit 不需要问候: 把这次读到的 (&data[..n]) 和 b\"exit\" 比较, 在回复之前从 tcplink 返回。",
                        ),
                        open: tr(
                            "after exit the connection stayed open",
                            "收到 exit 之后连接仍然开着",
                        ),
                        open_hint: tr(
                            "on exit, return from tcplink: dropping the TcpStream closes it.",
                            "收到 exit 就从 tcplink 返回: TcpStream 被 drop 时连接就关闭了。",
                        ),
                    },
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a client that hangs up without exit gets nothing more, and the server goes on",
                "不发 exit 就断开的客户端不会再收到东西, 服务端继续运行",
            ),
            limit,
            move || {
                let addr = start(serve)?;
                let mut first = connect(addr)?;
                welcome(&mut first)?;
                // Python's s.shutdown(socket.SHUT_WR): the client is done
                // sending, and still reads, so a reply to the end of the
                // stream (a read of 0 bytes taken for a message) is seen.
                let _ = first.shutdown(Shutdown::Write);
                let ok0_hint = tr(
                    "a read that returns Ok(0) is the end of the stream, not an empty message: the client hung up. Return from tcplink there (if n == 0 { return Ok(()) }), or the loop answers '你好,' for ever.",
                    "返回 Ok(0) 的读是流的结束, 不是空消息: 客户端挂断了。在那里从 tcplink 返回 (if n == 0 { return Ok(()) }), 否则循环会永远回复 '你好,'。",
                );
                let sent = tr(
                    "nothing, then the end of its stream (shutdown(Write), as a client that hangs up)",
                    "什么也没发, 然后结束它的流 (shutdown(Write), 就像挂断的客户端)",
                );
                expect_closed(
                    &mut first,
                    WAIT,
                    CloseStory {
                        sent,
                        answered: tr(
                            "a client hung up, and the server answered the end of its stream",
                            "客户端挂断了, 服务端却回复了流的结束",
                        ),
                        answered_hint: ok0_hint.clone(),
                        open: tr(
                            "a client hung up, and the server kept its connection open",
                            "客户端挂断了, 服务端却一直开着这个连接",
                        ),
                        open_hint: ok0_hint,
                    },
                )?;
                drop(first);
                welcome(&mut connect(addr)?).map_err(|f| Failure {
                    what: tr(
                        "after a client hung up, the next one was not greeted",
                        "一个客户端挂断之后, 下一个客户端没有收到问候",
                    ),
                    hint: tr(
                        "the end of one conversation ends that connection's thread (return from tcplink), never the server; and an error on one connection must not end serve: no ? or unwrap in the accept loop.",
                        "一个会话的结束只结束那个连接的线程 (从 tcplink 返回), 而不是整个服务端; 一个连接上的错误也不能让 serve 结束: accept 循环里不要用 ? 或 unwrap。",
                    ),
                    ..f
                })?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "two clients at once are both greeted",
                "两个客户端同时连接, 都收到问候",
            ),
            limit,
            move || {
                let addr = start(serve)?;
                let mut first = connect(addr)?;
                welcome(&mut first)?;
                let mut second = connect(addr)?;
                welcome(&mut second).map_err(|f| Failure {
                    what: tr(
                        "while one client was connected, a second one was not greeted",
                        "一个客户端还连着时, 第二个客户端没有收到问候",
                    ),
                    hint: tr(
                        "serve one connection per thread (thread::spawn(move || tcplink(sock))): a loop that serves a connection to its end before the next accept keeps everyone else waiting.",
                        "每个连接一个线程 (thread::spawn(move || tcplink(sock))): 先把一个连接服务完再 accept 下一个, 其他人都得等。",
                    ),
                    ..f
                })?;
                drop(first);
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "the seed's own client (greet_tcp_client.py) is greeted three times",
                "教程自己的客户端 (greet_tcp_client.py) 收到三次问候",
            ),
            limit,
            move || {
                let addr = start(serve)?;
                let Some((ok, out)) =
                    peer_client("greet_tcp_client.py", addr, Duration::from_secs(8))?
                else {
                    return Ok(skipped_no_python());
                };
                let expected = ["Welcome!", "你好,Michael", "你好,Tracy", "你好,Sarah"];
                if ok && expected.iter().all(|line| out.lines().any(|l| l == *line)) {
                    return Ok(None);
                }
                Err(Failure::new(
                    tr(
                        "the seed's client did not print what the seed's server makes it print",
                        "教程的客户端打印的内容与连教程的服务端时不同",
                    ),
                    tr(
                        "it sends Michael, Tracy, Sarah, each after the previous reply, then exit; it prints each recv(1024).",
                        "它依次发送 Michael、Tracy、Sarah, 每次都等上一个回复, 最后发 exit; 每次 recv(1024) 都打印出来。",
                    ),
                )
                .sent("Michael, Tracy, Sarah, exit")
                .got(out.trim_end().replace('\n', " | "))
                .expected(expected.join(" | ")))
            },
        ),
    ]
}
