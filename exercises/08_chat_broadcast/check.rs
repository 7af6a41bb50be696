//! Exercise 8's checks: the learner's `Room` on this crate's
//! `ThreadingTcpServer`, with members the checker plays: three that talk,
//! members that come and go, and one that joins and never reads again
//! while another sends 4 MB through the room.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use socketserver::{BaseRequestHandler, Connection};

use crate::harness::{
    Check, CloseStory, Failure, expect_bytes, expect_closed, io_failure, read_exactly, serve_tcp,
    show, tr,
};

pub const TITLE: (&str, &str) = (
    "Exercise 8: the chat room's broadcast, with a member that never reads",
    "练习 8: 聊天室的广播, 和一个从不读取的成员",
);

const WAIT: Duration = Duration::from_secs(5);
const WELCOME: &[u8] = b"* welcome\n";

/// Lines the talker sends past the member that never reads, and their size.
const LINES: usize = 4000;
const LINE: usize = 1000;
/// The talker sends this many lines, then waits for the listener to have
/// them: the room's queues are for members that fall behind, not for a
/// sender that outruns everyone.
const BATCH: usize = 32;

/// The learner's room, with each connection's kernel send buffer fixed
/// at 64 KiB (as `socketserver::chat` does) and Nagle off: a member that
/// never reads backs up after about 200 KB on any machine, not after
/// whatever the kernel's autotuning allows.
struct Bounded<H>(H);

impl<H: BaseRequestHandler> BaseRequestHandler for Bounded<H> {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        if let Some(tcp) = conn.stream().as_tcp() {
            socket2::SockRef::from(tcp).set_send_buffer_size(64 * 1024)?;
            tcp.set_nodelay(true)?;
        }
        self.0.handle(conn)
    }
}

/// A member: connected, welcomed, so it is in the room.
fn join(addr: SocketAddr) -> Result<TcpStream, Failure> {
    let mut member = TcpStream::connect(addr)
        .map_err(|e| io_failure("cannot connect".into(), &e, String::new()))?;
    let _ = member.set_write_timeout(Some(WAIT));
    welcome(&mut member)?;
    Ok(member)
}

fn welcome(member: &mut TcpStream) -> Result<(), Failure> {
    expect_bytes(
        member,
        WELCOME,
        WAIT,
        tr("a new member was not welcomed", "新成员没有收到欢迎"),
        tr(
            "once the member is in the room (its queue in members), queue WELCOME for it, first of all its lines.",
            "成员进入房间 (它的队列放进 members) 之后, 给它排上 WELCOME, 在它所有的行之前。",
        ),
    )
}

/// A member that reads nothing after its welcome, with a receive buffer
/// made small so the room's bytes for it back up soon.
fn never_reads(addr: SocketAddr) -> Result<TcpStream, Failure> {
    let setup = |e: io::Error| io_failure("cannot connect".into(), &e, String::new());
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).map_err(setup)?;
    socket.set_recv_buffer_size(4096).map_err(setup)?;
    socket.connect(&addr.into()).map_err(setup)?;
    let mut member: TcpStream = socket.into();
    welcome(&mut member)?;
    Ok(member)
}

fn say(member: &mut TcpStream, line: &[u8]) -> Result<(), Failure> {
    member.write_all(line).map_err(|e| {
        io_failure(
            tr("a member could not send its line", "成员无法发送它的行"),
            &e,
            tr(
                "the server stopped reading this member: is its handler stuck writing to someone else?",
                "服务端不再读这个成员了: 它的处理器是不是卡在给别人写东西?",
            ),
        )
        .sent(show(line))
    })
}

fn hears(member: &mut TcpStream, line: &[u8], what: String, hint: String) -> Result<(), Failure> {
    expect_bytes(member, line, WAIT, what, hint)
}

pub fn checks<H: BaseRequestHandler + Default>() -> Vec<Check> {
    let limit = Duration::from_secs(30);
    vec![
        Check::new(
            tr(
                "a line reaches every other member, not its sender",
                "一行送达其他每个成员, 不送回发送者",
            ),
            limit,
            || {
                let served = serve_tcp(Bounded(H::default()))?;
                let (mut a, mut b, mut c) =
                    (join(served.addr)?, join(served.addr)?, join(served.addr)?);
                let hint = tr(
                    "for each line a member sends, put it in every other member's queue; each member's writer thread writes its queue to its socket.",
                    "成员每发一行, 就放进其他每个成员的队列; 每个成员的写线程把自己的队列写到自己的套接字。",
                );
                say(&mut a, b"hi\n")?;
                hears(
                    &mut b,
                    b"hi\n",
                    tr("B did not get A's line", "B 没有收到 A 的行"),
                    hint.clone(),
                )
                .map_err(|f| f.sent("A: \"hi\\n\""))?;
                hears(
                    &mut c,
                    b"hi\n",
                    tr("C did not get A's line", "C 没有收到 A 的行"),
                    hint,
                )
                .map_err(|f| f.sent("A: \"hi\\n\""))?;
                say(&mut b, b"yo\n")?;
                hears(
                    &mut a,
                    b"yo\n",
                    tr("A's next line is not B's", "A 收到的下一行不是 B 的"),
                    tr(
                        "a member does not get its own line back: skip the sender (its connection id) when passing a line on.",
                        "成员不会收到自己的行: 转发时跳过发送者 (它的连接 id)。",
                    ),
                )
                .map_err(|f| f.sent("A: \"hi\\n\", then B: \"yo\\n\""))?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "members come and go; those who stay still talk",
                "成员来来去去; 留下的仍能交谈",
            ),
            limit,
            || {
                let served = serve_tcp(Bounded(H::default()))?;
                let mut a = join(served.addr)?;
                let mut witness = join(served.addr)?;
                let gone = join(served.addr)?;
                drop(gone);
                let hint = tr(
                    "when a member leaves (its read returns 0), take it out of the room and end its writer; a line for a member that left must not fail the sender.",
                    "成员离开时 (它的读返回 0), 把它移出房间并结束它的写线程; 发给已离开成员的行不能让发送者失败。",
                );
                let story = "A, W, B join; B leaves; A: \"anyone?\\n\"; C joins; A: \"hello C\\n\"";
                say(&mut a, b"anyone?\n")?;
                // Once W has it, the room has passed it on: C joins after.
                hears(
                    &mut witness,
                    b"anyone?\n",
                    tr(
                        "W did not get A's line after B left",
                        "B 离开后 W 没有收到 A 的行",
                    ),
                    hint.clone(),
                )
                .map_err(|f| f.sent(story))?;
                let mut c = join(served.addr)?;
                say(&mut a, b"hello C\n")?;
                hears(
                    &mut c,
                    b"hello C\n",
                    tr(
                        "C, who joined late, did not get A's line",
                        "后加入的 C 没有收到 A 的行",
                    ),
                    hint.clone(),
                )
                .map_err(|f| f.sent(story))?;
                say(&mut c, b"hi A\n")?;
                hears(
                    &mut a,
                    b"hi A\n",
                    tr("A did not get C's line", "A 没有收到 C 的行"),
                    hint,
                )?;
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a member that never reads neither stalls the room nor stays in it",
                "从不读取的成员既不会拖住房间, 也不会一直留在房间里",
            ),
            limit,
            || {
                let served = serve_tcp(Bounded(H::default()))?;
                let mut stuck = never_reads(served.addr)?;
                let mut talker = join(served.addr)?;
                let mut listener = join(served.addr)?;
                let mut line = vec![b'x'; LINE - 1];
                line.push(b'\n');
                let batch = line.repeat(BATCH);
                let stall_hint = tr(
                    "the sender's thread waited for the member that does not read, and so stopped reading the sender. Two ways to wait for it: a write to its socket (it blocks once the socket's buffers are full), or a send into its full queue (send waits for room). Never write to another member's socket from the sender's thread: each member has a bounded queue (mpsc::sync_channel(QUEUE)) and a writer thread of its own; pass lines on with try_send, which never waits, and on Full drop that member.",
                    "发送者的线程在等那个不读的成员, 于是不再读发送者。等它的方式有两种: 写它的套接字 (套接字缓冲区满了就阻塞), 或者往它满了的队列里 send (send 会等到有空位)。永远不要在发送者的线程里写别的成员的套接字: 每个成员有一个有界队列 (mpsc::sync_channel(QUEUE)) 和自己的写线程; 用从不等待的 try_send 转发, 遇到 Full 就踢出那个成员。",
                );
                for sent in (0..LINES).step_by(BATCH) {
                    let on_stall = |f: Failure| Failure {
                        what: tr(
                            &format!(
                                "the room stalled: the listener stopped getting lines after {sent} of {LINES}"
                            ),
                            &format!(
                                "房间被拖住了: 收听者在收到 {LINES} 行中的 {sent} 行之后再也收不到"
                            ),
                        ),
                        hint: stall_hint.clone(),
                        sent: Some(tr(
                            &format!(
                                "one member joined and never read; another sent {LINES} lines of {LINE} B"
                            ),
                            &format!(
                                "一个成员加入后从不读取; 另一个成员发送 {LINES} 行, 每行 {LINE} B"
                            ),
                        )),
                        ..f
                    };
                    say(&mut talker, &batch).map_err(on_stall)?;
                    match read_exactly(&mut listener, batch.len(), WAIT) {
                        Ok(got) if got == batch => {}
                        Ok(got) => {
                            return Err(on_stall(
                                Failure::default().got(show(&got)).expected(show(&batch)),
                            ));
                        }
                        Err((got, e)) => {
                            return Err(on_stall(
                                io_failure(String::new(), &e, String::new()).got(tr(
                                    &format!(
                                        "{sent} lines, then {} B of the next {BATCH} lines' {} B, then nothing for {WAIT:?}",
                                        got.len(),
                                        batch.len()
                                    ),
                                    &format!(
                                        "{sent} 行, 然后是接下来 {BATCH} 行共 {} B 中的 {} B, 然后 {WAIT:?} 内什么也没有",
                                        batch.len(),
                                        got.len()
                                    ),
                                )),
                            ));
                        }
                    }
                }
                // The room should have dropped it: what it has not read is
                // followed by the end of its stream, not by everything.
                let _ = stuck.set_read_timeout(Some(WAIT));
                let mut received = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match io::Read::read(&mut stuck, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => received += n,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                        Err(e) => {
                            return Err(io_failure(
                                tr(
                                    "the member that never read was never dropped",
                                    "从不读取的成员一直没有被踢出",
                                ),
                                &e,
                                tr(
                                    "a member whose queue is full has stopped reading: remove it from the room and shut its socket (Stream::shutdown(Shutdown::Both)), or its queue, or the kernel's buffers, hold its lines for ever.",
                                    "队列满了的成员已经不再读了: 把它移出房间并关闭它的套接字 (Stream::shutdown(Shutdown::Both)), 否则它的队列或内核缓冲区会永远占着它的行。",
                                ),
                            )
                            .sent(tr(
                                &format!(
                                    "one member joined and never read; another sent {LINES} lines of {LINE} B, and a third got them all"
                                ),
                                &format!(
                                    "一个成员加入后从不读取; 另一个成员发送 {LINES} 行, 每行 {LINE} B, 第三个成员全都收到了"
                                ),
                            ))
                            .got(tr(
                                &format!("{received} B, then nothing, and the connection still open"),
                                &format!("{received} B, 然后什么也没有, 连接仍然开着"),
                            ))
                            .expected(tr(
                                "what was queued for it, then the end of the stream: dropped",
                                "排给它的那些行, 然后流结束: 被踢出",
                            )));
                        }
                    }
                }
                let total = LINES * LINE;
                if received >= total {
                    return Err(Failure::new(
                        tr(
                            "the member that never read got every line in the end: it was never dropped",
                            "从不读取的成员最终收到了每一行: 它从未被踢出",
                        ),
                        tr(
                            "the queue must be bounded (sync_channel(QUEUE)), and a member whose queue is full dropped: an unbounded queue holds everything a member never reads, for as long as it stays.",
                            "队列必须有界 (sync_channel(QUEUE)), 队列满了的成员要被踢出: 无界队列会把成员从不读的一切都存着, 它待多久就存多久。",
                        ),
                    )
                    .got(format!("{received} B"))
                    .expected(tr(
                        &format!("fewer than {total} B, then the end of the stream"),
                        &format!("少于 {total} B, 然后流结束"),
                    )));
                }
                Ok(None)
            },
        ),
        Check::new(
            tr(
                "a line over MAX_LINE ends that member, and is not passed on",
                "超过 MAX_LINE 的一行结束这个成员, 也不会被转发",
            ),
            limit,
            || {
                let served = serve_tcp(Bounded(H::default()))?;
                let mut long = join(served.addr)?;
                let mut other = join(served.addr)?;
                let mut line = vec![b'x'; 4000];
                line.push(b'\n');
                let hint = tr(
                    "a member chooses how long its lines are: read at most MAX_LINE + 1 bytes ((&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\\n', &mut line)), and a line longer than MAX_LINE is an error (io::ErrorKind::InvalidData) returned from handle: the server closes that connection, and the member leaves.",
                    "行有多长是成员自己选的: 最多读 MAX_LINE + 1 个字节 ((&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\\n', &mut line)), 超过 MAX_LINE 的一行是错误 (io::ErrorKind::InvalidData), 从 handle 返回它: 服务端关闭这个连接, 成员离开。",
                );
                let sent = tr(
                    "L joins, O joins; L sends a 4,001-byte line",
                    "L 加入, O 加入; L 发送 4001 字节的一行",
                );
                let _ = long.write_all(&line);
                expect_closed(
                    &mut long,
                    WAIT,
                    CloseStory {
                        sent,
                        answered: tr(
                            "after a 4,001-byte line the room sent its sender more",
                            "发了 4001 字节的一行之后, 房间还给发送者发了东西",
                        ),
                        answered_hint: hint.clone(),
                        open: tr(
                            "after a 4,001-byte line its sender is still in the room",
                            "发了 4001 字节的一行之后, 发送者仍在房间里",
                        ),
                        open_hint: hint.clone(),
                    },
                )?;
                let mut late = join(served.addr)?;
                say(&mut late, b"hi\n")?;
                hears(
                    &mut other,
                    b"hi\n",
                    tr(
                        "O's next line is not the next member's hi",
                        "O 收到的下一行不是下一个成员的 hi",
                    ),
                    hint,
                )
                .map_err(|f| {
                    f.sent(tr(
                        "L joins, O joins; L sends a 4,001-byte line and is closed; N joins and says hi",
                        "L 加入, O 加入; L 发送 4001 字节的一行并被关闭; N 加入并说 hi",
                    ))
                })?;
                Ok(None)
            },
        ),
    ]
}
