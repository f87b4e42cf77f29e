//! Mount namespaces: the process's own private one, which holds the
//! top-level mount; the lock that serialises runs on one filesystem; and the
//! mount tables of every namespace on the machine, for the busy check.
//!
//! In a private namespace the top-level mount is invisible to every other
//! process and ends with the process, whatever ends it (SIGKILL included):
//! the kernel drops a namespace, and its mounts, when its last process exits.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fd::OwnedFd;
use rustix::fs::{self as rfs, AtFlags, FlockOperation, CWD};
use rustix::io::Errno;
use rustix::mount::{self, MountPropagationFlags};

use super::ctx;
use crate::error::{Error, Result};

static ENTERED: AtomicBool = AtomicBool::new(false);

/// Moves the process into a new mount namespace of its own, a copy of the
/// current one, and makes every mount in it private, so that nothing mounted
/// or unmounted here propagates back. Idempotent.
pub fn enter_private() -> Result<()> {
    if ENTERED.load(Ordering::SeqCst) {
        return Ok(());
    }
    // SAFETY: `unshare(CLONE_NEWNS)` only changes which mount namespace this
    // process uses; it touches no memory and no file descriptor. The process
    // is single-threaded here (the read-ahead helpers are processes).
    #[allow(unsafe_code)]
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    if rc != 0 {
        return Err(Error::Runtime(format!(
            "cannot enter a private mount namespace (unshare): {}",
            std::io::Error::last_os_error()
        )));
    }
    // Without this the copy's mounts stay peers of the original ones, and
    // our mount and unmount would show up in the namespace we came from.
    mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(|e| ctx("cannot make the mounts private in", Path::new("/"), e))?;
    ENTERED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Locks the filesystem whose top-level directory is open as `fd`: shared
/// for read-only commands, exclusive otherwise. `flock` locks the inode, and
/// the top-level directory is one inode whatever mount (or namespace) it is
/// reached through, so two runs on one filesystem contend even with
/// different mount points. Waits, after saying so once, while another run
/// holds it. Held until `fd` is closed.
pub fn lock(fd: &OwnedFd, shared: bool, device: &Path) -> Result<()> {
    let (try_op, wait_op) = if shared {
        (
            FlockOperation::NonBlockingLockShared,
            FlockOperation::LockShared,
        )
    } else {
        (
            FlockOperation::NonBlockingLockExclusive,
            FlockOperation::LockExclusive,
        )
    };
    let failed = |e| ctx("cannot lock the top level of", device, e);
    match rfs::flock(fd, try_op) {
        Ok(()) => return Ok(()),
        Err(Errno::WOULDBLOCK) => {}
        Err(e) => return Err(failed(e)),
    }
    log::info!("waiting for another root-rotate on {}", device.display());
    loop {
        match rfs::flock(fd, wait_op) {
            Err(Errno::INTR) => continue,
            r => return r.map_err(failed),
        }
    }
}

/// Whether `path` still leads to the directory open as `fd`. Removing a
/// directory detaches every mount on it in every other namespace, so a run
/// that removes the mount point it created can pull the mount from under a
/// run that mounted on the same directory meanwhile.
pub fn still_reaches(path: &Path, fd: &OwnedFd) -> Result<bool> {
    let held = rfs::fstat(fd).map_err(|e| ctx("cannot stat", path, e))?;
    Ok(match rfs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st.st_dev == held.st_dev && st.st_ino == held.st_ino,
        Err(_) => false,
    })
}

/// Errors that mean the process ended while we looked at it.
fn vanished(e: &std::io::Error) -> bool {
    // ESRCH: gone; ENOENT: gone or a zombie; EINVAL: mountinfo of a process
    // that is exiting (no namespace any more).
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::NOENT | Errno::SRCH | Errno::INVAL)
    )
}

/// The mount tables (`mountinfo` text) of the machine's mount namespaces.
#[derive(Default)]
pub struct Tables {
    /// One per namespace that has a process in it, this process's own first.
    pub tables: Vec<String>,
    /// A table we could not read: an archive mounted only there is unseen.
    pub unreadable: Option<Error>,
}

/// Reads every mount namespace's table once. Namespaces are told apart by
/// the inode of `/proc/<pid>/ns/mnt`; each table is read from the first
/// process found in it. Where that link is not ours to read (ptrace rules,
/// a security module) the process's table is read anyway and kept unless
/// identical to one already read. Processes that end during the scan are
/// skipped.
pub fn mount_tables() -> Result<Tables> {
    let mut out = Tables::default();
    // Few namespaces: a list is smaller than a hash set, and fast enough.
    let mut seen = Vec::new();
    let pids = std::fs::read_dir("/proc").map_err(|e| ctx("cannot read", Path::new("/proc"), e))?;
    let pids = pids
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()));
    for pid in std::iter::once("self".to_owned()).chain(pids) {
        let dir = Path::new("/proc").join(&pid);
        let (ns, table) = (dir.join("ns/mnt"), dir.join("mountinfo"));
        let ns = match std::fs::metadata(&ns) {
            Ok(m) => Some((m.dev(), m.ino())),
            Err(e) if vanished(&e) => continue,
            Err(_) => None,
        };
        if ns.is_some_and(|ns| seen.contains(&ns)) {
            continue;
        }
        match read(&table) {
            Ok(bytes) => {
                // Paths that are not UTF-8 cannot name an archive.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                match ns {
                    Some(ns) => seen.push(ns),
                    None if out.tables.contains(&text) => continue,
                    None => {}
                }
                out.tables.push(text);
            }
            Err(e) if vanished(&e) && pid != "self" => continue,
            Err(e) if pid == "self" => return Err(ctx("cannot read", &table, e)),
            Err(e) => out.unreadable = Some(ctx("cannot read", &table, e)),
        }
    }
    Ok(out)
}

/// Reads a whole file in few `read` calls: each read of a mount table makes
/// the kernel walk the namespace's mounts again, and `std::fs::read` starts
/// small for files whose size is 0, as every file in `/proc` claims.
fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(16 << 10);
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}
