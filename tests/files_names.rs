//! The file service against a hostile peer, by name: paths that escape
//! the root however dressed, names that cannot be shown or are too long
//! for the filesystem, symlinks planted or swapped in by a local user, deep
//! trees, and floods of names that would break listings. The protocol and
//! resources side is in `files_abuse`; shared helpers in `common::files`.

mod common;

use std::fs;
#[cfg(unix)]
use std::io::Write;

use common::files::{Dirs, none, pattern, serve, temp_uploads};
#[cfg(unix)]
use common::files::{chunk_frame, end_frame, kind, names_in, one_temp_upload_of, stalled_upload};
use socketserver::files::{self, CHUNK, FileClient, FileConfig, FileError, MAX_NAME};
#[cfg(unix)]
use socketserver::frame::read_frame;

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

#[test]
fn names_too_long_for_the_filesystem_are_refused_before_any_data() {
    let dirs = Dirs::new("component");
    fs::create_dir(dirs.root().join("sub")).unwrap();
    fs::write(dirs.root().join("plain"), "x").unwrap();
    fs::write(dirs.local("f"), pattern(2 * CHUNK)).unwrap();
    let addr = serve(FileConfig::new(dirs.root()));
    let mut client = FileClient::connect(addr).unwrap();
    let long = "n".repeat(256);
    let deep_long = format!("sub/{}", "é".repeat(128));
    for name in [long.as_str(), deep_long.as_str()] {
        let sent = std::cell::Cell::new(0);
        let put = client.put(&dirs.local("f"), name, false, |n, _| sent.set(n));
        assert!(
            matches!(put, Err(FileError::BadName { ref why, .. }) if why.contains("255")),
            "{put:?}"
        );
        assert_eq!(sent.get(), 0, "refused before any data");
        let get = client.get(name, &dirs.local("got"), false, none);
        assert!(matches!(get, Err(FileError::BadName { .. })), "{get:?}");
    }
    // Under a regular file, as if it were a directory: not there, and the
    // connection goes on.
    let put = client.put(&dirs.local("f"), "plain/x", false, none);
    assert!(matches!(put, Err(FileError::NotFound(_))), "{put:?}");
    assert_eq!(client.ls("").unwrap().len(), 2);
    assert!(temp_uploads(&dirs.root()).is_empty());
}

#[test]
fn look_alike_escapes_stay_inside_the_root() {
    let dirs = Dirs::new("look-alike");
    let outside = dirs.top.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir(dirs.root().join("sub")).unwrap();
    fs::write(dirs.local("f"), "f").unwrap();
    let addr = serve(FileConfig::new(dirs.root()));
    let mut client = FileClient::connect(addr).unwrap();
    // Refused: real dot-dots, however dressed, and anything hidden.
    for name in [
        "..",
        "../x",
        "sub/../../x",
        "sub/..",
        "...",
        "./x",
        "sub/./x",
        "x/..",
        "//x/../../y",
        "..\u{2215}x",
        "..\u{2044}x",
        ".. ",
    ] {
        let put = client.put(&dirs.local("f"), name, true, none);
        assert!(
            matches!(put, Err(FileError::BadName { .. })),
            "{name:?}: {put:?}"
        );
    }
    // Accepted as the plain names they are, inside the root: look-alike
    // dots and slashes, URL escapes, spaces around dots, both Unicode
    // normal forms and both cases (distinct files on a case-sensitive
    // filesystem; the server compares bytes and never normalizes).
    let plain = [
        "\u{ff0e}\u{ff0e}",
        "\u{ff0e}\u{ff0e}\u{ff0f}x",
        "%2e%2e%2fx",
        " ..",
        "café",
        "cafe\u{301}",
        "CAFÉ",
        "sub//x",
        "sub/",
    ];
    for name in plain {
        let put = client.put(&dirs.local("f"), name, true, none);
        if name == " .." || name == "sub/" {
            // ` ..` is a name; `sub/` names the directory sub.
            let ok = name == " ..";
            assert_eq!(put.is_ok(), ok, "{name:?}: {put:?}");
            continue;
        }
        assert!(put.is_ok(), "{name:?}: {put:?}");
    }
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing outside"
    );
    let listing = client.ls("").unwrap();
    assert_eq!(listing.len(), 8, "{listing:?}");
    assert!(dirs.root().join("sub/x").exists());
}

#[cfg(unix)]
#[test]
fn a_directory_swapped_for_a_symlink_mid_upload_is_not_followed() {
    use std::os::unix::fs::symlink;
    let dirs = Dirs::new("swap");
    let outside = dirs.top.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir(dirs.root().join("sub")).unwrap();
    let addr = serve(FileConfig::new(dirs.root()));
    let one = pattern(CHUNK);
    let mut raw = stalled_upload(addr, "sub/f", 2 * CHUNK as u64);
    raw.write_all(&chunk_frame(&one)).unwrap();
    let temp = one_temp_upload_of(&dirs.root(), CHUNK as u64);
    assert_eq!(temp.len(), 1);
    let temp_name = temp[0].file_name().unwrap().to_owned();
    // A local user with write access to the root swaps `sub` for a link
    // out of it, and plants a file under the (predictable) temporary name
    // there, so that a rename by path would move it into place.
    fs::rename(dirs.root().join("sub"), dirs.root().join("moved")).unwrap();
    symlink(&outside, dirs.root().join("sub")).unwrap();
    fs::write(outside.join(&temp_name), "planted").unwrap();
    let digest = format!(
        "{:x}",
        md5::compute(format!("{0:x}{0:x}", md5::compute(&one)))
    );
    raw.write_all(&chunk_frame(&one)).unwrap();
    raw.write_all(&end_frame(2 * CHUNK as u64, &digest))
        .unwrap();
    let reply = read_frame(&mut raw).unwrap().unwrap().header;
    // The upload lands in the directory that was checked, wherever it is
    // now; nothing is written or moved outside the root.
    assert_eq!(kind(&reply), "ok", "{:?}", reply.extra);
    assert_eq!(names_in(&outside), [temp_name.into_string().unwrap()]);
    assert_eq!(
        fs::read(outside.join(names_in(&outside)[0].as_str())).unwrap(),
        b"planted"
    );
    assert_eq!(names_in(&dirs.root().join("moved")), ["f"]);
    assert_eq!(
        fs::read(dirs.root().join("moved/f")).unwrap(),
        pattern(2 * CHUNK)[..CHUNK].repeat(2)
    );
}

#[test]
fn deep_trees_and_directories_of_hidden_names_list_quickly() {
    let dirs = Dirs::new("deep");
    // As deep as a name can reach: 1,024 bytes of `d/`.
    let deep: String = "d/".repeat(MAX_NAME / 2 - 1) + "d";
    assert!(deep.len() <= MAX_NAME);
    fs::create_dir_all(dirs.root().join(&deep)).unwrap();
    // A killed server's upload at the bottom, as a client could have put
    // it there: removed at start like any other.
    let stale = dirs
        .root()
        .join(&deep)
        .join(".socketserver-4294967295-0.upload");
    fs::write(&stale, "cut").unwrap();
    let handler = files::FileHandler::new(FileConfig::new(dirs.root())).unwrap();
    if cfg!(unix) {
        assert_eq!(handler.removed_at_start(), 1);
        assert!(!stale.exists());
    }
    // 20,000 hidden names and three plain ones in one directory.
    let crowd = dirs.root().join("crowd");
    fs::create_dir(&crowd).unwrap();
    for i in 0..20_000 {
        fs::write(
            crowd.join(format!(".hidden-{i:05}-{}", "h".repeat(200))),
            "",
        )
        .unwrap();
    }
    for name in ["a", "b", "c"] {
        fs::write(crowd.join(name), "x").unwrap();
    }
    let addr = serve(FileConfig::new(dirs.root()));
    let mut client = FileClient::connect(addr).unwrap();
    let started = std::time::Instant::now();
    let listing = client.list("crowd").unwrap();
    let crowd_took = started.elapsed();
    assert_eq!(listing.entries.len(), 3);
    assert!(!listing.truncated);
    let started = std::time::Instant::now();
    let bottom = client.ls(&deep).unwrap();
    let deep_took = started.elapsed();
    assert!(bottom.is_empty());
    fs::write(dirs.local("f"), "f").unwrap();
    let above = &deep[..deep.len() - 2];
    client
        .put(&dirs.local("f"), &format!("{above}/f"), false, none)
        .unwrap();
    assert_eq!(client.ls(above).unwrap().len(), 2);
    eprintln!(
        "ls of 20,003 entries (3 shown): {crowd_took:?}; ls {} levels deep: {deep_took:?}",
        MAX_NAME / 2
    );
    // Generous, for a loaded machine.
    assert!(crowd_took < std::time::Duration::from_secs(20));
}

#[cfg(unix)]
#[test]
fn symlinks_planted_under_the_next_temporary_names_are_never_written_through() {
    let dirs = Dirs::new("planted");
    let outside = dirs.top.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim"), "untouched").unwrap();
    let addr = serve(FileConfig::new(dirs.root()));
    // The name of one upload's temporary file tells the next ones.
    let raw = stalled_upload(addr, "first", 1);
    let temp = temp_uploads(&dirs.root());
    assert_eq!(temp.len(), 1);
    let name = temp[0].file_name().unwrap().to_str().unwrap().to_owned();
    let (pid, n) = name
        .strip_prefix(".socketserver-")
        .and_then(|s| s.strip_suffix(".upload"))
        .and_then(|s| s.split_once('-'))
        .unwrap();
    let n: u64 = n.parse().unwrap();
    for next in n + 1..n + 60 {
        std::os::unix::fs::symlink(
            outside.join("victim"),
            dirs.root()
                .join(format!(".socketserver-{pid}-{next}.upload")),
        )
        .unwrap();
    }
    drop(raw);
    fs::write(dirs.local("f"), "uploaded").unwrap();
    let mut client = FileClient::connect(addr).unwrap();
    for i in 0..3 {
        client
            .put(&dirs.local("f"), &format!("up{i}"), false, none)
            .unwrap();
    }
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"untouched");
    assert_eq!(fs::read(dirs.root().join("up2")).unwrap(), b"uploaded");
}
