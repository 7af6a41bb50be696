//! The allowlist: whole command lines, as sudoers writes command
//! specifications.
//!
//! Checking only the program's name lets its arguments do the work: with
//! `find` allowed, `find / -exec sh -c ... ;` runs anything; with `env`,
//! `env sh -c ...`; with `date`, `date -f /etc/shadow` reads a file. So an
//! entry names a program *and* its arguments:
//!
//! | entry      | allows                                   |
//! |------------|------------------------------------------|
//! | `ls`       | `ls` with no arguments, nothing else     |
//! | `uname -a` | exactly `uname -a`                       |
//! | `df -h *`  | `df -h` followed by any arguments        |
//! | `/bin/ls`  | `/bin/ls` with no arguments (not `ls`)   |
//!
//! A trailing `*` trusts the program with whatever a client adds: `find *`
//! is `find -exec`, `env *` is any program at all, `sh *` is a shell. A
//! program is matched exactly as typed, so a request that names a path
//! (`/usr/bin/uname -a`, `./uname`) runs only if that path is listed.
//! Entries are split like requests (shell quoting); a `*` is a wildcard
//! only as an entry's last word, so a literal `*` argument cannot be listed.

use std::fmt;

/// One parsed entry: the words to match, and whether more may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    words: Vec<String>,
    more: bool,
}

/// A parsed allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allowlist(Vec<Entry>);

/// Why an allowlist entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadEntry(pub(crate) String);

impl fmt::Display for BadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "allowlist entry {:?}: want a program, its arguments, and at most a \
             trailing `*`",
            self.0
        )
    }
}

impl Allowlist {
    /// Parses entries such as `uname -a`, `ls`, `df *`.
    pub(crate) fn parse(entries: &[String]) -> Result<Allowlist, BadEntry> {
        entries
            .iter()
            .map(|entry| {
                let bad = || BadEntry(entry.clone());
                let mut words = shlex::split(entry).ok_or_else(bad)?;
                let more = words.last().is_some_and(|w| w == "*");
                if more {
                    words.pop();
                }
                match words.first() {
                    None => Err(bad()),
                    Some(_) if words.iter().any(|w| w == "*") => Err(bad()),
                    Some(_) => Ok(Entry { words, more }),
                }
            })
            .collect::<Result<_, _>>()
            .map(Allowlist)
    }

    /// Whether a request, split into words, matches an entry.
    pub(crate) fn permits(&self, request: &[String]) -> bool {
        self.0.iter().any(|e| {
            if e.more {
                request.len() >= e.words.len() && request[..e.words.len()] == e.words[..]
            } else {
                request == e.words.as_slice()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn permits(list: &Allowlist, line: &str) -> bool {
        list.permits(&shlex::split(line).unwrap())
    }

    #[test]
    fn whole_lines_match_exactly() {
        let l = list(&["uname -a", "ls"]);
        assert!(permits(&l, "uname -a"));
        assert!(permits(&l, "ls"));
        for refused in [
            "uname -r",
            "uname",
            "uname -a -r",
            "ls /etc",
            "/usr/bin/uname -a",
            "./ls",
            "env sh -c id",
            "find /etc/hostname -exec id ;",
        ] {
            assert!(!permits(&l, refused), "{refused}");
        }
    }

    #[test]
    fn a_trailing_star_allows_any_further_arguments() {
        let l = list(&["df -h *", "/bin/echo *"]);
        assert!(permits(&l, "df -h"));
        assert!(permits(&l, "df -h /tmp /"));
        assert!(!permits(&l, "df /tmp"));
        assert!(permits(&l, "/bin/echo hi"));
        assert!(!permits(&l, "echo hi"), "listed as a path, not a name");
    }

    #[test]
    fn entries_that_mean_nothing_are_refused() {
        for bad in ["", "*", "ls * -l", "echo 'open"] {
            assert!(Allowlist::parse(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }
}
