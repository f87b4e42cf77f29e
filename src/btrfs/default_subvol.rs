//! The filesystem's default subvolume: what a mount without `subvol=` or
//! `subvolid=` gets. libbtrfsutil reads it from the root tree and sets it
//! with `BTRFS_IOC_DEFAULT_SUBVOL`; its Rust wrapper does not expose either,
//! so they are called through the C bindings here.

#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::path::Path;

use libbtrfsutil_sys as ffi;
use rustix::fd::OwnedFd;

use super::ctx;
use crate::error::Result;

fn open(top: &Path) -> Result<OwnedFd> {
    super::open_dir_nofollow(top).map_err(|e| ctx("cannot open", top, e))
}

/// The default subvolume's ID (5, the top level, unless someone set it).
pub fn get(top: &Path) -> Result<u64> {
    let fd = open(top)?;
    let mut id = 0u64;
    // SAFETY: `fd` is an open descriptor for the call's duration and `id`
    // a valid u64 the function writes on success; it keeps neither.
    let rc = unsafe { ffi::btrfs_util_get_default_subvolume_fd(fd.as_raw_fd(), &mut id) };
    if rc != ffi::btrfs_util_error::BTRFS_UTIL_OK {
        return Err(ctx(
            "cannot read the default subvolume of",
            top,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(id)
}

/// Makes subvolume `id` the default (`btrfs subvolume set-default`).
pub fn set(top: &Path, id: u64) -> Result<()> {
    let fd = open(top)?;
    // SAFETY: `fd` is an open descriptor for the call's duration; the
    // function only issues an ioctl on it.
    let rc = unsafe { ffi::btrfs_util_set_default_subvolume_fd(fd.as_raw_fd(), id) };
    if rc != ffi::btrfs_util_error::BTRFS_UTIL_OK {
        return Err(ctx(
            &format!("cannot make subvolume {id} the default of"),
            top,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
