//! The examples' logger: the library's lines (a failing `accept`, a peer
//! refused, a grace period overrun, a handler's error) on stderr, one per
//! event, as `socketserver: warn: ...`.
//!
//! The library writes nothing to stderr by itself; it speaks through the
//! `log` facade, and a program decides where that goes. This is the
//! smallest such decision: level from `RUST_LOG` (`off`, `error`, `warn`,
//! `info`, `debug`, `trace`; `info` by default, so learners see the
//! lines), everything to stderr. A real program would use a logging crate.

use log::{LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_ascii_lowercase();
            eprintln!("{}: {level}: {}", record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once; later calls do nothing).
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|text| text.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}
