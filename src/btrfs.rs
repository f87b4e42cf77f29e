//! Everything that touches the kernel: mount, subvolume create / snapshot /
//! delete, rename-exchange, sync, directory reads. Every error names the
//! operation and the path. This file has no `unsafe`: rustix and
//! libbtrfsutil carry it, except for the crate's only uses, in the
//! submodules `tree_search` (the `TREE_SEARCH` ioctl), `delete` (the
//! deletion ioctls) and `read_ahead` (`fork`).

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

mod delete;
mod read_ahead;
mod tree_search;

pub use delete::{delete_subvolume, nested_count, ArchiveDir, Outcome};
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

/// The top-level volume (subvolid=5) mounted for the duration of a command.
/// Dropping it unmounts, and removes the mount point if we created it.
pub struct TopLevel {
    pub path: PathBuf,
    created_dir: bool,
    mounted: bool,
}

impl TopLevel {
    pub fn mount(device: &Path, mount_point: &Path, read_only: bool) -> Result<TopLevel> {
        let created_dir = match rfs::mkdirat(CWD, mount_point, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(ctx("cannot create mount point", mount_point, e)),
        };
        let mut top = TopLevel {
            path: mount_point.to_owned(),
            created_dir,
            mounted: false,
        };
        let flags = if read_only {
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV
        } else {
            MountFlags::NOSUID | MountFlags::NODEV
        };
        let data = CString::new("subvolid=5").expect("no NUL");
        mount::mount(device, mount_point, "btrfs", flags, Some(data.as_c_str())).map_err(|e| {
            Error::Runtime(format!(
                "mounting the top level of {} at {} failed: {e}",
                device.display(),
                mount_point.display()
            ))
        })?;
        top.mounted = true;
        // Canonical form, as /proc/self/mountinfo shows it.
        top.path = std::fs::canonicalize(mount_point)
            .map_err(|e| ctx("cannot resolve", mount_point, e))?;
        Ok(top)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Unmounts explicitly so that a failure is reported, not swallowed.
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        mount::unmount(&self.path, UnmountFlags::empty())
            .map_err(|e| ctx("cannot unmount", &self.path, e))?;
        if self.created_dir {
            self.created_dir = false;
            rfs::unlinkat(CWD, &self.path, AtFlags::REMOVEDIR)
                .map_err(|e| ctx("cannot remove mount point", &self.path, e))?;
        }
        Ok(())
    }
}

impl Drop for TopLevel {
    fn drop(&mut self) {
        if self.mounted && mount::unmount(&self.path, UnmountFlags::empty()).is_err() {
            // Busy: detach lazily rather than leave the boot with a stray mount.
            let _ = mount::unmount(&self.path, UnmountFlags::DETACH);
        }
        if self.created_dir {
            let _ = rfs::unlinkat(CWD, &self.path, AtFlags::REMOVEDIR);
        }
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

/// Renames, failing with EEXIST instead of replacing or nesting.
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    rfs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(|e| {
        Error::Runtime(format!(
            "cannot rename {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
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

/// Writes a small file and makes it durable before returning.
pub fn write_durably(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut f = File::create(path).map_err(|e| ctx("cannot create", path, e))?;
    f.write_all(contents.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| ctx("cannot write", path, e))
}

/// Reads a small file; `Ok(None)` when it does not exist.
pub fn read_small(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ctx("cannot read", path, e)),
    }
}

pub fn remove_file(path: &Path) -> Result<()> {
    rfs::unlinkat(CWD, path, AtFlags::empty()).map_err(|e| ctx("cannot remove", path, e))
}

/// The mount table, for the "never delete what is mounted" rule and `diff`.
pub fn mountinfo() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| ctx("cannot read", Path::new("/proc/self/mountinfo"), e))
}
