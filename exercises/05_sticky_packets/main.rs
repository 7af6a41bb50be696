//! Exercise 5's checker, built and run by `cargo run --example course --
//! check 5` (add `--solution` to check the reference solution).

#[path = "../harness.rs"]
mod harness;

mod check;
mod exercise;
mod solution;

fn main() {
    harness::main(
        check::TITLE,
        || check::checks(exercise::make_sticky, exercise::make_split),
        || check::checks(solution::make_sticky, solution::make_split),
    );
}
