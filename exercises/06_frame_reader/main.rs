//! Exercise 6's checker, built and run by `cargo run --example course --
//! check 6` (add `--solution` to check the reference solution).

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
