//! The tour's narration, in Chinese and English: one table per language,
//! so every line exists in both and the lessons hold no language choices.
//! The seed's own log lines (`从...接受新连接`) are the server's, not the
//! narration's, and stay as the seed wrote them.

use std::time::Duration;

use socketserver::trace::Labels;

/// The tour's languages, as `--lang` names them: `zh` or `en`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The language the environment asks for: the first of `LC_ALL`,
    /// `LC_MESSAGES` and `LANG` that is set and not empty decides (as
    /// POSIX orders them); `zh*` means Chinese, anything else English.
    pub fn from_env() -> Lang {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_default();
        if locale.starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The HTML `lang` code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// This language's table.
    pub fn text(self) -> &'static Text {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }
}

/// Every line the tour says. Lines with numbers in them are functions.
pub struct Text {
    /// The diagrams' words.
    pub labels: Labels,
    pub titles: [&'static str; 8],
    pub failed: &'static str,
    /// Said instead of a lesson (or part) that needs Unix.
    #[cfg_attr(unix, allow(dead_code))]
    pub unix_only: &'static str,
    pub summary: fn(usize, usize, Duration) -> String,
    /// The tour's last word: where to write the lessons yourself.
    pub workbook: &'static str,
    pub page_title: &'static str,
    pub wrote_html: fn(&str, usize) -> String,
    pub wrote_svg: fn(&str, usize) -> String,
    pub by_relay: &'static str,
    /// Who says a line: the tags before `|`.
    pub server_tag: &'static str,
    pub client_tag: &'static str,
    pub handler_tag: &'static str,
    /// A server log line about a datagram says so: `(a datagram)`.
    pub datagram: &'static str,

    pub tcp_intro: fn(Duration) -> String,
    pub tcp_watch: &'static str,
    pub tcp_done: fn(Duration, Duration) -> String,
    pub tcp_note: &'static str,

    pub udp_intro: &'static str,
    pub udp_lost: &'static str,
    pub udp_note: &'static str,

    pub own_intro: &'static str,
    pub own_counters: fn(u64, u64, u64) -> String,
    pub own_note: &'static str,

    pub sticky_stuck: fn(&str) -> String,
    pub sticky_stuck_why: &'static str,
    pub sticky_split: fn(usize, usize, usize, usize) -> String,
    pub sticky_split_why: &'static str,
    pub sticky_fix: &'static str,
    pub sticky_framed: fn(usize) -> String,
    pub sticky_see: &'static str,
    pub sticky_before_note: &'static str,
    pub sticky_after_note: &'static str,

    // The command service's lines (and the chaos lesson's framed half,
    // which uses it) are said on Unix only.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub cmd_intro: &'static str,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub cmd_intro2: &'static str,
    /// One command and its reply: the command line, stdout, stderr, the
    /// exit code (none when a signal or the timeout ended it).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub cmd_reply: fn(&str, &str, &str, Option<i32>) -> String,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub cmd_killed: &'static str,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub cmd_no_shell: &'static str,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub cmd_seed_form: fn(&str) -> String,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub cmd_note: &'static str,

    pub files_intro: &'static str,
    pub files_intro2: &'static str,
    pub files_put: fn(u64, &str) -> String,
    pub files_get: fn(u64, &str) -> String,
    pub files_refused: &'static str,
    pub files_ls: fn(&str, u64) -> String,
    pub files_note: &'static str,

    pub chaos_intro: &'static str,
    pub chat_intro: &'static str,
    pub chat_note: &'static str,
    /// A line of the chat demo (the library's, in English) in this language.
    pub chat_line: fn(&str) -> String,
    /// The proxy's set-up: the largest piece in bytes, the delay before
    /// each piece in ms.
    pub proxy_start: fn(usize, u64) -> String,
    /// What the proxy did: bytes and pieces, client to server then back.
    pub proxy_done: fn([u64; 2], [u64; 2]) -> String,
    pub chaos_intro2: &'static str,
    pub chaos_seed: &'static str,
    pub chaos_seed_broke: &'static str,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub chaos_framed: &'static str,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub chaos_framed_ok: fn(&str, u64) -> String,
    pub chaos_seed_note: &'static str,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub chaos_framed_note: &'static str,
}

pub static EN: Text = Text {
    labels: Labels::EN,
    titles: [
        "1. tcp编程: a TCP greeting server, two clients at once",
        "2. udp编程: the same greeting over UDP",
        "3. socketserver编程: your own handler on a ThreadingTcpServer",
        "4. 粘包与分包: sticky packets, fragmentation, and the frame",
        "5. 模拟远程执行命令: the command service, in its safe mode",
        "6. beyond the seed: files over the frame, verified and resumed",
        "7. 分包 made certain: a chaos proxy between client and server",
        "8. beyond the seed: a chat room, where a slow reader never stalls the others",
    ],
    failed: "FAILED",
    unix_only: "(skipped: the command service runs on Unix only)",
    summary: |ok, all, took| format!("{ok} of {all} lessons went as they should, in {took:.1?}."),
    workbook: "Now write them yourself: the workbook has one exercise per lesson, checked against real sockets. Start with `cargo run --example course -- list` (exercises/README.md).",
    page_title: "socketserver: every lesson on the wire",
    wrote_html: |file, n| format!("Wrote {n} sequence diagrams to {file}: open it in a browser."),
    wrote_svg: |dir, n| format!("Wrote {n} SVG diagrams to {dir}/."),
    by_relay: "Recorded by a relay on the path: each read it made from one side is drawn as that side's write, each piece it passed on as the other side's read.",
    server_tag: "server",
    client_tag: "client",
    handler_tag: "handler",
    datagram: "(a datagram)",

    tcp_intro: |delay| {
        format!(
            "The server greets each client on its own thread, waiting {delay:?} before each reply"
        )
    },
    tcp_watch: "(the seed's time.sleep(1), shortened). Watch both clients being served at once:",
    tcp_done: |took, serial| {
        format!("Both done in {took:.2?}; served one at a time it would take at least {serial:?}.")
    },
    tcp_note: "Client B's conversation: Welcome!, then one name and one greeting at a time. Each message is one write and one read only because the client waits for each reply.",

    udp_intro: "No connection, no banner: each name is one datagram, each greeting one datagram back.",
    udp_lost: "(no reply: lost)",
    udp_note: "UDP keeps message boundaries: each datagram is one send and one recv, whole or not at all. Drawn from the client's transcript.",

    own_intro: "The server class binds, accepts and threads; the handler class only handles.",
    own_counters: |a, c, f| {
        format!("The server's counters: accepted {a}, completed {c}, failed {f}.")
    },
    own_note: "The seed's Myhandler: one recv(1024), then the handler returns and the server closes the connection.",

    sticky_stuck: |stuck| {
        format!(
            "粘包 (sticky packets): the sender wrote \"hello\", then \"world\"; one recv() returned {stuck:?}."
        )
    },
    sticky_stuck_why: "  TCP is a byte stream and keeps no message boundaries: a receiver that reads late finds both.",
    sticky_split: |size, n, min, max| {
        format!(
            "分包 (fragmentation): one send of {size} bytes took {n} recv() calls of {min} to {max} bytes:"
        )
    },
    sticky_split_why: "  data moves in segments of at most one MSS, and recv() returns what has arrived, never more than its buffer.",
    sticky_fix: "The fix, the seed's frame: a 4-byte header length, a JSON header with md5 and lenth, then the body.",
    sticky_framed: |n| {
        format!("  Framed, the same traffic reads back as exactly {n} messages, each md5-checked.")
    },
    sticky_see: "Every call, as it happened (smaller message: 200,000 bytes, reads of at most 64 KiB):",
    sticky_before_note: "Two writes, one read: 粘包. One write of 200,000 bytes, several reads: 分包. Nothing in the bytes says where a message ends.",
    sticky_after_note: "The same messages as frames. The reader asks for exactly 4 bytes (orange), then exactly the header (blue), then exactly the body (green): a frame read so is one message in its three parts, not 分包. The large one is still cut by the network inside its body (分包), and the reader puts it back whole: the summary under the diagram counts the messages that arrived whole and those the network split apart.",

    cmd_intro: "The seed's server runs any shell line for anyone. Ours binds loopback, runs programs",
    cmd_intro2: "without a shell, and kills what runs too long (here: 500 ms).",
    cmd_reply: |line, stdout, stderr, exit| {
        let exit = match exit {
            Some(code) => format!("exit {code}"),
            None => "no exit code".to_string(),
        };
        format!(">>>{line}\n      stdout {stdout:?}  stderr {stderr:?}  {exit}")
    },
    cmd_killed: "  (timed out: killed)",
    cmd_no_shell: "      (no shell: `;` is just an argument to echo)",
    cmd_seed_form: |reply| {
        format!("The seed's raw request on the same port gets the seed's reply: {reply:?}")
    },
    cmd_note: "The framed client: each request one frame, each reply frames of stdout and stderr with the exit status in the header.",

    files_intro: "A file travels as 1 MiB chunks, each a seed frame with its own md5, then an end",
    files_intro2: "frame with the digest of the whole; it gets its name only once all match.",
    files_put: |size, digest| format!("put lesson.bin: {size} bytes in 4 chunks, digest {digest}"),
    files_get: |from, digest| {
        format!(
            "get lesson.bin, cut earlier after 2 chunks: resumed at byte {from}, digest {digest}"
        )
    },
    files_refused: "refused:",
    files_ls: |name, size| format!("ls: {name} ({} bytes)", thousands(size)),
    files_note: "Requests and chunk frames: each chunk is one frame; the receiver reads it in as many reads as it takes.",

    chat_intro: "Three clients on one ThreadingTcpServer: the first line is a name, every later line reaches the others; each client has its own writer thread and a bounded queue.",
    chat_note: "Alice's conversation, the first of three: after her name, the server writes to her whenever someone else joins, talks or leaves, not only in reply. Each line is one write and leaves at once (TCP_NODELAY): without it, a small write waits for the ACK of the one before.",
    chat_line: |line| line.to_string(),
    proxy_start: |segment, delay| {
        let mut line =
            format!("proxy | re-cuts both directions into pieces of at most {segment} B");
        if delay > 0 {
            line.push_str(&format!(", {delay} ms before each piece"));
        }
        line
    },
    proxy_done: |bytes, pieces| {
        format!(
            "proxy | client→server {} B in {} pieces, server→client {} B in {} pieces",
            bytes[0], pieces[0], bytes[1], pieces[1]
        )
    },
    chaos_intro: "On loopback a short message nearly always arrives in one recv(), so the seed's clients seem to work.",
    chaos_intro2: "A proxy that forwards every 2 bytes separately, 10 ms apart, shows what a real network may do:",
    chaos_seed: "The seed's greeting client, one recv() taken as one message, through the proxy heard:",
    chaos_seed_broke: "Broken: its messages arrive in pieces, and the server, which also takes one recv() for one name, greets pieces of names.",
    chaos_framed: "Our framed command client through the same kind of proxy, 3 bytes at a time:",
    chaos_framed_ok: |stdout, pieces| {
        format!(
            "echo 你好 → stdout {stdout:?}, whole and md5-checked, although it came in {pieces} pieces."
        )
    },
    chaos_seed_note: "Through the chaos proxy (2-byte pieces, 10 ms apart): every write arrives in several reads, 分包 everywhere, and the seed's client takes each piece for a message.",
    chaos_framed_note: "The framed command service through 3-byte pieces: the same 分包, and the frame reader does not care.",
};

pub static ZH: Text = Text {
    labels: Labels::ZH,
    titles: [
        "1. tcp编程: TCP 问候服务端, 两个客户端同时连接",
        "2. udp编程: 同样的问候, 走 UDP",
        "3. socketserver编程: 在 ThreadingTcpServer 上写自己的处理类",
        "4. 粘包与分包: 粘包、分包, 以及报头 (frame)",
        "5. 模拟远程执行命令: 命令服务, 安全模式",
        "6. 教程之外: 用报头传文件, 校验并断点续传",
        "7. 让分包必然发生: 客户端与服务端之间的混沌代理",
        "8. 教程之外: 聊天室, 读得慢的客户端不会拖住别人",
    ],
    failed: "失败",
    unix_only: "(跳过: 命令服务只能在 Unix 上运行)",
    summary: |ok, all, took| format!("{all} 课中 {ok} 课按预期完成, 用时 {took:.1?}。"),
    workbook: "现在自己动手写: 练习册每课一个练习, 在真实的套接字上检查。从 `cargo run --example course -- list` 开始 (exercises/README.md)。",
    page_title: "socketserver: 线上的每一课",
    wrote_html: |file, n| format!("已把 {n} 张时序图写入 {file}: 用浏览器打开。"),
    wrote_svg: |dir, n| format!("已把 {n} 张 SVG 图写入 {dir}/。"),
    by_relay: "由路径上的中继记录: 它从一端的每次读取画作该端的一次写, 它转发的每一片画作另一端的一次读。",
    server_tag: "服务端",
    client_tag: "客户端",
    handler_tag: "处理类",
    datagram: "(一个数据报)",

    tcp_intro: |delay| format!("服务端为每个客户端开一个线程, 每次回复前等待 {delay:?}"),
    tcp_watch: "(即教程里的 time.sleep(1), 缩短了)。看两个客户端同时被服务:",
    tcp_done: |took, serial| {
        format!("两个都在 {took:.2?} 内完成; 若逐个服务, 至少需要 {serial:?}。")
    },
    tcp_note: "客户端 B 的对话: 先 Welcome!, 然后一个名字、一句问候交替进行。每条消息恰好一次写、一次读, 只因为客户端每次都等回复。",

    udp_intro: "没有连接, 也没有欢迎语: 每个名字是一个数据报, 每句问候也是一个数据报。",
    udp_lost: "(没有回复: 丢了)",
    udp_note: "UDP 保留消息边界: 一个数据报就是一次 send、一次 recv, 要么完整到达, 要么不到。图由客户端的记录画出。",

    own_intro: "服务类负责绑定、接受连接和开线程; 请求处理类只管处理。",
    own_counters: |a, c, f| format!("服务端计数: 接受 {a}, 完成 {c}, 失败 {f}。"),
    own_note: "教程里的 Myhandler: 一次 recv(1024), 处理类返回后服务端关闭连接。",

    sticky_stuck: |stuck| {
        format!("粘包: 发送方先写 \"hello\", 再写 \"world\"; 一次 recv() 收到 {stuck:?}。")
    },
    sticky_stuck_why: "  TCP 是字节流, 不保留消息边界: 接收方读得晚, 就会一次读到两条。",
    sticky_split: |size, n, min, max| {
        format!(
            "分包: 一次 send 发出 {size} 字节, 接收方用了 {n} 次 recv(), 每次 {min} 到 {max} 字节:"
        )
    },
    sticky_split_why: "  数据按不超过 MSS 的报文段传输, recv() 返回已到达的数据, 且不超过缓冲区大小。",
    sticky_fix: "解决办法, 教程里的报头: 4 字节报头长度, 含 md5 和 lenth 的 JSON 报头, 然后是数据。",
    sticky_framed: |n| {
        format!("  加上报头后, 同样的数据读回来恰好是 {n} 条消息, 每条都校验了 md5。")
    },
    sticky_see: "每一次调用的实际情况 (消息改小为 200,000 字节, 每次最多读 64 KiB):",
    sticky_before_note: "两次写, 一次读: 粘包。一次写 200,000 字节, 多次读: 分包。字节里没有任何东西标出消息在哪里结束。",
    sticky_after_note: "同样的消息加上报头。接收方先恰好读 4 字节 (橙色), 再恰好读报头 (蓝色), 再恰好读数据 (绿色): 这样读的一帧是分三部分读的一条消息, 不是分包。大消息的数据部分仍被网络切开 (分包), 接收方把它拼回完整的一条: 图下的汇总把完整到达的消息和被网络切开的消息分开计数。",

    cmd_intro: "教程的服务端替任何人执行任何 shell 命令。我们的只绑定回环地址, 不经 shell 运行程序,",
    cmd_intro2: "并杀掉运行太久的命令 (这里: 500 毫秒)。",
    cmd_reply: |line, stdout, stderr, exit| {
        let exit = match exit {
            Some(code) => format!("退出码 {code}"),
            None => "没有退出码".to_string(),
        };
        format!("客户端 >>>{line}\n      标准输出 {stdout:?}  标准错误 {stderr:?}  {exit}")
    },
    cmd_killed: "  (超时: 已杀掉)",
    cmd_no_shell: "      (没有 shell: `;` 只是 echo 的一个参数)",
    cmd_seed_form: |reply| format!("教程客户端的原始请求发到同一端口, 得到教程式的回复: {reply:?}"),
    cmd_note: "带报头的客户端: 每个请求一帧, 每个回复是 stdout 和 stderr 的若干帧, 退出码在报头里。",

    files_intro: "文件按 1 MiB 分块传输, 每块是一个带自己 md5 的教程报头帧, 最后一帧带整个文件的摘要;",
    files_intro2: "全部校验通过后文件才得到它的名字。",
    files_put: |size, digest| format!("put lesson.bin: {size} 字节, 分 4 块, 摘要 {digest}"),
    files_get: |from, digest| {
        format!("get lesson.bin, 之前下载到 2 块时中断: 从第 {from} 字节续传, 摘要 {digest}")
    },
    files_refused: "拒绝:",
    files_ls: |name, size| format!("ls: {name} ({} 字节)", thousands(size)),
    files_note: "请求和数据块帧: 每块一帧; 接收方需要几次读就读几次。",

    chat_intro: "一个 ThreadingTcpServer 上的三个客户端: 第一行是名字, 之后每一行都发给其他人; 每个客户端有自己的写线程和有上限的队列。",
    chat_note: "alice 的对话 (三个中的第一个): 给出名字之后, 每当别人加入、说话或离开, 服务端就写给她, 而不只是回复她。每一行一次写, 立即发出 (TCP_NODELAY): 否则一次小的写要等前一次的 ACK。",
    chat_line: chat_line_zh,
    proxy_start: |segment, delay| {
        let mut line = format!("代理 | 把两个方向的字节流重新切成最多 {segment} 字节的小片");
        if delay > 0 {
            line.push_str(&format!(", 每片之前等 {delay} 毫秒"));
        }
        line
    },
    proxy_done: |bytes, pieces| {
        format!(
            "代理 | 客户端→服务端 {} 字节分 {} 片, 服务端→客户端 {} 字节分 {} 片",
            bytes[0], pieces[0], bytes[1], pieces[1]
        )
    },
    chaos_intro: "在回环地址上, 短消息几乎总是一次 recv() 就到齐, 所以教程的客户端看起来没问题。",
    chaos_intro2: "一个把每 2 字节单独转发、间隔 10 毫秒的代理, 展示真实网络可能发生的事:",
    chaos_seed: "教程的问候客户端 (把一次 recv() 当作一条消息) 经过代理收到:",
    chaos_seed_broke: "坏了: 消息被切成碎片到达; 服务端也把一次 recv() 当作一个名字, 于是问候的是名字的碎片。",
    chaos_framed: "我们带报头的命令客户端, 经过同样的代理, 每次 3 字节:",
    chaos_framed_ok: |stdout, pieces| {
        format!("echo 你好 → 标准输出 {stdout:?}, 完整且校验了 md5, 尽管它被分成 {pieces} 片到达。")
    },
    chaos_seed_note: "经过混沌代理 (每片 2 字节, 间隔 10 毫秒): 每次写都分成多次读到达, 处处分包; 教程的客户端把每一片当成一条消息。",
    chaos_framed_note: "带报头的命令服务经过 3 字节一片的代理: 同样分包, 报头读取方毫不在意。",
};

/// A number for people: `3146728` as `3,146,728`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The chat demo's lines are the library's, in English; the chat room's
/// own words (`* welcome! your name?`) are what the server sends, and stay.
fn chat_line_zh(line: &str) -> String {
    if let Some(stats) = line.strip_prefix("the server stopped: ") {
        // The server's counters, as `Stats` prints them, in Chinese.
        let mut stats = stats.to_string();
        for (en, zh) in [
            (" refused over the per-peer cap", " 个因单地址上限被拒"),
            (" requests:", " 个请求:"),
            (" completed", " 个完成"),
            (" failed", " 个失败"),
            (" active", " 个进行中"),
            (" rejected", " 个被拒绝"),
        ] {
            stats = stats.replace(en, zh);
        }
        return format!("服务端已停止: {stats}");
    }
    if let Some((who, heard)) = line.split_once(" hears: ") {
        return format!("{who} 收到: {heard}");
    }
    format!("聊天室 | {line}")
}
