//! Exercise 6's checker, built and run by `cargo run --example course --
//! check 6` (add `--solution` to check the reference solution).

// A check's failure carries the whole story for the learner (what was
// sent, what came back, the wire); it is made once, on the way out.
#![allow(clippy::result_large_err)]

#[path = "../harness.rs"]
mod harness;

mod check;
mod exercise;
mod solution;

fn main() {
    harness::main(
        check::TITLE,
        || check::checks(exercise::read_frame),
        || check::checks(solution::read_frame),
    );
}
