//! Any bytes at all into the frame reader, whole and one byte per read: it
//! may refuse them, never panic, and never allocate past its limits.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use socketserver::frame::{FrameLimits, read_frame_with};

/// Hands out at most one byte per read: the worst fragmentation.
struct OneByte<'a>(&'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Small limits, so a lying length is caught by a limit the fuzzer can
    // reach, and libFuzzer's -malloc_limit_mb catches any allocation past them.
    let limits = FrameLimits::new().max_header_len(4096).max_body_len(1 << 20);
    let mut whole = data;
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = read_frame_with(&mut whole, &limits) {
        frames.push(frame);
    }
    let mut split = OneByte(data);
    for frame in frames {
        let again = read_frame_with(&mut split, &limits).ok().flatten();
        assert_eq!(again.as_ref(), Some(&frame), "fragmentation changed a frame");
    }
});
