//! The file service doing its job: round trips, resume after a cut,
//! damage detected, no overwrite unless asked, size limits, long names,
//! clients side by side. What a hostile peer tries is in `files_abuse`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;

use common::files::{Dirs, none, pattern, serve};
use socketserver::files::{CHUNK, FileClient, FileConfig, FileError, file_digest};
use socketserver::frame::FrameError;

#[test]
fn empty_small_binary_and_100_mib_files_go_both_ways_intact() {
    let dirs = Dirs::new("round-trip");
    let addr = serve(FileConfig::new(dirs.root()));
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        ("small.txt", "你好,files\n".as_bytes().to_vec()),
        ("binary", (0..=255).collect()),
        ("one-chunk", pattern(CHUNK)),
        ("hundred-mib", pattern(100 << 20)),
    ];
    // Connected once the data is made: a server gives a new connection
    // 10 s to send its first request, and 100 MiB of pattern takes a
    // while in a debug build on a loaded machine.
    let mut client = FileClient::connect(addr).unwrap();
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

/// Writes `bytes` over the start of `path`, in place (same inode, no
/// truncation), as an editor or a log writer might.
fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let mut file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

/// A file whose timestamps are far in the past: a rewrite moves them even
/// within the clock's tick (a few ms) of the write that made it.
fn write_aged(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    let aged = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(aged)
        .unwrap();
}

/// Issue 19: a 24 MiB file rewritten in place one chunk into its download
/// is not passed off as verified (it was: old head, new tail, under its
/// final name, exit 0). The server sees the change at its next chunk and
/// sends `changed` in its place; the client deletes the part and says
/// why; the connection goes on, and the next `get` brings the new file.
#[test]
fn a_file_rewritten_in_place_during_its_download_is_never_given_its_name() {
    let dirs = Dirs::new("torn");
    let addr = serve(FileConfig::new(dirs.root()));
    let served = dirs.root().join("big.bin");
    write_aged(&served, &pattern(24 * CHUNK));
    let new = vec![0xa5; 24 * CHUNK];
    let dest = dirs.local("big.bin");
    let mut client = FileClient::connect(addr).unwrap();
    let mut rewritten_at = None;
    let err = client
        .get("big.bin", &dest, false, |done, _| {
            if done >= CHUNK as u64 && rewritten_at.is_none() {
                rewrite_in_place(&served, &new);
                rewritten_at = Some(done);
            }
        })
        .unwrap_err();
    println!("rewritten after {rewritten_at:?} bytes arrived: {err}");
    assert!(
        matches!(&err, FileError::Changed(name) if name == "big.bin"),
        "{err:?}"
    );
    assert!(err.to_string().contains("changed while it was being sent"));
    assert!(!dest.exists(), "a torn file has no name");
    assert!(
        !dirs.local("big.bin.part").exists(),
        "and no part to resume"
    );
    // The same connection goes on, and brings the new version whole.
    client.get("big.bin", &dest, false, none).unwrap();
    assert!(fs::read(&dest).unwrap() == new);

    // Uploads too: a local file rewritten one chunk into its `put` is
    // refused by the client, which cuts the connection; nothing is kept.
    let source = dirs.local("up.bin");
    write_aged(&source, &pattern(8 * CHUNK));
    let mut rewritten = false;
    let err = FileClient::connect(addr)
        .unwrap()
        .put(&source, "up.bin", false, |done, _| {
            if done >= CHUNK as u64 && !rewritten {
                rewrite_in_place(&source, &[0x5a; 8 * CHUNK]);
                rewritten = true;
            }
        })
        .unwrap_err();
    assert!(matches!(err, FileError::Changed(_)), "{err:?}");
    let root = dirs.root();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !common::files::temp_uploads(&root).is_empty() && std::time::Instant::now() < deadline {
        thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        dirs.served(),
        ["big.bin"],
        "no upload kept, no temporary file"
    );
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
