//! Helpers of the warm namespaces' red team (`tests/command_warm.rs` and
//! `tests/command_warm_init.rs`): a shell server, a reply's output, the
//! line that names a command's PID namespace.

use socketserver::command::Reply;

use super::{Running, cmd_server};

/// A `cmd_server` running lines with `sh -c`, every command slot open to
/// one address (the tests' clients all come from 127.0.0.1).
pub fn shell_server(args: &[&str]) -> Running {
    let mut all = vec!["--shell", "--max-commands-per-peer", "8"];
    all.extend_from_slice(args);
    cmd_server(&all)
}

/// The command's standard output as text.
pub fn out(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.stdout).into_owned()
}

/// The line that prints a command's PID namespace, first thing.
pub const PIDNS: &str = "readlink /proc/self/ns/pid";

/// Whether the server `pid` has its namespace keeper thread now.
pub fn keeper(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks.filter_map(Result::ok).any(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.starts_with("socketserver-na"))
            })
        })
        .unwrap_or(false)
}
