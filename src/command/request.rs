//! Reading one request, in the seed's raw form or ours, framed.
//!
//! A connection's form is decided once, from its first bytes (see the
//! [module docs](super)); every request after the first is read the same
//! way.
//!
//! # Bounded before anyone is trusted
//!
//! A request arrives before its client has proved anything, so reading it
//! must cost the server no more than the client paid to send it. A frame
//! header parsed as free JSON (`serde_json::Value`) does not: 64 KiB of
//! nested empty arrays (`[[[[...]]]]`, `[[],[],...]`) becomes some 850 KiB
//! of values, 13 times what was sent. So a request's header is parsed into
//! one fixed shape ([`RequestHeader`]): the seed's three keys and the
//! answer's three, strings borrowed from the bytes read where they can be;
//! any other key is skipped without being kept. And the header may be at
//! most [`MAX_HEADER`] bytes, refused from its length prefix before a byte
//! of it is read. The body grows only as its bytes arrive. Together: a
//! request, read or refused, costs at most about twice its own size.
//!
//! # Not an HTTP server
//!
//! A web page can make the browser connect to any port on this machine
//! and send an HTTP request there: `<img src="http://127.0.0.1:9999/;touch$IFS/tmp/x;">`
//! sends `GET /;touch$IFS/tmp/x; HTTP/1.1` and a run of header lines. A
//! browser cannot put a zero byte in the first four, so it always lands in
//! the seed's form, where one read is one command: with a shell, `/tmp/x`
//! would be created. [`looks_like_http`] refuses such a request before
//! anything runs, in every mode, as Redis does ("Possible SECURITY ATTACK
//! detected").

use std::borrow::Cow;
use std::io::{self, Read};

use serde::Deserialize;

use super::{CommandError, Protocol};
use crate::frame::{FrameError, FramePart, VERSION};

/// The longest command request header accepted, in bytes (ours are under
/// 300); a longer one is refused from its length prefix, unread.
///
/// ```
/// assert_eq!(socketserver::command::MAX_REQUEST_HEADER, 1024);
/// ```
pub const MAX_HEADER: usize = 1024;

/// One command, as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The body exactly as it arrived: what the answer covers.
    pub(crate) body: Vec<u8>,
    /// The answer's fields, if the request was framed and carried them.
    pub(crate) auth: Option<Answer>,
}

/// What a framed request carries to prove the token (see
/// [`auth`](super::auth)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The HMAC, in hex.
    pub(crate) tag: String,
    /// The client's nonce, in hex (first request only).
    pub(crate) client_nonce: Option<String>,
    /// The protocol version the client speaks; absent for version 1.
    pub(crate) proto: Option<u32>,
}

/// The one shape a request's header may have. Keys not named here are
/// skipped (`serde`'s `IgnoredAny`: nothing is kept of them).
#[derive(Debug, Deserialize)]
struct RequestHeader<'a> {
    #[serde(borrow)]
    ver: Cow<'a, str>,
    #[serde(borrow)]
    md5: Cow<'a, str>,
    #[serde(rename = "lenth", alias = "length")]
    len: u64,
    #[serde(borrow, default)]
    auth: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cnonce: Option<Cow<'a, str>>,
    #[serde(default)]
    proto: Option<u32>,
}

/// Tells the forms apart by a connection's first bytes: a framed request
/// starts with a little-endian header length under 64 KiB (bytes 2 and 3
/// zero), a raw one with printable text (no zero byte at all).
///
/// A frame's first four bytes leave in one write with the rest of it, so a
/// first read shorter than four bytes is a short raw command (`ls`), unless
/// it holds a zero byte.
pub(crate) fn detect(first: &[u8]) -> Protocol {
    match first {
        [a, b, 0, 0, ..] if (*a, *b) != (0, 0) => Protocol::Framed,
        [_, _, _, _, ..] => Protocol::Seed,
        short if short.contains(&0) => Protocol::Framed,
        _ => Protocol::Seed,
    }
}

/// Whether raw bytes look like an HTTP request (or any CR LF protocol
/// alike): a line whose last word is an HTTP version (`HTTP/1.1`,
/// `HTTP/3`, any digits); a first line that starts as a request line does
/// (an HTTP method, a space, then a target: `/...`, `*`, or `...://...`),
/// which catches a request line whose version comes in a later write; a
/// `Host:` line, or a header line (`Name: value`) after the first; or a
/// CR LF line ending at all, which no command typed at a prompt has.
///
/// ```text
/// GET /;touch$IFS/tmp/x; HTTP/1.1\r\n     refused: the request line
/// Host: 127.0.0.1:9999\r\n                refused: a header line
/// GET /;touch$IFS/tmp/x;                  refused: a request line's start
/// echo a: b                               a command
/// ```
pub(crate) fn looks_like_http(bytes: &[u8]) -> bool {
    if bytes.windows(2).any(|w| w == b"\r\n") {
        return true;
    }
    bytes.split(|&b| b == b'\n').enumerate().any(|(i, line)| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let version = line
            .split(u8::is_ascii_whitespace)
            .rfind(|word| !word.is_empty())
            .is_some_and(is_http_version);
        version
            || (i == 0 && starts_a_request_line(line))
            || line.to_ascii_uppercase().starts_with(b"HOST:")
            || (i > 0 && is_header_line(line))
    })
}

/// `HTTP/` and a version of digits and dots, in any case.
fn is_http_version(word: &[u8]) -> bool {
    word.len() > 5
        && word[..5].eq_ignore_ascii_case(b"HTTP/")
        && word[5].is_ascii_digit()
        && word[5..].iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

/// A method HTTP defines, a space, and a request target.
fn starts_a_request_line(line: &[u8]) -> bool {
    const METHODS: [&[u8]; 10] = [
        b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
        b"PRI",
    ];
    let mut words = line.splitn(2, |&b| b == b' ');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return false;
    };
    METHODS.contains(&method)
        && (target.starts_with(b"/")
            || target.starts_with(b"*")
            || target.windows(3).any(|w| w == b"://"))
}

/// `Name: value`, where the name is an HTTP token (no spaces).
fn is_header_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0
        && line[..colon]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads the next request. `Ok(None)` means the client closed the
/// connection between requests. The body is returned as it arrived (the
/// answer covers those bytes); [`line`](fn@line) makes a command line of it.
pub(crate) fn read_request(
    r: &mut impl Read,
    protocol: Protocol,
    max: usize,
) -> Result<Option<Request>, CommandError> {
    match protocol {
        Protocol::Seed => {
            // The seed's `recv(1024)`: one read is one command.
            let mut buf = vec![0u8; max + 1];
            let n = loop {
                match r.read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            // Before the length check: an HTTP request is refused as what
            // it is, however long.
            if looks_like_http(&buf) {
                return Err(CommandError::LooksLikeHttp);
            }
            if n > max {
                return Err(CommandError::RequestTooLong { max });
            }
            Ok(Some(Request {
                body: buf,
                auth: None,
            }))
        }
        Protocol::Framed => read_framed(r, max),
    }
}

/// Reads one framed request: the header into its fixed shape, the body as
/// it arrives, its md5 checked.
fn read_framed(r: &mut impl Read, max: usize) -> Result<Option<Request>, CommandError> {
    let mut prefix = [0u8; 4];
    match fill(r, &mut prefix)? {
        0 => return Ok(None),
        4 => {}
        n => return Err(truncated(FramePart::HeaderLength, 4, n as u64)),
    }
    let header_len = i32::from_le_bytes(prefix);
    let header_len = usize::try_from(header_len)
        .map_err(|_| CommandError::Frame(FrameError::NegativeHeaderLength(header_len)))?;
    if header_len > MAX_HEADER {
        return Err(CommandError::RequestTooLong { max: MAX_HEADER });
    }
    let mut json = vec![0u8; header_len];
    let n = fill(r, &mut json)?;
    if n < header_len {
        return Err(truncated(FramePart::Header, header_len as u64, n as u64));
    }
    let header: RequestHeader<'_> = serde_json::from_slice(&json)
        .map_err(|e| CommandError::Frame(FrameError::InvalidHeader(e.to_string())))?;
    if header.ver != VERSION {
        return Err(CommandError::Frame(FrameError::UnsupportedVersion(
            header.ver.into_owned(),
        )));
    }
    if header.len > max as u64 {
        return Err(CommandError::RequestTooLong { max });
    }
    // Grows as bytes arrive (`read_to_end` at most doubles what it holds):
    // a header that promises a body it never sends costs nothing.
    let mut body = Vec::new();
    let got = r.take(header.len).read_to_end(&mut body)?;
    if (got as u64) < header.len {
        return Err(truncated(FramePart::Body, header.len, got as u64));
    }
    let actual = format!("{:x}", md5::compute(&body));
    if !actual.eq_ignore_ascii_case(&header.md5) {
        return Err(CommandError::Frame(FrameError::Md5Mismatch {
            expected: header.md5.into_owned(),
            actual,
        }));
    }
    let auth = header.auth.map(|tag| Answer {
        tag: tag.into_owned(),
        client_nonce: header.cnonce.map(Cow::into_owned),
        proto: header.proto,
    });
    Ok(Some(Request { body, auth }))
}

/// The command line in a request's body: UTF-8, no NUL, trailing spaces
/// and newline removed.
pub(crate) fn line(body: Vec<u8>) -> Result<String, CommandError> {
    let line = String::from_utf8(body).map_err(|_| CommandError::NotUtf8)?;
    if line.contains('\0') {
        return Err(CommandError::NotUtf8);
    }
    Ok(line.trim_end().to_owned())
}

fn truncated(part: FramePart, expected: u64, received: u64) -> CommandError {
    CommandError::Frame(FrameError::Truncated {
        part,
        expected,
        received,
    })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Header, write_frame_with};

    #[test]
    fn detects_frames_and_raw_commands() {
        let mut framed = Vec::new();
        write_frame_with(&mut framed, &Header::for_body(b"ls"), b"ls").unwrap();
        assert_eq!(detect(&framed), Protocol::Framed);
        assert_eq!(
            detect(&framed[..2]),
            Protocol::Framed,
            "a split prefix, with a zero"
        );
        for raw in ["ls", "ls -l", "echo 你好", "a", "pwd"] {
            assert_eq!(detect(raw.as_bytes()), Protocol::Seed, "{raw}");
        }
        assert_eq!(
            detect(&[0, 0, 0, 0]),
            Protocol::Seed,
            "length 0 is no frame"
        );
    }

    fn read(bytes: &[u8], form: Protocol) -> Result<Option<Request>, CommandError> {
        read_request(&mut &bytes[..], form, 16)
    }

    #[test]
    fn reads_both_forms_and_refuses_what_is_not_a_command() {
        let req = read(b"ls -l\n", Protocol::Seed).unwrap().unwrap();
        assert_eq!(line(req.body).unwrap(), "ls -l");
        assert!(read(b"", Protocol::Seed).unwrap().is_none());
        assert!(matches!(
            read(&[b'x'; 17], Protocol::Seed),
            Err(CommandError::RequestTooLong { max: 16 })
        ));
        assert!(matches!(
            line(b"\xff\xfe".to_vec()),
            Err(CommandError::NotUtf8)
        ));
        assert!(matches!(line(b"a\0b".to_vec()), Err(CommandError::NotUtf8)));

        let mut framed = Vec::new();
        let header = Header::for_body(b"uname ")
            .with("auth", "t0k")
            .with("cnonce", "ab")
            .with("proto", 2)
            .with("ignored", serde_json::json!([[[]], {"a": [1, 2]}]));
        write_frame_with(&mut framed, &header, b"uname ").unwrap();
        let req = read(&framed, Protocol::Framed).unwrap().unwrap();
        assert_eq!(req.body, b"uname ");
        let auth = req.auth.unwrap();
        assert_eq!(
            (auth.tag.as_str(), auth.client_nonce.as_deref(), auth.proto),
            ("t0k", Some("ab"), Some(2))
        );
        assert!(matches!(
            read(&framed[..10], Protocol::Framed),
            Err(CommandError::Frame(_))
        ));
        let mut long = Vec::new();
        write_frame_with(&mut long, &Header::for_body(&[b'x'; 17]), &[b'x'; 17]).unwrap();
        assert!(matches!(
            read(&long, Protocol::Framed),
            Err(CommandError::RequestTooLong { .. })
        ));
        let mut bad = Vec::new();
        write_frame_with(&mut bad, &Header::for_body(b"ls"), b"xx").unwrap();
        assert!(matches!(
            read(&bad, Protocol::Framed),
            Err(CommandError::Frame(FrameError::Md5Mismatch { .. }))
        ));
    }

    #[test]
    fn a_header_of_another_shape_or_size_is_refused_unparsed() {
        // 64 KiB of nested arrays: refused from its length prefix.
        let nested = format!("{}{}", "[".repeat(32 << 10), "]".repeat(32 << 10));
        let mut wire = ((nested.len()) as i32).to_le_bytes().to_vec();
        wire.extend_from_slice(nested.as_bytes());
        assert!(matches!(
            read(&wire, Protocol::Framed),
            Err(CommandError::RequestTooLong { max: MAX_HEADER })
        ));
        // Within the size, not an object: refused by its shape.
        let small = "[[[[]]]]";
        let mut wire = (small.len() as i32).to_le_bytes().to_vec();
        wire.extend_from_slice(small.as_bytes());
        assert!(matches!(
            read(&wire, Protocol::Framed),
            Err(CommandError::Frame(FrameError::InvalidHeader(_)))
        ));
        // A body promised but never sent costs nothing and ends truncated.
        let header = br#"{"ver":"1","md5":"","lenth":16}"#;
        let mut wire = (header.len() as i32).to_le_bytes().to_vec();
        wire.extend_from_slice(header);
        assert!(matches!(
            read(&wire, Protocol::Framed),
            Err(CommandError::Frame(FrameError::Truncated { .. }))
        ));
    }

    #[test]
    fn http_requests_are_told_from_commands() {
        for http in [
            &b"GET /;touch$IFS/tmp/x; HTTP/1.1\r\nHost: 127.0.0.1:9999\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\n",
            b"GET / HTTP/1.0",
            b"get /x http/1.1\n",
            b"OPTIONS * HTTP/2",
            b"Host: example.com",
            b"echo hi\nUser-Agent: x",
            b"ls\r\n",
            // Other versions, a space after it, and a request line whose
            // version is still to come (red team findings 4 and 5).
            b"GET /;touch$IFS/tmp/x; HTTP/1.2\n",
            b"GET /x HTTP/3\n",
            b"GET /x HTTP/1.1 \n",
            b"GET /;touch$IFS/tmp/x;",
            b"POST http://127.0.0.1:9999/ ",
            b"PRI * HTTP/2.0",
        ] {
            assert!(looks_like_http(http), "{:?}", String::from_utf8_lossy(http));
            assert!(matches!(
                read_request(&mut &http[..], Protocol::Seed, 4096),
                Err(CommandError::LooksLikeHttp)
            ));
        }
        for command in [
            &b"ls -l"[..],
            b"echo a: b",
            b"echo HTTP/1.1 is a version",
            b"ls\n",
            b"sh -c 'echo x:y'",
            b"date +%H:%M",
            b"echo GET /x",
            b"GETTER /x",
            b"get-value /x",
            b"echo HTTP/",
        ] {
            assert!(
                !looks_like_http(command),
                "{:?}",
                String::from_utf8_lossy(command)
            );
        }
    }
}
