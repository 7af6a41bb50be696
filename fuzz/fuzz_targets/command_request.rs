//! Any bytes at all as the start of a command connection: detection of the
//! seed's raw form or our framed one, request reading, and argument
//! splitting may refuse them, never panic or allocate past their limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| socketserver::command::fuzz_request(data));
