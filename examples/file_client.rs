//! The file client (a lesson beyond the seed): `ls`, `get` (resuming a cut
//! download) and `put`, with a progress line on a terminal.
//!
//! ```sh
//! cargo run --example file_client -- ls
//! cargo run --example file_client -- put ./big.iso
//! cargo run --example file_client -- 127.0.0.1:9998 get big.iso /tmp/big.iso
//! ```

mod cli;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use socketserver::files::FileClient;

/// Talks to file_server (a lesson beyond the seed).
///
/// `get` keeps a cut download in DEST.part and resumes it next time; files
/// are verified by md5, chunk by chunk and as a whole, before they get
/// their name. Neither side replaces an existing file unless given
/// --overwrite. On a terminal, transfers over 4 MiB show bytes, rate and
/// time left; nothing of that is printed when stdout is not a terminal.
#[derive(Parser, Debug)]
#[command(name = "file_client", version)]
struct Cli {
    #[command(flatten)]
    server: cli::Connect,
    #[command(subcommand)]
    op: Op,
}

#[derive(Subcommand, Debug)]
enum Op {
    /// List a directory on the server (default: its root)
    Ls {
        /// The directory, relative to the server's root
        dir: Option<String>,
    },
    /// Download NAME into DEST (default: NAME's last component, here)
    Get {
        /// The file on the server, relative to its root
        name: String,
        /// Where to write it
        dest: Option<PathBuf>,
        /// Replace DEST if it exists
        #[arg(long)]
        overwrite: bool,
    },
    /// Upload PATH as NAME (default: PATH's file name)
    Put {
        /// The local file
        path: PathBuf,
        /// Its name on the server, relative to the root
        name: Option<String>,
        /// Replace NAME on the server if it exists
        #[arg(long)]
        overwrite: bool,
    },
}

const DEFAULT_ADDR: &str = "127.0.0.1:9998";

fn main() {
    let cli: Cli = cli::parse_with_addr(DEFAULT_ADDR);
    if let Err(e) = run(cli) {
        eprintln!("file_client: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let addr = &cli.server.addr;
    let mut client =
        FileClient::connect(&addr.addrs[..]).map_err(|e| addr.error("connect to", e))?;
    match cli.op {
        Op::Ls { dir } => {
            for entry in client.ls(dir.as_deref().unwrap_or(""))? {
                let kind = if entry.dir { "dir" } else { "" };
                println!("{:>12} {kind:>3} {}", entry.size, entry.name);
            }
        }
        Op::Get {
            name,
            dest,
            overwrite,
        } => {
            let default = Path::new(&name).file_name().map(PathBuf::from);
            let Some(dest) = dest.or(default) else {
                return Err(format!("{name:?} names no file: give DEST").into());
            };
            let mut progress = Progress::new();
            let done = client.get(&name, &dest, overwrite, |n, total| progress.show(n, total))?;
            progress.finish();
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
        Op::Put {
            path,
            name,
            overwrite,
        } => {
            let default = path.file_name().and_then(|n| n.to_str()).map(str::to_owned);
            let Some(name) = name.or(default) else {
                return Err(
                    format!("{} has no file name to use: give NAME", path.display()).into(),
                );
            };
            let mut progress = Progress::new();
            let done = client.put(&path, &name, overwrite, |n, total| progress.show(n, total))?;
            progress.finish();
            println!(
                "{} -> {name}: {} bytes, digest {}",
                path.display(),
                done.size,
                done.digest
            );
        }
    }
    Ok(())
}

/// A progress bar on stdout, drawn by indicatif: bytes, rate and time
/// left. Silent when stdout is not a terminal or the transfer is small.
struct Progress {
    on: bool,
    /// The bar, and where this run started (a resumed `get` starts past 0):
    /// the bar counts this run's bytes, so the rate and time left are true.
    bar: Option<(ProgressBar, u64)>,
}

impl Progress {
    const MIN_SIZE: u64 = 4 << 20;

    fn new() -> Progress {
        Progress {
            on: std::io::stdout().is_terminal(),
            bar: None,
        }
    }

    fn show(&mut self, done: u64, total: u64) {
        if !self.on || total < Progress::MIN_SIZE {
            return;
        }
        let (bar, base) = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total.saturating_sub(done)),
                ProgressDrawTarget::stdout(),
            );
            let style = ProgressStyle::with_template(
                "{prefix}{bytes:>10} / {total_bytes}  {binary_bytes_per_sec:>12}  {eta} left  {wide_bar}",
            )
            .expect("a valid template");
            bar.set_style(style);
            if done > 0 {
                bar.set_prefix(format!("resumed at {}, then ", HumanBytes(done)));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            (bar, done)
        });
        bar.set_position(done.saturating_sub(*base));
    }

    /// Leaves the bar's last state on its own line.
    fn finish(self) {
        if let Some((bar, _)) = self.bar {
            bar.finish();
            // indicatif leaves the cursor at the end of the bar's line.
            println!();
        }
    }
}
