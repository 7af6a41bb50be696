//! The file service against a hostile peer, by protocol and resources:
//! malformed requests and chunks, uploads that lie about their bytes,
//! resumes that lie about their offsets, the upload budget held by uploads
//! that stall or drip, the free-space floor, temporary files left by a
//! killed server or made by a live one beside a starting server, and a
//! crowd of uploads counted in `/proc`. Names and listings are in
//! `files_names`; shared helpers in `common::files`.

mod common;

use std::fs;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;

use common::files::{
    Dirs, ask, chunk_frame, end_frame, kind, none, one_temp_upload_of, pattern,
    put_once_budget_frees, serve, stalled_upload, temp_uploads,
};
use socketserver::files::{self, CHUNK, FileClient, FileConfig, FileError, MAX_NAME};
use socketserver::frame::{Header, read_frame, write_frame_parts};

#[test]
fn stale_temporary_uploads_are_removed_at_start_and_nothing_else() {
    let dirs = Dirs::new("stale");
    let root = dirs.root();
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    // What a server killed mid-upload leaves: hidden, named by our pattern.
    let stale = [
        // Pids no process can have (over Linux's 4,194,304 and i32).
        root.join(".socketserver-4194305-0.upload"),
        root.join("sub/.socketserver-99999999-1234.upload"),
        root.join("sub/deeper/.socketserver-4294967295-18446744073709551615.upload"),
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
    let temp = one_temp_upload_of(&dirs.root(), CHUNK as u64);
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
    let put = put_once_budget_frees(|| client.put(&dirs.local("two"), "two", false, none));
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

/// Issue 19: one address's uploads in flight get a share of the budget
/// (by default 4 GiB of 16), as its connections get a share of the
/// places. Four stalled 4 GiB declarations from 127.0.0.2: the first
/// holds the address's whole share, the other three are refused before
/// any data (before: all four held the whole budget, and 127.0.0.1's
/// 10-byte upload got `over_budget`). 127.0.0.1 uploads as usual.
#[cfg(unix)]
#[test]
fn one_address_gets_a_share_of_the_upload_budget_not_all_of_it() {
    use std::net::{IpAddr, Ipv4Addr};
    let dirs = Dirs::new("peer-budget");
    // Only the disk this machine has is lowered from the defaults.
    let addr = serve(FileConfig::new(dirs.root()).free_space_floor(0));
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let big = files::DEFAULT_MAX_UPLOAD;
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for i in 0..4 {
        let mut raw = common::connect_from(other, addr).unwrap();
        let name = format!("big{i}");
        if i == 0 {
            held.push(common::files::stalled_upload_on(raw, &name, big));
            continue;
        }
        let put = Header::for_body(b"")
            .with("op", "put")
            .with("name", name.as_str())
            .with("size", big);
        let reply = ask(&mut raw, put);
        assert_eq!(kind(&reply), "over_peer_budget", "{reply:?}");
        assert_eq!(reply.extra.get("in_flight"), Some(&big.into()));
        assert_eq!(
            reply.extra.get("budget"),
            Some(&files::DEFAULT_UPLOAD_BUDGET_PER_PEER.into())
        );
        refused.push(raw);
    }
    fs::write(dirs.local("small"), b"ten bytes!").unwrap();
    let mut client = FileClient::connect(addr).unwrap();
    client
        .put(&dirs.local("small"), "small", false, none)
        .expect("127.0.0.1's upload goes");
    // The client side names the refusal too.
    let err = FileError::OverPeerBudget {
        size: big,
        in_flight: big,
        budget: files::DEFAULT_UPLOAD_BUDGET_PER_PEER,
    };
    assert_eq!(err.code(), "over_peer_budget");
    assert!(err.to_string().contains("from your address"), "{err}");
    // Its share comes back when the stalled one goes.
    drop(held);
    // (once the server has let go of it: within 10 s).
    let mut raw = common::connect_from(other, addr).unwrap();
    let small_put = || {
        Header::for_body(b"")
            .with("op", "put")
            .with("name", "big9")
            .with("size", 10u64)
    };
    let mut reply = ask(&mut raw, small_put());
    for _ in 0..1_000 {
        if kind(&reply) != "over_peer_budget" {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
        reply = ask(&mut raw, small_put());
    }
    assert_eq!(kind(&reply), "ok", "{reply:?}");
    println!(
        "127.0.0.2: 1 of 4 declarations of {big} bytes held, 3 refused; 127.0.0.1's 10 bytes stored"
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
            .upload_budget(u64::MAX)
            .upload_budget_per_peer(u64::MAX),
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
            .upload_budget_per_peer(u64::MAX)
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
fn an_upload_that_lies_about_its_bytes_keeps_nothing_and_frees_its_budget() {
    let dirs = Dirs::new("lying-upload");
    let mib = CHUNK as u64;
    // A budget of exactly one 2 MiB upload: each lie must give it back.
    let addr = serve(FileConfig::new(dirs.root()).upload_budget(2 * mib));
    let one = pattern(CHUNK);
    let half = pattern(CHUNK / 2);
    let digest_of = |chunks: &[&[u8]]| {
        let mut all = String::new();
        for c in chunks {
            all.push_str(&format!("{:x}", md5::compute(c)));
        }
        format!("{:x}", md5::compute(all))
    };
    let mut corrupted = chunk_frame(&one);
    *corrupted.last_mut().unwrap() ^= 1;
    let over = {
        // One frame's body over a chunk: refused by the frame limit.
        let big = pattern(CHUNK + 1);
        chunk_frame(&big)
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "fewer bytes, then the end",
            [chunk_frame(&one), end_frame(mib, &digest_of(&[&one]))].concat(),
            "protocol",
        ),
        (
            "more bytes than declared",
            [chunk_frame(&one), chunk_frame(&one), chunk_frame(&half)].concat(),
            "protocol",
        ),
        (
            "a short chunk that is not the last",
            [chunk_frame(&half), chunk_frame(&half)].concat(),
            "protocol",
        ),
        (
            "an end frame with a wrong digest",
            [
                chunk_frame(&one),
                chunk_frame(&one),
                end_frame(2 * mib, &"0".repeat(32)),
            ]
            .concat(),
            "digest_mismatch",
        ),
        (
            "an end frame without a digest",
            [chunk_frame(&one), chunk_frame(&one), {
                let mut w = Vec::new();
                write_frame_parts(&mut w, &Header::for_body(b"").with("end", true), &[]).unwrap();
                w
            }]
            .concat(),
            "protocol",
        ),
        ("a chunk with a flipped byte", corrupted, "frame"),
        ("a chunk over 1 MiB", over, "frame"),
        (
            "garbage where a chunk is due",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "frame",
        ),
        ("a negative length", (-1i32).to_le_bytes().to_vec(), "frame"),
        (
            "cut inside a chunk",
            chunk_frame(&one)[..5000].to_vec(),
            "frame",
        ),
    ];
    for (what, wire, expected) in cases {
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let put = Header::for_body(b"")
            .with("op", "put")
            .with("name", "lie")
            .with("size", 2 * mib);
        let reply = ask(&mut raw, put);
        assert_eq!(kind(&reply), "ok", "{what}: {:?}", reply.extra);
        let _ = raw.write_all(&wire);
        let _ = raw.shutdown(Shutdown::Write);
        let reply = read_frame(&mut raw)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .unwrap_or_else(|| panic!("{what}: no reply"));
        assert_eq!(
            kind(&reply.header),
            expected,
            "{what}: {:?}",
            reply.header.extra
        );
        drop(raw);
        // Nothing kept, and the whole budget is back: a 2 MiB upload goes
        // (once the server has let go of the liar's connection).
        fs::write(dirs.local("two"), pattern(2 * CHUNK)).unwrap();
        let put = put_once_budget_frees(|| {
            FileClient::connect(addr)
                .unwrap()
                .put(&dirs.local("two"), "honest", true, none)
        });
        assert!(put.is_ok(), "{what}: {put:?}");
        assert_eq!(dirs.served(), ["honest"], "{what}");
    }
}

#[test]
fn resumes_with_lying_offsets_are_refused_and_the_connection_goes_on() {
    let dirs = Dirs::new("lying-offset");
    fs::write(dirs.root().join("f"), pattern(2 * CHUNK + 10)).unwrap();
    let addr = serve(FileConfig::new(dirs.root()));
    let mut raw = TcpStream::connect(addr).unwrap();
    let get = |offset: serde_json::Value| {
        Header::for_body(b"")
            .with("op", "get")
            .with("name", "f")
            .with("offset", offset)
    };
    let mib = CHUNK as u64;
    for offset in [
        1,
        mib - 1,
        mib + 1,
        3 * mib,
        u64::MAX,
        u64::MAX - u64::MAX % mib,
    ] {
        let reply = ask(&mut raw, get(offset.into()));
        assert_eq!(kind(&reply), "bad_offset", "{offset}");
    }
    // The end of the file, on a chunk boundary or not, is no resume point
    // past it: at 2 MiB the last 10 bytes come.
    let reply = ask(&mut raw, get((2 * mib).into()));
    assert_eq!(kind(&reply), "ok");
    assert_eq!(reply.extra.get("size"), Some(&(2 * mib + 10).into()));
    let chunk = read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(chunk.body.len(), 10);
    let end = read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(end.header.extra.get("end"), Some(&true.into()));
    // Not a whole number: the request is not understood, and the
    // connection ends after the error frame.
    for offset in [
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!("0"),
    ] {
        let mut raw = TcpStream::connect(addr).unwrap();
        let reply = ask(&mut raw, get(offset.clone()));
        assert_eq!(kind(&reply), "protocol", "{offset}");
        assert!(read_frame(&mut raw).unwrap().is_none(), "{offset}");
    }
}

#[test]
fn a_server_starting_on_a_shared_root_never_takes_a_live_upload() {
    let dirs = Dirs::new("start-race");
    let addr = serve(FileConfig::new(dirs.root()));
    fs::write(dirs.local("f"), "f").unwrap();
    // Made but not yet locked, as between an upload's create and its
    // lock: named with a live process's pid, it is not stale.
    let unlocked = dirs.root().join(format!(
        ".socketserver-{}-99999999.upload",
        std::process::id()
    ));
    fs::write(&unlocked, "").unwrap();
    let starting = files::FileHandler::new(FileConfig::new(dirs.root())).unwrap();
    assert_eq!(starting.removed_at_start(), 0);
    assert!(unlocked.exists());
    fs::remove_file(&unlocked).unwrap();
    // Servers starting over and over beside a run of uploads: every
    // upload goes through.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let starts = {
        let (stop, root) = (stop.clone(), dirs.root());
        thread::spawn(move || {
            let mut starts = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && starts < 100_000 {
                files::FileHandler::new(FileConfig::new(&root)).unwrap();
                starts += 1;
            }
            starts
        })
    };
    let mut client = FileClient::connect(addr).unwrap();
    let mut failed = Vec::new();
    for i in 0..2_000 {
        if let Err(e) = client.put(&dirs.local("f"), "f", true, none) {
            failed.push((i, e.to_string()));
            client = FileClient::connect(addr).unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let starts = starts.join().unwrap();
    eprintln!(
        "2,000 uploads beside {starts} server starts: {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(dirs.served(), ["f"]);
}

/// Threads and open descriptors of process `pid`, from `/proc`.
#[cfg(target_os = "linux")]
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |dir: &str| fs::read_dir(format!("/proc/{pid}/{dir}")).unwrap().count();
    (count("task"), count("fd"))
}

#[cfg(target_os = "linux")]
#[test]
fn a_crowd_of_stalled_and_lying_uploads_leaves_no_thread_or_descriptor_behind() {
    let dirs = Dirs::new("crowd-proc");
    let mut server = common::example("file_server");
    // One address plays the whole crowd: the per-peer cap is off.
    server
        .arg("127.0.0.1:0")
        .arg("--root")
        .arg(dirs.root())
        .arg("--max-per-peer")
        .arg("0");
    let server = common::start_server(server);
    let (addr, pid) = (server.addr, server.child.id());
    fs::write(dirs.local("f"), pattern(3 * CHUNK)).unwrap();
    let mut legit = FileClient::connect(addr).unwrap();
    legit.put(&dirs.local("f"), "warm", false, none).unwrap();
    let before = threads_and_fds(pid);
    // 40 uploads that send one chunk of eight and stall, 20 that lie
    // (a chunk over 1 MiB) and are cut off.
    let one = pattern(CHUNK);
    let mut stalled: Vec<TcpStream> = (0..40)
        .map(|i| {
            let mut raw = stalled_upload(addr, &format!("stall{i}"), 8 * CHUNK as u64);
            raw.write_all(&chunk_frame(&one)).unwrap();
            raw
        })
        .collect();
    let over = chunk_frame(&pattern(CHUNK + 1));
    for i in 0..20 {
        let mut raw = stalled_upload(addr, &format!("liar{i}"), 8 * CHUNK as u64);
        let _ = raw.write_all(&over);
        let reply = read_frame(&mut raw).unwrap().unwrap();
        assert_eq!(kind(&reply.header), "frame");
    }
    // Every stalled upload is on disk, each in its own temporary file.
    for _ in 0..1_000 {
        if temp_uploads(&dirs.root()).len() == 40 {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(temp_uploads(&dirs.root()).len(), 40);
    let during = threads_and_fds(pid);
    // A legitimate client is served meanwhile.
    let started = std::time::Instant::now();
    legit.put(&dirs.local("f"), "legit", false, none).unwrap();
    legit
        .get("legit", &dirs.local("legit.copy"), false, none)
        .unwrap();
    let served_in = started.elapsed();
    // They give up; everything they held goes.
    stalled.clear();
    let mut after = threads_and_fds(pid);
    for _ in 0..3_000 {
        if after == before && temp_uploads(&dirs.root()).is_empty() {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
        after = threads_and_fds(pid);
    }
    eprintln!(
        "threads, descriptors: {before:?} before, {during:?} with 40 stalled uploads, \
         {after:?} after; a 3 MiB put and get served in {served_in:?} meanwhile"
    );
    assert_eq!(after, before);
    assert!(temp_uploads(&dirs.root()).is_empty());
    assert_eq!(dirs.served(), ["legit", "warm"]);
    assert!(served_in < std::time::Duration::from_secs(20));
}

#[test]
fn an_upload_that_stalls_or_drips_gives_its_budget_back_at_its_chunk_timeout() {
    let dirs = Dirs::new("drip");
    let mib = CHUNK as u64;
    let per_chunk = std::time::Duration::from_secs(2);
    let addr = serve(
        FileConfig::new(dirs.root())
            .upload_budget(4 * mib)
            .chunk_timeout(per_chunk),
    );
    fs::write(dirs.local("two"), pattern(2 * CHUNK)).unwrap();
    // One stalls after its first chunk; one drips a byte every 100 ms,
    // far inside the server's 5-minute wait for a byte. Together they
    // declare the whole budget.
    let one = pattern(CHUNK);
    let started = std::time::Instant::now();
    let mut staller = stalled_upload(addr, "staller", 2 * mib);
    staller.write_all(&chunk_frame(&one)).unwrap();
    let mut dripper = stalled_upload(addr, "dripper", 2 * mib);
    let put = FileClient::connect(addr)
        .unwrap()
        .put(&dirs.local("two"), "legit", false, none);
    assert!(matches!(put, Err(FileError::OverBudget { .. })), "{put:?}");
    let drip = chunk_frame(&one);
    dripper
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let mut dripped = 0;
    let reply = loop {
        assert!(started.elapsed() < 60 * per_chunk, "never cut off");
        if dripper.write_all(&drip[dripped..dripped + 1]).is_err() {
            break None;
        }
        dripped += 1;
        if let Ok(reply) = read_frame(&mut dripper) {
            break reply;
        }
    };
    let dripper_cut = started.elapsed();
    if let Some(reply) = reply {
        assert_eq!(kind(&reply.header), "io", "{:?}", reply.header.extra);
    }
    staller
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let reply = read_frame(&mut staller).unwrap().unwrap();
    let staller_cut = started.elapsed();
    let why = reply
        .header
        .extra
        .get("error")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    assert!(why.contains("fell behind"), "{why}");
    // Their budget is back: the legitimate upload goes.
    let put = put_once_budget_frees(|| {
        FileClient::connect(addr)
            .unwrap()
            .put(&dirs.local("two"), "legit", false, none)
    });
    assert!(put.is_ok(), "{put:?}");
    eprintln!(
        "chunk timeout {per_chunk:?}: stalled upload cut at {staller_cut:?}, dripping one \
         ({dripped} bytes sent) at {dripper_cut:?}"
    );
    // Cut at their deadline (one chunk timeout each: the staller's second
    // chunk, the dripper's first), not at the 5-minute read timeout.
    assert!(staller_cut >= per_chunk && dripper_cut >= per_chunk);
    assert!(staller_cut < per_chunk * 6 && dripper_cut < per_chunk * 6);
    assert_eq!(dirs.served(), ["legit"]);
}
