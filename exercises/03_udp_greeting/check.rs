//! Exercise 3's checks: the learner's `serve` on a UDP socket at 127.0.0.1
//! port 0, sent datagrams by sockets the checker holds and by the seed's
//! own client (tests/peers/greet_udp_client.py).

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{
    Check, Failure, io_failure, is_timeout, peer_client, show, skipped_no_python, tr,
};

pub const TITLE: (&str, &str) = (
    "Exercise 3: the UDP greeting server",
    "练习 3: UDP 问候服务端",
);

/// The learner's server on a fresh socket, on a thread left to wait in
/// `recv_from` (a server runs for ever; it ends with the process).
fn start(serve: fn(UdpSocket)) -> Result<Server, Failure> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| io_failure("cannot bind 127.0.0.1:0".into(), &e, String::new()))?;
    let addr = socket
        .local_addr()
        .map_err(|e| io_failure("no local address".into(), &e, String::new()))?;
    let thread = thread::spawn(move || serve(socket));
    Ok(Server { addr, thread })
}

/// The learner's server: where it listens, and its thread, to tell at
/// once when it has stopped (returned or panicked) rather than wait out a
/// reply that cannot come.
struct Server {
    addr: SocketAddr,
    thread: thread::JoinHandle<()>,
}

/// A client socket; replies wait at most 2 s (UDP may lose one: on
/// loopback it does not).
fn client() -> Result<UdpSocket, Failure> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| io_failure("cannot bind".into(), &e, String::new()))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| io_failure("no timeout".into(), &e, String::new()))?;
    Ok(socket)
}

/// Sends `message` from `socket` and expects `你好,message` back.
fn ask(socket: &UdpSocket, server: &Server, message: &[u8], hint: &str) -> Result<(), Failure> {
    let expected = ["你好,".as_bytes(), message].concat();
    socket
        .send_to(message, server.addr)
        .map_err(|e| io_failure("cannot send".into(), &e, String::new()))?;
    let mut buf = vec![0u8; 70_000];
    let failure = |what: String| {
        Failure::new(what, hint.to_string())
            .sent(show(message))
            .expected(show(&expected))
    };
    // Waits in slices, to notice at once a server that has stopped.
    let deadline = Instant::now() + Duration::from_secs(2);
    let received = loop {
        match socket.recv_from(&mut buf) {
            Err(e) if is_timeout(&e) && Instant::now() < deadline => {
                if server.thread.is_finished() {
                    return Err(failure(tr(
                        "your serve stopped (it returned or panicked) before replying",
                        "你的 serve 在回复之前就停止了 (返回或 panic)",
                    )));
                }
            }
            other => break other,
        }
    };
    match received {
        Ok((n, _)) if buf[..n] == expected[..] => Ok(()),
        Ok((n, _)) => Err(failure(tr(
            "the reply is not 你好, and the datagram",
            "回复不是 你好, 加上数据报的内容",
        ))
        .got(show(&buf[..n]))),
        Err(e) => Err(
            io_failure(tr("no reply came", "没有收到回复"), &e, hint.to_string())
                .sent(show(message))
                .expected(show(&expected)),
        ),
    }
}

pub fn checks(serve: fn(UdpSocket)) -> Vec<Check> {
    let limit = Duration::from_secs(10);
    vec![
        Check::new(
            tr("Tracy gets 你好,Tracy", "Tracy 收到 你好,Tracy"),
            limit,
            move || {
                let server = start(serve)?;
                ask(
                    &client()?,
                    &server,
                    b"Tracy",
                    &tr(
                        "recv_from gives the datagram's length and its sender; send_to that sender 你好, and exactly those bytes.",
                        "recv_from 给出数据报的长度和发送方; 用 send_to 把 你好, 加上这些字节发回给它。",
                    ),
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "two clients each get their own reply",
                "两个客户端各自收到自己的回复",
            ),
            limit,
            move || {
                let server = start(serve)?;
                let (a, b) = (client()?, client()?);
                let hint = tr(
                    "there is no connection: each reply goes to the address recv_from returned with that datagram.",
                    "没有连接: 每条回复发往 recv_from 随那个数据报一起返回的地址。",
                );
                ask(&a, &server, b"Michael", &hint)?;
                ask(&b, &server, b"Sarah", &hint)?;
                ask(&a, &server, b"Tracy", &hint)?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "an empty datagram is greeted, and the server goes on",
                "空数据报也会被问候, 服务端继续运行",
            ),
            limit,
            move || {
                let server = start(serve)?;
                let socket = client()?;
                let hint = tr(
                    "recv_from returning 0 is an empty datagram, not the end of anything: UDP has no connection to close. `if n == 0 { break }`, right for TCP, stops a UDP server.",
                    "recv_from 返回 0 是一个空数据报, 不是什么东西的结束: UDP 没有可关闭的连接。`if n == 0 { break }` 对 TCP 是对的, 对 UDP 却会让服务端停下。",
                );
                ask(&socket, &server, b"", &hint)?;
                ask(&socket, &server, b"Sarah", &hint)?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a 3,000-byte datagram is greeted whole",
                "3000 字节的数据报被完整地问候",
            ),
            limit,
            move || {
                let server = start(serve)?;
                let big: Vec<u8> = (0..3000).map(|i| b'a' + (i % 26) as u8).collect();
                ask(
                    &client()?,
                    &server,
                    &big,
                    &tr(
                        "a datagram longer than the buffer given to recv_from is cut to the buffer's size, and the rest is lost without an error (the seed's recvfrom(1024) does this). A UDP payload can be 65,507 bytes: give recv_from that much.",
                        "比 recv_from 的缓冲区长的数据报会被截断到缓冲区大小, 其余部分悄无声息地丢失 (教程的 recvfrom(1024) 就是这样)。UDP 载荷最长 65507 字节: 给 recv_from 这么大的缓冲区。",
                    ),
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "the seed's own client (greet_udp_client.py) is greeted three times",
                "教程自己的客户端 (greet_udp_client.py) 收到三次问候",
            ),
            limit,
            move || {
                let server = start(serve)?;
                // The seed's client waits for ever for a reply that does not
                // come: first make sure one comes.
                ask(&client()?, &server, b"Tracy", "")?;
                let Some((ok, out)) =
                    peer_client("greet_udp_client.py", server.addr, Duration::from_secs(8))?
                else {
                    return Ok(skipped_no_python());
                };
                let expected = ["你好,Michael", "你好,Tracy", "你好,Sarah"];
                if ok && out.lines().eq(expected) {
                    return Ok(None);
                }
                Err(Failure::new(
                    tr("the seed's client did not print three greetings", "教程的客户端没有打印三条问候"),
                    tr(
                        "it sends Michael, Tracy, Sarah, one datagram each, and waits for one reply to each (for ever, if none comes).",
                        "它发送 Michael、Tracy、Sarah, 每个一个数据报, 每个都等一条回复 (收不到就永远等下去)。",
                    ),
                )
                .sent("Michael, Tracy, Sarah")
                .got(out.trim_end().replace('\n', " | "))
                .expected(expected.join(" | ")))
            },
        ),
    ]
}
