//! Proving the token without sending it: HMAC-SHA256 challenge-response.
//!
//! A token sent as it is can be read by anyone on the path and replayed.
//! Instead, as Python's `multiprocessing.connection` does, the server
//! opens each connection with a fresh random nonce, and the client's first
//! request carries `HMAC-SHA256(token, nonce)`: proof that it knows the
//! token, worthless on any other connection. The server compares in
//! constant time and makes a wrong answer wait about a second ([`PENALTY`])
//! before it closes the connection, so guessing is slow.
//!
//! ```text
//! server: {"ver":"1","md5":…,"lenth":…,"nonce":"<64 hex digits>"}  (a note for people)
//! client: {"ver":"1","md5":…,"lenth":2,"auth":"<64 hex digits>"}   ls
//! ```
//!
//! Only the first request of a connection carries the answer; the rest of
//! the connection is trusted. The channel itself stays plaintext: commands
//! and their output can be read (and a connection taken over) by anyone on
//! the path. Where that matters, put an SSH tunnel or a TLS terminator in
//! front and keep the server on loopback.

use std::io::{self, Read, Write};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::CommandError;
use crate::frame::{FrameLimits, Header, read_frame_with, write_frame_with};

/// How long a wrong answer waits before the connection closes.
pub(crate) const PENALTY: Duration = Duration::from_secs(1);
/// The nonce's length in bytes.
const NONCE_LEN: usize = 32;
/// What the seed's client (which cannot answer) prints of the challenge.
const NOTE: &[u8] = b"this server needs a token: use a framed client that has it \
(cmd_client --token-file FILE); the seed's form cannot authenticate\n";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn mac(token: &str, nonce: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(nonce);
    mac
}

/// A fresh nonce from the operating system's random source.
pub(crate) fn nonce() -> io::Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(nonce)
}

/// The client's answer to `nonce`, in hex.
pub(crate) fn answer(token: &str, nonce: &[u8]) -> String {
    hex(&mac(token, nonce).finalize().into_bytes())
}

/// Whether `answer` (hex) proves knowledge of `token`, compared in
/// constant time.
pub(crate) fn verify(token: &str, nonce: &[u8], answer: &str) -> bool {
    unhex(answer).is_some_and(|tag| mac(token, nonce).verify_slice(&tag).is_ok())
}

/// Opens a connection with the challenge.
pub(crate) fn write_challenge(w: &mut impl Write, nonce: &[u8]) -> io::Result<()> {
    let header = Header::for_body(NOTE).with("nonce", hex(nonce));
    write_frame_with(w, &header, NOTE)
}

/// The nonce in a challenge frame's header, if it is one.
pub(crate) fn nonce_in(header: &Header) -> Option<Vec<u8>> {
    unhex(header.extra.get("nonce")?.as_str()?)
}

/// Reads the challenge a server with a token opens each connection with.
pub(crate) fn read_challenge(r: &mut impl Read) -> Result<Vec<u8>, CommandError> {
    let limits = FrameLimits::new().max_body_len(4096);
    let frame = read_frame_with(r, &limits)?.ok_or_else(|| {
        CommandError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ))
    })?;
    nonce_in(&frame.header)
        .ok_or_else(|| CommandError::Server("expected the server's challenge (a nonce)".into()))
}

/// The answer a request carries, if any.
pub(crate) fn answer_in(extra: &serde_json::Map<String, Value>) -> Option<String> {
    extra.get("auth")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_token_answers_and_no_other() {
        let nonce = nonce().unwrap();
        let good = answer("s3cret", &nonce);
        assert_eq!(good.len(), 64);
        assert!(verify("s3cret", &nonce, &good));
        assert!(!verify("s3creT", &nonce, &good));
        assert!(!verify("s3cret", &[0u8; 32], &good), "another nonce");
        assert!(!verify("s3cret", &nonce, &good[..62]));
        assert!(!verify("s3cret", &nonce, "zz"));
        assert!(!verify("s3cret", &nonce, ""));
        assert_ne!(nonce, super::nonce().unwrap());
    }

    #[test]
    fn rfc_4231_case_2() {
        // Key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            answer("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_challenge_round_trips() {
        let mut wire = Vec::new();
        write_challenge(&mut wire, &[7u8; 32]).unwrap();
        assert_eq!(read_challenge(&mut &wire[..]).unwrap(), vec![7u8; 32]);
    }
}
