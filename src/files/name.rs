//! Names confined to the served root: every name a client sends is checked
//! here, as text first and then on disk, before any file is opened.
//!
//! Text rules refuse what can never be inside the root (`..`, absolute
//! paths, NUL); the disk check resolves symlinks and refuses a path that
//! ends up outside. An upload then holds its directory open (Unix) and
//! makes, names and removes its file in it, so swapping a directory for a
//! symlink during the upload moves nothing outside. Someone who can write
//! inside the root could still swap one in the instant between check and
//! open: the root is for files the server's clients put there, not for
//! untrusted local users.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Entry, FileError, MAX_LISTING, MAX_NAME, NAME_MAX};
use crate::text::shows_safely;

/// The served directory, canonical, so that containment is a prefix test.
#[derive(Debug)]
pub(crate) struct Root(PathBuf);

impl Root {
    pub(crate) fn new(root: &Path) -> io::Result<Root> {
        let canonical = root.canonicalize()?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Root(canonical))
    }

    /// The root's canonical path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// The path of `name` under the root, by the text rules alone.
    fn join(&self, name: &str) -> Result<PathBuf, FileError> {
        let refuse = |why: &str| FileError::BadName {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        if name.len() > MAX_NAME {
            // Echo only the start: the error frame stays small.
            let mut end = 64;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            return Err(FileError::BadName {
                name: format!("{}…", &name[..end]),
                why: format!("{} bytes, longer than {MAX_NAME}", name.len()),
            });
        }
        if name.contains('\0') {
            return Err(refuse("contains a NUL byte"));
        }
        if let Some(c) = name.chars().find(|&c| !shows_safely(c)) {
            return Err(refuse(&format!(
                "contains {}, which cannot be shown safely",
                c.escape_unicode()
            )));
        }
        if name.contains('\\') {
            return Err(refuse("contains a backslash; separate with `/`"));
        }
        if name.starts_with('/') {
            return Err(refuse("absolute paths are refused"));
        }
        let mut path = self.0.clone();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            match part {
                ".." => return Err(refuse("`..` leaves the root")),
                "." => return Err(refuse("`.` is not a name")),
                _ if part.starts_with('.') => {
                    return Err(refuse("hidden names (leading `.`) are refused"));
                }
                // Refused here, not found by the filesystem after the
                // whole upload has arrived.
                _ if part.len() > NAME_MAX => {
                    return Err(refuse(&format!(
                        "a component of {} bytes, longer than the {NAME_MAX} a file name may have",
                        part.len()
                    )));
                }
                _ => path.push(part),
            }
        }
        Ok(path)
    }

    /// Whether `path`, symlinks resolved, is inside the root.
    fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.0)
    }

    fn escapes(name: &str) -> FileError {
        FileError::BadName {
            name: name.to_owned(),
            why: "leads out of the root through a symlink".to_owned(),
        }
    }

    /// An existing regular file to read.
    pub(crate) fn existing_file(&self, name: &str) -> Result<PathBuf, FileError> {
        let path = self.join(name)?;
        let real = path
            .canonicalize()
            .map_err(|_| FileError::NotFound(name.to_owned()))?;
        if !self.contains(&real) {
            return Err(Root::escapes(name));
        }
        if !real.is_file() {
            return Err(FileError::NotFound(name.to_owned()));
        }
        Ok(real)
    }

    /// Where an upload of `name` goes: its directory must exist inside the
    /// root, and the name must not be a symlink, a directory, or (unless
    /// `overwrite`) an existing file.
    pub(crate) fn new_file(&self, name: &str, overwrite: bool) -> Result<PathBuf, FileError> {
        let path = self.join(name)?;
        let (Some(parent), Some(file_name)) = (path.parent(), path.file_name()) else {
            return Err(FileError::BadName {
                name: name.to_owned(),
                why: "names no file".to_owned(),
            });
        };
        let parent = parent
            .canonicalize()
            .map_err(|_| FileError::NotFound(name.to_owned()))?;
        if !self.contains(&parent) {
            return Err(Root::escapes(name));
        }
        if !parent.is_dir() {
            // `file/x`: refused now, not when the temporary file is made.
            return Err(FileError::NotFound(name.to_owned()));
        }
        let path = parent.join(file_name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => Err(FileError::BadName {
                name: name.to_owned(),
                why: "is a symlink; uploads never write through one".to_owned(),
            }),
            Ok(meta) if meta.is_dir() => Err(FileError::BadName {
                name: name.to_owned(),
                why: "is a directory".to_owned(),
            }),
            Ok(_) if !overwrite => Err(FileError::AlreadyExists(name.to_owned())),
            _ => Ok(path),
        }
    }

    /// The entries of directory `name` ("" for the root), sorted, hidden
    /// names, names no client could ask for and symlinks out of the root
    /// left out: the first [`MAX_LISTING`] found, and whether there were
    /// more.
    pub(crate) fn list(&self, name: &str) -> Result<(Vec<Entry>, bool), FileError> {
        let dir = self
            .join(name)?
            .canonicalize()
            .map_err(|_| FileError::NotFound(name.to_owned()))?;
        if !self.contains(&dir) {
            return Err(Root::escapes(name));
        }
        let (mut entries, mut more) = (Vec::new(), false);
        for entry in fs::read_dir(&dir).map_err(|_| FileError::NotFound(name.to_owned()))? {
            let entry = entry?;
            let Some(entry_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue; // not UTF-8: no client could ask for it by name
            };
            // Only names a client could ask for: not hidden (our upload
            // temporaries among them), nothing unsafe to show. Checked
            // before anything costs a system call.
            if entry_name.starts_with('.')
                || entry_name.contains('\\')
                || !entry_name.chars().all(shows_safely)
            {
                continue;
            }
            let Ok(real) = entry.path().canonicalize() else {
                continue; // a dangling symlink, or gone since read_dir
            };
            if !self.contains(&real) {
                continue;
            }
            if entries.len() == MAX_LISTING {
                more = true;
                break;
            }
            let Ok(meta) = fs::metadata(&real) else {
                continue; // gone since read_dir: not an error for the listing
            };
            entries.push(Entry {
                name: entry_name,
                size: if meta.is_dir() { 0 } else { meta.len() },
                dir: meta.is_dir(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((entries, more))
    }
}
