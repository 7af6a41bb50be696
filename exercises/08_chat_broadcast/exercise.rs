//! Exercise 8: the chat room's broadcast, with a member that never reads
//! (beyond the seed: the program every socket course ends with).
//!
//! Read README.md beside this file, replace the `todo!()` with your code,
//! and check it with `cargo run --example course -- check 8`.
// Until your code uses them, the skeleton's arguments and imports are
// unused: that is allowed here, and only here.
#![allow(unused)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

use socketserver::{BaseRequestHandler, Connection, Stream};

/// Lines waiting for one member before it is dropped as too slow.
pub const QUEUE: usize = 64;
/// The longest line, `\n` included.
pub const MAX_LINE: usize = 1024;
/// What a member gets first, once it is in the room.
pub const WELCOME: &[u8] = b"* welcome\n";

/// Who is in the room, by connection id: the sending end of each member's
/// queue, and its socket (to shut it when dropping it).
type Members = HashMap<u64, (SyncSender<Arc<[u8]>>, Stream)>;

/// The room: every line a member sends goes to every other member.
#[derive(Default)]
pub struct Room {
    members: Mutex<Members>,
}

impl BaseRequestHandler for Room {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        todo!(
            "join (queue + writer thread, then WELCOME); pass each line on without ever waiting for a member; leave"
        )
    }
}
