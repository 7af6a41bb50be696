//! Exercise 8, a reference solution: a broadcast that no member can stall.

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

type Members = HashMap<u64, (SyncSender<Arc<[u8]>>, Stream)>;

/// The room: every line a member sends goes to every other member.
#[derive(Default)]
pub struct Room {
    members: Mutex<Members>,
}

impl Room {
    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        // Nothing panics while holding it: a poisoned lock is still whole.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `line` in every other member's queue, and never waits: a
    /// member whose queue is full has stopped reading, and is dropped.
    fn broadcast(&self, from: u64, line: &Arc<[u8]>) {
        let mut members = self.members();
        let mut slow = Vec::new();
        for (&id, (queue, _)) in members.iter() {
            if id == from {
                continue;
            }
            match queue.try_send(Arc::clone(line)) {
                Ok(()) => {}
                // Full: it is too far behind. Disconnected: its writer
                // ended (its socket failed). Either way, out.
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => slow.push(id),
            }
        }
        for id in slow {
            if let Some((_, socket)) = members.remove(&id) {
                // Its reader sees the end of its stream and leaves; its
                // writer, blocked in a write, fails and ends.
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }
}

impl BaseRequestHandler for Room {
    fn handle(&self, conn: &mut Connection) -> io::Result<()> {
        let id = conn.id();
        let (queue, lines) = mpsc::sync_channel::<Arc<[u8]>>(QUEUE);
        let mut writer = conn.try_clone()?;
        thread::scope(|s| {
            // This member's writer: the only thread that writes to its
            // socket, so only this member's own slowness can block it.
            s.spawn(move || {
                for line in lines {
                    if writer.write_all(&line).is_err() {
                        break;
                    }
                }
            });
            {
                // Welcome first, queued under the lock, so no line can
                // come before it and the member is in the room once it
                // reads it.
                let mut members = self.members();
                let _ = queue.try_send(Arc::from(WELCOME));
                members.insert(id, (queue, conn.stream().try_clone()?));
            }
            let result = self.read_lines(id, conn);
            // Leaving drops the room's sender: the writer writes what is
            // queued, sees the queue closed, and ends; the scope joins it.
            self.members().remove(&id);
            result
        })
    }
}

impl Room {
    fn read_lines(&self, id: u64, conn: &mut Connection) -> io::Result<()> {
        let mut reader = BufReader::new(conn);
        let mut line = Vec::new();
        loop {
            line.clear();
            // At most MAX_LINE + 1 bytes: a longer line is an error.
            (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if line.is_empty() {
                return Ok(()); // the member left
            }
            if line.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            self.broadcast(id, &Arc::from(&line[..]));
        }
    }
}
