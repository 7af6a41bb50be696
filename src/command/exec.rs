//! Running one command: split it, check it, spawn it, read both pipes at
//! once, hand each piece of output on as it comes, enforce the timeout and
//! the output cap, and reap the child.
//!
//! The child gets its own process group, so a kill reaches whatever it
//! started too; it is always waited for, so it never lingers as a zombie.
//! Each pipe's reader thread hashes what it reads, so the server's md5 work
//! runs beside the command and beside the sending.

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use super::{CommandConfig, CommandError};

/// How often a running command checks whether its client is still there.
const CLIENT_CHECK: Duration = Duration::from_millis(50);
/// How long to wait for the pipes to close after a kill.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// The most a reader takes from its pipe at once.
const READ_SIZE: usize = 256 << 10;
/// How many pieces of output may wait to be sent: with the pipes' own
/// buffers, what bounds a command's memory while its client reads slowly.
const QUEUE: usize = 8;

/// Which of the command's output pipes a piece came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipe {
    Stdout,
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ending {
    /// Its exit code, if it exited rather than being killed by a signal.
    pub(crate) exit: Option<i32>,
    /// The signal that ended it, if one did.
    pub(crate) signal: Option<i32>,
    /// It ran past the timeout and was killed.
    pub(crate) timed_out: bool,
    /// Its output passed the cap; it was killed and the output cut.
    pub(crate) truncated: bool,
    /// Its client went away, so it was killed.
    pub(crate) cancelled: bool,
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

/// Where each piece of output goes, with its md5, as it arrives.
pub(crate) type OutputSink<'a> = &'a mut dyn FnMut(Pipe, &[u8], md5::Digest) -> io::Result<()>;

enum Event {
    Output(Pipe, Vec<u8>, md5::Digest),
    Closed,
}

/// Reads one pipe to its end, hashing each piece and passing it on.
fn drain(mut pipe: impl Read + Send + 'static, which: Pipe, events: SyncSender<Event>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let piece = buf[..n].to_vec();
            let digest = md5::compute(&piece);
            if events.send(Event::Output(which, piece, digest)).is_err() {
                return; // the command was abandoned
            }
        }
        let _ = events.send(Event::Closed);
    });
}

/// Kills the command's group once, noting when.
fn kill(child: &Child, killed_at: &mut Option<Instant>) {
    if killed_at.is_none() {
        kill_group(child);
        *killed_at = Some(Instant::now());
    }
}

fn kill_group(child: &Child) {
    // Already gone is fine: the group may have exited on its own.
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
}

/// Runs `argv` under `config`'s timeout and output cap, handing each piece
/// of output to `output` (with its md5) as it arrives. `client_gone` is
/// asked now and then while it runs; if it says yes, the command is killed.
///
/// An error from `output` (the client stopped reading) kills the command
/// and is returned once the child is reaped.
pub(crate) fn run(
    argv: &[String],
    config: &CommandConfig,
    client_gone: &dyn Fn() -> bool,
    output: OutputSink<'_>,
) -> Result<Ending, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidInput => CommandError::UnknownProgram(program.clone()),
            _ => CommandError::Io(e),
        })?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(&child);
        let _ = child.wait();
        return Err(CommandError::Io(io::Error::other(
            "the child's pipes are missing",
        )));
    };
    let (events, inbox) = mpsc::sync_channel(QUEUE);
    drain(out, Pipe::Stdout, events.clone());
    drain(err, Pipe::Stderr, events);

    let mut ending = Ending::default();
    let mut failed: Option<io::Error> = None;
    let mut budget = config.max_output;
    let deadline = Instant::now() + config.timeout;
    let mut killed_at: Option<Instant> = None;
    let mut open_pipes = 2;
    let mut reap_backoff = Duration::from_micros(50);
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
                ending.timed_out = true;
                kill(&child, &mut killed_at);
            } else if client_gone() {
                ending.cancelled = true;
                kill(&child, &mut killed_at);
            }
        } else if killed_at.is_some_and(|at| now >= at + KILL_GRACE) {
            // Something outside the group holds the pipes open: stop
            // waiting for it, reap the child, and answer with what we have.
            break child.wait()?;
        }
        if open_pipes == 0 {
            // The output is all in; the child is exiting, or has closed its
            // pipes and runs on. Poll gently, quickly at first: most are
            // gone within microseconds.
            thread::sleep(reap_backoff);
            reap_backoff = (reap_backoff * 2).min(Duration::from_millis(5));
            continue;
        }
        let wait = CLIENT_CHECK.min(
            deadline
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        );
        match inbox.recv_timeout(wait) {
            Ok(Event::Output(pipe, piece, digest)) => {
                if failed.is_some() {
                    continue; // draining until the killed child's pipes close
                }
                let (piece, digest) = if piece.len() > budget {
                    ending.truncated = true;
                    kill(&child, &mut killed_at);
                    let kept = &piece[..budget];
                    (kept, md5::compute(kept))
                } else {
                    (&piece[..], digest)
                };
                budget -= piece.len();
                if !piece.is_empty() {
                    if let Err(e) = output(pipe, piece, digest) {
                        kill(&child, &mut killed_at);
                        failed = Some(e);
                    }
                }
            }
            Ok(Event::Closed) => open_pipes -= 1,
            Err(RecvTimeoutError::Timeout) => {}
            // Both readers are gone (a reader can only end by closing).
            Err(RecvTimeoutError::Disconnected) => open_pipes = 0,
        }
    };
    if let Some(e) = failed {
        return Err(CommandError::Io(e));
    }
    ending.exit = status.code();
    ending.signal = status.signal();
    Ok(ending)
}
