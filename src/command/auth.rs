//! Proving the token without sending it, both ways, bound to each request:
//! HMAC-SHA256 challenge-response, protocol version 2.
//!
//! A token sent as it is can be read by anyone on the path and replayed.
//! Instead, as Python's `multiprocessing.connection` does, each side proves
//! it knows the token by an HMAC over fresh nonces, and checks the other:
//!
//! ```text
//! server: {"ver":"1",…,"nonce":"<server nonce, 64 hex>","proto":2}    (a note for people)
//! client: {"ver":"1",…,"proto":2,"cnonce":"<client nonce>","auth":"<tag 0>"}   ls
//! server: {"ver":"1",…,"proof":"<proof>"}                              (then the reply)
//! client: {"ver":"1",…,"auth":"<tag 1>"}                               pwd
//! ```
//!
//! * tag *n* = HMAC(token, `CLIENT` ‖ server nonce ‖ client nonce ‖ *n* ‖
//!   the request's body): the client's *n*-th request (from 0), and no
//!   other. Version 1's answer covered only the server's nonce, so a fake
//!   server could pass the real one's challenge to an honest client and run
//!   a command of its own with the answer; and every later request of the
//!   connection was trusted unproved, so whoever held the connection could
//!   add its own. Now a relay can pass requests on unchanged, or not at all.
//! * proof = HMAC(token, `SERVER` ‖ server nonce ‖ client nonce ‖ 0 ‖ the
//!   first request's body), sent once that request is verified and before
//!   anything of its reply: a server that does not hold the token cannot
//!   make it, so the client refuses it before it trusts a byte of output.
//!   The two labels differ, so one side's tag is never the other's proof.
//!
//! The server compares in constant time and makes a wrong first answer
//! wait about a second ([`PENALTY`]) before it closes the connection, so
//! guessing is slow. A version 1 answer (no `proto`) is refused with an
//! error naming both versions. The channel itself stays plaintext: commands
//! and their output can be read by anyone on the path, and output is not
//! authenticated (only each frame's md5). Where that matters, put an SSH
//! tunnel or a TLS terminator in front and keep the server on loopback.

use std::io::{self, Read};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::CommandError;
use crate::frame::{FrameLimits, Header, read_frame_with, write_frame_parts};

/// The version of the command service's authentication this side speaks:
/// 2, mutual and bound to each request (1 answered the nonce alone).
///
/// ```
/// assert_eq!(socketserver::command::PROTOCOL, 2);
/// ```
pub const PROTOCOL: u32 = 2;
/// How long a wrong answer waits before the connection closes.
pub(crate) const PENALTY: Duration = Duration::from_secs(1);
/// A nonce's length in bytes.
pub(crate) const NONCE_LEN: usize = 32;
/// What a client's tags start with.
const CLIENT: &[u8] = b"socketserver command v2 client\0";
/// What the server's proof starts with.
const SERVER: &[u8] = b"socketserver command v2 server\0";
/// What the seed's client (which cannot answer) prints of the challenge.
const NOTE: &[u8] = b"this server needs a token: use a framed client that has it \
(cmd_client --token-file FILE); the seed's form cannot authenticate\n";

/// A nonce.
pub(crate) type Nonce = [u8; NONCE_LEN];

pub(crate) fn hex(bytes: &[u8]) -> String {
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

/// A nonce in hex, if it is exactly one.
pub(crate) fn nonce_from_hex(text: &str) -> Option<Nonce> {
    unhex(text)?.try_into().ok()
}

/// A fresh nonce from the operating system's random source.
pub(crate) fn nonce() -> io::Result<Nonce> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(nonce)
}

/// Both nonces of one authenticated connection, and the token: what every
/// tag of the connection is made from.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    token: String,
    server: Nonce,
    client: Nonce,
    /// The number of the next request.
    next: u64,
}

impl Session {
    pub(crate) fn new(token: &str, server: Nonce, client: Nonce) -> Session {
        Session {
            token: token.to_owned(),
            server,
            client,
            next: 0,
        }
    }

    fn mac(&self, label: &[u8], n: u64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.token.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        // Nonces of a fixed length, then a fixed-width count: the body is
        // all the rest, so no two inputs run together.
        for part in [label, &self.server, &self.client, &n.to_be_bytes(), body] {
            mac.update(part);
        }
        mac
    }

    /// The client's tag for its next request, in hex; counts it.
    pub(crate) fn tag(&mut self, body: &[u8]) -> String {
        let tag = hex(&self.mac(CLIENT, self.next, body).finalize().into_bytes());
        self.next += 1;
        tag
    }

    /// Whether `tag` (hex) is the client's for its next request, compared
    /// in constant time; counts the request if it is.
    pub(crate) fn check(&mut self, body: &[u8], tag: &str) -> bool {
        let good = unhex(tag)
            .is_some_and(|tag| self.mac(CLIENT, self.next, body).verify_slice(&tag).is_ok());
        if good {
            self.next += 1;
        }
        good
    }

    /// The server's proof for the first request's body, in hex.
    pub(crate) fn proof(&self, first: &[u8]) -> String {
        hex(&self.mac(SERVER, 0, first).finalize().into_bytes())
    }

    /// Whether `proof` (hex) is the server's for the first request.
    pub(crate) fn check_proof(&self, first: &[u8], proof: &str) -> bool {
        unhex(proof).is_some_and(|p| self.mac(SERVER, 0, first).verify_slice(&p).is_ok())
    }
}

/// Opens a connection with the challenge.
pub(crate) fn write_challenge(w: &mut impl io::Write, nonce: &Nonce) -> io::Result<()> {
    let header = Header::for_body(NOTE)
        .with("nonce", hex(nonce))
        .with("proto", PROTOCOL);
    write_frame_parts(w, &header, &[NOTE])
}

/// Sends the server's proof, once the first request is verified.
pub(crate) fn write_proof(w: &mut impl io::Write, proof: String) -> io::Result<()> {
    write_frame_parts(w, &Header::for_body(b"").with("proof", proof), &[])
}

/// The nonce in a challenge frame's header, if it is one.
pub(crate) fn nonce_in(header: &Header) -> Option<String> {
    Some(header.extra.get("nonce")?.as_str()?.to_owned())
}

fn closed() -> CommandError {
    CommandError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    ))
}

/// Reads the challenge a server with a token opens each connection with,
/// and checks it speaks this protocol.
pub(crate) fn read_challenge(r: &mut impl Read) -> Result<Nonce, CommandError> {
    let limits = FrameLimits::new().max_body_len(4096);
    let frame = read_frame_with(r, &limits)?.ok_or_else(closed)?;
    let nonce = nonce_in(&frame.header)
        .ok_or_else(|| CommandError::Server("expected the server's challenge (a nonce)".into()))?;
    let theirs = frame.header.extra.get("proto").and_then(|v| v.as_u64());
    if theirs != Some(PROTOCOL.into()) {
        return Err(CommandError::ProtocolVersion {
            ours: PROTOCOL,
            theirs: theirs.map_or(1, |v| u32::try_from(v).unwrap_or(u32::MAX)),
        });
    }
    nonce_from_hex(&nonce)
        .ok_or_else(|| CommandError::Server("the server's nonce is not 32 bytes in hex".into()))
}

/// Reads what follows a client's first request: the server's proof, which
/// must check; or the server's error (a wrong token, an old client).
pub(crate) fn read_proof(
    r: &mut impl Read,
    session: &Session,
    first: &[u8],
) -> Result<(), CommandError> {
    let limits = FrameLimits::new().max_body_len(4096);
    let frame = read_frame_with(r, &limits)?.ok_or_else(closed)?;
    let extra = &frame.header.extra;
    if let Some(proof) = extra.get("proof").and_then(|v| v.as_str()) {
        if session.check_proof(first, proof) {
            return Ok(());
        }
        return Err(CommandError::ServerUnproven);
    }
    match extra.get("error").and_then(|v| v.as_str()) {
        Some(message) => Err(CommandError::Server(message.to_owned())),
        None => Err(CommandError::ServerUnproven),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_for_one_request_of_one_connection() {
        let (server, client) = (nonce().unwrap(), nonce().unwrap());
        let mut ours = Session::new("s3cret", server, client);
        let mut theirs = Session::new("s3cret", server, client);
        let tag = ours.tag(b"ls");
        assert_eq!(tag.len(), 64);
        assert!(!theirs.clone().check(b"ls -la", &tag), "another request");
        assert!(!Session::new("s3creT", server, client).check(b"ls", &tag));
        assert!(!Session::new("s3cret", client, server).check(b"ls", &tag));
        assert!(!theirs.clone().check(b"ls", &tag[..62]));
        assert!(!theirs.clone().check(b"ls", "zz"));
        assert!(theirs.check(b"ls", &tag));
        assert!(!theirs.check(b"ls", &tag), "a replay, as request 1");
        assert!(theirs.check(b"pwd", &ours.tag(b"pwd")));
        assert_ne!(server, nonce().unwrap());
    }

    #[test]
    fn the_proof_is_not_a_tag_and_needs_the_token() {
        let (server, client) = ([1u8; 32], [2u8; 32]);
        let mut session = Session::new("s3cret", server, client);
        let proof = session.proof(b"ls");
        assert!(session.check_proof(b"ls", &proof));
        assert!(!session.check_proof(b"pwd", &proof));
        assert!(!Session::new("other", server, client).check_proof(b"ls", &proof));
        let tag = session.clone().tag(b"ls");
        assert_ne!(tag, proof);
        assert!(!session.check_proof(b"ls", &tag), "a tag reflected back");
        assert!(!session.check(b"ls", &proof), "a proof sent as a tag");
    }

    #[test]
    fn a_challenge_round_trips_and_an_old_one_is_named() {
        let mut wire = Vec::new();
        write_challenge(&mut wire, &[7u8; 32]).unwrap();
        assert_eq!(read_challenge(&mut &wire[..]).unwrap(), [7u8; 32]);
        let mut old = Vec::new();
        let header = Header::for_body(b"").with("nonce", hex(&[7u8; 32]));
        write_frame_parts(&mut old, &header, &[]).unwrap();
        let err = read_challenge(&mut &old[..]).unwrap_err();
        assert!(
            matches!(err, CommandError::ProtocolVersion { ours: 2, theirs: 1 }),
            "{err}"
        );
    }
}
