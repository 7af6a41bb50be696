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

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::FileError;

/// What every temporary upload's name starts with.
pub(crate) const TEMP_PREFIX: &str = ".socketserver-";
/// What every temporary upload's name ends with.
pub(crate) const TEMP_SUFFIX: &str = ".upload";
/// How deep [`remove_stale`] looks below the root.
const MAX_DEPTH: usize = 64;

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
    path: PathBuf,
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
        let mut tries = 0;
        let (path, file) = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}-{n}{TEMP_SUFFIX}", std::process::id());
            let path = dest.with_file_name(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                Err(e) => return Err(e),
            }
        };
        let temp = TempFile {
            path,
            file,
            kept: false,
        };
        lock(&temp.file)?;
        Ok(temp)
    }

    /// Gives the upload its name: replacing what is there if `overwrite`,
    /// else failing if something took the name since the request (a hard
    /// link cannot replace, so the check and the naming are one step).
    pub(crate) fn persist(
        mut self,
        dest: &Path,
        overwrite: bool,
        name: &str,
    ) -> Result<(), FileError> {
        if overwrite {
            fs::rename(&self.path, dest)?;
            self.kept = true;
        } else {
            match fs::hard_link(&self.path, dest) {
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
            let _ = fs::remove_file(&self.path);
        }
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

/// Removes the stale temporary uploads under `root`: files named exactly
/// as [`TempFile`] names them, not symlinks, and not locked by a live
/// upload. Directories are walked without following symlinks, at most
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
                && entry.file_name().to_str().is_some_and(is_temp_name)
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
