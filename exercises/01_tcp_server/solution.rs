//! Exercise 1, a reference solution: the seed's TCP greeting server.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// Accepts connections for ever, each served by [`tcplink`] on a thread
/// of its own.
pub fn serve(listener: TcpListener) {
    for sock in listener.incoming() {
        match sock {
            // The thread is not joined: it ends with its connection.
            Ok(sock) => {
                thread::spawn(move || tcplink(sock));
            }
            // A failed accept (a client that gave up while queued, too
            // many open files) is that client's, not the server's end.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// One client's conversation: `Welcome!`, then `你好,<message>` for each
/// message, until `exit` or the end of the stream.
pub fn tcplink(mut sock: TcpStream) -> io::Result<()> {
    sock.write_all(b"Welcome!")?;
    let mut data = [0u8; 1024];
    loop {
        let n = sock.read(&mut data)?;
        // 0 bytes is the end of the stream: the client hung up.
        if n == 0 || &data[..n] == b"exit" {
            return Ok(());
        }
        // One write for one reply: it leaves as one piece.
        sock.write_all(&["你好,".as_bytes(), &data[..n]].concat())?;
    }
}
