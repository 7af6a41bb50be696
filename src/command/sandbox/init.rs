//! The namespace's side: its init, pid 1, serving one request after
//! another on its socket, and each command's process from its `clone` to
//! its `execve`. Everything here runs after the relay's fork, in memory
//! the relay, the init and the command share: plain system calls only,
//! no allocation, no locks (the parent module's docs say why).

#![allow(unsafe_code)]

use super::*;

/// The init, pid 1 of the new namespace: holds nothing but its socket to
/// the server, and serves its requests one at a time until the server
/// closes it (see [`serve`]).
pub(super) extern "C" fn init_main(start: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `enter` passed its `Start`, alive as long as the relay.
    let start = unsafe { &*start.cast::<Start>() };
    // None of the server's signal handlers runs here (on this small stack,
    // in memory the relay shares): with every action back to its default,
    // the kernel does not deliver to a namespace's pid 1 a signal sent
    // from inside it, so a command cannot reach the init with one.
    for signal in 1..=64 {
        default_action(signal);
    }
    block_signals(false);
    // SAFETY: plain system calls.
    unsafe {
        libc::close(start.from_init);
        if kill_me_with_parent().is_err() {
            libc::_exit(1);
        }
        // The relay may have died before that call, and then nothing
        // would end this namespace: a pipe with no reader polls as error.
        let mut relay_end = libc::pollfd {
            fd: start.to_relay,
            events: 0,
            revents: 0,
        };
        if libc::poll(&mut relay_end, 1, 0) < 0 || relay_end.revents & libc::POLLERR != 0 {
            libc::_exit(1);
        }
    }
    // Nothing of the server's is held past this point but the socket.
    close_all_but(start.sock);
    serve(start.sock, start.nest)
}

/// Room for the pointer arrays of one request: `argv`, `envp` and the
/// shell's `argv`, each with its NULL.
const POINTERS: usize = 2 * STRINGS_MAX + 4;

/// What a command's process inherits from its init that a process of the
/// server's user can change in the init from outside it, without being
/// able to read or trace it: a command does it to its pid 1 (`prlimit`,
/// `renice`, `taskset`, `chrt`, `ionice` take pids of its namespace; a
/// root server's command, root in the namespace's user namespace, also
/// writes the init's `oom_score_adj` and `cgroup.procs`). Every later
/// command in the namespace would inherit it (a file size limit of 0,
/// nice 19, `SCHED_IDLE`, one CPU...), and a lowered hard limit cannot be
/// raised again from inside. Read when the namespace starts and before
/// each command: a namespace where it changed is ended, not reused.
struct Inherited {
    /// The scheduling attributes (`sched_getattr`: the policy and its
    /// flags, the nice value, the priority, the utilization clamps) and
    /// the I/O priority, as the calls return them.
    sched: [u32; 14],
    ioprio: libc::c_long,
    /// The CPUs it may run on (up to 1024).
    affinity: [u64; 16],
    /// The first bytes of each of [`INHERITED_FILES`], and how many each
    /// read returned.
    files: [[u8; 2048]; 5],
    read: [isize; 5],
}

/// What [`Inherited`] reads from files, opened once by the init (a read
/// from an open file costs a fifth to two fifths of opening it again,
/// measured): every resource
/// limit, `oom_score_adj`, `coredump_filter` (which an `exec` keeps), the
/// cgroup, and the PID namespace's `pid_max` (which a root server's
/// command may set as the namespace's root user, even from a user
/// namespace of its own). `/proc/self` is the init's.
const INHERITED_FILES: [&CStr; 5] = [
    c"/proc/self/limits",
    c"/proc/self/oom_score_adj",
    c"/proc/self/coredump_filter",
    c"/proc/self/cgroup",
    c"/proc/sys/kernel/pid_max",
];

impl Inherited {
    /// Opens [`INHERITED_FILES`] (-1 for one that cannot be opened: it
    /// then reads the same, an error, every time).
    fn open() -> [libc::c_int; 5] {
        // SAFETY: plain system calls on valid C strings.
        INHERITED_FILES
            .map(|path| unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })
    }

    /// Fills `self` from this process, and from `files` ([`Self::open`]).
    ///
    /// # Safety
    ///
    /// Plain system calls only: callable in the init.
    unsafe fn read(&mut self, files: &[libc::c_int; 5]) {
        // SAFETY: plain system calls on buffers of the sizes given.
        unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                self.sched.as_mut_ptr(),
                std::mem::size_of_val(&self.sched),
                0,
            );
            self.ioprio = libc::syscall(libc::SYS_ioprio_get, 1, 0); // IOPRIO_WHO_PROCESS, self
            libc::syscall(
                libc::SYS_sched_getaffinity,
                0,
                std::mem::size_of_val(&self.affinity),
                self.affinity.as_mut_ptr(),
            );
            for ((fd, buf), read) in files.iter().zip(&mut self.files).zip(&mut self.read) {
                *read = libc::pread(*fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            }
        }
    }

    /// What was read of file `n`.
    fn text(&self, n: usize) -> &[u8] {
        &self.files[n][..self.read[n].clamp(0, 2048) as usize]
    }

    /// Whether `self` and `other` read the same.
    fn same(&self, other: &Inherited) -> bool {
        self.sched == other.sched
            && self.ioprio == other.ioprio
            && self.affinity == other.affinity
            && self.read == other.read
            && (0..self.files.len()).all(|n| self.text(n) == other.text(n))
    }
}

/// The init's loop: a buffer mapped once, a ready word to the server,
/// then one request after another ([`one`]). Ends when the server closes
/// the socket (the namespace is retired) or breaks the protocol, or when
/// what its commands inherit has been changed ([`Inherited`]).
fn serve(sock: libc::c_int, nest: *const Maps) -> ! {
    let size = REQUEST_MAX
        + POINTERS * std::mem::size_of::<*const libc::c_char>()
        + 2 * std::mem::size_of::<Inherited>();
    // SAFETY: an anonymous private mapping, the init's alone; `mmap` is a
    // plain system call.
    unsafe {
        let buf = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if buf == libc::MAP_FAILED {
            libc::_exit(1);
        }
        let buf = buf.cast::<u8>();
        let pointers = buf.add(REQUEST_MAX).cast::<*const libc::c_char>();
        // In the mapping, not on the init's small stack: as the namespace
        // started, and as it is now.
        let inherited = pointers.add(POINTERS).cast::<Inherited>();
        let (start, now) = (&mut *inherited, &mut *inherited.add(1));
        let files = Inherited::open();
        start.read(&files);
        answer(sock, [STARTED, 0]); // ready
        loop {
            one(sock, buf, pointers, (start, now, &files), nest);
        }
    }
}

/// Sends a reply of two words to the server; a server that is gone finds
/// out from its end, the init from its next `recvmsg`.
fn answer(sock: libc::c_int, words: [u32; 2]) {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&words[0].to_ne_bytes());
    bytes[4..].copy_from_slice(&words[1].to_ne_bytes());
    // SAFETY: a plain system call on a valid buffer.
    unsafe {
        libc::send(sock, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL);
    }
}

/// Reads exactly `len` bytes into `buf`; `false` at an end or an error.
///
/// # Safety
///
/// `buf` must be valid for `len` bytes.
unsafe fn read_exact(sock: libc::c_int, buf: *mut u8, len: usize) -> bool {
    let mut got = 0;
    while got < len {
        // SAFETY: within the caller's buffer.
        let n = unsafe { libc::read(sock, buf.add(got).cast(), len - got) };
        match n {
            n if n > 0 => got += n as usize,
            n if n < 0 && errno() == libc::EINTR => {}
            _ => return false,
        }
    }
    true
}

/// Receives a request's header and its three descriptors; `false` when
/// the server has closed the socket.
fn receive(sock: libc::c_int, header: &mut [u8; HEADER], fds: &mut [libc::c_int; 3]) -> bool {
    // Room for one SCM_RIGHTS message of three descriptors, aligned.
    let mut control = [0u64; 8];
    // SAFETY: plain system calls on buffers that outlive them; the
    // control message is read only where the kernel says it lies.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: header.as_mut_ptr().cast(),
            iov_len: HEADER,
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = loop {
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 || errno() != libc::EINTR {
                break n;
            }
        };
        if n <= 0 {
            return false;
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        let wanted = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            || (*cmsg).cmsg_len as usize != wanted
            || msg.msg_flags & libc::MSG_CTRUNC != 0
        {
            libc::_exit(1); // not this crate's server
        }
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
            fds.as_mut_ptr(),
            3,
        );
        let n = n as usize;
        read_exact(sock, header.as_mut_ptr().add(n), HEADER - n)
    }
}

/// Serves one request: starts the command in its own IPC namespace,
/// answers whether it executed, reaps orphans until the command's main
/// process ends, then kills every other process in the namespace, reaps
/// them all, and answers with the command's status and how many there
/// were. The namespace is then as empty as when it was made. Ends the
/// init instead if what a command inherits from it is no longer `start`
/// ([`Inherited`], read from the init and its `files`); `now` is room to
/// read it into. With `nest`, the command gets a user namespace of its
/// own with those maps.
///
/// # Safety
///
/// `buf` must be valid for [`REQUEST_MAX`] bytes and `pointers` for
/// [`POINTERS`] pointers; `nest` null or valid for as long as the init.
unsafe fn one(
    sock: libc::c_int,
    buf: *mut u8,
    pointers: *mut *const libc::c_char,
    (start, now, files): (&Inherited, &mut Inherited, &[libc::c_int; 5]),
    nest: *const Maps,
) {
    let mut header = [0u8; HEADER];
    let mut fds = [-1; 3];
    if !receive(sock, &mut header, &mut fds) {
        // SAFETY: `_exit` does not return.
        unsafe { libc::_exit(0) }
    }
    let word = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&header[4 * i..4 * i + 4]);
        u32::from_ne_bytes(w) as usize
    };
    let (len, argc, envc) = (word(0), word(1), word(2));
    // The server checks all of this before sending: anything else is not
    // this crate's server, and the init ends.
    // SAFETY: within the mapped buffer; then plain system calls.
    unsafe {
        if len > REQUEST_MAX || argc == 0 || argc + envc > STRINGS_MAX {
            libc::_exit(1);
        }
        if !read_exact(sock, buf, len) || len == 0 || *buf.add(len - 1) != 0 {
            libc::_exit(1);
        }
        // The strings, each ending in NUL: the directory, the program,
        // `argc` arguments, `envc` variables.
        let argv = pointers;
        let envp = pointers.add(argc + 1);
        let sh = envp.add(envc + 1);
        let (mut dir, mut path) = (std::ptr::null(), std::ptr::null());
        let (mut n, mut at) = (0, 0);
        while at < len {
            let s = buf.add(at).cast::<libc::c_char>();
            match n {
                0 => dir = s,
                1 => path = s,
                i if i < 2 + argc => *argv.add(i - 2) = s,
                i if i < 2 + argc + envc => *envp.add(i - 2 - argc) = s,
                _ => libc::_exit(1),
            }
            n += 1;
            while *buf.add(at) != 0 {
                at += 1;
            }
            at += 1;
        }
        if n != 2 + argc + envc {
            libc::_exit(1);
        }
        *argv.add(argc) = std::ptr::null();
        *envp.add(envc) = std::ptr::null();
        *sh = c"/bin/sh".as_ptr();
        *sh.add(1) = path;
        std::ptr::copy_nonoverlapping(argv.add(1), sh.add(2), argc - 1);
        *sh.add(argc + 1) = std::ptr::null();
        // What this command would inherit is what the first did, or the
        // namespace ends here: the server finds it ended and runs the
        // command in a new one.
        now.read(files);
        if !now.same(start) {
            libc::_exit(1);
        }
        let mut job = Job {
            fds,
            dir,
            path,
            argv,
            envp,
            sh,
            nest,
            errno: 0,
        };
        // The command shares this memory until it executes, as a process
        // `posix_spawn` starts does (`CLONE_VFORK`: the init waits until
        // then): no copy of any page table. With it, an IPC namespace:
        // System V shared memory, semaphores and message queues the
        // command makes end with it, as its processes do.
        // SAFETY: the upper half of this process's `STACKS` is free while
        // the init waits; `command_main` makes plain system calls only and
        // ends in `execve` or `_exit`.
        let user = if nest.is_null() {
            0
        } else {
            libc::CLONE_NEWUSER
        };
        let command = libc::clone(
            command_main,
            (&raw mut STACKS).cast::<u8>().add(2 * STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_NEWIPC | user | libc::SIGCHLD,
            (&raw mut job).cast(),
        );
        let clone_errno = errno();
        for fd in fds {
            libc::close(fd);
        }
        if command < 0 {
            answer(sock, [NO_CLONE, clone_errno as u32]);
            return;
        }
        let mut status: libc::c_int = 0;
        let failed = std::ptr::read_volatile(&raw const job.errno);
        if failed != 0 {
            while libc::waitpid(command, &mut status, 0) < 0 && errno() == libc::EINTR {}
            answer(sock, [NO_EXEC, failed as u32]);
            return;
        }
        answer(sock, [STARTED, 0]);
        // Orphans the command leaves are reaped as they end (no zombie
        // piles up while it runs), until its main process ends.
        loop {
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == command {
                break;
            }
            if pid < 0 && errno() != libc::EINTR {
                libc::_exit(1);
            }
        }
        // Then the rest: `kill(-1)` from a namespace's pid 1 reaches every
        // other process in it (the kernel also catches one being forked
        // meanwhile); reaped until none is left, again after each.
        let mut left = 0u32;
        let mut reaped = 0;
        loop {
            libc::kill(-1, libc::SIGKILL);
            match libc::waitpid(-1, &mut reaped, 0) {
                pid if pid > 0 => left += 1,
                _ if errno() == libc::EINTR => {}
                _ => break, // ECHILD: the namespace is empty
            }
        }
        answer(sock, [status as u32, left]);
    }
}

/// The command's process, until it executes: its three streams as 0, 1
/// and 2 and no other descriptor (the init's socket least of all), a
/// session and a session keyring of its own, the server's directory,
/// then `execve`.
extern "C" fn command_main(job: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `one` passed its `Job`, alive until this process executes or
    // ends (the init waits: `CLONE_VFORK`).
    let job = unsafe { &mut *job.cast::<Job>() };
    // SAFETY: plain system calls, on C strings and arrays prepared by the
    // init.
    unsafe {
        // Above 2 first, so that moving one to its place cannot overwrite
        // another that arrived there.
        let mut high = [0; 3];
        for (to, from) in high.iter_mut().zip(job.fds) {
            *to = libc::fcntl(from, libc::F_DUPFD, 3);
            if *to < 0 {
                fail(job);
            }
        }
        for (fd, from) in high.into_iter().enumerate() {
            if libc::dup2(from, fd as libc::c_int) < 0 {
                fail(job);
            }
        }
        // Not just close-on-exec: a command that kept the init's socket
        // could send it requests of its own.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) < 0 {
            fail(job);
        }
        // Its own user namespace's maps, the warm one's again (see
        // `enter`): a process may map its own ids in a namespace it made.
        // A failure is not `EACCES`, which the probe takes for success.
        if let Some((uid, ulen, gid, glen)) = job.nest.as_ref() {
            let written = write_file(c"/proc/self/setgroups", b"deny")
                .and_then(|()| write_file(c"/proc/self/uid_map", &uid[..*ulen]))
                .and_then(|()| write_file(c"/proc/self/gid_map", &gid[..*glen]));
            if written.is_err() {
                job.errno = match errno() {
                    libc::EACCES | 0 => libc::EPERM,
                    e => e,
                };
                libc::_exit(127);
            }
        }
        if libc::setsid() < 0 {
            fail(job);
        }
        // A session keyring of its own, as it has a session of its own: a
        // command may hand its session keyring to its parent, the init
        // (`KEYCTL_SESSION_TO_PARENT`), which every later command in the
        // namespace would inherit, keys and all. Nor does it get the
        // server's. Where keys are refused (a seccomp profile, a full
        // quota), it keeps what it inherited.
        libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()); // KEYCTL_JOIN_SESSION_KEYRING, anonymous
        if *job.dir != 0 && libc::chdir(job.dir) < 0 {
            fail(job);
        }
        libc::execve(job.path, job.argv, job.envp);
        if errno() == libc::ENOEXEC {
            libc::execve(*job.sh, job.sh, job.envp);
        }
        fail(job)
    }
}

/// Leaves `errno` where the init reads it, and ends the command's process.
fn fail(job: &mut Job) -> ! {
    job.errno = match errno() {
        0 => libc::EINVAL,
        e => e,
    };
    // SAFETY: `_exit` does not return.
    unsafe { libc::_exit(127) }
}
