//! Containment by looking: finding, and ending, every process one command
//! started, where no PID namespace can be had ([`sandbox`](super::sandbox)
//! is the kernel's way, and the default where the system allows it).
//!
//! Each command starts a session of its own, so none of its processes can
//! join the server's process group: the kernel refuses `setpgid` into a
//! group of another session.
//! A process group is not a box: `setsid`, `nohup ... &` and double forks
//! leave it, and a background job whose parent exits is adopted elsewhere.
//! On Linux the server can be a *child subreaper* (`PR_SET_CHILD_SUBREAPER`,
//! set by [`CommandHandler::new`](super::CommandHandler::new)): an orphan
//! anywhere below it is adopted by the server instead of by init, so it stays
//! in the server's process tree, where [`Tree`] looks for it in `/proc`.
//!
//! The subreaper is process-wide, so an adopted orphan may belong to any
//! command, or to the embedding program's own children. A process counts as
//! this command's ([`Tree::scan`]) when it is the command itself, or was seen
//! below it while its parent lived, or is still in its process group, or
//! carries this command's marker in its environment (inherited from the
//! command, unique per command), or holds one of this command's output
//! pipes; and everything below such a process counts too. Every running
//! command's claim is kept in one registry ([`RUNNING`]), so that a child of
//! the server that *no* running command claims, and that is not a command's
//! own main process, can be told for what it is: an escapee that cleared
//! its environment, closed the pipes and left group and parent between two
//! scans. [`sweep`] kills it and everything below it, at every command's end
//! and in every scan while commands run (`CommandConfig::
//! kill_unclaimed_orphans`), and reaps every zombie child that no command's
//! thread waits on. Children in the server's own process group (what
//! `std::process::Command` makes by default) can only be the embedding
//! program's, and are never touched. Every kill goes through a pidfd opened and checked
//! against the process's start time, so a reused pid is never hit.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// The environment variable that marks a command's processes.
pub(crate) const MARKER_ENV: &str = "SOCKETSERVER_COMMAND";
/// How long containment goes on killing before it gives up (a process in
/// uninterruptible sleep can outlast SIGKILL for a while).
const GIVE_UP: Duration = Duration::from_secs(5);

/// What one running command claims, as every other command's [`sweep`]
/// must see it.
#[derive(Debug)]
// Off Linux there is no `/proc` to sweep, and the claim is only kept.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Claim {
    /// Its main process and that one's start time: its own thread waits
    /// on it, so nobody else may reap it.
    main: (i32, u64),
    marker: Vec<u8>,
    pipes: Vec<String>,
    /// Every process seen as the command's: pid and start time.
    known: HashMap<i32, u64>,
}

/// The running commands' claims, by command. A command is entered while
/// this lock is held from before its spawn ([`claims`]) to its
/// [`Tree::new`], and a sweep holds it from before it looks at `/proc`, so
/// no sweep sees a main process that is not yet claimed.
static RUNNING: Mutex<Claims> = Mutex::new(Claims {
    next: 0,
    by_id: Vec::new(),
});

/// The registry's contents (a `Vec`: a handful of commands at most).
#[derive(Debug)]
pub(crate) struct Claims {
    next: u64,
    by_id: Vec<(u64, Claim)>,
}

/// Takes the registry; hold it across a command's spawn and its
/// [`Tree::new`].
pub(crate) fn claims() -> MutexGuard<'static, Claims> {
    // A poisoned registry only means a sweep panicked; its contents hold.
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// One process as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy)]
struct Proc {
    ppid: i32,
    /// Its process group: a zombie keeps it when environment and
    /// descriptors are gone.
    pgrp: i32,
    /// Clock ticks after boot: with the pid, names one process for good.
    start: u64,
    zombie: bool,
}

/// Parses `/proc/PID/stat`: the name is in parentheses and may hold spaces
/// or parentheses itself, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Proc> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        zombie: *fields.first()? == "Z",
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

fn stat(pid: i32) -> Option<Proc> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process now: one read of `/proc`. Empty where there is no `/proc`,
/// which leaves only the process group to contain a command.
fn snapshot() -> HashMap<i32, Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        Some((pid, stat(pid)?))
    })
    .collect()
}

/// The processes below `root`, from each of its threads' `children` list
/// (a child is listed under the thread that forked it, and an adopted
/// orphan under the thread that adopted it). `None` where the kernel has
/// no such lists (`CONFIG_PROC_CHILDREN`): then only a full [`snapshot`]
/// will do. Far cheaper than one: a quick command costs a few reads, not
/// one per process on the machine.
fn subtree(root: i32) -> Option<HashMap<i32, Proc>> {
    static LISTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let lists = LISTS.get_or_init(|| {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        fs::metadata(format!("/proc/{me}/task/{me}/children")).is_ok()
    });
    if !lists {
        return None;
    }
    let mut procs = HashMap::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue; // gone since it was listed
        };
        for task in tasks.filter_map(Result::ok) {
            // A thread that ended since it was listed has no list.
            let Ok(list) = fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in list.split_whitespace().filter_map(|c| c.parse().ok()) {
                if let (false, Some(p)) = (procs.contains_key(&child), stat(child)) {
                    procs.insert(child, p);
                    todo.push(child);
                }
            }
        }
    }
    Some(procs)
}

/// The descriptor links (`pipe:[1234]`) that mark a command's pipes.
pub(crate) fn fd_link(fd: i32) -> Option<String> {
    let link = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    Some(link.to_string_lossy().into_owned())
}

/// Makes this process a child subreaper, so orphans below it stay below it.
pub(crate) fn become_subreaper() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    }
    Ok(())
}

/// Whether `pid` carries one of `markers` in its environment or holds one
/// of `pipes` open: a trace of the command that set or made them.
fn has_trace<'a>(pid: i32, mut markers: impl Iterator<Item = &'a [u8]>, pipes: &[&str]) -> bool {
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let marked = markers.any(|m| environ.split_inclusive(|b| *b == 0).any(|var| var == m));
    marked
        || fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.filter_map(Result::ok).any(|fd| {
                fs::read_link(fd.path()).is_ok_and(|l| pipes.iter().any(|p| l.as_os_str() == *p))
            })
        })
}

/// One command's processes, as far as they can be told apart.
#[derive(Debug)]
pub(crate) struct Tree {
    /// Its entry in [`RUNNING`].
    id: u64,
    me: i32,
    main: i32,
    main_start: u64,
    /// `SOCKETSERVER_COMMAND=<id>\0`, as it appears in `/proc/PID/environ`.
    marker: Vec<u8>,
    /// The command's pipes, as `/proc/PID/fd/N` links name them.
    pipes: Vec<String>,
    /// Every process seen as this command's: pid and start time.
    known: HashMap<i32, u64>,
    /// Search only below this process (it is a subreaper).
    below_me: bool,
    /// Kill the server's unclaimed orphans in every scan and at the end.
    sweep: bool,
    /// Processes still found after the main process was reaped: killed.
    pub(crate) stragglers: HashSet<i32>,
}

impl Tree {
    /// The tree of the command whose main process is `main`, entered in
    /// `claims`, which must have been held since before `main` was spawned.
    pub(crate) fn new(
        claims: &mut Claims,
        main: i32,
        marker: &str,
        pipes: Vec<String>,
        below_me: bool,
        sweep: bool,
    ) -> Tree {
        let main_start = stat(main).map_or(0, |p| p.start);
        let marker = format!("{MARKER_ENV}={marker}\0").into_bytes();
        let known = HashMap::from([(main, main_start)]);
        let id = claims.next;
        claims.next += 1;
        claims.by_id.push((
            id,
            Claim {
                main: (main, main_start),
                marker: marker.clone(),
                pipes: pipes.clone(),
                known: known.clone(),
            },
        ));
        Tree {
            id,
            me: rustix::process::getpid().as_raw_nonzero().get(),
            main,
            main_start,
            marker,
            pipes,
            known,
            below_me,
            sweep: sweep && below_me,
            stragglers: HashSet::new(),
        }
    }

    fn carries_marker(&self, pid: i32) -> bool {
        let pipes: Vec<&str> = self.pipes.iter().map(String::as_str).collect();
        has_trace(pid, std::iter::once(self.marker.as_slice()), &pipes)
    }

    /// Takes this command out of the registry: what is left of it is no
    /// longer claimed by anyone.
    fn release(&self) {
        claims().by_id.retain(|(id, _)| *id != self.id);
    }

    /// Finds the command's processes now, remembering each one seen.
    fn scan(&mut self) -> Vec<(i32, Proc)> {
        // Held from before the look at /proc, as a sweep holds it: another
        // command's process between its fork and its exec still holds a
        // copy of this command's pipes, and must not be taken for this
        // command's (its spawn holds the registry until it is claimed).
        let mut registry = claims();
        let procs = match self.below_me {
            true => subtree(self.me).unwrap_or_else(snapshot),
            false => snapshot(),
        };
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for (&pid, p) in &procs {
            children.entry(p.ppid).or_default().push(pid);
        }
        let below = |roots: Vec<i32>| {
            let mut seen = HashSet::new();
            let mut todo = roots;
            while let Some(pid) = todo.pop() {
                if seen.insert(pid) {
                    todo.extend(children.get(&pid).into_iter().flatten().copied());
                }
            }
            seen
        };
        let mut roots: Vec<i32> = procs
            .iter()
            .filter(|(pid, p)| self.known.get(pid) == Some(&p.start))
            .map(|(pid, _)| *pid)
            .collect();
        // Adopted orphans that were never seen below the command: only
        // those started after it, and (as a subreaper) only below us.
        let searched = if self.below_me {
            below(vec![self.me])
        } else {
            procs.keys().copied().collect()
        };
        let mine = below(roots.clone());
        roots.extend(searched.iter().copied().filter(|pid| {
            *pid != self.me
                && !mine.contains(pid)
                && procs[pid].start >= self.main_start
                && self.carries_marker(*pid)
        }));
        // Still in the command's process group (which cannot change hands
        // while it has a member): a zombie adopted by us, for one.
        roots.extend(searched.iter().copied().filter(|pid| {
            *pid != self.me && procs[pid].pgrp == self.main && procs[pid].start >= self.main_start
        }));
        let found: Vec<(i32, Proc)> = below(roots)
            .into_iter()
            .filter(|pid| *pid != self.me)
            .filter_map(|pid| Some((pid, *procs.get(&pid)?)))
            .collect();
        for (pid, p) in &found {
            self.known.insert(*pid, p.start);
        }
        if let Some((_, claim)) = registry.by_id.iter_mut().find(|(id, _)| *id == self.id) {
            claim.known.clone_from(&self.known);
        }
        found
    }

    /// Remembers who is below the command now (called while it runs), and
    /// kills the server's unclaimed orphans if told to.
    pub(crate) fn watch(&mut self) {
        self.scan();
        if self.sweep {
            sweep_once();
        }
    }

    /// Sends SIGKILL to every process of the command still alive, and
    /// reaps those that are zombies and ours to reap. `main_reaped` says
    /// the main process is gone (its pid must not be touched again).
    /// Returns how many of the command's processes remain.
    pub(crate) fn kill_all(&mut self, main_reaped: bool) -> usize {
        let found = self.scan();
        let mut left = 0;
        for (pid, p) in found {
            if pid == self.main {
                if !main_reaped {
                    signal(pid, p.start);
                    left += 1;
                }
                continue;
            }
            if main_reaped {
                self.stragglers.insert(pid);
            }
            if !p.zombie {
                signal(pid, p.start);
                left += 1;
            } else if p.ppid == self.me {
                // (A zombie adopted elsewhere is dead and holds nothing:
                // its new parent reaps it.)
                left += 1;
                // Adopted by us and dead: reap it, or it stays a zombie.
                if let Some(pid) = Pid::from_raw(pid) {
                    let _ =
                        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
                }
            }
        }
        left
    }

    /// Kills and reaps until none of the command's processes is left (the
    /// main process is reaped by its owner), or [`GIVE_UP`] passes.
    pub(crate) fn end_all(&mut self, main_reaped: bool) -> usize {
        let until = Instant::now() + GIVE_UP;
        let mut pause = Duration::from_micros(100);
        loop {
            let left = self.kill_all(main_reaped);
            if left == 0 || Instant::now() >= until {
                if main_reaped {
                    self.release();
                    if self.sweep {
                        sweep();
                    }
                }
                return left;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.release();
    }
}

/// Kills every unclaimed orphan of the server and everything below it,
/// and reaps every zombie child no command's thread waits on, until none
/// is left or [`GIVE_UP`] passes. Returns how many were still there.
pub(crate) fn sweep() -> usize {
    let until = Instant::now() + GIVE_UP;
    let mut pause = Duration::from_micros(100);
    loop {
        let left = sweep_once();
        if left == 0 || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// One pass of [`sweep`]: how many unclaimed orphans were alive (and sent
/// SIGKILL, with everything below them).
///
/// A child of the server is left alone when it is in the server's own
/// process group (the embedding program's, as `std::process::Command`
/// makes them), when it is a running command's main process (its thread
/// reaps it), or when a running command claims it. A zombie otherwise is
/// reaped; anything else is an escapee.
fn sweep_once() -> usize {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{WaitOptions, getpgrp, getpid, waitpid};
        // Held from before the look at /proc: no main process can be
        // spawned and not yet claimed while this pass decides.
        let running = claims();
        let me = getpid().as_raw_nonzero().get();
        let own_group = getpgrp().as_raw_nonzero().get();
        let procs = subtree(me).unwrap_or_else(snapshot);
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for (&pid, p) in &procs {
            children.entry(p.ppid).or_default().push(pid);
        }
        let claims: Vec<&Claim> = running.by_id.iter().map(|(_, c)| c).collect();
        let pipes: Vec<&str> = claims
            .iter()
            .flat_map(|c| c.pipes.iter().map(String::as_str))
            .collect();
        let mut left = 0;
        for &pid in children.get(&me).into_iter().flatten() {
            let p = procs[&pid];
            if p.pgrp == own_group || claims.iter().any(|c| c.main == (pid, p.start)) {
                continue;
            }
            if p.zombie {
                // Dead, and nobody else waits for it: reap it, or it
                // stays a zombie of the server for good.
                if let Some(id) = Pid::from_raw(pid) {
                    let _ = waitpid(Some(id), WaitOptions::NOHANG);
                }
                continue;
            }
            let claimed = claims
                .iter()
                .any(|c| c.known.get(&pid) == Some(&p.start) || p.pgrp == c.main.0)
                || has_trace(pid, claims.iter().map(|c| c.marker.as_slice()), &pipes);
            if claimed {
                continue;
            }
            left += 1;
            // Everything below it too, at once: killing only the top
            // would leave its children to fork on until the next pass.
            let mut todo = vec![pid];
            while let Some(pid) = todo.pop() {
                if let Some(p) = procs.get(&pid) {
                    if !p.zombie {
                        signal(pid, p.start);
                    }
                }
                todo.extend(children.get(&pid).into_iter().flatten().copied());
            }
        }
        left
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// SIGKILL to exactly the process `pid` that started at `start`: through a
/// pidfd, checked after opening, so a pid reused since the scan is never
/// hit. Where pidfds are missing (Linux < 5.3), a plain kill after the check.
fn signal(pid: i32, start: u64) {
    let Some(id) = Pid::from_raw(pid) else {
        return;
    };
    #[cfg(target_os = "linux")]
    if let Ok(fd) = rustix::process::pidfd_open(id, rustix::process::PidfdFlags::empty()) {
        if stat(pid).is_some_and(|p| p.start == start) {
            let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
        }
        return;
    }
    if stat(pid).is_some_and(|p| p.start == start) {
        let _ = rustix::process::kill_process(id, Signal::KILL);
    }
}

/// A marker no other command of any server on this machine shares.
pub(crate) fn new_marker() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        // Uniqueness, not secrecy, is what matters here.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes[..12].copy_from_slice(&t.to_le_bytes()[..12]);
    }
    let mut id = format!("{}-", std::process::id());
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line = "42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let p = parse_stat(line).unwrap();
        assert_eq!((p.ppid, p.pgrp, p.start, p.zombie), (7, 42, 12345, false));
        let own = stat(std::process::id() as i32).unwrap();
        assert!(own.start > 0);
        assert!(parse_stat("garbage").is_none());
    }
}
