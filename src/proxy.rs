//! HAProxy's PROXY protocol: the client's address, told by the load
//! balancer in front of the server.
//!
//! # The problem
//!
//! Behind a TCP load balancer (HAProxy, nginx's stream module, a cloud
//! balancer) every connection a server accepts comes from the balancer:
//! `accept` reports the balancer's address, so the per-address cap,
//! `verify_request` and every log line see one client, the balancer. The
//! balancer knows the real client; the PROXY protocol
//! ([HAProxy's `doc/proxy-protocol.txt`](https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt))
//! is how it tells: before the client's first byte it writes one header on
//! the connection to the server, once, and then relays the client's bytes
//! unchanged.
//!
//! ```text
//!  client 203.0.113.7:51000      balancer 10.0.0.2       server 10.0.0.9:7000
//!        |  "hello"  --->           |  header + "hello" --->   |  peer_addr() = 203.0.113.7:51000
//!                                                              |  proxy_addr() = 10.0.0.2:40000
//! ```
//!
//! Two rules make it safe, and the framework keeps both
//! ([`Builder::proxy_protocol`](crate::server::Builder::proxy_protocol)):
//!
//! * **Only trusted balancers may speak it.** Anyone can write a header;
//!   believed from anyone, it lets every client claim any address. So the
//!   header is taken only from the balancers' own addresses, and a
//!   connection from anywhere else is closed before a byte is read.
//! * **A receiver never guesses.** With the protocol on, every connection
//!   must start with a header: one that does not is closed, never served
//!   as if it had none (or a client could skip the header and appear as
//!   the balancer).
//!
//! # Version 1: one line of text
//!
//! ```text
//! "PROXY" SP family SP source SP destination SP sport SP dport CRLF
//!
//! PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n
//! PROXY TCP6 2001:db8::1 2001:db8::11 56324 443\r\n
//! PROXY UNKNOWN\r\n                    (the balancer does not know: use the connection's own)
//! ```
//!
//! Single spaces, decimal ports, at most 107 bytes with the CRLF (the
//! longest `UNKNOWN` line the specification allows), so a reader never
//! needs more than 107 bytes to know the line is bad.
//!
//! ```
//! use socketserver::server::proxy::{read_header, Header};
//!
//! let mut wire: &[u8] = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nhello";
//! let header = read_header(&mut wire)?;
//! assert_eq!(
//!     header,
//!     Header::Proxied {
//!         source: "192.168.0.1:56324".parse().unwrap(),
//!         destination: "192.168.0.11:443".parse().unwrap(),
//!     }
//! );
//! assert_eq!(wire, b"hello"); // not a byte past the header was read
//! # Ok::<(), socketserver::server::proxy::ProxyError>(())
//! ```
//!
//! # Version 2: binary
//!
//! ```text
//!  0                12      13      14              16
//! +-----------------+-------+-------+---------------+--------------------------+
//! | signature (12)  |ver|cmd|fam|prt| length (BE16) | addresses, then TLVs ... |
//! +-----------------+-------+-------+---------------+--------------------------+
//!  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A        ("\r\n\r\n\0\r\nQUIT\n")
//!
//!  ver|cmd: 0x20 LOCAL (a health check: the balancer itself), 0x21 PROXY
//!  fam|prt: 0x11 TCP over IPv4 (addresses: 4 + 4 + 2 + 2 = 12 bytes)
//!           0x21 TCP over IPv6 (16 + 16 + 2 + 2 = 36 bytes)
//!           0x00 unspecified   (no addresses: as LOCAL)
//! ```
//!
//! The signature cannot begin any text protocol (it holds a NUL and
//! `QUIT`), and the length says exactly how much follows; this reader takes
//! at most [`MAX_V2_LEN`] of it (the TLVs, such as HAProxy's TLS details,
//! are read and skipped).
//!
//! ```
//! use socketserver::server::proxy::{read_header, Header};
//!
//! let mut wire: &[u8] = &[
//!     0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, // signature
//!     0x21, 0x11, 0x00, 0x0C, // version 2, PROXY; TCP over IPv4; 12 bytes follow
//!     192, 168, 0, 1, 192, 168, 0, 11, // source, destination
//!     0xDC, 0x04, 0x01, 0xBB, // ports 56324, 443
//! ];
//! assert_eq!(
//!     read_header(&mut wire)?,
//!     Header::Proxied {
//!         source: "192.168.0.1:56324".parse().unwrap(),
//!         destination: "192.168.0.11:443".parse().unwrap(),
//!     }
//! );
//! # Ok::<(), socketserver::server::proxy::ProxyError>(())
//! ```
//!
//! # Reading it exactly
//!
//! The header is followed at once by the client's bytes, which belong to
//! the handler, so the reader must not read one byte past the header, and
//! must not trust the peer for how much to read: the first 15 bytes (the
//! shortest header, `PROXY UNKNOWN\r\n`) tell the version; a v1 line is
//! then read in pieces that cannot pass its CRLF, to at most 107 bytes; a
//! v2 header's 16th byte completes its prefix, and its length is checked
//! against [`MAX_V2_LEN`] before a byte of the rest is read. On a socket the
//! framework peeks at what has arrived and reads exactly the line, so a
//! whole header costs a few system calls.
//!
//! Datagrams (UDP) are not supported: v2 can prefix each datagram, but no
//! server here takes it.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// The longest v1 header, CRLF included (the specification's worst case:
/// `PROXY UNKNOWN` with two full IPv6 addresses and ports).
pub const MAX_V1_LEN: usize = 107;

/// The most a v2 header may announce after its 16-byte prefix: the
/// addresses (at most 216 bytes, for Unix paths) and room for the TLVs
/// balancers add (HAProxy's TLS details, a cloud balancer's endpoint id).
/// A longer one is refused unread ([`ProxyError::Oversized`]).
pub const MAX_V2_LEN: usize = 1024;

/// How long a trusted balancer has to deliver the header when the server
/// has no [`initial_deadline`](crate::server::Builder::initial_deadline).
pub const HEADER_DEADLINE: Duration = Duration::from_secs(5);

/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The bytes read before the version is known: the shortest header.
const FIRST: usize = 15;

/// What a PROXY header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The balancer relays a client: `source` is the client's address as
    /// the balancer saw it, `destination` the address the client connected
    /// to (the balancer's front).
    Proxied {
        /// The client.
        source: SocketAddr,
        /// Where the client connected.
        destination: SocketAddr,
    },
    /// The connection is the balancer's own (a v2 `LOCAL` health check, a
    /// v1 `UNKNOWN` line, or v2 with no address family): serve it as the
    /// balancer, with the connection's real addresses.
    Local,
}

/// Why a header was refused. Each closes the connection it came on.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyError {
    /// The connection does not start with `PROXY ` or the v2 signature: a
    /// client talking straight to the server, or a balancer without the
    /// protocol turned on.
    MissingSignature,
    /// The header starts right but breaks the specification (what is
    /// wrong is said).
    Malformed(&'static str),
    /// Longer than a header may be: a v1 line with no CRLF within
    /// [`MAX_V1_LEN`] bytes, or a v2 length over [`MAX_V2_LEN`].
    Oversized,
    /// A well-formed header for a kind of connection this server cannot
    /// take as a TCP client: Unix-domain addresses, or datagrams.
    UnsupportedFamily(&'static str),
    /// Reading failed: the peer closed before the header's end
    /// (`UnexpectedEof`), or the deadline passed (`TimedOut`: a late or
    /// dripping header).
    Io(io::Error),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::MissingSignature => f.write_str("no PROXY protocol header"),
            ProxyError::Malformed(what) => write!(f, "malformed PROXY header: {what}"),
            ProxyError::Oversized => write!(
                f,
                "PROXY header too long (v1: over {MAX_V1_LEN} bytes, v2: over {MAX_V2_LEN} after its prefix)"
            ),
            ProxyError::UnsupportedFamily(what) => {
                write!(f, "PROXY header for an unsupported family: {what}")
            }
            ProxyError::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ProxyError {
    fn from(e: io::Error) -> ProxyError {
        ProxyError::Io(e)
    }
}

/// Reads one PROXY header (v1 or v2) from `r`, and not a byte more.
///
/// Works on any reader, one small read at a time (a v1 line in pieces of
/// one or two bytes, which cannot pass its CRLF); give it a socket with a
/// read timeout or a deadline, or a dripping peer holds it.
///
/// # Errors
///
/// A [`ProxyError`]: no signature, a malformed or oversized header, an
/// unsupported family, or the reader's error (end of stream before the
/// header's end is `UnexpectedEof`).
pub fn read_header(r: &mut impl Read) -> Result<Header, ProxyError> {
    read_with(&mut Plain(r))
}

/// Where a header's bytes come from: exact reads, and reads of a v1 line
/// that never pass its end.
pub(crate) trait Source {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()>;
    /// Reads at least one byte of the line's rest into `buf` (not empty),
    /// never past a `\n`; `after_cr`: the last byte read was `\r`.
    fn read_line_part(&mut self, buf: &mut [u8], after_cr: bool) -> io::Result<usize>;
}

/// Any reader: a v1 line two bytes at a time (one after a `\r`), since a
/// line that has not ended has at least its CRLF to come.
struct Plain<'a, R>(&'a mut R);

impl<R: Read> Source for Plain<'_, R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf)
    }
    fn read_line_part(&mut self, buf: &mut [u8], after_cr: bool) -> io::Result<usize> {
        let n = if after_cr { 1 } else { buf.len().min(2) };
        self.0.read_exact(&mut buf[..n])?;
        Ok(n)
    }
}

/// Reads a header from `src`: the shared path of [`read_header`] and the
/// server's peeking reader.
pub(crate) fn read_with(src: &mut impl Source) -> Result<Header, ProxyError> {
    let mut buf = [0u8; MAX_V1_LEN];
    src.read_exact(&mut buf[..FIRST])?;
    if buf[..6] == *b"PROXY " {
        let mut len = FIRST;
        while !buf[..len].contains(&b'\n') {
            if len == MAX_V1_LEN {
                return Err(ProxyError::Oversized);
            }
            let after_cr = buf[len - 1] == b'\r';
            len += src.read_line_part(&mut buf[len..], after_cr)?;
        }
        return parse_v1(&buf[..len]);
    }
    if buf[..12] == V2_SIGNATURE {
        let mut prefix = [0u8; 16];
        prefix[..FIRST].copy_from_slice(&buf[..FIRST]);
        src.read_exact(&mut prefix[FIRST..])?;
        let len = usize::from(u16::from_be_bytes([prefix[14], prefix[15]]));
        if len > MAX_V2_LEN {
            return Err(ProxyError::Oversized);
        }
        let mut body = [0u8; MAX_V2_LEN];
        src.read_exact(&mut body[..len])?;
        return parse_v2(&prefix, &body[..len]);
    }
    Err(ProxyError::MissingSignature)
}

/// Parses one whole v1 line, CRLF included.
///
/// # Errors
///
/// As [`read_header`], without the I/O.
pub fn parse_v1(line: &[u8]) -> Result<Header, ProxyError> {
    let Some(body) = line.strip_prefix(b"PROXY ") else {
        return Err(ProxyError::MissingSignature);
    };
    if line.len() > MAX_V1_LEN {
        return Err(ProxyError::Oversized);
    }
    let Some(body) = body.strip_suffix(b"\r\n") else {
        return Err(ProxyError::Malformed("the line does not end in CRLF"));
    };
    if body.contains(&b'\n') || body.contains(&b'\r') {
        return Err(ProxyError::Malformed("a line break inside the line"));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ProxyError::Malformed("bytes that are not ASCII"))?;
    let mut fields = text.split(' ');
    match fields.next() {
        // The rest, if any, is to be ignored.
        Some("UNKNOWN") => return Ok(Header::Local),
        Some("TCP4" | "TCP6") => {}
        _ => {
            return Err(ProxyError::Malformed(
                "the family is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    }
    let v6 = text.starts_with("TCP6");
    let fields: Vec<&str> = fields.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Err(ProxyError::Malformed(
            "not four fields separated by single spaces",
        ));
    };
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        if v6 {
            Ipv6Addr::from_str(s).map(IpAddr::V6)
        } else {
            Ipv4Addr::from_str(s).map(IpAddr::V4)
        }
        .map_err(|_| ProxyError::Malformed("an address not of the family"))
    };
    Ok(Header::Proxied {
        source: SocketAddr::new(ip(src)?, port(sport)?),
        destination: SocketAddr::new(ip(dst)?, port(dport)?),
    })
}

/// A v1 port: 1 to 5 decimal digits, at most 65535.
fn port(s: &str) -> Result<u16, ProxyError> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| s.parse().ok())
        .flatten()
        .ok_or(ProxyError::Malformed("a port that is not 0 to 65535"))
}

/// Parses a v2 header: its 16-byte prefix and the `length` bytes after it.
///
/// # Errors
///
/// As [`read_header`], without the I/O.
pub fn parse_v2(prefix: &[u8; 16], rest: &[u8]) -> Result<Header, ProxyError> {
    if prefix[..12] != V2_SIGNATURE {
        return Err(ProxyError::MissingSignature);
    }
    if usize::from(u16::from_be_bytes([prefix[14], prefix[15]])) != rest.len() {
        return Err(ProxyError::Malformed("the length is not what follows"));
    }
    if rest.len() > MAX_V2_LEN {
        return Err(ProxyError::Oversized);
    }
    if prefix[12] >> 4 != 2 {
        return Err(ProxyError::Malformed("a version other than 2"));
    }
    match prefix[12] & 0x0F {
        // LOCAL: the addresses, if any, are to be ignored.
        0x0 => return Ok(Header::Local),
        0x1 => {}
        _ => return Err(ProxyError::Malformed("a command other than LOCAL or PROXY")),
    }
    let (family, transport) = (prefix[13] >> 4, prefix[13] & 0x0F);
    match (family, transport) {
        // Unspecified: the balancer relays something it cannot describe.
        (0x0, _) => return Ok(Header::Local),
        (0x1 | 0x2, 0x1) => {}
        (0x1 | 0x2, 0x2) => return Err(ProxyError::UnsupportedFamily("datagrams")),
        (0x3, _) => return Err(ProxyError::UnsupportedFamily("Unix-domain addresses")),
        _ => return Err(ProxyError::Malformed("an unknown family or transport")),
    }
    let ip_len = if family == 0x1 { 4 } else { 16 };
    let Some(addrs) = rest.get(..2 * ip_len + 4) else {
        return Err(ProxyError::Malformed("shorter than its addresses"));
    };
    let (ips, ports) = addrs.split_at(2 * ip_len);
    let ip = |b: &[u8]| -> IpAddr {
        match <[u8; 16]>::try_from(b) {
            Ok(v6) => IpAddr::from(v6),
            Err(_) => {
                let mut v4 = [0u8; 4];
                v4.copy_from_slice(b);
                IpAddr::from(v4)
            }
        }
    };
    let port_at = |i: usize| u16::from_be_bytes([ports[i], ports[i + 1]]);
    Ok(Header::Proxied {
        source: SocketAddr::new(ip(&ips[..ip_len]), port_at(0)),
        destination: SocketAddr::new(ip(&ips[ip_len..]), port_at(2)),
    })
}

/// A network of trusted balancers: an address and a prefix length
/// (`10.0.0.0/8`; a single address is `/32` or `/128`).
///
/// ```
/// use socketserver::server::proxy::Network;
///
/// let lan: Network = "10.0.0.0/8".parse()?;
/// assert!(lan.contains("10.1.2.3".parse().unwrap()));
/// assert!(!lan.contains("11.0.0.1".parse().unwrap()));
/// let one: Network = "127.0.0.1".parse()?; // a single address
/// assert!(one.contains("::ffff:127.0.0.1".parse().unwrap())); // as a dual-stack socket sees it
/// assert!("10.0.0.0/33".parse::<Network>().is_err());
/// # Ok::<(), socketserver::server::proxy::NetworkParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// The network of `addr` with `prefix` leading bits, or `None` if the
    /// prefix is longer than the address (32 for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Network> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Network { addr, prefix })
    }

    /// Whether `ip` is in this network; an IPv4-mapped IPv6 address counts
    /// as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        // The top `prefix` bits of a `width`-bit address.
        let mask = |width: u32| match u32::from(self.prefix) {
            0 => 0,
            p => (u128::MAX << (128 - p)) >> (128 - width),
        };
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask(32);
                u128::from(u32::from(net)) & m == u128::from(u32::from(ip)) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask(128);
                u128::from(net) & m == u128::from(ip) & m
            }
            _ => false,
        }
    }
}

impl From<IpAddr> for Network {
    /// The single address.
    fn from(addr: IpAddr) -> Network {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Network { addr, prefix }
    }
}

impl From<Ipv4Addr> for Network {
    fn from(addr: Ipv4Addr) -> Network {
        Network::from(IpAddr::V4(addr))
    }
}

impl From<Ipv6Addr> for Network {
    fn from(addr: Ipv6Addr) -> Network {
        Network::from(IpAddr::V6(addr))
    }
}

/// A [`Network`] that did not parse: not `ADDRESS` or `ADDRESS/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkParseError(String);

impl fmt::Display for NetworkParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an address or a network (10.0.0.0/8, 2001:db8::/32): {:?}",
            self.0
        )
    }
}

impl std::error::Error for NetworkParseError {}

impl FromStr for Network {
    type Err = NetworkParseError;
    fn from_str(s: &str) -> Result<Network, NetworkParseError> {
        let bad = || NetworkParseError(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        match prefix {
            None => Ok(Network::from(addr)),
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                Network::new(addr, p.parse().map_err(|_| bad())?).ok_or_else(bad)
            }
            Some(_) => Err(bad()),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn proxied(src: &str, dst: &str) -> Header {
        Header::Proxied {
            source: addr(src),
            destination: addr(dst),
        }
    }

    /// Reads a header from `wire` followed by `after`, and checks that
    /// `after` is left unread.
    fn read_exactly(wire: &[u8]) -> Result<Header, ProxyError> {
        let input = [wire, b"AFTER"].concat();
        let mut r: &[u8] = &input;
        let header = read_header(&mut r);
        if header.is_ok() {
            assert_eq!(r, b"AFTER", "read past the header of {wire:?}");
        }
        header
    }

    /// A reader that hands out one byte per call: a header split anywhere.
    struct Drip<'a>(&'a [u8]);
    impl Read for Drip<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            match buf.first_mut() {
                Some(b) => *b = first,
                None => return Ok(0),
            }
            self.0 = rest;
            Ok(1)
        }
    }

    const V2_TCP4: [u8; 28] = [
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00,
        0x0C, 192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB,
    ];

    // The specification's v1 examples: the one in its text, its worst cases
    // for each family (56, 104 and 107 bytes), and the shortest line.
    #[test]
    fn the_specifications_v1_lines() {
        let ffff6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let cases: Vec<(String, Header)> = vec![
            (
                "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".into(),
                proxied("192.168.0.1:56324", "192.168.0.11:443"),
            ),
            (
                "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n".into(),
                proxied("255.255.255.255:65535", "255.255.255.255:65535"),
            ),
            (
                format!("PROXY TCP6 {ffff6} {ffff6} 65535 65535\r\n"),
                proxied(&format!("[{ffff6}]:65535"), &format!("[{ffff6}]:65535")),
            ),
            ("PROXY UNKNOWN\r\n".into(), Header::Local),
            (
                format!("PROXY UNKNOWN {ffff6} {ffff6} 65535 65535\r\n"),
                Header::Local,
            ),
            (
                "PROXY TCP6 ::1 ::1 56324 443\r\n".into(),
                proxied("[::1]:56324", "[::1]:443"),
            ),
        ];
        let lens: Vec<usize> = cases.iter().map(|(line, _)| line.len()).collect();
        assert_eq!(lens, [47, 56, 104, 15, 107, 30]);
        for (line, want) in cases {
            assert_eq!(read_exactly(line.as_bytes()).unwrap(), want, "{line:?}");
            let header = read_header(&mut Drip(line.as_bytes())).unwrap();
            assert_eq!(header, want, "{line:?}, a byte at a time");
        }
    }

    // The specification's v2 examples: PROXY over IPv4 and IPv6, LOCAL,
    // and TLVs after the addresses, which are read and skipped.
    #[test]
    fn the_specifications_v2_headers() {
        assert_eq!(
            read_exactly(&V2_TCP4).unwrap(),
            proxied("192.168.0.1:56324", "192.168.0.11:443")
        );
        let mut v6 = V2_SIGNATURE.to_vec();
        v6.extend_from_slice(&[0x21, 0x21, 0x00, 36]);
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::11".parse().unwrap();
        v6.extend_from_slice(&src.octets());
        v6.extend_from_slice(&dst.octets());
        v6.extend_from_slice(&[0xDC, 0x04, 0x01, 0xBB]);
        assert_eq!(
            read_exactly(&v6).unwrap(),
            proxied("[2001:db8::1]:56324", "[2001:db8::11]:443")
        );
        let local = [&V2_SIGNATURE[..], &[0x20, 0x00, 0x00, 0x00]].concat();
        assert_eq!(read_exactly(&local).unwrap(), Header::Local);
        // LOCAL with addresses: they are ignored, but read.
        let mut local4 = V2_TCP4;
        local4[12] = 0x20;
        assert_eq!(read_exactly(&local4).unwrap(), Header::Local);
        // PP2_TYPE_NOOP, 3 bytes of value, after the addresses.
        let mut tlv = V2_TCP4.to_vec();
        tlv[15] = 12 + 6;
        tlv.extend_from_slice(&[0x04, 0x00, 0x03, 1, 2, 3]);
        assert_eq!(
            read_exactly(&tlv).unwrap(),
            proxied("192.168.0.1:56324", "192.168.0.11:443")
        );
        let header = read_header(&mut Drip(&tlv)).unwrap();
        assert_eq!(header, proxied("192.168.0.1:56324", "192.168.0.11:443"));
    }

    #[test]
    fn a_connection_without_a_header_has_no_signature() {
        for wire in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"proxy tcp4 1.2.3.4",
        ] {
            assert!(matches!(
                read_exactly(wire),
                Err(ProxyError::MissingSignature)
            ));
        }
    }

    #[test]
    fn malformed_v1_lines_are_refused() {
        for line in [
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",    // LF without CR
            "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", // two spaces
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            "PROXY TCP4 ::1 ::1 1 2\r\n", // not the family's
            "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", // a field short
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", // one too many
            "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", // octal-looking
        ] {
            let got = read_exactly(line.as_bytes());
            assert!(
                matches!(got, Err(ProxyError::Malformed(_))),
                "{line:?}: {got:?}"
            );
        }
    }

    #[test]
    fn a_v1_line_without_its_end_stops_at_107_bytes() {
        let mut wire = b"PROXY UNKNOWN ".to_vec();
        wire.resize(500, b'x');
        let mut r: &[u8] = &wire;
        assert!(matches!(read_header(&mut r), Err(ProxyError::Oversized)));
        assert_eq!(wire.len() - r.len(), MAX_V1_LEN, "read no more than 107");
    }

    #[test]
    fn a_v2_length_over_the_bound_is_refused_unread() {
        let mut wire = V2_TCP4.to_vec();
        wire[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        let mut r: &[u8] = &wire;
        assert!(matches!(read_header(&mut r), Err(ProxyError::Oversized)));
        assert_eq!(wire.len() - r.len(), 16, "only the prefix was read");
        // The bound itself is allowed.
        let mut at_bound = V2_TCP4.to_vec();
        at_bound[14..16].copy_from_slice(&(MAX_V2_LEN as u16).to_be_bytes());
        at_bound.resize(16 + MAX_V2_LEN, 0);
        assert!(read_exactly(&at_bound).is_ok());
    }

    #[test]
    fn malformed_and_unsupported_v2_headers_are_refused() {
        let with = |at: usize, byte: u8| {
            let mut wire = V2_TCP4;
            wire[at] = byte;
            read_exactly(&wire)
        };
        assert!(matches!(with(12, 0x11), Err(ProxyError::Malformed(_)))); // version 1
        assert!(matches!(with(12, 0x22), Err(ProxyError::Malformed(_)))); // command 2
        assert!(matches!(with(13, 0x41), Err(ProxyError::Malformed(_)))); // family 4
        assert!(matches!(
            with(13, 0x12),
            Err(ProxyError::UnsupportedFamily(_))
        )); // UDP
        assert!(matches!(
            with(13, 0x31),
            Err(ProxyError::UnsupportedFamily(_))
        )); // Unix
        assert!(matches!(with(13, 0x21), Err(ProxyError::Malformed(_)))); // IPv6, 12 bytes
        assert_eq!(with(13, 0x00).unwrap(), Header::Local); // unspecified
    }

    #[test]
    fn a_header_cut_short_is_an_unexpected_end() {
        for wire in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"[..],
            &V2_TCP4[..20],
            b"PROXY",
        ] {
            let got = read_header(&mut &wire[..]);
            assert!(
                matches!(&got, Err(ProxyError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof),
                "{got:?}"
            );
        }
    }

    #[test]
    fn networks_hold_their_addresses() {
        let net = |s: &str| s.parse::<Network>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.255.0.1")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")), "families apart");
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("::ffff:127.0.0.1").contains(ip("127.0.0.1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "host",
            "",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad:?}");
        }
    }
}
