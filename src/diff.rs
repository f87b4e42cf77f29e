//! `diff`: on a live impermanent system, what will vanish at the next boot.
//!
//! Everything on the root filesystem that is not under a mount point goes
//! with the root. Bind mounts from /persist, /nix, /boot, /proc and the like
//! are mount points and are skipped with all they contain. Nested subvolumes
//! of the root are not mount points and are listed: they vanish with it.
//!
//! What it cannot see: files hidden underneath a mount point (shadowed by the
//! mount, they still vanish), files created after it ran, and data kept alive
//! only by open file descriptors.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::btrfs;
use crate::error::{Error, Result};
use crate::json;
use crate::mountinfo;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vanishing {
    pub path: PathBuf,
    pub kind: &'static str,
    pub size: u64,
}

/// Mount points to skip: every mount strictly below `start`. `start` itself
/// is where the root subvolume is mounted (`/` on the live system, or e.g.
/// `/mnt` in a rescue system) and is always walked.
pub fn excluded_mount_points(mounts: &[mountinfo::Mount], start: &Path) -> HashSet<PathBuf> {
    mounts
        .iter()
        .map(|m| PathBuf::from(&m.mount_point))
        .filter(|p| p != start && p.starts_with(start))
        .collect()
}

pub fn diff(start: &Path, as_json: bool) -> Result<()> {
    let start = fs::canonicalize(start)
        .map_err(|e| Error::Runtime(format!("cannot resolve {}: {e}", start.display())))?;
    if !start.is_dir() {
        return Err(Error::Usage(format!(
            "diff --path {} is not a directory; give the directory where the root is mounted",
            start.display()
        )));
    }
    let mounts = mountinfo::parse(&btrfs::mountinfo()?);
    let excluded = excluded_mount_points(&mounts, &start);
    let mut found = Vec::new();
    let mut errors = 0usize;
    walk(&start, &excluded, &mut found, &mut errors);
    found.sort();
    let mut out = String::new();
    if as_json {
        out.push('[');
        for (i, v) in found.iter().enumerate() {
            out.push_str(if i == 0 { "\n  " } else { ",\n  " });
            out.push_str(&format!(
                "{{\"path\":{},\"kind\":\"{}\",\"size\":{}}}",
                json::string(&v.path.to_string_lossy()),
                v.kind,
                v.size
            ));
        }
        out.push_str(if found.is_empty() { "]\n" } else { "\n]\n" });
    } else {
        for v in &found {
            out.push_str(&v.path.to_string_lossy());
            out.push('\n');
        }
    }
    print!("{out}");
    if errors > 0 {
        log::warn!("diff: {errors} directories could not be read; the list is incomplete");
    }
    Ok(())
}

fn walk(dir: &Path, excluded: &HashSet<PathBuf>, found: &mut Vec<Vanishing>, errors: &mut usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        *errors += 1;
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if excluded.contains(&path) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            *errors += 1;
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(&path, excluded, found, errors);
            continue;
        }
        let kind = if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else {
            "other"
        };
        found.push(Vanishing {
            path,
            kind,
            size: meta.len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_mount_points_below_the_start_but_walks_the_start() {
        let m = mountinfo::parse(
            "1 0 0:30 /@root / rw - btrfs /dev/vda rw\n\
             2 1 0:30 /@persist/etc/ssh /etc/ssh rw - btrfs /dev/vda rw\n\
             3 1 0:31 / /nix rw - btrfs /dev/vda rw\n",
        );
        let ex = excluded_mount_points(&m, Path::new("/"));
        assert!(ex.contains(Path::new("/etc/ssh")));
        assert!(ex.contains(Path::new("/nix")));
        assert!(!ex.contains(Path::new("/")));
        let ex = excluded_mount_points(&m, Path::new("/nix"));
        assert!(
            ex.is_empty(),
            "the start is walked, mounts elsewhere are irrelevant: {ex:?}"
        );
    }
}
