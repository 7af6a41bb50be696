//! The file service's benchmark: a 1 GiB file up and down over loopback,
//! next to `cp` of the same file and the md5 crate's own throughput, with
//! the peak memory of each side.
//!
//! ```sh
//! cargo bench --bench files            # 1 GiB; FILES_BENCH_MIB=256 for less
//! ```
//!
//! The server and each client run in child processes of this benchmark
//! (it runs itself with `serve-child` or `client-child`), so each side's
//! peak resident memory (VmHWM) is its own.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::ChildServer;
use socketserver::files::{self, FileClient, FileConfig};

const MIB: f64 = 1024.0 * 1024.0;
const ROUNDS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("serve-child") => return serve_child(Path::new(&args[1])),
        Some("client-child") => return client_child(&args[1..]),
        _ => {}
    }
    let mib: usize = std::env::var("FILES_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib << 20;
    let dir = std::env::temp_dir().join(format!("socketserver-files-bench-{}", std::process::id()));
    let (root, local) = (dir.join("root"), dir.join("local"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&local).unwrap();
    let source = local.join("source.bin");
    write_random(&source, size);
    println!("# file service benchmark: {mib} MiB over 127.0.0.1, median of {ROUNDS} rounds\n");

    let md5_rate = md5_throughput();
    let cp = median(|| {
        let started = Instant::now();
        let status = Command::new("cp")
            .arg(&source)
            .arg(local.join("cp.bin"))
            .status()
            .unwrap();
        assert!(status.success());
        started.elapsed()
    });
    let _ = std::fs::remove_file(local.join("cp.bin"));

    let server = {
        let mut me = Command::new(std::env::current_exe().unwrap());
        me.arg("serve-child").arg(&root);
        ChildServer::start(me)
    };
    let server_pid = server.pid();
    let mut client_peak = 0u64;
    // CPU seconds per transfer, each side: what each would need of a core
    // of its own, where here both share two.
    let mut cpu = Vec::new();
    let mut run = |op: &str, a: &Path, b: &str| {
        median(|| {
            let server_before = common::cpu_time(&server_pid).as_secs_f64();
            let (elapsed, peak, client_cpu) = client(server.addr, op, a, b);
            cpu.push((
                op.to_owned(),
                client_cpu,
                common::cpu_time(&server_pid).as_secs_f64() - server_before,
            ));
            client_peak = client_peak.max(peak);
            elapsed
        })
    };
    let put = run("put", &source, "served.bin");
    let dest = local.join("got.bin");
    let get = run("get", &dest, "served.bin");
    assert_eq!(
        files::file_digest(&dest).unwrap(),
        files::file_digest(&source).unwrap()
    );
    let server_peak = server.peak_rss_kib();

    let rate = |d: Duration| size as f64 / MIB / d.as_secs_f64();
    println!("| transfer | MiB/s | / md5 | / cp |");
    println!("|---|---|---|---|");
    println!("| md5 crate, in memory | {md5_rate:.0} | 1.00x | |");
    println!(
        "| `cp`, page cache to page cache | {:.0} | | 1.00x |",
        rate(cp)
    );
    for (what, d) in [
        ("put (client to server)", put),
        ("get (server to client)", get),
    ] {
        println!(
            "| {what} | {:.0} | {:.2}x | {:.2}x |",
            rate(d),
            rate(d) / md5_rate,
            rate(d) / rate(cp)
        );
    }
    println!(
        "\nCPU per transfer (median round), and the rate each side would reach on a core of its own:\n"
    );
    println!(
        "| transfer | client CPU s | server CPU s | client MiB per CPU-s | server MiB per CPU-s | busier side / md5 |"
    );
    println!("|---|---|---|---|---|---|");
    for op in ["put", "get"] {
        let mut runs: Vec<(f64, f64)> = cpu
            .iter()
            .filter(|(o, _, _)| o == op)
            .map(|&(_, c, s)| (c, s))
            .collect();
        runs.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
        let (c, s) = runs[runs.len() / 2];
        let per = |secs: f64| size as f64 / MIB / secs;
        println!(
            "| {op} | {c:.2} | {s:.2} | {:.0} | {:.0} | {:.2}x |",
            per(c),
            per(s),
            per(c.max(s)) / md5_rate
        );
    }
    println!(
        "\nPeak resident memory (VmHWM): server {:.1} MB, client {:.1} MB (largest of its {} runs)",
        server_peak as f64 / 1024.0,
        client_peak as f64 / 1024.0,
        2 * ROUNDS
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS).map(|_| f()).collect();
    times.sort();
    times[ROUNDS / 2]
}

/// A file of `size` bytes that md5 cannot shortcut (not that it would).
fn write_random(path: &Path, size: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..size >> 20 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block).unwrap();
    }
}

/// md5's own speed over 256 MiB in memory, best of three, in MiB/s.
fn md5_throughput() -> f64 {
    let data = vec![0x5au8; 256 << 20];
    (0..3)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(md5::compute(&data));
            data.len() as f64 / MIB / started.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn serve_child(root: &Path) {
    let server = files::bind("127.0.0.1:0", FileConfig::new(root)).unwrap();
    println!("LISTENING {}", server.local_addr().unwrap().port());
    server.serve_forever();
}

/// One transfer in a child process, which prints its time, peak memory
/// and CPU seconds.
fn client(server: SocketAddr, op: &str, path: &Path, name: &str) -> (Duration, u64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["client-child", &server.to_string(), op])
        .arg(path)
        .arg(name)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut words = text.split_whitespace();
    let nanos: u64 = words.next().unwrap().parse().unwrap();
    let peak: u64 = words.next().unwrap().parse().unwrap();
    let cpu: f64 = words.next().unwrap().parse().unwrap();
    (Duration::from_nanos(nanos), peak, cpu)
}

fn client_child(args: &[String]) {
    let addr = &args[0];
    let (op, path, name) = (&args[1], PathBuf::from(&args[2]), &args[3]);
    let mut client = FileClient::connect(addr).unwrap();
    let started = Instant::now();
    match op.as_str() {
        "put" => client.put(&path, name, true, |_, _| {}).unwrap(),
        _ => client.get(name, &path, true, |_, _| {}).unwrap(),
    };
    println!(
        "{} {} {}",
        started.elapsed().as_nanos(),
        common::status_kib("self", "VmHWM"),
        common::cpu_time("self").as_secs_f64()
    );
}
