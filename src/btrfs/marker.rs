//! The rollback marker's file operations, all relative to the mounted top
//! level: nothing here follows a symlink, blocks on a FIFO, or reads more
//! than a few bytes, whatever was planted at the marker's name. `rotate`'s
//! status file is written with the same temporary-file-and-rename steps,
//! relative to its own directory.

use std::path::Path;

use rustix::fd::OwnedFd;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::ctx;
use crate::error::Result;

/// A marker holds a subvolume ID and an archive name: far below this.
pub const MAX_MARKER: usize = 256;

/// What is at the marker's name.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Absent,
    /// A small regular file with UTF-8 text (not yet checked further).
    Text(String),
    /// Anything else: why it cannot be a marker.
    Invalid(String),
}

fn open_top(top: &Path) -> Result<OwnedFd> {
    super::open_dir_nofollow(top).map_err(|e| ctx("cannot open", top, e))
}

fn kind(ft: FileType) -> &'static str {
    match ft {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device node",
        _ => "not a regular file",
    }
}

/// Reads the marker `name` in the top level at `top`. Only a regular file is
/// opened (`O_NOFOLLOW | O_NONBLOCK`, and checked again after opening), and
/// at most `MAX_MARKER` bytes are read.
pub fn read(top: &Path, name: &str) -> Result<Found> {
    let dir = open_top(top)?;
    let path = top.join(name);
    let st = match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(Found::Absent),
        Err(e) => return Err(ctx("cannot stat", &path, e)),
        Ok(st) => st,
    };
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Ok(Found::Invalid(kind(ft).into()));
    }
    let fd = match rfs::openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Err(Errno::NOENT) => return Ok(Found::Absent),
        Err(Errno::LOOP) => return Ok(Found::Invalid(kind(FileType::Symlink).into())),
        Err(e) => return Err(ctx("cannot open", &path, e)),
        Ok(fd) => fd,
    };
    // Replaced between the stat and the open: judge what we opened.
    let st = rfs::fstat(&fd).map_err(|e| ctx("cannot stat", &path, e))?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Ok(Found::Invalid(kind(ft).into()));
    }
    if st.st_size as u64 > MAX_MARKER as u64 {
        return Ok(Found::Invalid(format!(
            "{} bytes, more than a marker's {MAX_MARKER}",
            st.st_size
        )));
    }
    let mut buf = [0u8; MAX_MARKER + 1];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(ctx("cannot read", &path, e)),
        }
    }
    if len > MAX_MARKER {
        return Ok(Found::Invalid(format!(
            "more than a marker's {MAX_MARKER} bytes"
        )));
    }
    match std::str::from_utf8(&buf[..len]) {
        Ok(text) => Ok(Found::Text(text.to_owned())),
        Err(_) => Ok(Found::Invalid("not UTF-8 text".into())),
    }
}

/// Removes whatever is at `name` in the top level without following it: a
/// file, symlink, FIFO or device node is unlinked, an empty directory
/// removed; a directory with contents is renamed to `<name>.stale-<n>`
/// (never deleted). Returns where it went, for the log.
pub fn remove(top: &Path, name: &str) -> Result<String> {
    let dir = open_top(top)?;
    let path = top.join(name);
    match rfs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok("removed".into()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(ctx("cannot remove", &path, e)),
    }
    match rfs::unlinkat(&dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => return Ok("removed".into()),
        Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => {}
        Err(e) => return Err(ctx("cannot remove", &path, e)),
    }
    for n in 1..=100 {
        let aside = format!("{name}.stale-{n}");
        match rfs::renameat_with(&dir, name, &dir, &aside, rfs::RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(format!("moved to {}", top.join(&aside).display())),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(ctx("cannot move aside", &path, e)),
        }
    }
    Err(ctx("cannot move aside", &path, Errno::EXIST))
}

/// Writes `contents` to the new file `tmp` in the top level (`O_CREAT |
/// O_EXCL | O_NOFOLLOW`: a planted file or link at that name is removed
/// first, never written through), with permissions `mode` whatever the
/// umask, and fsyncs it.
pub fn write_new(top: &Path, tmp: &str, contents: &str, mode: u32) -> Result<()> {
    let dir = open_top(top)?;
    let path = top.join(tmp);
    match rfs::unlinkat(&dir, tmp, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(ctx("cannot remove", &path, e)),
    }
    let fd = rfs::openat(
        &dir,
        tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
    .map_err(|e| ctx("cannot create", &path, e))?;
    rfs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| ctx("cannot chmod", &path, e))?;
    let mut rest = contents.as_bytes();
    while !rest.is_empty() {
        match rustix::io::write(&fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(ctx("cannot write", &path, e)),
        }
    }
    rfs::fsync(&fd).map_err(|e| ctx("cannot write", &path, e))
}

/// Renames `from` to `to` within the top level, replacing a file at `to`
/// (a symlink there is replaced, not followed).
pub fn rename_into_place(top: &Path, from: &str, to: &str) -> Result<()> {
    let dir = open_top(top)?;
    rfs::renameat(&dir, from, &dir, to).map_err(|e| {
        crate::error::Error::Runtime(format!(
            "cannot rename {} to {}: {e}",
            top.join(from).display(),
            top.join(to).display()
        ))
    })
}

/// Unlinks `name` (not a directory) if present; for cleaning up.
pub fn unlink(top: &Path, name: &str) -> Result<()> {
    let dir = open_top(top)?;
    match rfs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(ctx("cannot remove", &top.join(name), e)),
    }
}

/// Replaces `name` in `dir` with a file holding `contents` (permissions
/// `mode`): written to the new file `tmp` first (see `write_new`), then
/// renamed into place, so a reader sees the old file or the new one, never
/// a part. The temporary file is removed again if the rename fails.
pub fn replace(dir: &Path, name: &str, tmp: &str, contents: &str, mode: u32) -> Result<()> {
    write_new(dir, tmp, contents, mode)?;
    rename_into_place(dir, tmp, name).inspect_err(|_| {
        let _ = unlink(dir, tmp);
    })
}

/// Creates the directory `dir` with permissions `mode` (whatever the umask)
/// if it is missing; the directory above it must exist. An existing `dir` is
/// left as it is.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    match rfs::mkdirat(rfs::CWD, dir, Mode::from_raw_mode(mode)) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Ok(()),
        Err(e) => return Err(ctx("cannot create directory", dir, e)),
    }
    let fd = open_top(dir)?;
    rfs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| ctx("cannot chmod", dir, e))
}
