//! The course, chapter by chapter: the seed *python网络编程之socket*, read
//! next to the Rust that does the same, and the pitfalls the seed falls into.
//!
//! Each chapter follows one section of the seed. It says what the seed
//! shows, which part of this crate does it, the pitfall in the seed's code
//! (every one of them works on loopback and breaks somewhere else), and a
//! snippet you can copy; every snippet is a doc test, so it still runs as
//! written. `cargo run --example tour` runs the same lessons with
//! narration; `--html FILE` draws each one's traffic.
//!
//! Then write them yourself: the workbook in `exercises/` has one exercise
//! per lesson (chapters 2 to 7 and the chat room), each a skeleton with
//! `todo!()` where you write, checked against real sockets on loopback by
//! `cargo run --example course -- check N` (`list` shows which pass).
//!
//! # Table of contents
//!
//! 1. [数据流处理: the steps of a conversation](#1-数据流处理-the-steps-of-a-conversation)
//! 1. [tcp编程: the greeting server and client](#2-tcp编程-the-greeting-server-and-client)
//! 1. [udp编程: the same over datagrams](#3-udp编程-the-same-over-datagrams)
//! 1. [socketserver编程: server class and handler class](#4-socketserver编程-server-class-and-handler-class)
//! 1. [粘包与分包: a stream has no messages](#5-粘包与分包-a-stream-has-no-messages)
//! 1. [范例: the frame](#6-范例-the-frame)
//! 1. [模拟远程执行命令: the command service](#7-模拟远程执行命令-the-command-service)
//! 1. [Seeing it: traces and the chaos proxy](#8-seeing-it-traces-and-the-chaos-proxy)
//! 1. [Beyond one machine: a load balancer and the PROXY protocol](#9-beyond-one-machine-a-load-balancer-and-the-proxy-protocol)
//!
//! # 1. 数据流处理: the steps of a conversation
//!
//! **The seed shows** the server's steps (bind, listen, accept, handle,
//! close; UDP skips listen, accept and close) and the client's (connect,
//! send, receive, close).
//!
//! **In Rust**, [`std::net::TcpListener::bind`] is `socket` + `bind` +
//! `listen` in one call, `accept` returns the connected stream and the
//! peer's address, and dropping a stream closes it: the "close" step
//! cannot be forgotten, even on an error path.
//!
//! **The pitfall**: the seed binds a fixed port, 9999. Two copies of a
//! program (or two tests) then fight over it. Bind port 0 and ask the
//! listener which port it got; every test in this crate does.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?; // bind + listen; port 0: any free one
//! let addr = listener.local_addr()?;                 // which one we got
//! let mut client = TcpStream::connect(addr)?;        // 建立连接
//! let (mut conn, peer) = listener.accept()?;         // 接受连接
//! assert_eq!(peer, client.local_addr()?);
//! client.write_all(b"hello")?;                       // 发送数据
//! let mut buf = [0u8; 5];
//! conn.read_exact(&mut buf)?;                        // 接收数据
//! assert_eq!(&buf, b"hello");
//! drop(client); // 关闭连接: the peer reads the end of the stream
//! assert_eq!(conn.read(&mut buf)?, 0);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # 2. tcp编程: the greeting server and client
//!
//! **The seed shows** a server that sends `Welcome!` to each client, answers
//! each message with `你好,` + the message on a thread per client, and a
//! client that sends three names.
//!
//! **In Rust**: [`crate::greet::Greeter`] is the handler,
//! [`crate::ThreadingTcpServer`] the thread per client, and
//! [`crate::greet::tcp_client`] the client.
//!
//! **The pitfalls**: the seed's server takes whatever one `recv(1024)`
//! returns for one message and decodes it as UTF-8; when a `recv` ends in
//! the middle of a character (分包 does that), `decode` raises and the
//! connection dies. Its `while True: accept(); Thread(...)` starts a thread
//! for every connection with no limit. Ours works on bytes, never decodes,
//! and caps connections ([`crate::Builder::max_connections`]).
//!
//! ```
//! use socketserver::ThreadingTcpServer;
//! use socketserver::greet::{self, Greeter};
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new())?;
//! let addr = server.local_addr()?;
//! let stop = server.shutdown_handle();
//! let serving = std::thread::spawn(move || server.serve_forever());
//! let heard = greet::tcp_client(addr, &greet::SEED_NAMES)?;
//! assert_eq!(heard, ["Welcome!", "你好,Michael", "你好,Tracy", "你好,Sarah"]);
//! stop.shutdown();
//! serving.join().expect("the server thread");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # 3. udp编程: the same over datagrams
//!
//! **The seed shows** a UDP server answering each datagram with one
//! datagram, and a client that sends three names.
//!
//! **In Rust**: the same [`crate::greet::Greeter`] is also a
//! [`crate::DatagramRequestHandler`]; [`crate::UdpServer`] serves it, and
//! [`crate::greet::udp_client`] is the client.
//!
//! **The pitfall**: UDP may lose a datagram, and the seed's client waits
//! in `recv` for a reply that will never come, for ever. Ours gives each
//! reply a timeout and reports a lost one as `None`. UDP's one gift:
//! message boundaries. A datagram arrives whole or not at all, so there is
//! no 粘包 and no 分包 (up to 65,507 bytes).
//!
//! ```
//! use std::time::Duration;
//! use socketserver::UdpServer;
//! use socketserver::greet::{self, Greeter};
//!
//! let server = UdpServer::bind("127.0.0.1:0", Greeter::new())?;
//! let addr = server.local_addr()?;
//! std::thread::spawn(move || server.serve_forever());
//! let replies = greet::udp_client(addr, &["Sarah"], Duration::from_secs(2))?;
//! assert_eq!(replies, [Some("你好,Sarah".to_string())]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # 4. socketserver编程: server class and handler class
//!
//! **The seed shows** Python's `socketserver`: a server class that binds,
//! listens and runs (`ThreadingTCPServer`), and a request handler class
//! (`Myhandler.handle`) that only deals with one client's data.
//!
//! **In Rust**: [`crate::BaseRequestHandler`] is the handler class (a
//! closure works too) and [`crate::server`] holds the server classes;
//! `serve_forever`, `handle_request` and `shutdown` keep their Python names.
//!
//! **The pitfalls**: `Myhandler` reads once (`# while True:` is commented
//! out), so a client's second message is never read; and the seed never
//! stops its server. Here a server stops through a
//! [`crate::ShutdownHandle`], which may be called from anywhere, a handler
//! included (Python's `shutdown()` deadlocks there).
//!
//! ```
//! use std::io::{self, Read, Write};
//! use socketserver::{Connection, ThreadingTcpServer};
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", |conn: &mut Connection| {
//!     // Read every message until the client hangs up, not just the first.
//!     let mut buf = [0u8; 1024];
//!     loop {
//!         let n = conn.read(&mut buf)?;
//!         if n == 0 {
//!             return Ok(());
//!         }
//!         conn.write_all(&buf[..n])?;
//!     }
//! })?;
//! let mut client = std::net::TcpStream::connect(server.local_addr()?)?;
//! client.write_all(b"one")?;
//! client.shutdown(std::net::Shutdown::Write)?;
//! server.handle_request()?; // serve exactly one connection
//! let mut echoed = String::new();
//! client.read_to_string(&mut echoed)?;
//! assert_eq!(echoed, "one");
//! # Ok::<(), io::Error>(())
//! ```
//!
//! # 5. 粘包与分包: a stream has no messages
//!
//! **The seed shows** 粘包 (two sends, one `recv` returns both) and 分包
//! (one send, several `recv`s), blaming Nagle's algorithm for the first and
//! the MTU/MSS for the second.
//!
//! **In Rust**: [`crate::sticky`] makes both happen on purpose, and
//! [`crate::trace`] shows which bytes each call moved.
//!
//! **The pitfall**: Nagle is one way to get 粘包, not the cause, and
//! turning it off (`TCP_NODELAY`) does not cure it: a receiver that reads
//! late finds two messages in its buffer whatever the segments were. The
//! cause is that TCP is a byte stream. The only cure is to write message
//! boundaries into the stream.
//!
//! ```
//! use std::io::{Read, Write};
//! use socketserver::trace::{Side, Trace};
//!
//! // Two writes with Nagle off, read late by one read: still 粘包.
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let client = std::net::TcpStream::connect(listener.local_addr()?)?;
//! client.set_nodelay(true)?;
//! let (server, _) = listener.accept()?;
//! let trace = Trace::new("nodelay does not help");
//! let mut client = trace.wrap(client, Side::Client);
//! client.write_all(b"hello")?;
//! client.write_all(b"world")?;
//! let mut peek = [0u8; 10];
//! while server.peek(&mut peek)? < 10 {} // the receiver is busy elsewhere
//! let mut server = trace.wrap(server, Side::Server);
//! let mut buf = [0u8; 1024];
//! let n = server.read(&mut buf)?;
//! assert_eq!(&buf[..n], b"helloworld");
//! assert!(trace.reads()[0].sticky);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # 6. 范例: the frame
//!
//! **The seed shows** its cure: a 4-byte header length
//! (`struct.pack('i')`), a JSON header with `ver`, `md5` and `lenth`, then
//! the body; the receiver reads the length, then the header, then the body.
//!
//! **In Rust**: [`crate::frame`] writes and reads exactly this format,
//! byte-compatible with the seed's Python.
//!
//! **The pitfalls**: the seed's client reads the length with `recv(4)` and
//! the header with `recv(head_len)`, assuming each returns exactly that
//! many bytes: the very 分包 the frame was meant to cure. `recv(4)` may
//! return 2. It also sends each frame as three `send`s, and with Nagle on,
//! every reply then waits ~40 ms for a delayed ACK. Our reader loops until
//! it has each part (and checks the md5); our writer sends a frame in one
//! write. Below, a reader that hands over one byte per `read` (worst-case
//! 分包) still gets both frames back:
//!
//! ```
//! use std::io::Read;
//! use socketserver::frame;
//!
//! /// A stream that returns one byte per read.
//! struct Drip<'a>(&'a [u8]);
//! impl Read for Drip<'_> {
//!     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
//!         if self.0.is_empty() || buf.is_empty() {
//!             return Ok(0);
//!         }
//!         buf[0] = self.0[0];
//!         self.0 = &self.0[1..];
//!         Ok(1)
//!     }
//! }
//!
//! let mut wire = Vec::new();
//! frame::write_frame(&mut wire, b"hello")?;
//! frame::write_frame(&mut wire, "你好".as_bytes())?;
//! let mut drip = Drip(&wire);
//! assert_eq!(frame::read_frame(&mut drip)?.expect("a frame").body, b"hello");
//! assert_eq!(frame::read_frame(&mut drip)?.expect("a frame").body, "你好".as_bytes());
//! assert!(frame::read_frame(&mut drip)?.is_none()); // a clean end
//! # Ok::<(), frame::FrameError>(())
//! ```
//!
//! # 7. 模拟远程执行命令: the command service
//!
//! **The seed shows** a server that runs each received line with
//! `subprocess.Popen(..., shell=True)` and sends back the output as a
//! frame, and a `>>>` client.
//!
//! **In Rust**: [`crate::command`] (Unix), wire-compatible with the seed's
//! client and server.
//!
//! **The pitfalls**: the seed's server listens on `0.0.0.0` and runs any
//! shell line for anyone who connects: remote code execution by design. It
//! reads all of stderr before stdout, so a command that fills the stdout
//! pipe deadlocks; it drops stdout whenever stderr is not empty; it never
//! kills a command that runs for ever. Ours binds loopback, runs programs
//! without a shell, requires a token off loopback, reads both pipes at
//! once, keeps both with the exit status, and kills on a timeout.
//!
//! ```
//! # #[cfg(unix)]
//! # {
//! use socketserver::command::{self, Client, CommandConfig, Protocol};
//!
//! let server = command::bind("127.0.0.1:0", CommandConfig::default())?;
//! let addr = server.local_addr()?;
//! std::thread::spawn(move || server.serve_forever());
//! let mut client = Client::connect(addr, Protocol::Framed)?;
//! let reply = client.run("echo a; echo b")?; // no shell: `;` is an argument
//! assert_eq!(reply.stdout, b"a; echo b\n");
//! assert_eq!(reply.exit, Some(0));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 8. Seeing it: traces and the chaos proxy
//!
//! **Beyond the seed.** On loopback, a short message almost always arrives
//! in one `recv`, so code that takes one `recv` for one message seems to
//! work, and the seed's clients do. [`crate::chaos::Proxy`] re-cuts a
//! stream into pieces of a few bytes to show what a real network may do;
//! [`crate::trace`] draws what each call moved, in text
//! ([`crate::trace::Trace::text`]) or SVG ([`crate::trace::html`]).
//!
//! **The pitfall it catches**: every one above that assumes a `recv`
//! returns a message.
//!
//! ```
//! use std::time::Duration;
//! use socketserver::ThreadingTcpServer;
//! use socketserver::chaos::{self, Chaos, Proxy};
//! use socketserver::greet::Greeter;
//!
//! let server = ThreadingTcpServer::bind("127.0.0.1:0", Greeter::new())?;
//! let upstream = server.local_addr()?;
//! std::thread::spawn(move || server.serve_forever());
//! let chaos = Chaos::new().segment(2).delay(Duration::from_millis(20)).trace(true);
//! let proxy = Proxy::start("127.0.0.1:0", upstream, chaos)?;
//! let heard = chaos::one_recv_client(proxy.local_addr(), &["Tracy"])?;
//! assert_ne!(heard[0], "Welcome!"); // the seed's client got a piece of it
//! let trace = proxy.traces().remove(0);
//! proxy.shutdown();
//! assert!(trace.arrows().iter().any(|a| a.split)); // 分包, drawn
//! println!("{}", trace.text());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # 9. Beyond one machine: a load balancer and the PROXY protocol
//!
//! **Beyond the seed.** When one process is not enough, several share a
//! port ([`Builder::reuse_port`](crate::Builder::reuse_port), Linux's
//! `SO_REUSEPORT`: the kernel spreads new connections over them); when one
//! machine is not enough, a load balancer such as HAProxy goes in front.
//! Then every connection a server accepts comes from the balancer.
//!
//! **The pitfall**: behind a balancer the seed's log line
//! (`从%s:%s接受新连接`) names the balancer for every client, and anything
//! that counts clients by address (a per-address cap, `verify_request`)
//! counts one client: the first 16 users fill the cap for everyone. HAProxy's
//! PROXY protocol fixes it: the balancer starts each connection with a
//! header naming the real client, and a server that trusts that balancer
//! ([`Builder::proxy_protocol`](crate::Builder::proxy_protocol), and only
//! from the addresses it lists) takes the client's address from it. Python's
//! `socketserver` has no such option.
//!
//! **Run it for real**: `cargo run --example scale_out` (HAProxy from the
//! system's packages) starts two `tcp_server` processes on one port
//! (`--reuse-port --proxy-protocol 127.0.0.9`) and HAProxy in front with
//! `send-proxy-v2`, runs the seed's client through it, shows each process
//! logging the real clients (`从127.0.0.2:…`, never the balancer's
//! 127.0.0.9), and holds 40 connections from 127.0.0.2 open: each process
//! serves 16 of them and refuses the rest, while a client from 127.0.0.3 is
//! still served; a client that goes round the balancer with a header of
//! its own, to pass for someone else, is closed unserved (it is not the
//! trusted balancer). Here the snippet plays the balancer, with a v1
//! header:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use socketserver::ThreadingTcpServer;
//! use socketserver::greet::Greeter;
//! use socketserver::server::proxy::Network;
//!
//! let server = ThreadingTcpServer::builder(Greeter::new())
//!     .proxy_protocol(["127.0.0.1".parse::<Network>()?]) // the balancer: this snippet
//!     .max_per_peer(Some(1)) // one connection at a time per client
//!     .reuse_port(true) // another process may share the port
//!     .bind("127.0.0.1:0")?;
//! let addr = server.local_addr()?;
//! let stop = server.shutdown_handle();
//! let serving = std::thread::spawn(move || {
//!     server.serve_forever();
//!     server.stats()
//! });
//! // What a balancer sends first on each connection it opens for a client.
//! let from = |client: &str| -> std::io::Result<TcpStream> {
//!     let mut conn = TcpStream::connect(addr)?;
//!     write!(conn, "PROXY TCP4 {client} 192.0.2.1 51000 9999\r\n")?;
//!     Ok(conn)
//! };
//! let mut welcome = [0; 8];
//! let mut first = from("203.0.113.7")?;
//! first.read_exact(&mut welcome)?; // served
//! let mut again = from("203.0.113.7")?; // the same client: over its cap
//! let mut unserved = Vec::new();
//! again.read_to_end(&mut unserved)?;
//! assert!(unserved.is_empty());
//! let mut other = from("203.0.113.8")?; // another client, same balancer: served
//! other.read_exact(&mut welcome)?;
//! assert_eq!(&welcome, b"Welcome!");
//! stop.shutdown();
//! assert_eq!(serving.join().unwrap().refused_per_peer, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
