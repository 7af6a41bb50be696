//! Recognising the seed's frame in one direction's bytes as they are
//! written, so a diagram can show the length, the header and the body
//! apart without the trace keeping the bytes.

use super::{MAX_PARTS, Part};

/// The largest JSON header the frame recogniser accepts, as
/// [`crate::frame::FrameLimits`] does by default: beyond it, a direction is
/// taken not to be framed.
const MAX_HEADER: usize = 64 * 1024;

/// Recognises the seed's frames in one direction's bytes, as they are
/// written, without keeping them: only a header in progress is held.
#[derive(Debug, Clone)]
enum Framing {
    Length(Vec<u8>),
    Header {
        want: usize,
        got: Vec<u8>,
    },
    Body {
        left: u64,
    },
    /// Not (or no longer) the seed's frame.
    Off,
}

/// What a trace knows of one direction's stream of bytes.
#[derive(Debug, Clone)]
pub(super) struct Direction {
    /// Bytes written so far (the next write's offset).
    pub(super) written: u64,
    /// Bytes read so far (the next read's offset).
    pub(super) read: u64,
    framing: Framing,
    /// Parts found so far: (start offset, end offset, part).
    pub(super) parts: Vec<(u64, u64, Part)>,
}

impl Direction {
    pub(super) fn new() -> Direction {
        Direction {
            written: 0,
            read: 0,
            framing: Framing::Length(Vec::new()),
            parts: Vec::new(),
        }
    }

    /// Feeds written bytes to the frame recogniser.
    pub(super) fn feed(&mut self, mut bytes: &[u8], mut at: u64) {
        while !bytes.is_empty() {
            match &mut self.framing {
                Framing::Off => return,
                Framing::Length(got) => {
                    let take = (4 - got.len()).min(bytes.len());
                    got.extend_from_slice(&bytes[..take]);
                    if got.len() == 4 {
                        let len = i32::from_le_bytes([got[0], got[1], got[2], got[3]]);
                        match usize::try_from(len) {
                            Ok(want) if (2..=MAX_HEADER).contains(&want) => {
                                keep(
                                    &mut self.parts,
                                    (at + take as u64 - 4, at + take as u64, Part::Length),
                                );
                                self.framing = Framing::Header {
                                    want,
                                    got: Vec::new(),
                                };
                            }
                            _ => self.stop(),
                        }
                    }
                    bytes = &bytes[take..];
                    at += take as u64;
                }
                Framing::Header { want, got } => {
                    let take = (*want - got.len()).min(bytes.len());
                    got.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    at += take as u64;
                    if got.len() == *want {
                        let end = at;
                        let start = end - *want as u64;
                        match body_len(got) {
                            Some(left) => {
                                keep(&mut self.parts, (start, end, Part::Header));
                                self.framing = if left == 0 {
                                    Framing::Length(Vec::new())
                                } else {
                                    Framing::Body { left }
                                };
                            }
                            None => self.stop(),
                        }
                    }
                }
                Framing::Body { left } => {
                    let take = (*left).min(bytes.len() as u64);
                    keep(&mut self.parts, (at, at + take, Part::Body));
                    *left -= take;
                    if *left == 0 {
                        self.framing = Framing::Length(Vec::new());
                    }
                    bytes = &bytes[take as usize..];
                    at += take;
                }
            }
        }
    }

    /// The direction is not framed from here on. If no frame was complete,
    /// it never was: forget the parts guessed so far.
    fn stop(&mut self) {
        if !self.parts.iter().any(|&(_, _, part)| part == Part::Header) {
            self.parts.clear();
        } else {
            // Drop a dangling length that turned out not to start a frame.
            while self
                .parts
                .last()
                .is_some_and(|&(_, _, p)| p == Part::Length)
            {
                self.parts.pop();
            }
        }
        self.framing = Framing::Off;
    }

    /// Where a frame's parts begin (its length, its header, its body), in
    /// order. A reader that stops there read the parts of one message
    /// apart, on purpose (the seed's reader asks for exactly 4 bytes, then
    /// exactly the header): that is not 分包.
    pub(super) fn boundaries(&self) -> Vec<u64> {
        let mut at: Vec<u64> = self
            .parts
            .iter()
            .flat_map(|&(start, end, part)| match part {
                Part::Length => [Some(start), None],
                Part::Header => [Some(start), Some(end)],
                Part::Body => [None, None],
            })
            .flatten()
            .collect();
        at.sort_unstable();
        at.dedup();
        at
    }

    /// The frames' byte ranges: each from its length to the next frame's
    /// length (or the last part found).
    pub(super) fn frames(&self) -> Vec<std::ops::Range<u64>> {
        let starts: Vec<u64> = self
            .parts
            .iter()
            .filter(|&&(_, _, part)| part == Part::Length)
            .map(|&(start, _, _)| start)
            .collect();
        let last = self.parts.last().map_or(0, |&(_, end, _)| end);
        starts
            .iter()
            .enumerate()
            .map(|(i, &start)| start..starts.get(i + 1).copied().unwrap_or(last))
            .collect()
    }

    /// The parts within `range`, merged per run, with their byte counts.
    pub(super) fn parts_in(&self, range: std::ops::Range<u64>) -> Vec<(Part, u64)> {
        let mut out: Vec<(Part, u64)> = Vec::new();
        // Parts are found in stream order and do not overlap: skip those
        // that end before the range, stop at the first past it.
        let first = self
            .parts
            .partition_point(|&(_, end, _)| end <= range.start);
        for &(start, end, part) in &self.parts[first..] {
            if start >= range.end {
                break;
            }
            let (s, e) = (start.max(range.start), end.min(range.end));
            if s >= e {
                continue;
            }
            match out.last_mut() {
                Some((last, n)) if *last == part && part == Part::Body => *n += e - s,
                _ => out.push((part, e - s)),
            }
        }
        out
    }
}

/// Keeps a part found, up to [`MAX_PARTS`]: a long conversation goes on
/// being recognised (to stay in step), but its later parts are not kept,
/// as its later calls are not.
fn keep(parts: &mut Vec<(u64, u64, Part)>, part: (u64, u64, Part)) {
    if parts.len() < MAX_PARTS {
        parts.push(part);
    }
}

/// The body length a JSON header announces, if it is the seed's header.
fn body_len(header: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(header).ok()?;
    let object = value.as_object()?;
    object
        .get("lenth")
        .or_else(|| object.get("length"))?
        .as_u64()
}
