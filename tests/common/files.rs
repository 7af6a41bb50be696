//! Helpers for the file service tests (`files`, `files_names`, `files_abuse`).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

use socketserver::files::{self, FileConfig, FileError};
use socketserver::frame::{Header, read_frame, write_frame_parts};

/// A fresh directory with `root/` (served) and `local/` (the client's),
/// removed when dropped.
pub struct Dirs {
    pub top: PathBuf,
}

impl Dirs {
    pub fn new(test: &str) -> Dirs {
        let top = std::env::temp_dir().join(format!("socketserver-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        fs::create_dir_all(top.join("root")).unwrap();
        fs::create_dir_all(top.join("local")).unwrap();
        Dirs { top }
    }
    pub fn root(&self) -> PathBuf {
        self.top.join("root")
    }
    pub fn local(&self, name: &str) -> PathBuf {
        self.top.join("local").join(name)
    }
    /// Every entry in the root, hidden ones too, sorted.
    pub fn served(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.top);
    }
}

pub fn serve(config: FileConfig) -> SocketAddr {
    let server = files::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.serve_forever());
    addr
}

/// Bytes that differ at every position and take every value.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8).collect()
}

pub fn none(_: u64, _: u64) {}

/// Every hidden temporary upload under `dir`, however deep.
pub fn temp_uploads(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(temp_uploads(&path));
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".socketserver-") && n.ends_with(".upload"))
        {
            found.push(path);
        }
    }
    found
}

/// Starts an upload of `size` bytes on a raw connection and leaves it
/// waiting for its data once the server has said yes.
pub fn stalled_upload(addr: SocketAddr, name: &str, size: u64) -> TcpStream {
    stalled_upload_on(TcpStream::connect(addr).unwrap(), name, size)
}

/// [`stalled_upload`] on a connection made already (from another source
/// address, say).
pub fn stalled_upload_on(mut raw: TcpStream, name: &str, size: u64) -> TcpStream {
    let put = Header::for_body(b"")
        .with("op", "put")
        .with("name", name)
        .with("size", size);
    write_frame_parts(&mut raw, &put, &[]).unwrap();
    let status = read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(status.header.extra.get("ok"), Some(&true.into()), "{name}");
    raw
}

/// Sends one request on `raw` and reads the reply's header.
pub fn ask(raw: &mut TcpStream, request: Header) -> Header {
    write_frame_parts(raw, &request, &[]).unwrap();
    read_frame(raw).unwrap().expect("a reply").header
}

pub fn kind(reply: &Header) -> &str {
    reply
        .extra
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("ok")
}

/// A chunk frame as an uploader sends it.
pub fn chunk_frame(bytes: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    write_frame_parts(&mut wire, &Header::for_body(bytes), &[bytes]).unwrap();
    wire
}

pub fn end_frame(size: u64, digest: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    let end = Header::for_body(b"")
        .with("end", true)
        .with("size", size)
        .with("digest", digest);
    write_frame_parts(&mut wire, &end, &[]).unwrap();
    wire
}

/// The file names in `dir`, hidden ones too, sorted.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Waits, within 10 s, for exactly one temporary upload under `root` that
/// has grown to `size` bytes (the server wrote what it was sent), and
/// returns the temporary uploads found last.
pub fn one_temp_upload_of(root: &Path, size: u64) -> Vec<PathBuf> {
    let mut temp = Vec::new();
    for _ in 0..1_000 {
        temp = temp_uploads(root);
        if temp.len() == 1 && fs::metadata(&temp[0]).is_ok_and(|m| m.len() == size) {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    temp
}

/// Tries `put` until it is not refused as over the budget (the server
/// gives an ended upload's share back once it has let go of it), within
/// 10 s, and returns the last outcome.
pub fn put_once_budget_frees<T>(
    mut put: impl FnMut() -> Result<T, FileError>,
) -> Result<T, FileError> {
    let mut outcome = put();
    for _ in 0..1_000 {
        if !matches!(outcome, Err(FileError::OverBudget { .. })) {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
        outcome = put();
    }
    outcome
}
