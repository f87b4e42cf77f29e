//! Everything that touches the kernel: mount, subvolume create / snapshot /
//! delete, rename-exchange, sync, directory reads. Every error names the
//! operation and the path. This file has no `unsafe`: rustix and
//! libbtrfsutil carry it, except for the crate's only uses, in the
//! submodules `tree_search` (the `TREE_SEARCH` ioctl), `delete` (the
//! deletion ioctls), `read_ahead` (`fork`), `namespace` (`unshare`) and
//! `default_subvol` (libbtrfsutil's C functions).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{self, MountFlags, UnmountFlags};

use crate::archive::{Entry, EntryKind};
use crate::error::{Error, Result};

pub mod default_subvol;
mod delete;
pub mod marker;
mod namespace;
mod read_ahead;
mod tree_search;

pub use delete::{nested_count, ArchiveDir, Outcome};
pub use namespace::mount_tables;
pub use read_ahead::ReadAhead;

/// Inode number of every subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`).
const SUBVOLUME_INO: u64 = 256;
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;
/// The primary superblock sits at 64 KiB; its magic at offset 0x40 in it.
const SUPERBLOCK_MAGIC_OFFSET: u64 = 0x1_0040;
const SUPERBLOCK_MAGIC: &[u8; 8] = b"_BHRfS_M";
/// `STATX_SUBVOL` (Linux 6.10), not yet named by rustix.
const STATX_SUBVOL: u32 = 0x8000;

fn ctx(what: &str, path: &Path, err: impl std::fmt::Display) -> Error {
    Error::Runtime(format!("{what} {}: {err}", path.display()))
}

fn util(what: &str, path: &Path, err: libbtrfsutil::Error) -> Error {
    ctx(what, path, Errno::from_raw_os_error(err.errno()))
}

/// Checks that `device` exists and carries a Btrfs superblock, so that a
/// wrong `--device` gets a precise message instead of mount's EINVAL.
pub fn check_device(device: &Path) -> Result<()> {
    let mut f = File::open(device).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Runtime(format!("device {} does not exist", device.display()))
        }
        _ => ctx("cannot open device", device, e),
    })?;
    let mut magic = [0u8; 8];
    f.seek(SeekFrom::Start(SUPERBLOCK_MAGIC_OFFSET))
        .and_then(|_| f.read_exact(&mut magic))
        .map_err(|_| {
            Error::Runtime(format!(
                "device {} is not a Btrfs filesystem (too small for a superblock)",
                device.display()
            ))
        })?;
    if &magic != SUPERBLOCK_MAGIC {
        return Err(Error::Runtime(format!(
            "device {} is not a Btrfs filesystem (no Btrfs superblock)",
            device.display()
        )));
    }
    Ok(())
}

/// The top-level volume (subvolid=5) mounted for the duration of a command,
/// in the process's private mount namespace (see `namespace`), and locked
/// against other runs on the same filesystem. Dropping it unmounts, removes
/// the mount point if we created it, and then releases the lock.
pub struct TopLevel {
    pub path: PathBuf,
    created_dir: bool,
    mounted: bool,
    /// The top-level directory, open: holds the `flock`.
    lock: Option<rustix::fd::OwnedFd>,
}

impl TopLevel {
    pub fn mount(device: &Path, mount_point: &Path, read_only: bool) -> Result<TopLevel> {
        namespace::enter_private()?;
        crate::fault::point("after entering a private mount namespace");
        let mut top = TopLevel {
            path: mount_point.to_owned(),
            created_dir: false,
            mounted: false,
            lock: None,
        };
        let failed = |e: &dyn std::fmt::Display| {
            Error::Runtime(format!(
                "mounting the top level of {} at {} failed: {e}",
                device.display(),
                mount_point.display()
            ))
        };
        let flags = if read_only {
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV
        } else {
            MountFlags::NOSUID | MountFlags::NODEV
        };
        let data = CString::new("subvolid=5").expect("no NUL");
        // Each retry below undoes one thing another party did; a few suffice.
        for _ in 0..8 {
            match rfs::mkdirat(CWD, mount_point, Mode::from_raw_mode(0o700)) {
                Ok(()) => top.created_dir = true,
                Err(Errno::EXIST) => {}
                Err(e) => return Err(ctx("cannot create mount point", mount_point, e)),
            }
            match mount::mount(device, mount_point, "btrfs", flags, Some(data.as_c_str())) {
                Ok(()) => {}
                // Another run removed the directory between mkdir and mount.
                Err(Errno::NOENT) if node(mount_point)? == Node::Missing => continue,
                // The kernel refuses to stack a filesystem on a mount of
                // itself at the same place: a mount left there by an older
                // version or by hand. Set it aside, in our namespace only.
                Err(Errno::BUSY) if mount::unmount(mount_point, UnmountFlags::DETACH).is_ok() => {
                    log::warn!(
                        "{} was already mounted (left by an earlier run?); set aside for this run only",
                        mount_point.display()
                    );
                    continue;
                }
                Err(e) => return Err(failed(&e)),
            }
            top.mounted = true;
            // Canonical form, as /proc/self/mountinfo shows it.
            top.path = std::fs::canonicalize(mount_point)
                .map_err(|e| ctx("cannot resolve", mount_point, e))?;
            let lock = match &top.lock {
                Some(fd) => fd,
                None => {
                    let fd = open_dir_nofollow(&top.path)
                        .map_err(|e| ctx("cannot open", &top.path, e))?;
                    namespace::lock(&fd, read_only, device)?;
                    top.lock.insert(fd)
                }
            };
            // A run that removes the mount point it created detaches every
            // mount on it, ours too if we mounted there meanwhile: mount again.
            if namespace::still_reaches(&top.path, lock)? {
                return Ok(top);
            }
            top.mounted = false;
        }
        Err(failed(&"the mount point keeps changing under it"))
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Unmounts and removes the mount point if we created it. Neither can
    /// turn a finished command into a failure: the mount exists only in this
    /// process's namespace and ends with it, so a failure is only logged.
    pub fn unmount(mut self) -> Result<()> {
        self.release();
        Ok(())
    }

    /// Detaches the mount (our own open directory, or a process elsewhere
    /// that entered it through `/proc/<pid>/root`, would make a plain
    /// unmount fail with EBUSY), removes the mount point if we created it,
    /// and only then drops the lock, so that a run waiting for it finds the
    /// mount point already gone rather than removed under it.
    fn release(&mut self) {
        if self.mounted {
            self.mounted = false;
            if let Err(e) = mount::unmount(&self.path, UnmountFlags::DETACH) {
                log::warn!("cannot unmount {}: {e}", self.path.display());
            }
        }
        if self.created_dir {
            self.created_dir = false;
            if let Err(e) = rfs::unlinkat(CWD, &self.path, AtFlags::REMOVEDIR) {
                log::warn!("cannot remove mount point {}: {e}", self.path.display());
            }
        }
        self.lock = None;
    }
}

impl Drop for TopLevel {
    fn drop(&mut self) {
        self.release();
    }
}

/// What is at `path`, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Missing,
    Subvolume,
    Directory,
    Symlink,
    Other,
}

/// The one place the "a subvolume is a directory with inode 256" rule lives.
fn node_of(mode: u32, ino: u64) -> Node {
    match FileType::from_raw_mode(mode) {
        FileType::Directory if ino == SUBVOLUME_INO => Node::Subvolume,
        FileType::Directory => Node::Directory,
        FileType::Symlink => Node::Symlink,
        _ => Node::Other,
    }
}

pub fn node(path: &Path) -> Result<Node> {
    match rfs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(Node::Missing),
        Err(e) => Err(ctx("cannot stat", path, e)),
        Ok(st) => Ok(node_of(st.st_mode, st.st_ino)),
    }
}

/// Opens a directory for reading, refusing to follow a symlink at `dir`.
fn open_dir_nofollow(dir: &Path) -> rustix::io::Result<rustix::fd::OwnedFd> {
    rfs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Reads the entries of a directory on Btrfs, refusing to follow a symlink.
pub fn read_entries(dir: &Path) -> Result<Vec<Entry>> {
    let fd = open_dir_nofollow(dir).map_err(|e| ctx("cannot open archive directory", dir, e))?;
    let statfs = rfs::fstatfs(&fd).map_err(|e| ctx("cannot statfs", dir, e))?;
    if statfs.f_type as i64 != BTRFS_SUPER_MAGIC {
        return Err(Error::Runtime(format!("{} is not on Btrfs", dir.display())));
    }
    let links = links_in(&fd, dir)?;
    let mut entries = Vec::new();
    let mut reader = rfs::Dir::read_from(&fd).map_err(|e| ctx("cannot read", dir, e))?;
    while let Some(item) = reader.read() {
        let item = item.map_err(|e| ctx("cannot read", dir, e))?;
        let raw = item.file_name().to_bytes();
        if raw == b"." || raw == b".." {
            continue;
        }
        let kind = match (links.get(raw), item.file_type()) {
            (Some(&id), _) => EntryKind::Subvolume { id },
            (None, FileType::Directory) => EntryKind::Directory,
            (None, FileType::Symlink) => EntryKind::Symlink,
            (None, FileType::Unknown) => {
                let path = dir.join(std::ffi::OsStr::from_bytes(raw));
                match node(&path)? {
                    // A subvolume the root tree did not list a moment ago:
                    // created since. Not ours to judge now.
                    Node::Subvolume | Node::Directory => EntryKind::Directory,
                    Node::Symlink => EntryKind::Symlink,
                    Node::Other | Node::Missing => EntryKind::Other,
                }
            }
            (None, _) => EntryKind::Other,
        };
        entries.push(Entry {
            display: String::from_utf8_lossy(raw).escape_debug().to_string(),
            name: std::str::from_utf8(raw).ok().map(str::to_owned),
            kind,
        });
    }
    Ok(entries)
}

/// The subvolumes linked directly in the open directory `fd`, by name, read
/// from the root tree. A directory entry is a subvolume (its inode is 256)
/// exactly when the root tree holds a link for it, so this is the inode-256
/// rule without a lookup per entry: a lookup would make the kernel load each
/// archive's root, one disk read at a time.
fn links_in(fd: &rustix::fd::OwnedFd, dir: &Path) -> Result<HashMap<Vec<u8>, u64>> {
    let want = StatxFlags::INO | StatxFlags::from_bits_retain(STATX_SUBVOL);
    let st =
        rfs::statx(fd, "", AtFlags::EMPTY_PATH, want).map_err(|e| ctx("cannot stat", dir, e))?;
    // statx reports the subvolume ID since Linux 6.10.
    let tree = if st.stx_mask & STATX_SUBVOL != 0 {
        st.stx_subvol
    } else {
        subvolume_id(dir)?
    };
    let links = tree_search::links_from(fd, tree)
        .map_err(|e| ctx("cannot search the root tree for subvolumes in", dir, e))?;
    Ok(links
        .into_iter()
        .filter(|l| l.dirid == st.stx_ino)
        .map(|l| (l.name, l.child))
        .collect())
}

/// How many read-ahead helpers. At 120 archives x 10 nested subvolumes on a
/// loop device, pruning 30 took 45 ms with none, 36 with two, 35 with three
/// and 37 with four (medians of five): more only add start-up cost.
const READ_AHEAD_HELPERS: usize = 3;

/// Starts helper processes that load the subvolume roots of `archives` (IDs,
/// in deletion order) ahead of their deletion. See `read_ahead`.
pub fn read_ahead(archive_dir: &Path, archives: &[u64]) -> Result<ReadAhead> {
    let fd = open_dir_nofollow(archive_dir).map_err(|e| ctx("cannot open", archive_dir, e))?;
    Ok(read_ahead::start(&fd, archives, READ_AHEAD_HELPERS))
}

pub fn subvolume_id(path: &Path) -> Result<u64> {
    libbtrfsutil::subvolume_id(path).map_err(|e| util("cannot read subvolume ID of", path, e))
}

/// Creates a blank subvolume. `Ok(false)` when the name already exists.
pub fn create_subvolume(path: &Path) -> Result<bool> {
    match libbtrfsutil::create_subvolume(path) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Errno::EXIST.raw_os_error() => Ok(false),
        Err(e) => Err(util("cannot create subvolume", path, e)),
    }
}

/// Creates a writable snapshot, nested subvolumes included. `Ok(false)` when
/// the name already exists.
pub fn snapshot(source: &Path, dest: &Path) -> Result<bool> {
    match libbtrfsutil::CreateSnapshotOptions::new()
        .recursive(true)
        .create(source, dest)
    {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Errno::EXIST.raw_os_error() => Ok(false),
        Err(e) => Err(Error::Runtime(format!(
            "cannot snapshot {} to {}: {}",
            source.display(),
            dest.display(),
            Errno::from_raw_os_error(e.errno())
        ))),
    }
}

/// Swaps two names atomically: there is never a moment where either is missing.
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    rfs::renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| {
        Error::Runtime(format!(
            "cannot exchange {} and {}: {e}",
            a.display(),
            b.display()
        ))
    })
}

/// Deletes a subvolume this run created, nested subvolumes included (a
/// recursive snapshot holds them writable, so no read-only flags to clear).
pub fn delete_own_tree(path: &Path) -> Result<()> {
    libbtrfsutil::DeleteSubvolumeOptions::new()
        .recursive(true)
        .delete(path)
        .map_err(|e| util("cannot delete subvolume", path, e))
}

/// Commits the current transaction, making renames and creations durable.
pub fn sync(path: &Path) -> Result<()> {
    let fd = rfs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx("cannot open", path, e))?;
    rfs::syncfs(&fd).map_err(|e| ctx("cannot commit (syncfs)", path, e))
}

/// The mount table, for the "never delete what is mounted" rule and `diff`.
pub fn mountinfo() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| ctx("cannot read", Path::new("/proc/self/mountinfo"), e))
}
