//! Read-ahead for pruning: helper processes load the roots of the subvolumes
//! about to be deleted, so that their metadata reads overlap.
//!
//! Deleting a subvolume makes the kernel load its root first: one metadata
//! read, waited for by the deleting process. An archive with ten nested
//! subvolumes costs eleven such waits in a row. A few helpers issuing the
//! same loads for the archives next in line keep reads in flight while the
//! main process deletes. They only read, through `TREE_SEARCH`, and nothing
//! depends on them: if one fails to start or dies, pruning is just slower.
//!
//! Helpers are processes, not threads: `fork` of a single-threaded process
//! costs a few kilobytes of binary, where glibc's static thread support
//! costs some 80 KB. They are killed and reaped before the caller goes on.

use rustix::fd::AsFd;
use rustix::process::{
    getpid, getppid, kill_process, set_parent_process_death_signal, waitpid, Pid, Signal,
    WaitOptions,
};

use super::tree_search;

/// Running helpers; dropping this stops and reaps them.
pub struct ReadAhead {
    helpers: Vec<Pid>,
}

/// Starts up to `helpers` processes that load every subvolume root in the
/// trees of `archives` (subvolume IDs, in the order they will be deleted).
/// Helper `k` takes archives `k`, `k + helpers`, ... `fd` is any file on the
/// filesystem.
pub fn start(fd: impl AsFd, archives: &[u64], helpers: usize) -> ReadAhead {
    let parent = getpid();
    let mut started = Vec::new();
    for k in 0..helpers.min(archives.len()) {
        // SAFETY: the process is single-threaded when it forks, so the child
        // may allocate and make any call. The child never returns into the
        // caller's code: it ends in `_exit`, which runs no atexit handler
        // and flushes no buffered output twice.
        #[allow(unsafe_code)]
        match unsafe { libc::fork() } {
            0 => {
                // Die with the parent (a crash, a systemd timeout): a helper
                // must never outlive it and keep the top level busy.
                let orphaned = set_parent_process_death_signal(Some(Signal::KILL)).is_err()
                    || getppid() != Some(parent);
                if !orphaned {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        for &archive in archives.iter().skip(k).step_by(helpers) {
                            load_tree(&fd, archive);
                        }
                    }));
                }
                // SAFETY: ends the child without touching shared state.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(0)
                }
            }
            pid if pid > 0 => started.extend(Pid::from_raw(pid)),
            _ => break, // fork failed: go on with fewer helpers
        }
    }
    ReadAhead { helpers: started }
}

/// Loads `archive`'s root, then its nested subvolumes' roots, parents before
/// children (the order the deleting process looks them up in).
fn load_tree(fd: &impl AsFd, archive: u64) {
    let mut queue = std::collections::VecDeque::from([archive]);
    while let Some(id) = queue.pop_front() {
        let _ = tree_search::load_root(fd, id);
        if let Ok(links) = tree_search::links_from(fd, id) {
            queue.extend(links.iter().map(|l| l.child));
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        for pid in self.helpers.drain(..) {
            let _ = kill_process(pid, Signal::KILL);
            let _ = waitpid(Some(pid), WaitOptions::empty());
        }
    }
}
