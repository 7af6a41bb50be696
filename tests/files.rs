//! The file service: round trips, resume after a cut, confinement, damage
//! detected, no overwrite unless asked, limits, and clients side by side.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

use socketserver::files::{self, CHUNK, FileClient, FileConfig, FileError, MAX_NAME, file_digest};
use socketserver::frame::{FrameError, Header, read_frame, write_frame_parts};

/// A fresh directory with `root/` (served) and `local/` (the client's),
/// removed when dropped.
struct Dirs {
    top: PathBuf,
}

impl Dirs {
    fn new(test: &str) -> Dirs {
        let top = std::env::temp_dir().join(format!("socketserver-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        fs::create_dir_all(top.join("root")).unwrap();
        fs::create_dir_all(top.join("local")).unwrap();
        Dirs { top }
    }
    fn root(&self) -> PathBuf {
        self.top.join("root")
    }
    fn local(&self, name: &str) -> PathBuf {
        self.top.join("local").join(name)
    }
    /// Every entry in the root, hidden ones too, sorted.
    fn served(&self) -> Vec<String> {
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

fn serve(config: FileConfig) -> SocketAddr {
    let server = files::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.serve_forever());
    addr
}

/// Bytes that differ at every position and take every value.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8).collect()
}

fn none(_: u64, _: u64) {}

#[test]
fn empty_small_binary_and_100_mib_files_go_both_ways_intact() {
    let dirs = Dirs::new("round-trip");
    let addr = serve(FileConfig::new(dirs.root()));
    let mut client = FileClient::connect(addr).unwrap();
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        ("small.txt", "你好,files\n".as_bytes().to_vec()),
        ("binary", (0..=255).collect()),
        ("one-chunk", pattern(CHUNK)),
        ("hundred-mib", pattern(100 << 20)),
    ];
    for (name, bytes) in &cases {
        let source = dirs.local(name);
        fs::write(&source, bytes).unwrap();
        let up = client.put(&source, name, false, none).unwrap();
        assert_eq!(up.size, bytes.len() as u64);
        assert_eq!(up.digest, file_digest(&source).unwrap());
        assert_eq!(fs::read(dirs.root().join(name)).unwrap(), *bytes, "{name}");

        let copy = dirs.local(&format!("{name}.copy"));
        let down = client.get(name, &copy, false, none).unwrap();
        assert_eq!((down.size, down.resumed_from), (bytes.len() as u64, 0));
        assert_eq!(down.digest, up.digest);
        assert_eq!(fs::read(&copy).unwrap(), *bytes, "{name}");
    }
    let listing = client.ls("").unwrap();
    let names: Vec<&str> = listing.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["binary", "empty", "hundred-mib", "one-chunk", "small.txt"]
    );
    assert_eq!(listing[2].size, 100 << 20);
}

/// What a [`proxy`] does to the bytes from the server to the client.
#[derive(Clone, Copy)]
enum Fault {
    /// Pass this many bytes, then cut both ways.
    CutAfter(u64),
    /// Flip one bit of the byte at this offset.
    FlipAt(u64),
}

/// Relays one connection to `server`, doing `fault` to what the server
/// sends (or, with `upstream`, to what the client sends). The thread ends
/// once both sides have closed.
fn proxy(server: SocketAddr, fault: Fault, upstream: bool) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let relaying = thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server = TcpStream::connect(server).unwrap();
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let (down, up) = if upstream {
            (None, Some(fault))
        } else {
            (Some(fault), None)
        };
        let uploads = thread::spawn(move || relay(c2, s2, up));
        relay(server, client, down);
        let _ = uploads.join();
    });
    (addr, relaying)
}

fn relay(mut from: TcpStream, mut to: TcpStream, fault: Option<Fault>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let piece = &mut buf[..n];
        match fault {
            Some(Fault::FlipAt(at)) if (offset..offset + n as u64).contains(&at) => {
                piece[(at - offset) as usize] ^= 1;
            }
            Some(Fault::CutAfter(limit)) if offset + n as u64 > limit => {
                let _ = to.write_all(&piece[..(limit - offset) as usize]);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
            _ => {}
        }
        if to.write_all(piece).is_err() {
            break;
        }
        offset += n as u64;
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
fn a_cut_download_resumes_where_it_stopped_and_is_verified_whole() {
    let dirs = Dirs::new("resume");
    let addr = serve(FileConfig::new(dirs.root()));
    let bytes = pattern(10 * CHUNK + 12_345);
    fs::write(dirs.root().join("big"), &bytes).unwrap();
    let dest = dirs.local("big");
    let part = dirs.local("big.part");

    // Cut three and a half chunks in.
    let (cut, _) = proxy(
        addr,
        Fault::CutAfter(3 * CHUNK as u64 + CHUNK as u64 / 2),
        false,
    );
    let mut seen = 0;
    let err = FileClient::connect(cut)
        .unwrap()
        .get("big", &dest, false, |n, _| seen = n)
        .unwrap_err();
    assert!(
        matches!(
            err,
            FileError::Frame(FrameError::Truncated { .. }) | FileError::Io(_)
        ),
        "{err:?}"
    );
    assert!(!dest.exists(), "no file under the real name");
    assert_eq!(
        fs::metadata(&part).unwrap().len(),
        seen,
        "verified chunks kept"
    );
    assert_eq!(seen, 3 * CHUNK as u64);

    // A torn write: half a chunk more on disk is fetched again.
    let mut torn = fs::OpenOptions::new().append(true).open(&part).unwrap();
    torn.write_all(&[0xee; 1000]).unwrap();
    drop(torn);

    let mut progress = Vec::new();
    let done = FileClient::connect(addr)
        .unwrap()
        .get("big", &dest, false, |n, total| progress.push((n, total)))
        .unwrap();
    assert_eq!(done.resumed_from, 3 * CHUNK as u64);
    assert_eq!(progress[0], (3 * CHUNK as u64, bytes.len() as u64));
    assert_eq!(
        progress.last(),
        Some(&(bytes.len() as u64, bytes.len() as u64))
    );
    assert_eq!(fs::read(&dest).unwrap(), bytes);
    assert!(!part.exists());
}

#[test]
fn a_resume_against_a_changed_file_is_refused_and_not_kept() {
    let dirs = Dirs::new("changed");
    let addr = serve(FileConfig::new(dirs.root()));
    fs::write(dirs.root().join("doc"), pattern(3 * CHUNK)).unwrap();
    let dest = dirs.local("doc");
    // A part from another version of the file: its first chunk differs.
    fs::write(dirs.local("doc.part"), vec![7u8; CHUNK]).unwrap();
    let err = FileClient::connect(addr)
        .unwrap()
        .get("doc", &dest, false, none)
        .unwrap_err();
    assert!(matches!(err, FileError::DigestMismatch { .. }), "{err:?}");
    assert!(!dest.exists() && !dirs.local("doc.part").exists());
    // Run again: a clean download.
    FileClient::connect(addr)
        .unwrap()
        .get("doc", &dest, false, none)
        .unwrap();
    assert_eq!(fs::read(&dest).unwrap(), pattern(3 * CHUNK));
}

#[test]
fn a_corrupted_byte_is_caught_by_md5_and_nothing_is_kept() {
    let dirs = Dirs::new("corrupt");
    let addr = serve(FileConfig::new(dirs.root()));
    let bytes = pattern(3 * CHUNK);
    fs::write(dirs.root().join("data"), &bytes).unwrap();
    fs::write(dirs.local("data"), &bytes).unwrap();

    // Downloading: a byte of the second chunk's body is flipped.
    let dest = dirs.local("data.copy");
    let (damaged, _) = proxy(addr, Fault::FlipAt(CHUNK as u64 + 5_000), false);
    let err = FileClient::connect(damaged)
        .unwrap()
        .get("data", &dest, false, none)
        .unwrap_err();
    assert!(
        matches!(err, FileError::Frame(FrameError::Md5Mismatch { .. })),
        "{err:?}"
    );
    assert!(!dest.exists() && !dirs.local("data.copy.part").exists());

    // Uploading: the server finds it, and keeps nothing, not even its
    // temporary file. (The client may see the server's error, or a reset
    // if it was still sending when the server closed.)
    let (damaged, relaying) = proxy(addr, Fault::FlipAt(2 * CHUNK as u64), true);
    let result =
        FileClient::connect(damaged)
            .unwrap()
            .put(&dirs.local("data"), "uploaded", false, none);
    assert!(result.is_err());
    // The relay ends when the server closes, after it dropped the upload.
    relaying.join().unwrap();
    assert_eq!(dirs.served(), ["data"]);
    assert_eq!(FileClient::connect(addr).unwrap().ls("").unwrap().len(), 1);
}

#[test]
fn every_path_escape_is_refused() {
    let dirs = Dirs::new("escape");
    let outside = dirs.top.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "secret").unwrap();
    fs::write(dirs.local("f"), "f").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(&outside, dirs.root().join("out")).unwrap();
        symlink(outside.join("secret"), dirs.root().join("secret-link")).unwrap();
        fs::create_dir(dirs.root().join("sub")).unwrap();
        fs::write(dirs.root().join("sub/inside"), "inside").unwrap();
        symlink(
            dirs.root().join("sub/inside"),
            dirs.root().join("inside-link"),
        )
        .unwrap();
    }
    let addr = serve(FileConfig::new(dirs.root()));
    let mut client = FileClient::connect(addr).unwrap();
    let long = "a".repeat(2000);
    let mut names = vec![
        "../outside/secret",
        "sub/../../outside/secret",
        "/etc/passwd",
        "./f",
        ".hidden",
        "sub/.hidden",
        "a\\..\\b",
        "nul\0byte",
        long.as_str(),
    ];
    if cfg!(unix) {
        names.extend(["out/secret", "secret-link"]);
    }
    for name in names {
        let get = client.get(name, &dirs.local("got"), true, none);
        assert!(
            matches!(get, Err(FileError::BadName { .. })),
            "get {name:?}: {get:?}"
        );
        let put = client.put(&dirs.local("f"), name, true, none);
        assert!(
            matches!(put, Err(FileError::BadName { .. })),
            "put {name:?}: {put:?}"
        );
    }
    for dir in ["..", "out", "/"] {
        let ls = client.ls(dir);
        assert!(
            matches!(ls, Err(FileError::BadName { .. })),
            "ls {dir:?}: {ls:?}"
        );
    }
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing written outside"
    );
    assert!(!dirs.local("got").exists());
    if cfg!(unix) {
        // Symlinks that stay inside are followed; the listing leaves out
        // the ones that lead out.
        client
            .get("inside-link", &dirs.local("got"), true, none)
            .unwrap();
        let listing = client.ls("").unwrap();
        let names: Vec<&str> = listing.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["inside-link", "sub"]);
        let put = client.put(&dirs.local("f"), "inside-link", true, none);
        assert!(matches!(put, Err(FileError::BadName { .. })), "{put:?}");
    }
}

#[test]
fn nothing_is_overwritten_unless_asked_and_limits_hold() {
    let dirs = Dirs::new("overwrite");
    let addr = serve(FileConfig::new(dirs.root()).max_upload(2 * CHUNK as u64));
    let mut client = FileClient::connect(addr).unwrap();
    fs::write(dirs.local("v1"), "one").unwrap();
    fs::write(dirs.local("v2"), "two").unwrap();
    client.put(&dirs.local("v1"), "doc", false, none).unwrap();
    let again = client.put(&dirs.local("v2"), "doc", false, none);
    assert!(
        matches!(again, Err(FileError::AlreadyExists(ref n)) if n == "doc"),
        "{again:?}"
    );
    assert_eq!(fs::read(dirs.root().join("doc")).unwrap(), b"one");
    client.put(&dirs.local("v2"), "doc", true, none).unwrap();
    assert_eq!(fs::read(dirs.root().join("doc")).unwrap(), b"two");

    // Downloads do not replace a local file either.
    let get = client.get("doc", &dirs.local("v1"), false, none);
    assert!(matches!(get, Err(FileError::AlreadyExists(_))), "{get:?}");
    assert_eq!(fs::read(dirs.local("v1")).unwrap(), b"one");

    // Over the size limit: refused before a byte is sent.
    fs::write(dirs.local("big"), pattern(2 * CHUNK + 1)).unwrap();
    let big = client.put(&dirs.local("big"), "big", false, none);
    assert!(
        matches!(big, Err(FileError::TooLarge { size, max }) if size == 2 * CHUNK as u64 + 1 && max == 2 * CHUNK as u64),
        "{big:?}"
    );
    // The connection goes on after each refusal.
    assert_eq!(client.ls("").unwrap().len(), 1);
    assert!(matches!(
        client.get("nope", &dirs.local("x"), false, none),
        Err(FileError::NotFound(_))
    ));
    assert!(
        !dirs.local("x.part").exists(),
        "a refused get leaves nothing"
    );

    let read_only = serve(FileConfig::new(dirs.root()).read_only(true));
    let put = FileClient::connect(read_only)
        .unwrap()
        .put(&dirs.local("v1"), "new", false, none);
    assert!(matches!(put, Err(FileError::ReadOnly)), "{put:?}");
    assert_eq!(dirs.served(), ["doc"]);
}

#[test]
fn two_clients_at_once_each_get_their_own_files() {
    let dirs = Dirs::new("two");
    let addr = serve(FileConfig::new(dirs.root()));
    let clients: Vec<_> = (0..2u8)
        .map(|c| {
            let source = dirs.local(&format!("src{c}"));
            let dest = dirs.local(&format!("dst{c}"));
            let bytes: Vec<u8> = pattern(8 * CHUNK + 77).iter().map(|b| b ^ c).collect();
            fs::write(&source, &bytes).unwrap();
            thread::spawn(move || {
                let mut client = FileClient::connect(addr).unwrap();
                let name = format!("file{c}");
                client.put(&source, &name, false, none).unwrap();
                client.get(&name, &dest, false, none).unwrap();
                assert_eq!(fs::read(&dest).unwrap(), bytes);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // Racing for one name: one upload wins, the other is told it exists.
    fs::write(dirs.local("race"), pattern(4 * CHUNK)).unwrap();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let source = dirs.local("race");
            thread::spawn(move || {
                FileClient::connect(addr)
                    .unwrap()
                    .put(&source, "race", false, none)
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(FileError::AlreadyExists(_))))
    );
    assert_eq!(dirs.served(), ["file0", "file1", "race"]);
}

#[test]
fn the_examples_move_a_file_and_print_no_progress_into_a_pipe() {
    let dirs = Dirs::new("examples");
    let mut server = common::example("file_server");
    server.arg("127.0.0.1:0").arg("--root").arg(dirs.root());
    let server = common::start_server(server);
    let addr = server.addr.to_string();
    let source = dirs.local("movie");
    fs::write(&source, pattern(6 << 20)).unwrap();
    let run = |args: &[&Path]| {
        let mut client = common::example("file_client");
        client.arg(&addr).args(args);
        common::run_client(client)
    };
    let put = run(&[Path::new("put"), &source]);
    assert!(put.contains("movie: 6291456 bytes"), "{put}");
    assert!(!put.contains('\r'), "no progress line into a pipe: {put:?}");
    let dest = dirs.local("movie.copy");
    let get = run(&[Path::new("get"), Path::new("movie"), &dest]);
    assert!(get.contains("6291456 bytes"), "{get}");
    assert_eq!(fs::read(&dest).unwrap(), pattern(6 << 20));
    let ls = run(&[Path::new("ls")]);
    assert!(ls.contains("6291456") && ls.contains("movie"), "{ls}");
}

/// Names a terminal or a listing cannot show as they are: control
/// characters, bidi overrides, zero-width and other format characters,
/// line separators.
const UNSHOWABLE: [&str; 12] = [
    "new\nline",
    "carriage\rreturn",
    "tab\there",
    "esc\x1b[31mred",
    "del\x7f",
    "c1\u{9b}csi",
    "bidi\u{202e}txt.exe",
    "isolate\u{2066}x",
    "zero\u{200b}width",
    "bom\u{feff}",
    "line\u{2028}sep",
    "para\u{2029}sep",
];

#[test]
fn names_that_cannot_be_shown_safely_are_refused_and_not_listed() {
    let dirs = Dirs::new("unshowable");
    fs::write(dirs.local("f"), "f").unwrap();
    let addr = serve(FileConfig::new(dirs.root()));
    let mut client = FileClient::connect(addr).unwrap();
    for name in UNSHOWABLE {
        for attempt in [
            client.put(&dirs.local("f"), name, true, none).map(|_| ()),
            client.get(name, &dirs.local("got"), true, none).map(|_| ()),
            client.ls(name).map(|_| ()),
        ] {
            assert!(
                matches!(attempt, Err(FileError::BadName { ref why, .. }) if why.contains("cannot be shown")),
                "{name:?}: {attempt:?}"
            );
        }
    }
    assert_eq!(dirs.served(), Vec::<String>::new());
    // Put there by someone else, they are left out of listings; plain
    // text beside them, accents and CJK and `"` included, is listed.
    for name in UNSHOWABLE {
        fs::write(dirs.root().join(name), "x").unwrap();
    }
    for name in ["café", "你好", "quote\"d", "space d"] {
        fs::write(dirs.root().join(name), "x").unwrap();
    }
    let listing = client.ls("").unwrap();
    let names: Vec<&str> = listing.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["café", "quote\"d", "space d", "你好"]);
}

/// Every hidden temporary upload under `dir`, however deep.
fn temp_uploads(dir: &Path) -> Vec<PathBuf> {
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

#[test]
fn a_250_byte_name_uploads_a_thousand_times_and_255_bytes_go_both_ways() {
    let dirs = Dirs::new("long-names");
    let addr = serve(FileConfig::new(dirs.root()));
    let mut client = FileClient::connect(addr).unwrap();
    fs::write(dirs.local("f"), "f").unwrap();
    let name = "n".repeat(250);
    // Past 1,000 uploads, the counter in a temporary name has four digits:
    // the old `.{name}.{pid}-{n}.part` outgrew 255 bytes there.
    for i in 0..1_100 {
        let put = client.put(&dirs.local("f"), &name, true, none);
        assert!(put.is_ok(), "upload {i}: {put:?}");
    }
    let longest = "你".repeat(85); // 255 bytes
    fs::write(dirs.local("src"), pattern(CHUNK + 7)).unwrap();
    client
        .put(&dirs.local("src"), &longest, false, none)
        .unwrap();
    // The download's `DEST.part` would be 260 bytes: it gets a short name.
    let dest = dirs.local(&longest);
    client.get(&longest, &dest, false, none).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), pattern(CHUNK + 7));
    let mut served = dirs.served();
    served.sort();
    assert_eq!(served, [name, longest], "no temporary file left behind");
}

#[test]
fn a_cut_download_of_a_255_byte_name_resumes() {
    let dirs = Dirs::new("long-resume");
    let longest = "r".repeat(255);
    fs::write(dirs.root().join(&longest), pattern(3 * CHUNK)).unwrap();
    let server = serve(FileConfig::new(dirs.root()));
    let (cutting, relay) = proxy(server, Fault::CutAfter(CHUNK as u64 + 4096), false);
    let dest = dirs.local(&longest);
    let cut = FileClient::connect(cutting)
        .unwrap()
        .get(&longest, &dest, false, none);
    assert!(cut.is_err());
    relay.join().unwrap();
    let parts: Vec<_> = fs::read_dir(dirs.top.join("local")).unwrap().collect();
    assert_eq!(parts.len(), 1, "one part file, named within 255 bytes");
    let done = FileClient::connect(server)
        .unwrap()
        .get(&longest, &dest, false, none)
        .unwrap();
    assert_eq!(done.resumed_from, CHUNK as u64);
    assert_eq!(fs::read(&dest).unwrap(), pattern(3 * CHUNK));
}

#[test]
fn stale_temporary_uploads_are_removed_at_start_and_nothing_else() {
    let dirs = Dirs::new("stale");
    let root = dirs.root();
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    // What a server killed mid-upload leaves: hidden, named by our pattern.
    let stale = [
        root.join(".socketserver-999999-0.upload"),
        root.join("sub/.socketserver-12-1234.upload"),
        root.join("sub/deeper/.socketserver-1-18446744073709551615.upload"),
    ];
    // Users' files with names like it: never touched.
    let users = [
        root.join(".socketserver-1-0.upload.bak"),
        root.join("socketserver-1-0.upload"),
        root.join(".socketserver-x-0.upload"),
        root.join(".socketserver-1-0.part"),
        root.join("sub/.notes.txt.123-0.part"),
        root.join("sub/.socketserver-1.upload"),
    ];
    for path in stale.iter().chain(&users) {
        fs::write(path, "x").unwrap();
    }
    let handler = files::FileHandler::new(FileConfig::new(&root)).unwrap();
    if cfg!(unix) {
        assert_eq!(handler.removed_at_start(), 3);
        for path in &stale {
            assert!(!path.exists(), "{path:?}");
        }
    }
    for path in &users {
        assert!(path.exists(), "{path:?} is a user's");
    }
}

#[test]
fn a_live_upload_of_another_server_on_the_same_root_is_not_stale() {
    let dirs = Dirs::new("live-upload");
    let addr = serve(FileConfig::new(dirs.root()));
    // An upload that stops after its first chunk and waits.
    let mut raw = TcpStream::connect(addr).unwrap();
    let put = Header::for_body(b"")
        .with("op", "put")
        .with("name", "slow")
        .with("size", 2 * CHUNK as u64);
    write_frame_parts(&mut raw, &put, &[]).unwrap();
    let status = read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(status.header.extra.get("ok"), Some(&true.into()));
    let chunk = pattern(CHUNK);
    write_frame_parts(&mut raw, &Header::for_body(&chunk), &[&chunk]).unwrap();
    // The chunk is on disk once the temporary file has grown to it.
    let mut temp = Vec::new();
    for _ in 0..1_000 {
        temp = temp_uploads(&dirs.root());
        if temp.len() == 1 && fs::metadata(&temp[0]).unwrap().len() == CHUNK as u64 {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(temp.len(), 1, "the upload is in a temporary file");
    // A second server starting on the same root leaves it alone.
    let second = files::FileHandler::new(FileConfig::new(dirs.root())).unwrap();
    assert_eq!(second.removed_at_start(), 0);
    assert!(temp[0].exists());
    // The upload, given up, removes its own temporary file.
    drop(raw);
    for _ in 0..1_000 {
        if !temp[0].exists() {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!temp[0].exists());
    assert_eq!(dirs.served(), Vec::<String>::new());
}

/// Sends `bytes` on a fresh connection, closes the sending side, and
/// returns the error frame's kind and message, checking that the
/// connection then ends.
fn error_frame_for(addr: SocketAddr, bytes: &[u8]) -> (String, String) {
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    // The server may refuse before it has read everything: a reset on
    // this write is no failure, the reply is what counts.
    let _ = raw.write_all(bytes);
    let _ = raw.shutdown(Shutdown::Write);
    let reply = read_frame(&mut raw)
        .unwrap_or_else(|e| panic!("no error frame: {e}"))
        .expect("an error frame before the close");
    let text = |key: &str| {
        reply
            .header
            .extra
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(read_frame(&mut raw).unwrap().is_none(), "closed after it");
    (text("kind"), text("error"))
}

fn framed(header: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as i32).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes
}

#[test]
fn malformed_request_frames_get_an_error_frame_before_the_close() {
    let dirs = Dirs::new("malformed");
    fs::write(dirs.root().join("kept"), "kept").unwrap();
    let addr = serve(FileConfig::new(dirs.root()));
    let mut good = FileClient::connect(addr).unwrap();
    let nested = framed(&vec![b'['; 60_000]);
    let nested_within = framed(&vec![b'['; 16_000]);
    let over_long = framed(&vec![b' '; 100_000]);
    let with_body = {
        let header = Header::for_body(b"body").with("op", "ls").with("name", "");
        let mut bytes = framed(&header.to_json());
        bytes.extend_from_slice(b"body");
        bytes
    };
    let no_op = framed(&Header::for_body(b"").with("name", "").to_json());
    let bad_op = framed(
        &Header::for_body(b"")
            .with("op", "rm")
            .with("name", "")
            .to_json(),
    );
    let cases: [(&str, Vec<u8>, &str); 10] = [
        ("60,000 nested [", nested, "frame"),
        (
            "16,000 nested [, within the header limit",
            nested_within,
            "frame",
        ),
        (
            "HTTP garbage",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "frame",
        ),
        ("a header over 16 KiB", over_long, "frame"),
        ("a negative length", (-5i32).to_le_bytes().to_vec(), "frame"),
        ("not UTF-8", framed(&[0xff, 0xfe, 0xfd]), "frame"),
        (
            "cut inside the header",
            b"\x40\x00\x00\x00{\"ver\"".to_vec(),
            "frame",
        ),
        ("a request with a body", with_body, "frame"),
        ("no op", no_op, "protocol"),
        ("an unknown op", bad_op, "protocol"),
    ];
    for (what, bytes, kind) in cases {
        let started = std::time::Instant::now();
        let (got, message) = error_frame_for(addr, &bytes);
        assert_eq!(got, kind, "{what}: {message}");
        assert!(!message.is_empty(), "{what}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: answered at once, not at a timeout"
        );
        // Others are served after each one.
        assert_eq!(good.ls("").unwrap().len(), 1, "{what}");
    }
    // The longest name, every byte escaped six-fold in JSON, still fits a
    // request header: refused for what it is, not as a frame.
    let ls = good.ls(&"\x01".repeat(MAX_NAME));
    assert!(matches!(ls, Err(FileError::BadName { .. })), "{ls:?}");
    // A name over the limit is echoed only in part.
    let ls = good.ls(&"\"".repeat(5_000));
    assert!(
        matches!(ls, Err(FileError::BadName { ref name, .. }) if name.len() < 100),
        "{ls:?}"
    );
}

/// Starts an upload of `size` bytes on a raw connection and leaves it
/// waiting for its data once the server has said yes.
fn stalled_upload(addr: SocketAddr, name: &str, size: u64) -> TcpStream {
    let mut raw = TcpStream::connect(addr).unwrap();
    let put = Header::for_body(b"")
        .with("op", "put")
        .with("name", name)
        .with("size", size);
    write_frame_parts(&mut raw, &put, &[]).unwrap();
    let status = read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(status.header.extra.get("ok"), Some(&true.into()), "{name}");
    raw
}

#[test]
fn the_upload_budget_is_enforced_before_any_data_is_accepted() {
    let dirs = Dirs::new("budget");
    let mib = CHUNK as u64;
    let addr = serve(FileConfig::new(dirs.root()).upload_budget(3 * mib));
    let hog = stalled_upload(addr, "hog", 2 * mib);
    // Another client's 2 MiB would take the sum to 4 MiB: refused with
    // the figures, before it sends a byte (its connection goes on).
    fs::write(dirs.local("two"), pattern(2 * CHUNK)).unwrap();
    fs::write(dirs.local("one"), pattern(CHUNK)).unwrap();
    let mut client = FileClient::connect(addr).unwrap();
    let sent = std::cell::Cell::new(0);
    let put = client.put(&dirs.local("two"), "two", false, |n, _| sent.set(n));
    assert!(
        matches!(put, Err(FileError::OverBudget { size, in_flight, budget })
            if size == 2 * mib && in_flight == 2 * mib && budget == 3 * mib),
        "{put:?}"
    );
    assert_eq!(sent.get(), 0, "refused before any data");
    assert_eq!(temp_uploads(&dirs.root()).len(), 1, "only the hog's");
    // What fits in the rest of the budget goes.
    client.put(&dirs.local("one"), "one", false, none).unwrap();
    // The hog gives up; its share comes back.
    drop(hog);
    let mut put = Err(FileError::ReadOnly);
    for _ in 0..1_000 {
        put = client.put(&dirs.local("two"), "two", false, none);
        if !matches!(put, Err(FileError::OverBudget { .. })) {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(put.is_ok(), "{put:?}");
    assert_eq!(dirs.served(), ["one", "two"]);
    // A budget below one upload refuses it too.
    let tight = serve(FileConfig::new(dirs.root()).upload_budget(mib - 1));
    let put = FileClient::connect(tight)
        .unwrap()
        .put(&dirs.local("one"), "again", false, none);
    assert!(
        matches!(put, Err(FileError::OverBudget { in_flight: 0, .. })),
        "{put:?}"
    );
}

#[cfg(unix)]
#[test]
fn the_free_space_floor_is_enforced_before_any_data_is_accepted() {
    let dirs = Dirs::new("floor");
    fs::write(dirs.local("f"), "f").unwrap();
    // A floor no disk can leave: every upload is refused, with the figures.
    let floor = 1 << 60;
    let addr = serve(FileConfig::new(dirs.root()).free_space_floor(floor));
    let mut client = FileClient::connect(addr).unwrap();
    let sent = std::cell::Cell::new(0);
    let put = client.put(&dirs.local("f"), "f", false, |n, _| sent.set(n));
    assert!(
        matches!(put, Err(FileError::NoSpace { size: 1, available, floor: f })
            if available > 0 && available < floor && f == floor),
        "{put:?}"
    );
    assert_eq!(sent.get(), 0);
    assert_eq!(dirs.served(), Vec::<String>::new());
    // An upload declaring more than the disk holds is refused by the
    // floor, not discovered full halfway.
    let addr = serve(
        FileConfig::new(dirs.root())
            .max_upload(u64::MAX)
            .upload_budget(u64::MAX),
    );
    let mut raw = TcpStream::connect(addr).unwrap();
    let put = Header::for_body(b"")
        .with("op", "put")
        .with("name", "huge")
        .with("size", 1u64 << 62);
    write_frame_parts(&mut raw, &put, &[]).unwrap();
    let reply = read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(reply.header.extra.get("kind"), Some(&"no_space".into()));
    // Uploads in flight count against the floor by what they still have
    // to write: a stalled upload of (nearly) all the free space leaves no
    // room for the next one.
    let free = match client.put(&dirs.local("f"), "f", false, none) {
        Err(FileError::NoSpace { available, .. }) => available,
        other => panic!("{other:?}"),
    };
    let addr = serve(
        FileConfig::new(dirs.root())
            .max_upload(u64::MAX)
            .upload_budget(u64::MAX)
            .free_space_floor(0),
    );
    // Alone, 256 MiB would fit (or the disk is too full for this test);
    // asked of another server, whose ledger is its own.
    let other = serve(FileConfig::new(dirs.root()).free_space_floor(0));
    let alone = stalled_upload(other, "alone", 256 << 20);
    let hog = stalled_upload(addr, "hog", free - (64 << 20));
    let mut raw = TcpStream::connect(addr).unwrap();
    let put = Header::for_body(b"")
        .with("op", "put")
        .with("name", "next")
        .with("size", 256u64 << 20);
    write_frame_parts(&mut raw, &put, &[]).unwrap();
    let reply = read_frame(&mut raw).unwrap().unwrap();
    // Others on the machine write and delete too: 192 MiB of slack.
    assert_eq!(
        reply.header.extra.get("kind"),
        Some(&"no_space".into()),
        "{:?}",
        reply.header.extra
    );
    drop((hog, alone));
}

#[test]
fn a_10_000_name_flood_cannot_break_ls_for_others() {
    let dirs = Dirs::new("listing-flood");
    let addr = serve(FileConfig::new(dirs.root()));
    fs::write(dirs.local("f"), "").unwrap();
    // The old attack: names of control characters, six bytes each in
    // JSON. Refused at once, every one.
    let mut attacker = FileClient::connect(addr).unwrap();
    for i in 0..200u32 {
        let name = format!("{}{i}", "\x01".repeat(200));
        let put = attacker.put(&dirs.local("f"), &name, false, none);
        assert!(matches!(put, Err(FileError::BadName { .. })), "{put:?}");
    }
    // The worst names left: 250 bytes, `"` in every other one (two bytes
    // in JSON), 10,050 of them (as 10,050 uploads would leave them).
    let started = std::time::Instant::now();
    for i in 0..10_050 {
        let name = format!("{:05}{}", i, "\"a".repeat(122) + "\"");
        assert_eq!(name.len(), 250);
        fs::write(dirs.root().join(name), "").unwrap();
    }
    let made = started.elapsed();
    let mut other = FileClient::connect(addr).unwrap();
    let started = std::time::Instant::now();
    let listing = other.list("").unwrap();
    let took = started.elapsed();
    assert!(
        listing.truncated,
        "10,050 names: cut at 10,000, and said so"
    );
    assert_eq!(listing.entries.len(), files::MAX_LISTING);
    let bytes = serde_json::to_vec(&listing.entries).unwrap().len();
    assert!(bytes <= files::MAX_LISTING_BYTES);
    assert!(listing.entries.windows(2).all(|w| w[0].name < w[1].name));
    // Generous, for a loaded machine: it takes well under a second.
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    eprintln!(
        "10,050 names of 250 bytes made in {made:?}; listing of {} entries, {bytes} bytes, in {took:?}",
        listing.entries.len()
    );
    // The plain `ls` works for everyone, again and again.
    for _ in 0..3 {
        assert_eq!(other.ls("").unwrap().len(), files::MAX_LISTING);
    }
    assert!(!other.list("").unwrap().entries.is_empty());
}
