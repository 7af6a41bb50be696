//! The reply to one command, on the wire and in the client's hands.
//!
//! The server turns an [`Outcome`] (or an error) into a frame in either
//! form; the client turns a frame back into a [`Reply`]. Both live here so
//! the two sides cannot drift apart.

use std::io::{self, Write};

use serde_json::Value;

use super::exec::Outcome;
use super::{CommandError, Protocol};
use crate::frame::{Frame, Header, write_frame_parts};

/// What the client gets back for one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The command's standard output. In the seed's form, the whole body:
    /// stderr if there was any, else stdout, else `ok`.
    pub stdout: Vec<u8>,
    /// The command's standard error (always empty in the seed's form).
    pub stderr: Vec<u8>,
    /// The exit code, if the command exited (and the server said so).
    pub exit: Option<i32>,
    /// The signal that ended the command, if one did.
    pub signal: Option<i32>,
    /// The command ran past the server's timeout and was killed.
    pub timed_out: bool,
    /// The output passed the server's cap and was cut short.
    pub truncated: bool,
}

fn status_header(header: Header, outcome: &Outcome) -> Header {
    header
        .with("exit", outcome.exit)
        .with("signal", outcome.signal)
        .with("timed_out", outcome.timed_out)
        .with("truncated", outcome.truncated)
}

/// Sends a command's outcome in the form the client asked in.
pub(crate) fn write_outcome(
    w: &mut impl Write,
    protocol: Protocol,
    outcome: &Outcome,
) -> io::Result<()> {
    match protocol {
        Protocol::Framed => {
            let parts: [&[u8]; 2] = [&outcome.stdout, &outcome.stderr];
            let header = status_header(Header::for_parts(&parts), outcome)
                .with("stdout", outcome.stdout.len())
                .with("stderr", outcome.stderr.len());
            write_frame_parts(w, &header, &parts)
        }
        Protocol::Seed => {
            // The seed's rule, stream by stream.
            let (body, stream): (&[u8], &str) = if !outcome.stderr.is_empty() {
                (&outcome.stderr, "stderr")
            } else if !outcome.stdout.is_empty() {
                (&outcome.stdout, "stdout")
            } else {
                (b"ok", "none")
            };
            let header = status_header(Header::for_body(body), outcome).with("stream", stream);
            write_frame_parts(w, &header, &[body])
        }
    }
}

/// Sends an error in the form the client asked in: for the seed's client,
/// as a body it prints; for ours, as an `error` key.
pub(crate) fn write_error(
    w: &mut impl Write,
    protocol: Protocol,
    error: &CommandError,
) -> io::Result<()> {
    let message = error.to_string();
    match protocol {
        Protocol::Framed => {
            let header = Header::for_body(b"")
                .with("error", message)
                .with("stdout", 0)
                .with("stderr", 0);
            write_frame_parts(w, &header, &[])
        }
        Protocol::Seed => {
            let body = format!("error: {message}\n");
            let header = Header::for_body(body.as_bytes()).with("error", message);
            write_frame_parts(w, &header, &[body.as_bytes()])
        }
    }
}

fn int(frame: &Frame, key: &str) -> Option<i32> {
    frame
        .header
        .extra
        .get(key)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

fn flag(frame: &Frame, key: &str) -> bool {
    frame.header.extra.get(key).and_then(Value::as_bool) == Some(true)
}

impl Reply {
    /// Reads a reply frame in the given form.
    pub(crate) fn from_frame(mut frame: Frame, protocol: Protocol) -> Result<Reply, CommandError> {
        if let Some(message) = frame.header.extra.get("error").and_then(Value::as_str) {
            return Err(CommandError::Server(message.to_owned()));
        }
        let mut reply = Reply {
            exit: int(&frame, "exit"),
            signal: int(&frame, "signal"),
            timed_out: flag(&frame, "timed_out"),
            truncated: flag(&frame, "truncated"),
            ..Reply::default()
        };
        let split = match protocol {
            Protocol::Framed => {
                let stdout = frame.header.extra.get("stdout").and_then(Value::as_u64);
                match stdout.and_then(|n| usize::try_from(n).ok()) {
                    Some(n) if n <= frame.body.len() => n,
                    _ => {
                        return Err(CommandError::Server(
                            "reply has no valid `stdout` length".into(),
                        ));
                    }
                }
            }
            Protocol::Seed => frame.body.len(),
        };
        reply.stderr = frame.body.split_off(split);
        reply.stdout = frame.body;
        Ok(reply)
    }
}
