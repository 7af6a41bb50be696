//! The examples' shared command line: an optional address first, then
//! `--flag value` options; `--help` prints the example's usage and exits.
//!
//! Only cmd_server and cmd_client still use this: they move to the clap
//! options in `examples/cli/` in a later pass, and then this file goes.

// Each example uses only part of this.
#![allow(dead_code)]

use std::collections::HashMap;
use std::process;

/// The seed's address, used when none is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9999";

pub struct Args {
    /// The first positional argument, or the seed's address.
    pub addr: String,
    /// Positional arguments after the address.
    pub rest: Vec<String>,
    options: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args`, printing `usage` for `-h`/`--help`.
    /// `valued` names the options that take a value.
    pub fn parse(usage: &str, valued: &[&str]) -> Args {
        Args::parse_at(usage, valued, DEFAULT_ADDR)
    }

    /// As [`Args::parse`], for an example whose default address is not
    /// the seed's.
    pub fn parse_at(usage: &str, valued: &[&str], default_addr: &str) -> Args {
        let mut positional = Vec::new();
        let mut options = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                println!("{}", usage.trim());
                process::exit(0);
            } else if arg == "--" {
                positional.extend(args.by_ref());
            } else if let Some(name) = arg.strip_prefix("--") {
                let value = if valued.contains(&name) {
                    args.next()
                        .unwrap_or_else(|| fail(usage, &format!("--{name} needs a value")))
                } else {
                    String::new()
                };
                options.insert(name.to_owned(), value);
            } else {
                positional.push(arg);
            }
        }
        let mut positional = positional.into_iter();
        Args {
            addr: positional.next().unwrap_or_else(|| default_addr.to_owned()),
            rest: positional.collect(),
            options,
        }
    }

    /// The value of `--name`, parsed, or `default`.
    pub fn value<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.options.get(name) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail("", &format!("--{name}: cannot use {v:?}"))),
            None => default,
        }
    }

    /// Whether the flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }
}

fn fail(usage: &str, why: &str) -> ! {
    eprintln!("error: {why}\n\n{}", usage.trim());
    process::exit(2);
}
