//! The frame codec on its own: round trips, the seed's exact bytes, every
//! malformed input, and the worst a stream can do (one byte per read, short
//! writes).

mod common;

use std::io::{Cursor, Write};
use std::process::Stdio;

use common::{OneByte, ShortWrites, raw_frame};
use socketserver::frame::{
    FrameError, FrameLimits, FramePart, Header, read_body_to, read_frame, read_frame_with,
    read_header, write_frame, write_frame_from, write_frame_with,
};

/// `hello` framed exactly as the seed's Python server frames it: 67 = 0x43
/// bytes of `json.dumps` output (note the spaces) after the length.
const SEED_HELLO: &[u8] = b"\x43\x00\x00\x00\
{\"ver\": \"1\", \"md5\": \"5d41402abc4b2a76b9719d911017c592\", \"lenth\": 5}\
hello";

fn framed(body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    write_frame(&mut wire, body).unwrap();
    wire
}

fn read_one(wire: &[u8]) -> Result<Option<socketserver::frame::Frame>, FrameError> {
    read_frame(&mut &wire[..])
}

#[test]
fn round_trips_empty_small_utf8_binary_and_large_bodies() {
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let large: Vec<u8> = (0..32 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let bodies: [&[u8]; 5] = [b"", b"hello", "你好,世界".as_bytes(), &binary, &large];
    for body in bodies {
        let frame = read_one(&framed(body)).unwrap().expect("a frame");
        assert_eq!(frame.body, body, "body of {} bytes", body.len());
        assert_eq!(frame.header.len, body.len() as u64);
    }
}

#[test]
fn reads_the_seeds_python_bytes() {
    let frame = read_one(SEED_HELLO).unwrap().expect("a frame");
    assert_eq!(frame.body, b"hello");
    assert_eq!(frame.header.version, "1");
    assert!(frame.header.extra.is_empty());
}

#[test]
fn writes_the_seeds_keys_in_the_seeds_order() {
    let wire = framed(b"hello");
    assert_eq!(&wire[..4], &62i32.to_le_bytes());
    assert_eq!(
        &wire[4..],
        &b"{\"ver\":\"1\",\"md5\":\"5d41402abc4b2a76b9719d911017c592\",\"lenth\":5}hello"[..]
    );
}

#[test]
fn accepts_length_spelt_right_and_keeps_extra_keys() {
    let header = br#"{"length": 2, "md5": "c2d6f5b7ae0e0c8f51a3f6e2a3e8d3a1", "ver": "1", "exit": 3, "stream": "stderr"}"#;
    // md5("ok") = 444bcb3a3fcf8389296c49467f27e1d6
    let header = String::from_utf8_lossy(header).replace(
        "c2d6f5b7ae0e0c8f51a3f6e2a3e8d3a1",
        "444bcb3a3fcf8389296c49467f27e1d6",
    );
    let frame = read_one(&raw_frame(header.as_bytes(), b"ok"))
        .unwrap()
        .expect("a frame");
    assert_eq!(frame.body, b"ok");
    assert_eq!(frame.header.extra.len(), 2, "{:?}", frame.header.extra);
    assert_eq!(frame.header.extra["exit"], 3);
    assert_eq!(frame.header.extra["stream"], "stderr");
}

#[test]
fn many_frames_stuck_together_come_apart() {
    let mut wire = Vec::new();
    for word in ["hello", "world", "", "!"] {
        write_frame(&mut wire, word.as_bytes()).unwrap();
    }
    wire.extend_from_slice(SEED_HELLO);
    let mut input = &wire[..];
    let mut got = Vec::new();
    while let Some(frame) = read_frame(&mut input).unwrap() {
        got.push(String::from_utf8(frame.body).unwrap());
    }
    assert_eq!(got, ["hello", "world", "", "!", "hello"]);
}

#[test]
fn one_byte_per_read_still_reads_every_frame() {
    let mut wire = framed("你好".as_bytes());
    wire.extend_from_slice(SEED_HELLO);
    wire.extend_from_slice(&framed(&[7u8; 100_000]));
    let mut input = OneByte(&wire);
    assert_eq!(
        read_frame(&mut input).unwrap().unwrap().body,
        "你好".as_bytes()
    );
    assert_eq!(read_frame(&mut input).unwrap().unwrap().body, b"hello");
    assert_eq!(
        read_frame(&mut input).unwrap().unwrap().body,
        vec![7u8; 100_000]
    );
    assert!(read_frame(&mut input).unwrap().is_none());
}

#[test]
fn short_writes_still_write_whole_frames() {
    for body in [&b"small"[..], &[1u8; 200_000][..]] {
        let mut out = ShortWrites(Vec::new());
        write_frame(&mut out, body).unwrap();
        assert_eq!(out.0, framed(body));
        let mut out = ShortWrites(Vec::new());
        let header = Header::for_body(body);
        write_frame_from(&mut out, &header, &mut Cursor::new(body)).unwrap();
        assert_eq!(out.0, framed(body));
    }
}

#[test]
fn streaming_matches_whole_frames_and_detects_a_short_source() {
    let body = vec![42u8; 300_000];
    let mut source = Cursor::new(body.clone());
    let header = Header::for_seekable(&mut source).unwrap();
    let mut wire = Vec::new();
    write_frame_from(&mut wire, &header, &mut source).unwrap();
    assert_eq!(wire, framed(&body));

    let mut input = &wire[..];
    let limits = FrameLimits::new().max_body_len(u64::MAX);
    let header = read_header(&mut input, &limits).unwrap().unwrap();
    let mut sink = Vec::new();
    assert_eq!(
        read_body_to(&mut input, &header, &mut sink).unwrap(),
        300_000
    );
    assert_eq!(sink, body);

    let lying = Header::for_body(&[0u8; 10]);
    let err = write_frame_from(&mut Vec::new(), &lying, &mut &[0u8; 4][..]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    let err = write_frame_with(&mut Vec::new(), &lying, b"abc").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn clean_end_is_none_but_an_end_inside_a_frame_says_where() {
    assert!(read_one(b"").unwrap().is_none());
    let wire = framed(b"hello");
    let cases = [
        (2, FramePart::HeaderLength, 4, 2),
        (4, FramePart::Header, 62, 0),
        (30, FramePart::Header, 62, 26),
        (66, FramePart::Body, 5, 0),
        (69, FramePart::Body, 5, 3),
    ];
    for (cut, part, expected, received) in cases {
        match read_one(&wire[..cut]) {
            Err(FrameError::Truncated {
                part: p,
                expected: e,
                received: r,
            }) => assert_eq!((p, e, r), (part, expected, received), "cut at {cut}"),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn every_malformed_input_has_its_own_error() {
    for case in common::malformed_frames() {
        match read_one(&case.wire) {
            Err(e) => assert!((case.expect)(&e), "{}: {e:?}", case.name),
            Ok(frame) => panic!("{}: read {frame:?}", case.name),
        }
    }
}

#[test]
fn errors_read_well_and_convert_to_io_errors() {
    let e = read_one(&framed(b"hello")[..69]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stream ended inside the frame body: 3 of 5 bytes arrived"
    );
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn header_limit_is_checked_before_reading_the_header() {
    let limits = FrameLimits::new().max_header_len(10);
    let err = read_frame_with(&mut &framed(b"x")[..], &limits).unwrap_err();
    assert!(matches!(
        err,
        FrameError::HeaderTooLong { len: 62, max: 10 }
    ));
}

#[test]
fn python_reader_in_the_seeds_style_accepts_our_frames() {
    let Some(mut python) = common::python3() else {
        return;
    };
    let mut wire = framed(b"hello");
    wire.extend_from_slice(&framed("你好".as_bytes()));
    wire.extend_from_slice(&framed(b""));
    let body = [0xffu8; 300_000];
    let header = Header::for_body(&body).with("exit", 0);
    write_frame_with(&mut wire, &header, &body).unwrap();

    let mut child = python
        .arg(common::peer("frame_reader.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&wire).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "5 ok  68656c6c6f\n\
         6 ok  e4bda0e5a5bd\n\
         0 ok  \n\
         300000 ok exit ffffffffffffffffffffffffffffffff\n"
    );
}
