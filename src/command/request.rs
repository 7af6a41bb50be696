//! Reading one request, in the seed's raw form or ours, framed.
//!
//! A connection's form is decided once, from its first bytes (see the
//! [module docs](super)); every request after the first is read the same
//! way.

use std::io::Read;

use super::auth::answer_in;
use super::{CommandError, Protocol};
use crate::frame::{FrameError, FrameLimits, read_frame_with};

/// One command, as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The command line, newline and all trailing spaces removed.
    pub(crate) line: String,
    /// The answer to the connection's challenge, if the request was framed
    /// and carried one (see [`auth`](super::auth)).
    pub(crate) auth: Option<String>,
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

/// Reads the next request. `Ok(None)` means the client closed the
/// connection between requests.
pub(crate) fn read_request(
    r: &mut impl Read,
    protocol: Protocol,
    max: usize,
) -> Result<Option<Request>, CommandError> {
    let (bytes, auth) = match protocol {
        Protocol::Seed => {
            // The seed's `recv(1024)`: one read is one command.
            let mut buf = vec![0u8; max + 1];
            let n = loop {
                match r.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                return Ok(None);
            }
            if n > max {
                return Err(CommandError::RequestTooLong { max });
            }
            buf.truncate(n);
            (buf, None)
        }
        Protocol::Framed => {
            let limits = FrameLimits::new().max_body_len(max as u64);
            let frame = match read_frame_with(r, &limits) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                Err(FrameError::BodyTooLong { .. } | FrameError::HeaderTooLong { .. }) => {
                    return Err(CommandError::RequestTooLong { max });
                }
                Err(e) => return Err(e.into()),
            };
            let auth = answer_in(&frame.header.extra);
            (frame.body, auth)
        }
    };
    let line = String::from_utf8(bytes).map_err(|_| CommandError::NotUtf8)?;
    let line = line.trim_end().to_owned();
    if line.contains('\0') {
        return Err(CommandError::NotUtf8);
    }
    Ok(Some(Request { line, auth }))
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

    #[test]
    fn reads_both_forms_and_refuses_what_is_not_a_command() {
        let read = |bytes: &[u8], form| read_request(&mut &bytes[..], form, 16);
        let req = read(b"ls -l\n", Protocol::Seed).unwrap().unwrap();
        assert_eq!(req.line, "ls -l");
        assert!(read(b"", Protocol::Seed).unwrap().is_none());
        assert!(matches!(
            read(&[b'x'; 17], Protocol::Seed),
            Err(CommandError::RequestTooLong { max: 16 })
        ));
        assert!(matches!(
            read(b"\xff\xfe", Protocol::Seed),
            Err(CommandError::NotUtf8)
        ));
        assert!(matches!(
            read(b"a\0b", Protocol::Seed),
            Err(CommandError::NotUtf8)
        ));

        let mut framed = Vec::new();
        let header = Header::for_body(b"uname").with("auth", "t0k");
        write_frame_with(&mut framed, &header, b"uname").unwrap();
        let req = read(&framed, Protocol::Framed).unwrap().unwrap();
        assert_eq!(
            (req.line.as_str(), req.auth.as_deref()),
            ("uname", Some("t0k"))
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
    }
}
