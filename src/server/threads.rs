//! The threads a thread-per-connection server starts, kept so that
//! `serve_forever` can join them before it returns.
//!
//! A detached thread may still be running (or just exiting) after the
//! server says it has stopped; Python's `block_on_close` joins its threads
//! for the same reason. Each thread hands its own join handle over when its
//! request is done, the serving thread joins those as it goes (once per
//! connection, a thread that has ended already), and a shutdown joins the
//! rest, waiting at most until a given instant for threads that will not
//! end.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Threads still running their request.
    running: HashMap<u64, JoinHandle<()>>,
    /// Threads whose request is done, to be joined.
    done: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
pub(crate) struct Threads {
    stack_size: usize,
    inner: Mutex<Inner>,
    ended: Condvar,
}

/// Hands a thread's handle over when its job ends, even by a panic.
struct Done {
    threads: Arc<Threads>,
    id: u64,
}

impl Drop for Done {
    fn drop(&mut self) {
        let mut inner = self.threads.lock();
        if let Some(handle) = inner.running.remove(&self.id) {
            inner.done.push(handle);
        }
        drop(inner);
        self.threads.ended.notify_all();
    }
}

impl Threads {
    pub(crate) fn new(stack_size: usize) -> Threads {
        Threads {
            stack_size,
            inner: Mutex::new(Inner::default()),
            ended: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `job` on a new thread, after joining the threads that have
    /// ended since the last call.
    pub(crate) fn spawn(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let mut inner = self.lock();
        // Only those that have ended: joining one still on its way out
        // would make the serving thread wait for it.
        let (ended, exiting): (Vec<_>, Vec<_>) =
            inner.done.drain(..).partition(JoinHandle::is_finished);
        inner.done = exiting;
        for handle in ended {
            let _ = handle.join(); // a panic was caught and reported already
        }
        let id = inner.next;
        inner.next += 1;
        let done = Done {
            threads: Arc::clone(self),
            id,
        };
        // Spawned under the lock, so the thread's `Done` finds its handle.
        let handle = thread::Builder::new()
            .name("socketserver-conn".into())
            .stack_size(self.stack_size)
            .spawn(move || {
                let _done = done;
                job();
            })?;
        inner.running.insert(id, handle);
        Ok(())
    }

    /// Waits until every thread has ended, or `until` passes, and joins
    /// those that ended. Returns how many are still running: those are
    /// left to run on (no thread can be stopped from outside).
    pub(crate) fn join_all(&self, until: Instant) -> usize {
        let mut inner = self.lock();
        while !inner.running.is_empty() {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            inner = self
                .ended
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let done = std::mem::take(&mut inner.done);
        let running = inner.running.len();
        drop(inner);
        for handle in done {
            let _ = handle.join();
        }
        running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn join_all_waits_for_every_thread_and_names_the_ones_that_will_not_end() {
        let threads = Arc::new(Threads::new(64 * 1024));
        for _ in 0..4 {
            threads
                .spawn(|| thread::sleep(Duration::from_millis(20)))
                .unwrap();
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        threads
            .spawn(move || {
                let _ = rx.recv();
            })
            .unwrap();
        let soon = Instant::now() + Duration::from_millis(300);
        assert_eq!(threads.join_all(soon), 1, "the one waiting on rx");
        drop(tx);
        assert_eq!(
            threads.join_all(Instant::now() + Duration::from_secs(10)),
            0
        );
        assert!(threads.lock().done.is_empty());
    }
}
