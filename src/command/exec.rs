//! Running one command: split it, check it, spawn it, read both pipes at
//! once, enforce the timeout and the output cap, and reap the child.
//!
//! The child gets its own process group, so a kill reaches whatever it
//! started too; it is always waited for, so it never lingers as a zombie.

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{CommandConfig, CommandError};

/// How often a running command checks whether its client is still there.
const CLIENT_CHECK: Duration = Duration::from_millis(50);
/// How long to wait for the pipes to close after a kill.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// What a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Its standard output (up to the output cap).
    pub stdout: Vec<u8>,
    /// Its standard error (up to the output cap).
    pub stderr: Vec<u8>,
    /// Its exit code, if it exited rather than being killed by a signal.
    pub exit: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// It ran past the timeout and was killed.
    pub timed_out: bool,
    /// Its output passed the cap; it was killed and the output cut.
    pub truncated: bool,
    /// Its client went away, so it was killed.
    pub cancelled: bool,
}

/// Turns a command line into the program and its arguments.
pub(crate) fn argv(line: &str, config: &CommandConfig) -> Result<Vec<String>, CommandError> {
    if line.trim().is_empty() {
        return Err(CommandError::Empty);
    }
    if config.shell {
        return Ok(vec!["sh".into(), "-c".into(), line.into()]);
    }
    let words = shlex::split(line).ok_or(CommandError::UnbalancedQuotes)?;
    let Some(program) = words.first() else {
        return Err(CommandError::Empty);
    };
    if let Some(allowed) = &config.allow {
        if !allowed.iter().any(|a| a == program) {
            return Err(CommandError::NotAllowed(program.clone()));
        }
    }
    Ok(words)
}

enum Event {
    PipeClosed,
    OverCap,
}

/// Reads one pipe to its end, keeping what the shared budget allows.
fn drain(
    mut pipe: impl Read + Send + 'static,
    budget: Arc<AtomicUsize>,
    events: Sender<Event>,
) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let granted = budget
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    Some(left.saturating_sub(n))
                })
                .unwrap_or(0)
                .min(n);
            kept.extend_from_slice(&buf[..granted]);
            if granted < n {
                let _ = events.send(Event::OverCap);
            }
        }
        let _ = events.send(Event::PipeClosed);
        kept
    })
}

fn kill_group(child: &Child) {
    // Already gone is fine: the group may have exited on its own.
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
}

/// Runs `argv` under `config`'s timeout and output cap. `client_gone` is
/// asked now and then while it runs; if it says yes, the command is killed.
pub(crate) fn run(
    argv: &[String],
    config: &CommandConfig,
    client_gone: &dyn Fn() -> bool,
) -> Result<Outcome, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CommandError::UnknownProgram(program.clone()),
            _ => CommandError::Io(e),
        })?;

    let budget = Arc::new(AtomicUsize::new(config.max_output));
    let (events, inbox) = mpsc::channel();
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(&child);
        let _ = child.wait();
        return Err(CommandError::Io(io::Error::other(
            "the child's pipes are missing",
        )));
    };
    let readers = [
        drain(out, Arc::clone(&budget), events.clone()),
        drain(err, budget, events),
    ];

    let mut outcome = Outcome::default();
    let deadline = Instant::now() + config.timeout;
    let mut killed_at: Option<Instant> = None;
    let mut open_pipes = 2;
    let status = loop {
        // Both pipes closed: the child is done or about to be.
        if open_pipes == 0 {
            if let Some(status) = child.try_wait()? {
                break status;
            }
        }
        let now = Instant::now();
        if killed_at.is_none() {
            if now >= deadline {
                outcome.timed_out = true;
            } else if client_gone() {
                outcome.cancelled = true;
            }
            if outcome.timed_out || outcome.cancelled {
                kill_group(&child);
                killed_at = Some(now);
            }
        } else if killed_at.is_some_and(|at| now >= at + KILL_GRACE) {
            // Something outside the group holds the pipes open: stop
            // waiting for it, reap the child, and answer with what we have.
            break child.wait()?;
        }
        let wait = if open_pipes == 0 {
            Duration::from_millis(5)
        } else {
            CLIENT_CHECK.min(
                deadline
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(1)),
            )
        };
        match inbox.recv_timeout(wait) {
            Ok(Event::PipeClosed) => open_pipes -= 1,
            Ok(Event::OverCap) => {
                if !outcome.truncated {
                    outcome.truncated = true;
                    kill_group(&child);
                    killed_at.get_or_insert(Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Both readers are gone (a reader can only end by closing).
            Err(RecvTimeoutError::Disconnected) => open_pipes = 0,
        }
    };
    if open_pipes == 0 {
        let [out, err] = readers;
        outcome.stdout = out.join().unwrap_or_default();
        outcome.stderr = err.join().unwrap_or_default();
    }
    outcome.exit = status.code();
    outcome.signal = status.signal();
    Ok(outcome)
}
