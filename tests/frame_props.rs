//! Properties of the frame reader over generated input: every body survives
//! a round trip, and arbitrary bytes never panic the reader nor make it
//! allocate past its limits.
//!
//! This file is its own test binary because it swaps in a counting global
//! allocator; the count is per thread, so tests running beside it do not
//! disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use socketserver::frame::{FrameLimits, read_frame, read_frame_with, write_frame};

thread_local! {
    /// The largest single allocation on this thread since the last reset.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: an allocation during thread teardown must not panic.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Input that starts like a frame (a plausible length, a JSON-ish header)
/// as often as it is plain noise, so the fuzzing reaches past the prefix.
fn hostile_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (
            any::<i32>(),
            "\\{\"ver\":\"[0-9]\",\"md5\":\"[0-9a-f]{0,32}\",\"lenth\":-?[0-9]{1,12}\\}",
            proptest::collection::vec(any::<u8>(), 0..256),
        )
            .prop_map(|(len, header, body)| {
                let len = if len % 2 == 0 {
                    header.len() as i32
                } else {
                    len
                };
                let mut wire = len.to_le_bytes().to_vec();
                wire.extend_from_slice(header.as_bytes());
                wire.extend_from_slice(&body);
                wire
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_body_round_trips(bodies in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..4096), 0..8)) {
        let mut wire = Vec::new();
        for body in &bodies {
            write_frame(&mut wire, body).unwrap();
        }
        let mut input = &wire[..];
        for body in &bodies {
            let frame = read_frame(&mut input).unwrap().expect("a frame");
            prop_assert_eq!(&frame.body, body);
        }
        prop_assert!(read_frame(&mut input).unwrap().is_none());
    }

    #[test]
    fn hostile_bytes_never_panic_nor_allocate_past_the_limits(wire in hostile_input()) {
        let limits = FrameLimits::new().max_header_len(1024).max_body_len(4096);
        LARGEST.with(|largest| largest.set(0));
        let mut input = &wire[..];
        // Read until the input is used up or rejected; any outcome but a
        // panic is fine.
        while let Ok(Some(_)) = read_frame_with(&mut input, &limits) {}
        // A header buffer of at most 1 KiB, a body buffer of at most 4 KiB,
        // serde's small parse: nothing near a lying length prefix or lenth.
        let largest = LARGEST.with(Cell::get);
        prop_assert!(largest <= 8 * 1024, "allocated {} bytes", largest);
    }
}
