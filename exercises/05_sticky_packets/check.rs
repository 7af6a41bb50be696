//! Exercise 5's checks: the learner's `make_sticky` and `make_split` on
//! the two ends of a real TCP connection on 127.0.0.1, each end wrapped in
//! a `socketserver::trace::Trace`, so the checker sees every call they
//! made, and draws it.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use socketserver::trace::{Op, Side, Trace, Traced};

use crate::harness::{Check, Failure, diagram, io_failure, show, tr};

pub const TITLE: (&str, &str) = (
    "Exercise 5: making 粘包 and 分包 happen, and seeing them",
    "练习 5: 让粘包和分包发生, 并亲眼看到",
);

type Sticky = fn(&mut Traced<TcpStream>, &mut Traced<TcpStream>) -> io::Result<Vec<u8>>;
type Split = fn(Traced<TcpStream>, &mut Traced<TcpStream>, Vec<u8>) -> io::Result<Vec<u8>>;

/// The size of the message for 分包: more than loopback's socket buffers
/// hold, so the write cannot finish before the reads begin.
const SPLIT_SIZE: usize = 8 << 20;

/// Both ends of one connection on 127.0.0.1, recorded in one trace.
fn pair(title: &str) -> Result<(Trace, Traced<TcpStream>, Traced<TcpStream>), Failure> {
    let setup = |e: io::Error| io_failure("cannot make a connection".into(), &e, String::new());
    let listener = TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    let client = TcpStream::connect(listener.local_addr().map_err(setup)?).map_err(setup)?;
    let (server, _) = listener.accept().map_err(setup)?;
    // Nagle off: each write leaves as its own segment, so when the two
    // writes come out of one read, the read did it, not the sender.
    client.set_nodelay(true).map_err(setup)?;
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(setup)?;
    let trace = Trace::new(title);
    let client = trace.wrap(client, Side::Client);
    let server = trace.wrap(server, Side::Server);
    Ok((trace, client, server))
}

/// The calls one side made, of one kind.
fn calls(trace: &Trace, side: Side, op: Op) -> Vec<Vec<u8>> {
    trace
        .events()
        .into_iter()
        .filter(|e| e.side == side && e.op == op && e.len > 0)
        .map(|e| e.head)
        .collect()
}

fn sticky_once(make_sticky: Sticky) -> Result<Trace, Failure> {
    let (trace, mut client, mut server) = pair("粘包")?;
    let result = make_sticky(&mut client, &mut server);
    let writes = calls(&trace, Side::Client, Op::Write);
    let reads = calls(&trace, Side::Server, Op::Read);
    let fail = |what: String, hint: String| Err(Failure::new(what, hint).diagram(&trace));
    if writes != [b"hello".to_vec(), b"world".to_vec()] {
        return fail(
            tr(
                "the client did not write hello, then world, as two writes",
                "客户端没有分两次写入 hello 和 world",
            ),
            tr(
                "two calls: client.write_all(b\"hello\") and client.write_all(b\"world\"), nothing else on the client.",
                "两次调用: client.write_all(b\"hello\") 和 client.write_all(b\"world\"), 客户端不做别的。",
            ),
        )
        .map_err(|f| f.got(format!("{} write(s): {}", writes.len(), writes.iter().map(|w| show(w)).collect::<Vec<_>>().join(", "))));
    }
    if reads.len() != 1 {
        return fail(
            tr(
                &format!("the server made {} reads, not one", reads.len()),
                &format!("服务端读了 {} 次, 而不是一次", reads.len()),
            ),
            tr(
                "粘包 is one read returning both writes: read once, late enough that both have arrived (TcpStream::peek shows what is waiting without reading it; the trace does not count it).",
                "粘包是一次读返回两次写的内容: 只读一次, 并且要晚到两次写都已到达 (TcpStream::peek 可以看等待中的字节而不读走; trace 不把它算作读)。",
            ),
        );
    }
    match result {
        Ok(got) if got == b"helloworld" && trace.reads().first().is_some_and(|r| r.sticky) => {
            Ok(trace)
        }
        Ok(got) => fail(
            tr(
                "the one read did not return helloworld",
                "那一次读返回的不是 helloworld",
            ),
            tr(
                "read too early and only hello has arrived: wait until all 10 bytes are in the receive buffer (peek), then read once with a buffer of 10 bytes or more.",
                "读得太早, 只有 hello 到了: 等到 10 个字节都在接收缓冲区里 (peek), 再用 10 字节以上的缓冲区读一次。",
            ),
        )
        .map_err(|f| f.got(show(&got)).expected("\"helloworld\"")),
        Err(e) => Err(io_failure(tr("make_sticky failed", "make_sticky 失败了"), &e, String::new())
            .diagram(&trace)),
    }
}

pub fn checks(make_sticky: Sticky, make_split: Split) -> Vec<Check> {
    let limit = Duration::from_secs(10);
    vec![
        Check::new(
            tr("two writes, one read: 粘包", "两次写, 一次读: 粘包"),
            limit,
            move || {
                let trace = sticky_once(make_sticky)?;
                Ok(Some(diagram(&trace, 12)))
            },
        ),
        Check::new(
            tr("粘包 every time, 20 times over", "每次都粘包, 连续 20 次"),
            limit,
            move || {
                for _ in 0..20 {
                    sticky_once(make_sticky)?;
                }
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "one write of 8 MiB, many reads: 分包",
                "一次写 8 MiB, 多次读: 分包",
            ),
            Duration::from_secs(20),
            move || {
                let (trace, client, mut server) = pair("分包")?;
                let message: Vec<u8> = (0..SPLIT_SIZE).map(|i| (i % 251) as u8).collect();
                let result = make_split(client, &mut server, message.clone());
                let writes = calls(&trace, Side::Client, Op::Write);
                let reads = calls(&trace, Side::Server, Op::Read).len();
                let hint = tr(
                    "write the message with one client.write_all on a thread of its own (thread::spawn(move || client.write_all(&message))), and read on server until you have message.len() bytes.",
                    "在单独的线程里用一次 client.write_all 写出消息 (thread::spawn(move || client.write_all(&message))), 在 server 上一直读到 message.len() 个字节。",
                );
                match result {
                    Err(e) => {
                        Err(
                            io_failure(tr("make_split failed", "make_split 失败了"), &e, hint)
                                .diagram(&trace),
                        )
                    }
                    Ok(got) if got != message => Err(Failure::new(
                        tr(
                            "the server did not receive the message whole",
                            "服务端没有完整收到消息",
                        ),
                        hint,
                    )
                    .got(format!("{} B", got.len()))
                    .expected(format!("{SPLIT_SIZE} B, the same bytes"))
                    .diagram(&trace)),
                    Ok(_) if writes.len() != 1 => Err(Failure::new(
                        tr(
                            &format!("the client made {} writes, not one", writes.len()),
                            &format!("客户端写了 {} 次, 而不是一次", writes.len()),
                        ),
                        hint,
                    )
                    .diagram(&trace)),
                    Ok(_) => Ok(Some(tr(
                        &format!("one write of {SPLIT_SIZE} B came out of {reads} reads."),
                        &format!("一次 {SPLIT_SIZE} B 的写, 分成了 {reads} 次读。"),
                    ))),
                }
            },
        ),
    ]
}
