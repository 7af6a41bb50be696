//! The trace module on real loopback sockets: 粘包 and 分包 found where
//! they happen, frames shown in their three parts, and the SVG/HTML page
//! well-formed with nothing fetched from elsewhere.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use socketserver::frame;
use socketserver::trace::{Labels, MAX_EVENTS, MAX_PARTS, Messages, Op, Part, Side, Trace, html};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (client, server)
}

/// Waits until `n` bytes are readable, as a late reader would find them.
fn wait_for(stream: &TcpStream, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; n];
    while stream.peek(&mut buf).unwrap() < n {
        assert!(Instant::now() < deadline, "bytes never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Two writes read late by one read: the read is 粘包, holding #1 and #2.
#[test]
fn sticky_read_holds_two_writes() {
    let trace = Trace::new("粘包");
    let (client, server) = pair();
    client.set_nodelay(true).unwrap();
    let mut client = trace.wrap(client, Side::Client);
    client.write_all(b"hello").unwrap();
    client.write_all(b"world").unwrap();
    wait_for(&server, 10);
    let mut server = trace.wrap(server, Side::Server);
    let mut buf = [0u8; 1024];
    assert_eq!(server.read(&mut buf).unwrap(), 10);

    let reads = trace.reads();
    assert_eq!(reads.len(), 1);
    assert!(reads[0].sticky);
    assert_eq!(reads[0].writes, [1, 2]);
    let text = trace.text();
    println!("{text}");
    assert!(text.contains("粘包"), "{text}");
    assert!(text.contains("\"helloworld\""), "{text}");
}

/// One large write read in pieces: the write is 分包, with every read listed.
#[test]
fn split_write_lists_its_reads() {
    let trace = Trace::new("分包");
    let (client, server) = pair();
    let mut client = trace.wrap(client, Side::Client);
    let mut server = trace.wrap(server, Side::Server);
    let sending = std::thread::spawn(move || client.write_all(&vec![b'x'; 1 << 20]));
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < 1 << 20 {
        got += server.read(&mut buf).unwrap();
    }
    sending.join().unwrap().unwrap();
    let arrows = trace.arrows();
    assert!(arrows.iter().any(|a| a.split));
    let reads: usize = arrows.iter().map(|a| a.reads.len()).sum();
    assert!(reads >= 256, "1 MiB in reads of 4 KiB: {reads}");
    assert!(trace.text().contains("分包"));
}

/// A frame written in one write shows its three parts, and so does each
/// read of it, even when the reads cut it anywhere.
#[test]
fn frames_show_three_parts() {
    let trace = Trace::new("one frame");
    let mut wire = Vec::new();
    frame::write_frame(&mut trace.wrap(&mut wire, Side::Server), b"hello").unwrap();
    let header = wire.len() - 4 - 5;
    let mut reader = trace.wrap(&wire[..], Side::Client);
    let mut buf = [0u8; 3];
    while reader.read(&mut buf).unwrap() > 0 {}
    assert!(trace.framed(Side::Server));
    assert!(!trace.framed(Side::Client));
    let arrows = trace.arrows();
    assert_eq!(
        arrows[0].parts,
        [
            (Part::Length, 4),
            (Part::Header, header as u64),
            (Part::Body, 5)
        ]
    );
    // The first 3-byte read holds 3 bytes of the length.
    assert_eq!(trace.reads()[0].parts, [(Part::Length, 3)]);
    let text = trace.text();
    println!("{text}");
    assert!(
        text.contains(&format!("[len 4 | header {header} | body 5]")),
        "{text}"
    );
}

/// A frame read as the seed reads it (length, header, body, each whole)
/// is one message in its parts, not 分包; a frame whose body the network
/// cut is 分包, and the summary counts the two apart.
#[test]
fn frame_parts_are_not_split_but_a_cut_body_is() {
    let trace = Trace::new("two frames");
    let mut wire = Vec::new();
    let mut writer = trace.wrap(&mut wire, Side::Server);
    frame::write_frame(&mut writer, b"hello").unwrap();
    frame::write_frame(&mut writer, &[b'x'; 1000]).unwrap();
    drop(writer);
    let header = wire.iter().position(|&b| b == b'}').unwrap() + 1 - 4;
    let first = 4 + header + 5;
    let mut at = 0;
    // The first frame in its three parts, the second with its body cut
    // in the middle twice.
    let second_body = first + 4 + (wire.len() - first - 4 - 1000);
    for end in [
        4,
        4 + header,
        first,
        first + 4,
        second_body,
        second_body + 300,
        second_body + 700,
        wire.len(),
    ] {
        trace.record(Side::Client, Op::Read, &wire[at..end]);
        at = end;
    }
    let arrows = trace.arrows();
    assert_eq!(
        (arrows[0].split, arrows[0].pieces, arrows[0].reads.len()),
        (false, 1, 3)
    );
    assert_eq!(
        (arrows[1].split, arrows[1].pieces, arrows[1].reads.len()),
        (true, 3, 5)
    );
    assert_eq!(trace.messages(), Messages { whole: 1, split: 1 });
    let text = trace.text();
    println!("{text}");
    assert!(text.contains("1 message, 3 parts"), "{text}");
    assert!(text.contains("分包: 3 pieces"), "{text}");
    assert!(
        text.contains("messages: 1 whole, 1 split by the network (分包)"),
        "{text}"
    );
    let zh = trace.text_in(&Labels::ZH);
    assert!(zh.contains("一条消息, 3 部分"), "{zh}");
    assert!(zh.contains("消息: 1 条完整, 1 条被网络切开 (分包)"), "{zh}");
}

/// A long framed conversation keeps bounded memory: past `MAX_PARTS`
/// parts the frames are still recognised, to stay in step, but not kept,
/// and the diagrams still draw, quickly.
#[test]
fn a_long_framed_conversation_keeps_bounded_parts() {
    let trace = Trace::new("long");
    let frames = 30_000; // 90,000 parts, over MAX_PARTS
    let mut wire = Vec::new();
    for _ in 0..frames {
        wire.clear();
        frame::write_frame(&mut trace.wrap(&mut wire, Side::Client), b"x").unwrap();
        trace.record(Side::Server, Op::Read, &wire);
    }
    assert_eq!(trace.dropped(), 2 * frames - MAX_EVENTS as u64);
    let started = Instant::now();
    let messages = trace.messages();
    let text = trace.text();
    let svg = html::svg(&trace);
    let took = started.elapsed();
    println!("{messages:?} in {took:?}");
    // Only the frames whose parts were kept are counted, each whole.
    assert_eq!(messages.split, 0);
    assert!(messages.whole <= MAX_PARTS / 3 + 1, "{messages:?}");
    assert!(messages.whole >= MAX_PARTS / 3 - 1, "{messages:?}");
    assert!(text.contains("later calls not kept") && svg.contains("more calls"));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// The page asks for a font with Chinese in it before `sans-serif`, in its
/// CSS and in every diagram.
#[test]
fn page_asks_for_cjk_fonts() {
    let trace = Trace::new("粘包");
    trace.record(Side::Client, Op::Write, b"hi");
    let page = html::page("粘包", "zh", &[html::Section::new(&trace, "")]);
    for font in [
        "Noto Sans CJK SC",
        "Source Han Sans SC",
        "PingFang SC",
        "Microsoft YaHei",
        "WenQuanYi Micro Hei",
    ] {
        assert!(page.contains(font), "{font}");
    }
    let svg = html::svg(&trace);
    assert!(
        svg.contains("font-family=\"monospace, 'Noto Sans CJK SC'"),
        "{svg}"
    );
}

/// Raw text that starts like anything but a frame is not taken for one.
#[test]
fn raw_text_is_not_framed() {
    let trace = Trace::new("raw");
    trace.record(Side::Server, Op::Write, b"Welcome!");
    trace.record(Side::Client, Op::Read, b"Welcome!");
    assert!(!trace.framed(Side::Server));
    assert!(trace.arrows()[0].parts.is_empty());
}

/// The page parses as XML: one SVG per section, arrows and badges where
/// the trace says, and no script, link or external reference anywhere.
#[test]
fn page_is_well_formed_and_self_contained() {
    let sticky = Trace::new("粘包 <&> \"quoted\"");
    sticky.record(Side::Client, Op::Write, b"hello");
    sticky.record(Side::Client, Op::Write, b"world");
    sticky.record(Side::Server, Op::Read, b"helloworld");
    let framed = Trace::new("frame");
    let mut wire = Vec::new();
    frame::write_frame(&mut framed.wrap(&mut wire, Side::Server), b"hi").unwrap();
    framed.record(Side::Client, Op::Read, &wire[..4]);
    framed.record(Side::Client, Op::Read, &wire[4..]);
    let page = html::page(
        "The wire",
        "en",
        &[
            html::Section::new(&sticky, "a <note>"),
            html::Section::new(&framed, ""),
        ],
    );
    let doc = roxmltree::Document::parse_with_options(
        &page,
        roxmltree::ParsingOptions {
            allow_dtd: true, // the page's <!DOCTYPE html>
            ..Default::default()
        },
    )
    .expect("the page is well-formed XML");
    let svgs: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "svg")
        .collect();
    assert_eq!(svgs.len(), 2);
    for svg in &svgs {
        assert_eq!(
            svg.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
    }
    let class_count = |svg: &roxmltree::Node, class: &str| {
        svg.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .count()
    };
    assert_eq!(class_count(&svgs[0], "arrow"), 2);
    assert_eq!(class_count(&svgs[0], "sticky"), 1);
    assert_eq!(class_count(&svgs[1], "arrow"), 2);
    // Read as length, then header and body: one message in its parts.
    assert_eq!(class_count(&svgs[1], "split"), 0);
    assert_eq!(class_count(&svgs[1], "in-parts"), 1);
    assert_eq!(class_count(&svgs[1], "summary"), 1);
    for part in ["part-len", "part-header", "part-body"] {
        assert!(class_count(&svgs[1], part) >= 1, "{part}");
    }
    for node in doc.descendants() {
        let name = node.tag_name().name();
        assert!(
            !["script", "link", "img", "iframe", "object"].contains(&name),
            "{name}"
        );
        for attr in node.attributes() {
            assert!(
                !(attr.name() == "href"
                    || attr.name() == "src"
                    || attr.value().contains("url(http")),
                "{}={}",
                attr.name(),
                attr.value()
            );
        }
    }
    assert!(!page.contains("@import"));
    assert!(!page.contains("@font-face"));
    // A standalone SVG parses on its own too.
    roxmltree::Document::parse(&html::svg(&framed)).expect("the SVG is well-formed XML");
}

/// The seed's way of sending a frame, three writes (length, header, body),
/// and even one byte per write: the parts are still found, across writes.
#[test]
fn frames_are_recognised_across_writes() {
    let mut wire = Vec::new();
    frame::write_frame(&mut wire, b"hello").unwrap();
    let header = wire.len() - 4 - 5;

    let seed = Trace::new("three sends");
    for part in [&wire[..4], &wire[4..4 + header], &wire[4 + header..]] {
        seed.record(Side::Server, Op::Write, part);
    }
    let parts: Vec<_> = seed.arrows().into_iter().map(|a| a.parts).collect();
    assert_eq!(
        parts,
        [
            vec![(Part::Length, 4)],
            vec![(Part::Header, header as u64)],
            vec![(Part::Body, 5)]
        ]
    );

    let drip = Trace::new("one byte per write");
    for byte in wire.chunks(1) {
        drip.record(Side::Server, Op::Write, byte);
    }
    let arrows = drip.arrows();
    assert!(drip.framed(Side::Server));
    assert_eq!(arrows[3].parts, [(Part::Length, 1)]);
    assert_eq!(arrows[4].parts, [(Part::Header, 1)]);
    assert_eq!(arrows.last().unwrap().parts, [(Part::Body, 1)]);
}
