//! The file client (a lesson beyond the seed): `ls`, `get` (resuming a cut
//! download) and `put`, with a progress line on a terminal.
//!
//! ```sh
//! cargo run --example file_client -- ls
//! cargo run --example file_client -- put ./big.iso
//! cargo run --example file_client -- 127.0.0.1:9998 get big.iso /tmp/big.iso
//! ```

mod args;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use socketserver::files::{FileClient, FileError};

const USAGE: &str = "
file_client [ADDR] ls [DIR]
file_client [ADDR] get NAME [DEST] [--overwrite]
file_client [ADDR] put PATH [NAME] [--overwrite]

Talks to file_server (a lesson beyond the seed). `get` keeps a cut
download in DEST.part and resumes it next time; files are verified by
md5, chunk by chunk and as a whole, before they get their name. Neither
side replaces an existing file unless given --overwrite. On a terminal,
transfers over 4 MiB show bytes, rate and time left.

  ADDR          the server (default 127.0.0.1:9998)
  --overwrite   replace DEST (get) or NAME on the server (put)
";

const DEFAULT_ADDR: &str = "127.0.0.1:9998";

fn main() {
    let args = args::Args::parse_at(USAGE, &[], DEFAULT_ADDR);
    // The address is optional: a first word that is an operation is one.
    let mut words: Vec<String> = std::iter::once(args.addr.clone())
        .chain(args.rest.iter().cloned())
        .collect();
    let addr = if ["ls", "get", "put"].contains(&words[0].as_str()) {
        DEFAULT_ADDR.to_owned()
    } else {
        words.remove(0)
    };
    let overwrite = args.flag("overwrite");
    if let Err(e) = run(&addr, &words, overwrite) {
        eprintln!("file_client: {e}");
        std::process::exit(1);
    }
}

fn run(addr: &str, words: &[String], overwrite: bool) -> Result<(), FileError> {
    let word = |i: usize| words.get(i).map(String::as_str);
    let mut client = FileClient::connect(addr)?;
    match (word(0), word(1)) {
        (Some("ls"), dir) => {
            for entry in client.ls(dir.unwrap_or(""))? {
                let kind = if entry.dir { "dir" } else { "" };
                println!("{:>12} {kind:>3} {}", entry.size, entry.name);
            }
        }
        (Some("get"), Some(name)) => {
            let default = Path::new(name).file_name().map(PathBuf::from);
            let dest = word(2).map(PathBuf::from).or(default).unwrap_or_default();
            let mut line = Progress::new();
            let done = client.get(name, &dest, overwrite, |n, total| line.show(n, total))?;
            line.finish();
            if done.resumed_from > 0 {
                println!("resumed at byte {}", done.resumed_from);
            }
            println!(
                "{name} -> {}: {} bytes, digest {}",
                dest.display(),
                done.size,
                done.digest
            );
        }
        (Some("put"), Some(path)) => {
            let default = Path::new(path).file_name().and_then(|n| n.to_str());
            let name = word(2).or(default).unwrap_or(path);
            let mut line = Progress::new();
            let done = client.put(Path::new(path), name, overwrite, |n, total| {
                line.show(n, total)
            })?;
            line.finish();
            println!(
                "{path} -> {name}: {} bytes, digest {}",
                done.size, done.digest
            );
        }
        _ => {
            eprintln!("{}", USAGE.trim());
            std::process::exit(2);
        }
    }
    Ok(())
}

/// One terminal line that shows a transfer going by; silent when stdout
/// is not a terminal or the transfer is small.
struct Progress {
    on: bool,
    started: Instant,
    /// Where this run started (a resumed `get` starts past 0).
    base: Option<u64>,
    shown: Option<Instant>,
}

impl Progress {
    const MIN_SIZE: u64 = 4 << 20;
    const EVERY: Duration = Duration::from_millis(100);

    fn new() -> Progress {
        Progress {
            on: std::io::stdout().is_terminal(),
            started: Instant::now(),
            base: None,
            shown: None,
        }
    }

    fn show(&mut self, done: u64, total: u64) {
        let due = self.shown.is_none_or(|at| at.elapsed() >= Progress::EVERY);
        if !self.on || total < Progress::MIN_SIZE || !(due || done == total) {
            return;
        }
        self.shown = Some(Instant::now());
        let base = *self.base.get_or_insert(done);
        let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = mib(done - base) / secs;
        let left = if rate > 0.0 {
            mib(total - done) / rate
        } else {
            0.0
        };
        print!(
            "\r{:>9.1} / {:.1} MiB  {rate:>7.1} MiB/s  {:>4.0} s left ",
            mib(done),
            mib(total),
            left
        );
        let _ = std::io::stdout().flush();
    }

    fn finish(&self) {
        if self.shown.is_some() {
            println!();
        }
    }
}
