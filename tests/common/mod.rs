//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// `python3`, for tests that run a peer in the seed's style.
///
/// Missing python3 fails the test in CI (`CI` set), where it is required,
/// and skips it with a loud note on a developer machine.
pub fn python3() -> Option<Command> {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => Some(Command::new("python3")),
        _ if std::env::var_os("CI").is_some() => {
            panic!("python3 is required in CI for the interop tests, and it is missing")
        }
        _ => {
            eprintln!("SKIPPED: python3 not found; interop test not run");
            None
        }
    }
}

/// The path of a peer program under `tests/peers/`.
pub fn peer(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// A reader that hands out one byte per `read`: the worst fragmentation.
pub struct OneByte<'a>(pub &'a [u8]);

impl std::io::Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

/// A writer that accepts at most 3 bytes per call, vectored or not.
pub struct ShortWrites(pub Vec<u8>);

impl std::io::Write for ShortWrites {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
