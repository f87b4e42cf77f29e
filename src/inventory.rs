//! Reads the archive directory and the mount tables, and classifies what it
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
    // Busy in any mount namespace: our filesystem's `major:minor` from our
    // own mount (the first table is our namespace's), then each namespace's
    // paths in use on it.
    let found = btrfs::mount_tables()?;
    let tables: Vec<_> = found.tables.iter().map(|t| mountinfo::parse(t)).collect();
    let dev = tables
        .first()
        .and_then(|own| mountinfo::device_at(own, &top.path.to_string_lossy()))
        .ok_or_else(|| {
            Error::Runtime(format!(
                "cannot find the top-level mount {} in /proc/self/mountinfo",
                top.path.display()
            ))
        })?;
    let mut busy = Vec::new();
    for table in &tables {
        busy.extend(mountinfo::busy_paths(table, &dev));
    }
    let mut classified = archive::classify(archive, entries, &busy);
    if let Some(e) = found.unreadable {
        // Unsure what is in use: treat every archive as busy.
        log::warn!("{e}; deleting no archive this run");
        classified.archives.iter_mut().for_each(|a| a.busy = true);
    }
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

/// Number of subvolumes nested (at any depth) inside an archive.
pub fn nested_count(top: &TopLevel, archive: &str, name: &str) -> Result<usize> {
    Ok(btrfs::nested_subvolumes(&top.join(archive).join(name))?.len())
}
