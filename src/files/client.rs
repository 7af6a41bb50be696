//! The file client: one connection, any number of requests, each a status
//! frame back and, for `get` and `put`, a run of chunks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{
    CHUNK, Digest, Entry, FileError, MAX_LISTING_BYTES, NAME_MAX, Version, digest_prefix, field,
    number, receive_chunks, send_chunks,
};
use crate::frame::{FrameError, FrameLimits, Header, read_frame_into, write_frame_parts};

/// How long the client waits for the server to say anything. A resumed
/// `get` of a large file waits while the server hashes the part already
/// sent, about 2 s per GiB.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to a file server.
///
/// Every method takes a progress callback, called with the bytes done and
/// the total as chunks go by (`|_, _| {}` for none). See the
/// [module](super) for an example.
#[derive(Debug)]
pub struct FileClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A directory's entries, as [`FileClient::list`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listing {
    /// The entries, sorted by name.
    pub entries: Vec<Entry>,
    /// Whether the server left entries out: more than
    /// [`MAX_LISTING`](super::MAX_LISTING), or more than
    /// [`MAX_LISTING_BYTES`] encoded.
    pub truncated: bool,
}

/// What a finished `get` or `put` moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The file's size in bytes.
    pub size: u64,
    /// Its digest (see [`file_digest`](super::file_digest)), verified.
    pub digest: String,
    /// Where this transfer started: non-zero when a cut `get` resumed.
    pub resumed_from: u64,
}

impl FileClient {
    /// Connects, with [`CLIENT_TIMEOUT`] on reads and writes.
    ///
    /// # Errors
    ///
    /// The connection cannot be made.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<FileClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        Ok(FileClient {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends a request and reads its status frame.
    fn request(&mut self, request: Header) -> Result<Header, FileError> {
        write_frame_parts(&mut self.stream, &request, &[])?;
        self.read_status()
    }

    /// Reads a status frame: the server's error, or `ok` (with a body, if
    /// any, left in `self.buf`).
    fn read_status(&mut self) -> Result<Header, FileError> {
        // A listing is the only status with a body; the server keeps it
        // within the same bound.
        let limits = FrameLimits::new().max_body_len(MAX_LISTING_BYTES as u64);
        let status = read_frame_into(&mut self.stream, &limits, &mut self.buf)?
            .ok_or(FrameError::Io(io::ErrorKind::UnexpectedEof.into()))?;
        if status.extra.contains_key("error") {
            return Err(FileError::from_wire(&status));
        }
        if status.extra.get("ok") != Some(&Value::Bool(true)) {
            return Err(FileError::Protocol(
                "a reply that is neither ok nor an error".into(),
            ));
        }
        Ok(status)
    }

    /// Lists directory `dir` of the server's root (`""` for the root):
    /// its entries, sorted. [`list`](FileClient::list) also says whether
    /// the server left some out.
    ///
    /// # Errors
    ///
    /// [`FileError::NotFound`] or [`FileError::BadName`] for a directory
    /// that is not there or not allowed; I/O and frame errors.
    pub fn ls(&mut self, dir: &str) -> Result<Vec<Entry>, FileError> {
        Ok(self.list(dir)?.entries)
    }

    /// Lists directory `dir` of the server's root, saying whether the
    /// listing was cut short: past [`MAX_LISTING`](super::MAX_LISTING)
    /// entries, or [`MAX_LISTING_BYTES`] encoded.
    ///
    /// # Errors
    ///
    /// As [`ls`](FileClient::ls).
    pub fn list(&mut self, dir: &str) -> Result<Listing, FileError> {
        let status = self.request(Header::for_body(b"").with("op", "ls").with("name", dir))?;
        let entries = serde_json::from_slice(&self.buf)
            .map_err(|e| FileError::Protocol(format!("a listing that is not one: {e}")))?;
        Ok(Listing {
            entries,
            truncated: status.extra.get("truncated") == Some(&Value::Bool(true)),
        })
    }

    /// Downloads `name` to `dest`, resuming from `DEST.part` if an earlier
    /// `get` was cut. Refuses to replace an existing `dest` unless
    /// `overwrite`.
    ///
    /// # Errors
    ///
    /// The server's refusal ([`FileError::NotFound`], [`FileError::BadName`]);
    /// [`FileError::AlreadyExists`] for `dest`. A cut connection keeps
    /// `DEST.part` for the next `get`; a corrupted chunk or a digest that
    /// does not match deletes it. A file the server saw change while it
    /// sent it ends with [`FileError::Changed`], and `DEST.part` is deleted:
    /// a torn file never gets `dest`'s name.
    pub fn get(
        &mut self,
        name: &str,
        dest: &Path,
        overwrite: bool,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Transfer, FileError> {
        if !overwrite && fs::symlink_metadata(dest).is_ok() {
            return Err(FileError::AlreadyExists(dest.display().to_string()));
        }
        let part = part_path(dest);
        // Whole chunks only: a chunk cut mid-write is fetched again.
        let have = fs::metadata(&part).map_or(0, |m| m.len());
        let mut offset = have - have % CHUNK as u64;
        let request = |offset: u64| {
            Header::for_body(b"")
                .with("op", "get")
                .with("name", name)
                .with("offset", offset)
        };
        let status = match self.request(request(offset)) {
            // The file shrank since the cut: start over.
            Err(FileError::BadOffset { .. }) if offset > 0 => {
                offset = 0;
                self.request(request(0))
            }
            other => other,
        }?;
        // Only now, with the server's yes, is there anything to keep.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)?;
        file.set_len(offset)?;
        file.seek(SeekFrom::Start(0))?;
        let digest = digest_prefix(&mut file, offset)?;
        let size = number(&status, "size")?;
        if size < offset {
            return Err(FileError::Protocol(
                "a size before the resume offset".into(),
            ));
        }
        progress(offset, size);
        let received = receive_chunks(
            &mut self.stream,
            &mut file,
            size - offset,
            digest,
            &mut |n| progress(offset + n, size),
        );
        drop(file);
        match received {
            Ok((announced, actual)) if announced == actual => {
                fs::rename(&part, dest)?;
                Ok(Transfer {
                    size,
                    digest: actual,
                    resumed_from: offset,
                })
            }
            Ok((announced, actual)) => {
                let _ = fs::remove_file(&part);
                Err(FileError::DigestMismatch {
                    expected: announced,
                    actual,
                })
            }
            // Cut: what arrived is verified; keep it for the next try.
            Err(e @ (FileError::Io(_) | FileError::Frame(FrameError::Truncated { .. }))) => Err(e),
            Err(e) => {
                let _ = fs::remove_file(&part);
                Err(e)
            }
        }
    }

    /// Uploads `source` as `name`. Refuses to replace an existing file on
    /// the server unless `overwrite`.
    ///
    /// # Errors
    ///
    /// The server's refusal: [`FileError::AlreadyExists`],
    /// [`FileError::TooLarge`], [`FileError::ReadOnly`],
    /// [`FileError::BadName`]; [`FileError::DigestMismatch`] or a frame
    /// error if the bytes were damaged on the way (the server keeps
    /// nothing); [`FileError::Changed`] if `source` changed while it was
    /// sent (the connection is then closed, so the server keeps nothing:
    /// connect again); I/O errors.
    pub fn put(
        &mut self,
        source: &Path,
        name: &str,
        overwrite: bool,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Transfer, FileError> {
        let file = File::open(source)?;
        let version = Version::of(&file)?;
        let size = version.len;
        self.request(
            Header::for_body(b"")
                .with("op", "put")
                .with("name", name)
                .with("size", size)
                .with("overwrite", overwrite),
        )?;
        progress(0, size);
        let local = source.display().to_string();
        let sent = send_chunks(
            &mut self.stream,
            &mut &file,
            size,
            Digest::new(),
            &mut || version.still(&file, &local),
            &mut |n| progress(n, size),
        );
        if let Err(e @ FileError::Changed(_)) = sent {
            // The server waits for the rest of the chunks: cut the
            // connection, so it keeps nothing of a file that never existed.
            let _ = self.stream.shutdown(Shutdown::Both);
            return Err(e);
        }
        sent?;
        // The server's verdict, once it has checked the digest.
        let done = self.read_status()?;
        let digest = field(&done, "digest")?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(Transfer {
            size,
            digest,
            resumed_from: 0,
        })
    }
}

/// Where a `get` of `dest` keeps what has arrived: `DEST.part`, or, when
/// that would be longer than a file name may be, the start of the name,
/// `~`, a hash of the whole name, and `.part` (still one name per `dest`,
/// so a resume finds it).
pub(super) fn part_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default();
    if name.len() + ".part".len() <= NAME_MAX {
        let mut part = name.to_os_string();
        part.push(".part");
        return dest.with_file_name(part);
    }
    let hash = format!("{:x}", md5::compute(name.as_encoded_bytes()));
    let lossy = name.to_string_lossy();
    let mut keep = NAME_MAX - "~.part".len() - 16;
    while !lossy.is_char_boundary(keep) {
        keep -= 1;
    }
    dest.with_file_name(format!("{}~{}.part", &lossy[..keep], &hash[..16]))
}

#[cfg(test)]
mod tests {
    use super::part_path;
    use crate::files::NAME_MAX;
    use std::path::Path;

    #[test]
    fn a_part_name_never_outgrows_a_file_name() {
        assert_eq!(part_path(Path::new("/d/a.iso")), Path::new("/d/a.iso.part"));
        let fits = "a".repeat(NAME_MAX - 5);
        let part = part_path(&Path::new("/d").join(&fits));
        assert_eq!(part.file_name().unwrap().len(), NAME_MAX);
        for long in [
            "b".repeat(NAME_MAX),
            "你".repeat(85),
            "c".repeat(NAME_MAX - 4),
        ] {
            let part = part_path(&Path::new("/d").join(&long));
            let name = part.file_name().unwrap().to_str().unwrap();
            assert!(name.len() <= NAME_MAX && name.ends_with(".part"), "{name}");
            assert_eq!(part, part_path(&Path::new("/d").join(&long)), "stable");
        }
        assert_ne!(
            part_path(&Path::new("/d").join("x".repeat(300))),
            part_path(&Path::new("/d").join(format!("{}y", "x".repeat(299))))
        );
    }
}
