//! Exercise 8's checker, built and run by `cargo run --example course --
//! check 8` (add `--solution` to check the reference solution).

#[path = "../harness.rs"]
mod harness;

mod check;
mod exercise;
mod solution;

fn main() {
    harness::main(
        check::TITLE,
        check::checks::<exercise::Room>,
        check::checks::<solution::Room>,
    );
}
