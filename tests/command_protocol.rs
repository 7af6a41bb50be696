//! Issue 18's protocol and authentication findings, each played as the
//! attacker played it: a web page's bytes, a header flood before
//! authentication, seed clients that never read, a relaying fake server,
//! one address taking every command slot, a command reading the server's
//! environment. Real sockets on loopback; attackers bind 127.0.0.x; every
//! loop is bounded and every wait has a deadline.
#![cfg(target_os = "linux")]

mod common;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    children, connect_from, example, figures, serve_commands as serve, start_server, status_kib,
    within,
};
use socketserver::command::{self, Client, CommandConfig, CommandError, Protocol};
use socketserver::frame::{self, FrameLimits, Header, read_frame, read_frame_with};

fn source(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

// ------------------------------------------------ log lines, for item 1

/// Every log line this test binary's servers write.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Collect;

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LINES.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

fn collect_logs() {
    let _ = log::set_logger(&Collect);
    log::set_max_level(log::LevelFilter::Warn);
}

fn attack_lines(from: IpAddr) -> usize {
    let from = format!("{from}:");
    LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("Possible SECURITY ATTACK") && l.contains(&from))
        .count()
}

/// A path in the temporary directory, removed when dropped.
struct Marker(PathBuf);

impl Marker {
    fn new(name: &str) -> Marker {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Marker(path)
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a browser sends for `<img src="http://ADDR/;touch$IFS{marker};">`
/// (Firefox's headers; Chrome's differ only in their values).
fn browser_get(addr: SocketAddr, marker: &str) -> String {
    format!(
        "GET /;touch$IFS{marker}; HTTP/1.1\r\n\
         Host: {addr}\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
         Accept: image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5\r\n\
         Accept-Language: en-US,en;q=0.5\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Connection: keep-alive\r\n\
         Referer: http://attacker.example/\r\n\
         Sec-Fetch-Dest: image\r\n\
         Sec-Fetch-Mode: no-cors\r\n\
         Sec-Fetch-Site: cross-site\r\n\r\n"
    )
}

/// What a form posted to the server sends (`enctype="text/plain"`: the
/// body is the page's to choose), and libwww-perl's `POST` alike.
fn browser_post(addr: SocketAddr, marker: &str) -> String {
    let body = format!("x=;touch {marker};\r\n");
    format!(
        "POST /;touch$IFS{marker}; HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\
         Origin: http://attacker.example\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `bytes` from `from` as one write, and reads what comes back
/// until the server closes.
fn send_and_read(from: IpAddr, addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect_from(from, addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    // A browser would keep its side open; the server's linger would then
    // wait its second. Closing it says the request is all there is.
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

#[test]
fn a_web_pages_requests_run_nothing_in_either_mode_and_are_logged_once() {
    collect_logs();
    for (mode, config, from) in [
        ("default", CommandConfig::default(), source(7)),
        ("shell", CommandConfig::default().shell(true), source(8)),
    ] {
        let (addr, server) = serve(config);
        let marker = Marker::new(&format!("cmd-http-{mode}"));
        let path = marker.0.to_str().unwrap();
        let started = Instant::now();
        let get = send_and_read(from, addr, browser_get(addr, path).as_bytes());
        let post = send_and_read(from, addr, browser_post(addr, path).as_bytes());
        // A request split where a proxy or a slow page might split it.
        let line = send_and_read(
            from,
            addr,
            format!("GET /;touch$IFS{path}; HTTP/1.1\r\n").as_bytes(),
        );
        let took = started.elapsed();
        // Whatever would have run has had time to: the replies are in.
        thread::sleep(Duration::from_millis(200));
        let made = marker.0.exists();
        println!(
            "{mode}: GET, POST and a bare request line refused in {took:?}; marker made: {made}; \
             commands run: {}; log lines for {from}: {}",
            server.handler().running(),
            attack_lines(from)
        );
        assert!(!made, "{mode}: the marker was made");
        for reply in [&get, &post, &line] {
            let frame = read_frame(&mut &reply[..]).unwrap().unwrap();
            let text = String::from_utf8_lossy(&frame.body);
            assert!(text.contains("not an HTTP server"), "{mode}: {text}");
        }
        assert_eq!(attack_lines(from), 1, "{mode}: logged once for the address");
        // And a command still runs for anyone who asks properly.
        let mut client = Client::connect(addr, Protocol::Seed).unwrap();
        assert_eq!(client.run("echo fine").unwrap().stdout, b"fine\n");
    }
}

// ---------------------------------------- item 4: bounded before the token

/// A token file for a child server, removed when dropped.
fn token_file(token: &str) -> Marker {
    let file = Marker::new("cmd-proto-token");
    std::fs::write(&file.0, format!("{token}\n")).unwrap();
    file
}

/// A request's header of about `size` bytes, padded with nested empty
/// arrays (ten deep, within `serde_json`'s recursion limit), its length
/// prefix first; it promises a body that never comes.
fn nested_header(size: usize) -> Vec<u8> {
    const UNIT: &str = "[[[[[[[[[[]]]]]]]]]],";
    let head = r#"{"ver":"1","md5":"","lenth":60000,"x":["#;
    let units = size.saturating_sub(head.len() + 4) / UNIT.len();
    let json = format!("{head}{}[]]}}", UNIT.repeat(units));
    let mut wire = (json.len() as i32).to_le_bytes().to_vec();
    wire.extend_from_slice(json.as_bytes());
    wire
}

#[test]
fn a_flood_of_nested_array_headers_before_authentication_stays_bounded() {
    let token = token_file("flood-t0ken");
    let mut server = example("cmd_server");
    server
        .args(["127.0.0.1:0", "--max-per-peer", "0", "--token-file"])
        .arg(&token.0);
    let server = start_server(server);
    let pid = server.child.id();
    let baseline = figures(pid);
    let rss_before = status_kib(pid, "VmRSS");
    let hwm_before = status_kib(pid, "VmHWM");
    const CONNECTIONS: usize = 200;
    // The issue's flood: a 64 KiB header of nested empty arrays, in a
    // header that is otherwise a request's, whose body never comes.
    let flood = nested_header(64 << 10);
    // And one within the header limit: held until the first-request
    // deadline, waiting for its body.
    let held = nested_header(1000);
    let started = Instant::now();
    let mut open = Vec::new();
    let mut sent = 0usize;
    for i in 0..CONNECTIONS {
        let bytes = if i % 2 == 0 { &flood } else { &held };
        let mut stream = connect_from(source(2 + (i % 4) as u8), server.addr).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(bytes).unwrap();
        sent += bytes.len();
        open.push(stream);
    }
    // The floods are refused from their length prefix and closed after
    // the linger (1 s); the held ones stay, a thread each, until their
    // deadline. Once only those are left, every header has been dealt with.
    let holding = baseline.0 + CONNECTIONS / 2;
    let settled = within(Duration::from_secs(8), || figures(pid).0 == holding);
    let rss = status_kib(pid, "VmRSS");
    let hwm = status_kib(pid, "VmHWM");
    let threads = figures(pid).0;
    drop(open);
    let back = within(Duration::from_secs(15), || figures(pid) == baseline);
    println!(
        "{CONNECTIONS} unauthenticated connections sent {} KiB (half 64 KiB headers of nested \
         arrays, half 1,000-byte headers held for their body) in {:?}: server RSS {rss_before} -> \
         {rss} KiB, peak {hwm_before} -> {hwm} KiB (+{} KiB, {:.2}x what was sent); {threads} \
         threads at the peak; back to {:?} (from {baseline:?}): {back}",
        sent >> 10,
        started.elapsed(),
        hwm.saturating_sub(rss_before),
        (hwm.saturating_sub(rss_before) as f64) / (sent as f64 / 1024.0),
        figures(pid)
    );
    assert!(settled, "{threads} threads, expected {holding}");
    // Each connection costs its thread (a few KiB of stack touched) and at
    // most about twice what it sent.
    assert!(
        hwm.saturating_sub(rss_before) < 2 * (sent as u64 >> 10),
        "peak grew by {} KiB for {} KiB sent",
        hwm.saturating_sub(rss_before),
        sent >> 10
    );
    assert!(back, "threads and descriptors back to {baseline:?}");
}

// ---------------------------------------- item 5: seed clients that never read

#[test]
fn forty_seed_clients_that_never_read_hold_a_window_each_not_their_output() {
    const CLIENTS: usize = 40;
    const OUTPUT: usize = 8_000_000;
    let mut server = example("cmd_server");
    server.args(["127.0.0.1:0", "--max-per-peer", "0"]);
    let server = start_server(server);
    let pid = server.child.id();
    let baseline = figures(pid);
    let rss_before = status_kib(pid, "VmRSS");
    let command = format!("head -c {OUTPUT} /dev/zero");
    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut stream = connect_from(source(2 + (i % 8) as u8), server.addr).unwrap();
        stream.write_all(command.as_bytes()).unwrap();
        // Its command has ended and its reply started once the first bytes
        // of the reply are here; the client reads none of them.
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut first = [0u8; 4];
        assert_eq!(stream.peek(&mut first).unwrap(), 4, "client {i}: no reply");
        clients.push(stream);
    }
    assert!(
        within(Duration::from_secs(10), || children(pid) == 0),
        "every command has ended"
    );
    let rss = status_kib(pid, "VmRSS");
    let held = rss.saturating_sub(rss_before);
    println!(
        "{CLIENTS} seed clients not reading {} MB each (all commands ended in {:?}): server \
         RSS {rss_before} -> {rss} KiB (+{held} KiB, {} KiB per client; the output is {} KiB \
         per client)",
        OUTPUT / 1_000_000,
        started.elapsed(),
        held / CLIENTS as u64,
        OUTPUT >> 10
    );
    // One client that does read gets all of it, verified.
    let mut reader = Client::connect(server.addr, Protocol::Seed)
        .unwrap()
        .max_reply(OUTPUT as u64);
    let whole = reader
        .run(&format!("head -c {OUTPUT} /dev/urandom"))
        .unwrap();
    assert_eq!(whole.stdout.len(), OUTPUT, "md5 checked by the reader");
    drop(clients);
    drop(reader);
    let back = within(Duration::from_secs(15), || figures(pid) == baseline);
    assert!(
        held < (CLIENTS as u64) * 2048,
        "{held} KiB held for {CLIENTS} clients: more than a 1 MiB window each"
    );
    assert!(
        back,
        "threads and descriptors back: {:?} vs {baseline:?}",
        figures(pid)
    );
}

// ---------------------------------------------------- item 6: the relay

/// The token's answer as a fake server sees it go by.
struct Relayed {
    header: Header,
    body: Vec<u8>,
}

/// A fake server between an honest client and the real server: it passes
/// the real challenge on, takes the client's first request, and hands it
/// to `play` with its connection to the real server.
fn relay(
    real: SocketAddr,
    play: impl FnOnce(&mut TcpStream, &mut TcpStream, Relayed) + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut victim, _) = listener.accept().unwrap();
        let mut upstream = TcpStream::connect(real).unwrap();
        upstream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let challenge = read_frame(&mut upstream).unwrap().unwrap();
        frame::write_frame_with(&mut victim, &challenge.header, &challenge.body).unwrap();
        let request = read_frame(&mut victim).unwrap().unwrap();
        play(
            &mut victim,
            &mut upstream,
            Relayed {
                header: request.header,
                body: request.body,
            },
        );
    });
    (addr, handle)
}

/// An honest client with the token runs `line` through `server`.
fn run_honestly(
    server: SocketAddr,
    token: &str,
    line: &str,
) -> Result<socketserver::command::Reply, CommandError> {
    Client::connect(server, Protocol::Framed)
        .unwrap()
        .with_token(token)
        .run(line)
}

/// Reads the real server's answer to a request it must refuse.
fn assert_unauthorized(upstream: &mut TcpStream, what: &str) {
    let refusal = reply_end(upstream).unwrap();
    let error = refusal.extra.get("error").and_then(|e| e.as_str());
    assert!(
        error.is_some_and(|e| e.starts_with("unauthorized")),
        "the real server ran {what}: {refusal:?}"
    );
}

/// Reads frames until an end or error frame; returns its header.
fn reply_end(stream: &mut TcpStream) -> io::Result<Header> {
    let limits = FrameLimits::new();
    loop {
        let Some(f) = read_frame_with(stream, &limits)? else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        if f.header.extra.contains_key("end") || f.header.extra.contains_key("error") {
            return Ok(f.header);
        }
    }
}

#[test]
fn a_relaying_fake_server_is_refused_both_ways() {
    const TOKEN: &str = "relay-t0ken";
    let (real, _server) = serve(CommandConfig::default().token(TOKEN));
    let marker = Marker::new("cmd-relay-marker");
    let evil = format!("touch {}", marker.0.display());

    // 1. The relay swaps the command under the honest answer: the real
    //    server refuses it, and the honest client is refused by the relay,
    //    which cannot prove the token.
    let swapped = evil.clone();
    let (fake, done) = relay(real, move |victim, upstream, got| {
        let header = Header {
            len: swapped.len() as u64,
            md5: format!("{:x}", md5::compute(swapped.as_bytes())),
            ..got.header.clone()
        };
        frame::write_frame_with(upstream, &header, swapped.as_bytes()).unwrap();
        assert_unauthorized(upstream, "the swapped command");
        // To the victim: a made-up proof, then output of its choosing.
        let fake_proof = Header::for_body(b"").with("proof", "00".repeat(32));
        frame::write_frame_with(victim, &fake_proof, b"").unwrap();
        let _ = frame::write_frame_with(
            victim,
            &Header::for_body(b"x").with("stream", "stdout"),
            b"x",
        );
        let _ = got.body;
    });
    let honest = run_honestly(fake, TOKEN, "echo honest");
    done.join().unwrap();
    println!("swapped command: the real server refused it; the client got {honest:?}");
    assert!(
        matches!(honest, Err(CommandError::ServerUnproven)),
        "{honest:?}"
    );
    assert!(!marker.0.exists(), "the swapped command ran");

    // 2. The relay passes the first request on unchanged (a proxy: that it
    //    may), then adds one of its own on the authenticated connection:
    //    refused, with or without a tag made up or copied.
    let added = evil.clone();
    let (fake, done) = relay(real, move |victim, upstream, got| {
        frame::write_frame_with(upstream, &got.header, &got.body).unwrap();
        let proof = read_frame(upstream).unwrap().unwrap();
        assert!(proof.header.extra.contains_key("proof"));
        let end = reply_end(upstream).unwrap();
        frame::write_frame_with(victim, &proof.header, &proof.body).unwrap();
        frame::write_frame_with(victim, &end, b"").unwrap();
        // Now its own, under the first request's tag.
        let header =
            Header::for_body(added.as_bytes()).with("auth", got.header.extra["auth"].clone());
        frame::write_frame_with(upstream, &header, added.as_bytes()).unwrap();
        assert_unauthorized(upstream, "the added command");
        let mut rest = Vec::new();
        assert_eq!(
            upstream.read_to_end(&mut rest).unwrap_or(0),
            0,
            "then closed"
        );
    });
    let proxied = run_honestly(fake, TOKEN, "true");
    done.join().unwrap();
    println!("pure relay: the client got {proxied:?}; the relay's own command was refused");
    assert_eq!(
        proxied.unwrap().exit,
        Some(0),
        "the honest command, relayed"
    );
    assert!(!marker.0.exists(), "the added command ran");

    // 3. A fake server with a challenge of its own and no token at all.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake = listener.local_addr().unwrap();
    let impostor = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let challenge = Header::for_body(b"")
            .with("nonce", "ab".repeat(32))
            .with("proto", command::PROTOCOL);
        frame::write_frame_with(&mut stream, &challenge, b"").unwrap();
        let request = read_frame(&mut stream).unwrap().unwrap();
        // The best it can do: echo the client's own tag back as a proof.
        let tag = request.header.extra["auth"].clone();
        frame::write_frame_with(&mut stream, &Header::for_body(b"").with("proof", tag), b"")
            .unwrap();
        let _ = frame::write_frame_with(&mut stream, &Header::for_body(b"").with("end", true), b"");
    });
    let fooled = run_honestly(fake, TOKEN, "echo secret-work");
    impostor.join().unwrap();
    println!("impostor without the token: the client got {fooled:?}");
    assert!(
        matches!(fooled, Err(CommandError::ServerUnproven)),
        "{fooled:?}"
    );
}

// ------------------------------------------------------ item 7: fair slots

#[test]
fn one_address_cannot_take_every_command_slot() {
    let (addr, server) = serve(CommandConfig::default());
    let max = CommandConfig::default().max_commands;
    // Eight clients from 127.0.0.2 each ask for endless output, and read
    // none of it.
    let hogs: Vec<TcpStream> = (0..8)
        .map(|i| {
            let mut stream = connect_from(source(2), addr).unwrap();
            frame::write_frame(&mut stream, format!("yes hog-{i}").as_bytes()).unwrap();
            stream
        })
        .collect();
    assert!(
        within(Duration::from_secs(5), || server.handler().running()
            == max / 2),
        "the hogs got {} slots",
        server.handler().running()
    );
    // Give the other four time to be refused, not merely late.
    thread::sleep(Duration::from_millis(200));
    let taken = server.handler().running();
    let started = Instant::now();
    let reply = Client::connect(addr, Protocol::Framed)
        .unwrap()
        .run("echo served");
    let took = started.elapsed();
    println!(
        "8 non-readers from 127.0.0.2 hold {taken} of {max} slots; 127.0.0.1's `echo` \
         served in {took:?}: {reply:?}"
    );
    drop(hogs);
    assert_eq!(taken, max / 2);
    assert_eq!(reply.unwrap().stdout, b"served\n");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

// ---------------------------------------------- item 8: the token's reach

#[test]
fn a_token_from_the_environment_is_out_of_reach_of_commands() {
    const TOKEN: &str = "env-t0ken-secret";
    let mut server = example("cmd_server");
    server
        .args(["127.0.0.1:0", "--allow", "cat *,printenv *"])
        .env(command::TOKEN_ENV, TOKEN);
    // Root reads any process's /proc files (CAP_SYS_PTRACE), so as root
    // the server runs as `nobody`: its commands are then what they are on
    // a real machine, processes of the same ordinary user.
    let root = rustix::process::geteuid().is_root();
    if root {
        use std::os::unix::process::CommandExt;
        server.uid(65534).gid(65534);
    }
    let server = start_server(server);
    let pid = server.child.id();
    let mut client = Client::connect(server.addr, Protocol::Framed)
        .unwrap()
        .with_token(TOKEN);
    let environ = client.run(&format!("cat /proc/{pid}/environ")).unwrap();
    let printed = client.run("printenv").unwrap();
    let here = std::fs::read(format!("/proc/{pid}/environ"));
    println!(
        "a command's `cat /proc/{pid}/environ` (server and command as {}): exit {:?}, {:?}; \
         this test's own read: {:?}",
        if root { "nobody" } else { "this user" },
        environ.exit,
        String::from_utf8_lossy(&environ.stderr).trim(),
        here.as_ref().map(Vec::len).map_err(io::Error::kind)
    );
    let has = |bytes: &[u8]| bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes());
    assert!(!has(&environ.stdout), "a command read the token in /proc");
    assert_ne!(environ.exit, Some(0));
    assert!(!has(&printed.stdout), "a command inherited the token");
    if !root {
        assert!(here.is_err_and(|e| e.kind() == io::ErrorKind::PermissionDenied));
    }
    // Still the server's /proc/PID/status for anyone, for ps and top.
    assert!(status_kib(pid, "VmRSS") > 0);
}
