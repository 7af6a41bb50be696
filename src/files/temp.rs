//! Uploads in progress: each is written to a hidden temporary file beside
//! its destination and renamed only once verified.
//!
//! The temporary name is `.socketserver-PID-N.upload`: its length does not
//! depend on the destination's (a 255-byte name uploads as well as a short
//! one) and it is recognizable, so a server can remove what an earlier
//! one, killed mid-upload, left behind. While an upload runs, its file
//! holds an exclusive `flock`; the kernel drops the lock when the process
//! dies, so a temporary file nobody holds a lock on is stale, and one that
//! is locked belongs to a live server sharing the root and is left alone.
//! An upload makes its file a moment before it locks it; a server starting
//! in that moment would find it unlocked, so a file is removed only when
//! the process named in it is not running either. (Servers in different
//! pid namespaces, containers sharing a volume, cannot see each other's
//! processes: there the moment between make and lock is still open, and
//! an upload caught in it fails with an I/O error, never with a wrong file.)

use std::ffi::OsStr;
#[cfg(not(unix))]
use std::fs::OpenOptions;
use std::fs::{self, File};
use std::io;
use std::path::Path;
#[cfg(not(unix))]
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::FileError;

/// What every temporary upload's name starts with.
pub(crate) const TEMP_PREFIX: &str = ".socketserver-";
/// What every temporary upload's name ends with.
pub(crate) const TEMP_SUFFIX: &str = ".upload";
/// How deep [`remove_stale`] looks below the root: as deep as an upload
/// can go, a [`MAX_NAME`](super::MAX_NAME) name of one-letter
/// directories (`d/d/d/…`).
const MAX_DEPTH: usize = super::MAX_NAME / 2;

/// Whether `name` is exactly a temporary upload's name: the prefix,
/// digits, `-`, digits, the suffix. Nothing else is ever removed.
pub(crate) fn is_temp_name(name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    matches!(middle.split_once('-'), Some((pid, n)) if digits(pid) && digits(n))
}

/// An upload in progress, removed unless persisted.
pub(crate) struct TempFile {
    /// The directory it is in, held open from the start: the upload is
    /// named in the directory that was checked, even if the path to it
    /// now leads elsewhere (a directory swapped for a symlink mid-upload).
    dir: Dir,
    name: String,
    pub(crate) file: File,
    kept: bool,
}

impl TempFile {
    /// Creates a temporary file beside `dest` (so the rename stays on one
    /// filesystem), locked. Its number is the process's next, so that
    /// servers in one process sharing a root never meet; a name taken all
    /// the same (a dead process had this pid) is skipped.
    pub(crate) fn beside(dest: &Path) -> io::Result<TempFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = Dir::open(dest.parent().unwrap_or(dest))?;
        let mut tries = 0;
        let (name, file) = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}-{n}{TEMP_SUFFIX}", std::process::id());
            match dir.create_new(&name) {
                Ok(file) => break (name, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        let temp = TempFile {
            dir,
            name,
            file,
            kept: false,
        };
        lock(&temp.file)?;
        Ok(temp)
    }

    /// Gives the upload its name, in the directory it was made in:
    /// replacing what is there if `overwrite`, else failing if something
    /// took the name since the request (a hard link cannot replace, so
    /// the check and the naming are one step).
    pub(crate) fn persist(
        mut self,
        dest: &Path,
        overwrite: bool,
        name: &str,
    ) -> Result<(), FileError> {
        let Some(dest_name) = dest.file_name() else {
            return Err(FileError::NotFound(name.to_owned()));
        };
        if overwrite {
            self.dir.rename(&self.name, dest_name)?;
            self.kept = true;
        } else {
            match self.dir.link(&self.name, dest_name) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(FileError::AlreadyExists(name.to_owned()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = self.dir.remove(&self.name);
        }
    }
}

/// A directory that uploads are named in: an open descriptor on Unix, so
/// that every step after the check happens in the directory checked.
#[cfg(unix)]
struct Dir(std::os::fd::OwnedFd);

#[cfg(unix)]
impl Dir {
    fn open(path: &Path) -> io::Result<Dir> {
        use rustix::fs::{CWD, Mode, OFlags, openat};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(Dir(openat(CWD, path, flags, Mode::empty())?))
    }

    /// A new file, never through a symlink or over an existing name.
    fn create_new(&self, name: &str) -> io::Result<File> {
        use rustix::fs::{Mode, OFlags, openat};
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // As `File::create`: 0o666, less the umask.
        let fd = openat(&self.0, name, flags, Mode::from_raw_mode(0o666))?;
        Ok(File::from(fd))
    }

    fn rename(&self, from: &str, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.0, from, &self.0, to)?)
    }

    fn link(&self, from: &str, to: &OsStr) -> io::Result<()> {
        use rustix::fs::{AtFlags, linkat};
        Ok(linkat(&self.0, from, &self.0, to, AtFlags::empty())?)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        use rustix::fs::{AtFlags, unlinkat};
        Ok(unlinkat(&self.0, name, AtFlags::empty())?)
    }
}

/// Elsewhere, the directory's path.
#[cfg(not(unix))]
struct Dir(PathBuf);

#[cfg(not(unix))]
impl Dir {
    fn open(path: &Path) -> io::Result<Dir> {
        Ok(Dir(path.to_path_buf()))
    }

    fn create_new(&self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.0.join(name))
    }

    fn rename(&self, from: &str, to: &OsStr) -> io::Result<()> {
        fs::rename(self.0.join(from), self.0.join(to))
    }

    fn link(&self, from: &str, to: &OsStr) -> io::Result<()> {
        fs::hard_link(self.0.join(from), self.0.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.0.join(name))
    }
}

/// Takes the exclusive lock that marks an upload as live, without waiting.
#[cfg(unix)]
fn lock(file: &File) -> io::Result<()> {
    use rustix::fs::{FlockOperation, flock};
    flock(file, FlockOperation::NonBlockingLockExclusive).map_err(io::Error::from)
}

#[cfg(not(unix))]
fn lock(_: &File) -> io::Result<()> {
    Ok(())
}

/// Whether the process whose pid a temporary upload's name carries may
/// still be running. An upload locks its file just after making it; in
/// between, only this tells a live server's file from a dead one's. A pid
/// that is running is taken as the maker (if it was reused, the file
/// stays until a later start); one that cannot be a pid is not running.
#[cfg(unix)]
fn maker_may_run(name: &str) -> bool {
    use rustix::io::Errno;
    use rustix::process::{Pid, test_kill_process};
    let pid = name[TEMP_PREFIX.len()..].split('-').next().unwrap_or("");
    let Some(pid) = pid.parse().ok().and_then(Pid::from_raw) else {
        return false;
    };
    // EPERM: it runs, as another user.
    test_kill_process(pid) != Err(Errno::SRCH)
}

#[cfg(not(unix))]
fn maker_may_run(_: &str) -> bool {
    true
}

/// Removes the stale temporary uploads under `root`: files named exactly
/// as [`TempFile`] names them, not symlinks, made by a process no longer
/// running, and not locked by a live upload. Directories are walked without following symlinks, at most
/// [`MAX_DEPTH`] deep. Returns how many were removed; a file or directory
/// that cannot be read is skipped.
///
/// Without `flock` (not Unix) nothing can tell a dead server's file from a
/// live one's, so nothing is removed.
pub(crate) fn remove_stale(root: &Path) -> usize {
    if cfg!(not(unix)) {
        return 0;
    }
    let mut removed = 0;
    let mut dirs = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < MAX_DEPTH {
                dirs.push((entry.path(), depth + 1));
            } else if kind.is_file()
                && entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| is_temp_name(name) && !maker_may_run(name))
                && File::open(entry.path()).is_ok_and(|f| lock(&f).is_ok())
                && fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::is_temp_name;

    #[test]
    fn only_our_exact_pattern_is_a_temp_name() {
        assert!(is_temp_name(".socketserver-123-0.upload"));
        assert!(is_temp_name(
            ".socketserver-4294967295-18446744073709551615.upload"
        ));
        for name in [
            "socketserver-123-0.upload",
            ".socketserver-123-0.upload.bak",
            ".socketserver-123.upload",
            ".socketserver--0.upload",
            ".socketserver-12a-0.upload",
            ".socketserver-1-2-3.upload",
            ".socketserver-123-0.part",
            ".notes.txt.123-0.part",
            ".socketserver-.upload",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
    }
}
