//! Reads the archive directory and the mount table, and classifies what it
//! finds (the "read the filesystem" step every command starts with).

use crate::archive::{self, Classified};
use crate::btrfs::{self, Node, TopLevel};
use crate::error::{Error, Result};
use crate::kmsg::Batch;
use crate::mountinfo;

/// The state of the archive directory at the top level.
pub fn archive_dir_node(top: &TopLevel, archive: &str) -> Result<Node> {
    let path = top.join(archive);
    match btrfs::node(&path)? {
        n @ (Node::Missing | Node::Subvolume | Node::Directory) => Ok(n),
        Node::Symlink => Err(Error::Runtime(format!(
            "archive directory {} is a symlink; refusing to follow it",
            path.display()
        ))),
        Node::Other => Err(Error::Runtime(format!(
            "archive directory {} is not a directory",
            path.display()
        ))),
    }
}

/// Classifies the entries of the archive directory; logs each foreign entry
/// once. A missing directory has no archives.
pub fn scan(top: &TopLevel, archive: &str) -> Result<Classified> {
    if archive_dir_node(top, archive)? == Node::Missing {
        return Ok(Classified::default());
    }
    let entries = btrfs::read_entries(&top.join(archive))?;
    let mounts = mountinfo::parse(&btrfs::mountinfo()?);
    let busy = mountinfo::busy_paths(&mounts, &top.path.to_string_lossy());
    let classified = archive::classify(archive, entries, &busy);
    let mut warning = Batch::new(
        log::Level::Warn,
        format!("leaving foreign entries in {archive} alone:"),
    );
    for f in &classified.foreign {
        warning.add(format!("{} ({});", f.name, f.why));
    }
    warning.flush();
    Ok(classified)
}

/// Number of subvolumes nested (at any depth) inside an archive, from the
/// root tree (by subvolume ID: no path is walked).
pub fn nested_count(top: &TopLevel, archive: &archive::Archive) -> Result<usize> {
    btrfs::nested_count(&top.path, archive.id)
}
