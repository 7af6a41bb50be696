//! Exercise 1's checker, built and run by `cargo run --example course --
//! check 1` (add `--solution` to check the reference solution).

#[path = "../harness.rs"]
mod harness;

mod check;
mod exercise;
mod solution;

fn main() {
    harness::main(
        check::TITLE,
        || check::checks(exercise::serve),
        || check::checks(solution::serve),
    );
}
