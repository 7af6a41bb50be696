//! Exercise 3, a reference solution: the seed's UDP greeting server.

use std::io;
use std::net::UdpSocket;

/// Answers every datagram with `你好,` and its bytes, to its sender.
pub fn serve(socket: UdpSocket) {
    // The largest UDP payload over IPv4: a smaller buffer cuts a longer
    // datagram short without a word (the seed's recvfrom(1024) does).
    let mut data = vec![0u8; 65_507];
    loop {
        let (n, addr) = match socket.recv_from(&mut data) {
            Ok(got) => got,
            // On some systems an ICMP "port unreachable" from an earlier
            // reply comes back as an error here: it is not the server's end.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => {
                eprintln!("recv_from: {e}");
                continue;
            }
        };
        // n == 0 is an empty datagram, not an end: UDP has no connection
        // to end. It is greeted like any other.
        let reply = ["你好,".as_bytes(), &data[..n]].concat();
        if let Err(e) = socket.send_to(&reply, addr) {
            eprintln!("send_to {addr}: {e}");
        }
    }
}
