//! Python's `socketserver` for Rust, taught as a course.
//!
//! This crate follows the tutorial *python网络编程之socket* section by
//! section: a TCP greeting server and client, the same over UDP, the
//! `socketserver` framework of server classes and request handlers, and the
//! length-prefixed frame that cures 粘包 (sticky packets) and 分包
//! (fragmentation). Everything is blocking `std::net` on threads: no async
//! runtime, so every line can be read top to bottom.
//!
//! # Layout
//!
//! | module | what it holds | seed section |
//! |---|---|---|
//! | [`handler`] | the traits you implement: [`BaseRequestHandler`], [`StreamRequestHandler`], [`DatagramRequestHandler`] | socketserver编程 (request handler class) |
//! | [`server`] | the servers: one generic [`server::Server`] over its source and threading policy, and Python's names for it ([`TcpServer`], [`ThreadingTcpServer`], [`UdpServer`], [`ThreadingUdpServer`], Unix servers); lifecycle, shutdown, limits | socketserver编程 (server class) |
//! | [`frame`] | the seed's frame: 4-byte length, JSON header, body; reader and writer over any `Read`/`Write` | 粘包与分包, 范例 |
//! | [`proxy`] | HAProxy's PROXY protocol header (v1 text, v2 binary) over any `Read`: the client's address behind a load balancer; the servers read it with [`server::Builder::proxy_protocol`] | beyond the seed |
//! | [`greet`] | the greeting protocol: [`greet::Greeter`] for TCP and UDP servers, and the seed's clients | tcp编程, udp编程 |
//! | [`sticky`] | 粘包 and 分包 made to happen on purpose, and undone by frames | 粘包与分包 |
//! | [`command`] | the remote command service on the frame, compatible with the seed and safe by default (Unix) | 模拟远程执行命令 |
//! | [`files`] | file transfer on the frame: chunked, md5-verified, resumable, confined to a root | beyond the seed |
//! | [`trace`] | see the wire: every read and write of a conversation as a sequence diagram, text or SVG, 粘包/分包 marked | 粘包与分包 |
//! | [`tutorial`] | the course as chapters, one per seed section: what the seed shows, the Rust that does it, the pitfall, a snippet | all |
//! | [`chaos`] | a proxy that re-cuts a stream into small delayed pieces, making 分包 certain | 粘包与分包 |
//! | [`chat`] | a chat room: a writer thread and a bounded queue per client, so a client that stops reading never stalls the room | beyond the seed |
//!
//! The examples run each lesson (`cargo run --example tour` runs them all,
//! narrated in Chinese or English with `--lang zh|en`, and draws each one's
//! traffic with `--html FILE`): `tcp_server`, `tcp_client`, `udp_server`,
//! `udp_client`, `socketserver` with `socketserver_client`,
//! `sticky_packets`, `cmd_server`, `cmd_client`, `file_server`,
//! `file_client`, `chat_server`, `chat_client`, `chaos_proxy`; each says
//! what it does with `--help`. Read the [`tutorial`] for the course as
//! chapters, then do the workbook: eight exercises in `exercises/`, one per
//! lesson, each checked against real sockets by `cargo run --example
//! course -- check N`.
//!
//! # A first server
//!
//! The seed's `Myhandler` on a `ThreadingTCPServer`, in Rust:
//!
//! ```
//! use std::io::{self, Read, Write};
//! use socketserver::{Connection, ThreadingTcpServer};
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
//!     let mut res = [0u8; 1024];
//!     let n = conn.read(&mut res)?;
//!     println!("client:{} msg:{:?}", conn.peer_addr(), String::from_utf8_lossy(&res[..n]));
//!     Ok(())
//! })?;
//! let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
//! client.write_all(b"hello")?;
//! server.handle_request()?;
//! # Ok::<(), io::Error>(())
//! ```
//!
//! Where Python's server would go on with `serve_forever()`, so does this
//! one; see [`server`] for stopping it, choosing a threading policy, and
//! every limit with its default.

// One module holds `unsafe`: `command::sandbox` (with its `init`), the code
// that runs between fork and exec to put a command in a PID namespace; it
// allows it itself, with a SAFETY note on every block.
#![deny(unsafe_code)]
#![deny(missing_docs)]
// On docs.rs (`--cfg docsrs`, nightly), items behind `cfg(unix)` say
// "Available on Unix only".
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod chaos;
pub mod chat;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod command;
pub mod files;
pub mod frame;
pub mod greet;
pub mod handler;
pub mod proxy;
pub mod server;
pub mod sticky;
mod text;
pub mod trace;
pub mod tutorial;

pub use handler::{
    Addr, BaseRequestHandler, Connection, Datagram, DatagramRequestHandler, HandlerError, Stream,
    StreamRequest, StreamRequestHandler, Streamed,
};
pub use server::{
    Builder, ServerInfo, ShutdownHandle, Stats, TcpServer, ThreadingTcpServer, ThreadingUdpServer,
    UdpServer,
};
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub use server::{
    ThreadingUnixDatagramServer, ThreadingUnixStreamServer, UnixDatagramServer, UnixStreamServer,
};

/// Locks a mutex, and takes a poisoned one as it is: nothing in this crate
/// panics while it holds a lock, and a counter or a buffer is still usable
/// after a panic elsewhere. The one place the crate says so.
pub(crate) fn lock<T: ?Sized>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
