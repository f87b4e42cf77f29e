//! Deleting a subvolume and everything nested in it, children first, with
//! file-descriptor-relative operations only.
//!
//! The nested subvolumes are found once, in the root tree (`ROOT_REF` items:
//! parent subvolume, directory inode, name, child subvolume), without loading
//! any of them. Each one is then reached by `openat`, one path component at
//! a time, from its parent subvolume's root: the directory inode's own path
//! comes from its `INODE_REF` items. Deletion is `BTRFS_IOC_SNAP_DESTROY` of
//! a single name in an open directory. No path longer than one component is
//! ever handed to the kernel, so nesting of any depth works, and the cost is
//! a constant number of system calls per subvolume.
//!
//! A subvolume inside a read-only one cannot be unlinked (EROFS), so the
//! read-only flag of every subvolume that holds others is cleared first
//! (`BTRFS_IOC_SUBVOL_GETFLAGS`/`SETFLAGS` on its open root).
//!
//! Something that is already gone (ENOENT) was deleted by a concurrent run:
//! that is what we wanted, not a failure.

use std::ops::Range;
use std::path::Path;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{self, opcode, Getter, Opcode, Setter, Updater};

use super::tree_search::{self, Descendant};
use super::{ctx, open_dir_nofollow, SUBVOLUME_INO};
use crate::error::{Error, Result};

/// `BTRFS_SUBVOL_RDONLY`.
const SUBVOL_RDONLY: u64 = 1 << 1;
/// `BTRFS_IOC_SUBVOL_GETFLAGS = _IOR(0x94, 25, __u64)`.
const GETFLAGS: Opcode = opcode::read::<u64>(0x94, 25);
/// `BTRFS_IOC_SUBVOL_SETFLAGS = _IOW(0x94, 26, __u64)`.
const SETFLAGS: Opcode = opcode::write::<u64>(0x94, 26);

/// `BTRFS_PATH_NAME_MAX + 1`.
const VOL_NAME_SIZE: usize = 4088;

/// `struct btrfs_ioctl_vol_args` (linux/btrfs.h): 4096 bytes.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; VOL_NAME_SIZE],
}

/// `BTRFS_IOC_SNAP_DESTROY = _IOW(0x94, 15, struct btrfs_ioctl_vol_args)`.
const SNAP_DESTROY: Opcode = opcode::write::<VolArgs>(0x94, 15);

/// `struct btrfs_ioctl_ino_lookup_args` (linux/btrfs.h): 4096 bytes.
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

/// `BTRFS_IOC_INO_LOOKUP = _IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args)`.
const INO_LOOKUP: Opcode = opcode::read_write::<InoLookupArgs>(0x94, 18);

fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Unlinks the subvolume `name` in the open directory `dir` (not recursive).
fn destroy(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<()> {
    if name.is_empty() || name.len() >= VOL_NAME_SIZE || name.contains(&0) {
        return Err(Errno::INVAL);
    }
    let mut args = VolArgs {
        fd: 0,
        name: [0; VOL_NAME_SIZE],
    };
    args.name[..name.len()].copy_from_slice(name);
    // SAFETY: SNAP_DESTROY reads exactly one `struct btrfs_ioctl_vol_args`,
    // which `VolArgs` mirrors (`repr(C)`, 4096 bytes, checked by a test);
    // the name is NUL-terminated within it.
    #[allow(unsafe_code)]
    unsafe {
        ioctl::ioctl(dir, Setter::<SNAP_DESTROY, VolArgs>::new(args))
    }
}

/// The ID of the subvolume that the open file `fd` belongs to.
fn tree_of(fd: BorrowedFd<'_>) -> rustix::io::Result<u64> {
    let mut args = Box::new(InoLookupArgs {
        treeid: 0,
        objectid: SUBVOLUME_INO,
        name: [0; 4080],
    });
    // SAFETY: INO_LOOKUP reads and writes exactly one
    // `struct btrfs_ioctl_ino_lookup_args`, which `InoLookupArgs` mirrors
    // (`repr(C)`, 4096 bytes, checked by a test).
    #[allow(unsafe_code)]
    unsafe {
        ioctl::ioctl(fd, Updater::<INO_LOOKUP, InoLookupArgs>::new(&mut args))?;
    }
    Ok(args.treeid)
}

fn is_read_only(root: BorrowedFd<'_>) -> rustix::io::Result<bool> {
    // SAFETY: GETFLAGS writes one `__u64`, the type given to the getter.
    #[allow(unsafe_code)]
    let flags = unsafe { ioctl::ioctl(root, Getter::<GETFLAGS, u64>::new())? };
    Ok(flags & SUBVOL_RDONLY != 0)
}

/// Clears the read-only flag of the subvolume whose root is open as `root`
/// (its only other flag is internal to the kernel). The kernel commits a
/// transaction for it.
fn clear_read_only(root: BorrowedFd<'_>) -> rustix::io::Result<()> {
    // SAFETY: SETFLAGS reads one `__u64`, the type given to the setter.
    #[allow(unsafe_code)]
    unsafe {
        ioctl::ioctl(root, Setter::<SETFLAGS, u64>::new(0))
    }
}

/// The subvolumes nested in one subvolume, as the root tree lists them,
/// breadth first; each knows where its own children are.
pub struct Nested {
    top: Range<usize>,
    all: Vec<Descendant>,
}

impl Nested {
    /// How many subvolumes are nested, at any depth.
    pub fn count(&self) -> usize {
        self.all.len()
    }
}

/// What one deletion did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Subvolumes this run unlinked, the archive itself included.
    pub deleted: u32,
    /// Subvolumes found already gone (a concurrent run deleted them).
    pub gone: u32,
    /// Read-only flags cleared.
    pub ro_cleared: u32,
    /// The archive itself is gone; `false` when stopped in between.
    pub finished: bool,
}

/// The archive directory, open: every deletion is relative to it.
pub struct ArchiveDir {
    fd: OwnedFd,
}

impl ArchiveDir {
    pub fn open(path: &Path) -> Result<ArchiveDir> {
        let fd = open_dir_nofollow(path).map_err(|e| ctx("cannot open", path, e))?;
        Ok(ArchiveDir { fd })
    }

    /// The subvolumes nested in the archive with subvolume ID `id`.
    pub fn nested(&self, name: &str, id: u64) -> Result<Nested> {
        let (top, all) = tree_search::descendants(&self.fd, id).map_err(|e| {
            Error::Runtime(format!("cannot list the subvolumes nested in {name}: {e}"))
        })?;
        Ok(Nested { top, all })
    }

    /// Deletes the archive `name` (subvolume `id`) and everything `nested`
    /// in it, children first. `may_continue` is asked before each
    /// read-only flag is cleared and each subvolume is unlinked; when it
    /// says no, the deletion stops there and the archive is left for the
    /// next run (it is still there: it goes last). Errors name the path
    /// relative to the archive directory.
    pub fn delete(
        &self,
        name: &str,
        id: u64,
        nested: &Nested,
        may_continue: impl FnMut() -> bool,
    ) -> (Outcome, Result<()>) {
        let mut walk = Walk {
            fs: self.fd.as_fd(),
            all: &nested.all,
            may_continue,
            outcome: Outcome::default(),
            at: vec![name.as_bytes().to_vec()],
        };
        let result = walk.archive(self.fd.as_fd(), name.as_bytes(), id, nested.top.clone());
        (walk.outcome, result)
    }
}

struct Walk<'a, F> {
    /// Any file on the filesystem, for root-tree searches.
    fs: BorrowedFd<'a>,
    all: &'a [Descendant],
    may_continue: F,
    outcome: Outcome,
    /// Where the walk is, below the archive directory (for messages).
    at: Vec<Vec<u8>>,
}

/// What a pass does to each nested subvolume.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Clear the read-only flag of each one that holds others.
    MakeWritable,
    /// Delete each one, children first.
    Delete,
}

impl<F: FnMut() -> bool> Walk<'_, F> {
    fn archive(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        id: u64,
        top: Range<usize>,
    ) -> Result<()> {
        let root = match open_dir_at(dir, name) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                self.outcome.gone += 1;
                self.outcome.finished = true;
                return Ok(());
            }
            Err(e) => return Err(self.fail("cannot open", e)),
        };
        self.check_identity(root.as_fd(), id)?;
        // Clearing a read-only flag commits a transaction. Done before
        // anything is deleted, those commits carry almost nothing; between
        // deletions each one would write out the deletions before it.
        if !self.walk(Pass::MakeWritable, id, root.as_fd(), top.clone())?
            || !self.walk(Pass::Delete, id, root.as_fd(), top)?
            || !(self.may_continue)()
        {
            return Ok(());
        }
        drop(root);
        self.unlink(dir, name)?;
        self.outcome.finished = true;
        Ok(())
    }

    /// Does `pass` to the subvolumes `children` (linked in subvolume `id`,
    /// open as `root`) and everything below them. `Ok(false)` when
    /// `may_continue` stopped it.
    fn walk(
        &mut self,
        pass: Pass,
        id: u64,
        root: BorrowedFd<'_>,
        children: Range<usize>,
    ) -> Result<bool> {
        if children.is_empty() {
            return Ok(true);
        }
        if pass == Pass::MakeWritable
            && is_read_only(root).map_err(|e| self.fail("cannot read the flags of", e))?
        {
            if !(self.may_continue)() {
                return Ok(false);
            }
            clear_read_only(root)
                .map_err(|e| self.fail("cannot clear the read-only flag of", e))?;
            self.outcome.ro_cleared += 1;
        }
        let all = self.all;
        let depth = self.at.len();
        // The directory the previous child was linked in, still open
        // (`None`: the subvolume's root directory).
        let mut current = SUBVOLUME_INO;
        let mut open: Option<OwnedFd> = None;
        for d in &all[children] {
            let link = &d.link;
            if pass == Pass::MakeWritable && d.children.is_empty() {
                continue;
            }
            if link.dirid != current {
                open = None;
                current = SUBVOLUME_INO;
                self.at.truncate(depth);
                if link.dirid != SUBVOLUME_INO {
                    match self.open_dir(root, id, link.dirid) {
                        Ok(fd) => {
                            open = Some(fd);
                            current = link.dirid;
                        }
                        Err(Errno::NOENT) => {
                            // The directory is gone, and with it what was in it.
                            self.at.truncate(depth);
                            continue;
                        }
                        Err(e) => return Err(self.fail("cannot open", e)),
                    }
                }
            }
            let dir = open.as_ref().map_or(root, AsFd::as_fd);
            self.at.push(link.name.clone());
            if !d.children.is_empty() {
                let child = match open_dir_at(dir, &link.name) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => {
                        if pass == Pass::Delete {
                            self.outcome.gone += 1;
                        }
                        self.at.pop();
                        continue;
                    }
                    Err(e) => return Err(self.fail("cannot open", e)),
                };
                self.check_identity(child.as_fd(), link.child)?;
                if !self.walk(pass, link.child, child.as_fd(), d.children.clone())? {
                    return Ok(false);
                }
            }
            if pass == Pass::Delete {
                if !(self.may_continue)() {
                    return Ok(false);
                }
                self.unlink(dir, &link.name)?;
            }
            self.at.pop();
        }
        self.at.truncate(depth);
        Ok(true)
    }

    fn unlink(&mut self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<()> {
        match destroy(dir, name) {
            Ok(()) => self.outcome.deleted += 1,
            Err(Errno::NOENT) => self.outcome.gone += 1,
            Err(e) => return Err(self.fail("cannot delete subvolume", e)),
        }
        Ok(())
    }

    /// Opens directory `ino` of subvolume `tree` (open as `root`), one
    /// component at a time, and pushes the components onto `at`.
    fn open_dir(
        &mut self,
        root: BorrowedFd<'_>,
        tree: u64,
        ino: u64,
    ) -> rustix::io::Result<OwnedFd> {
        let names = tree_search::dir_components(self.fs, tree, ino)?;
        let mut dir: Option<OwnedFd> = None;
        for name in names {
            let next = open_dir_at(dir.as_ref().map_or(root, AsFd::as_fd), &name);
            self.at.push(name);
            dir = Some(next?);
        }
        let dir = dir.ok_or(Errno::NOENT)?;
        // The root tree said `ino`; make sure the names led there.
        if rfs::fstat(&dir)?.st_ino != ino {
            return Err(Errno::STALE);
        }
        Ok(dir)
    }

    /// The subvolume open as `root` must be subvolume `id`: a name that now
    /// leads elsewhere was renamed since the root tree was read.
    fn check_identity(&self, root: BorrowedFd<'_>, id: u64) -> Result<()> {
        match tree_of(root) {
            Ok(found) if found == id => Ok(()),
            Ok(_) => Err(self.fail("subvolume changed during the deletion:", Errno::STALE)),
            Err(e) => Err(self.fail("cannot read the subvolume ID of", e)),
        }
    }

    fn fail(&self, what: &str, e: Errno) -> Error {
        Error::Runtime(format!("{what} {}: {e}", self.here()))
    }

    /// Where the walk is, relative to the archive directory, shortened in
    /// the middle when long (nesting can go beyond PATH_MAX).
    fn here(&self) -> String {
        shorten(&self.at.join(&b'/'))
    }
}

/// A path for a message: lossy UTF-8, at most about 200 bytes, with the
/// middle left out.
fn shorten(path: &[u8]) -> String {
    const HEAD: usize = 60;
    const TAIL: usize = 140;
    if path.len() <= HEAD + TAIL + 5 {
        return String::from_utf8_lossy(path).into_owned();
    }
    format!(
        "{}/…/{}",
        String::from_utf8_lossy(&path[..HEAD]),
        String::from_utf8_lossy(&path[path.len() - TAIL..])
    )
}

/// Number of subvolumes nested (at any depth) in subvolume `id`; `path` is
/// any directory on the filesystem.
pub fn nested_count(path: &Path, id: u64) -> Result<usize> {
    let fd = open_dir_nofollow(path).map_err(|e| ctx("cannot open", path, e))?;
    tree_search::descendants(&fd, id)
        .map(|(_, all)| all.len())
        .map_err(|e| ctx("cannot list the subvolumes nested below", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn ioctl_args_match_the_kernel_layout() {
        assert_eq!(size_of::<VolArgs>(), 4096);
        assert_eq!(size_of::<InoLookupArgs>(), 4096);
    }

    #[test]
    fn long_paths_are_shortened_in_the_middle_for_messages() {
        assert_eq!(shorten(b"a/b"), "a/b");
        let long = [b'x'; 5000];
        let s = shorten(&long);
        assert!(s.len() < 220 && s.contains("/…/"), "{s}");
    }
}
