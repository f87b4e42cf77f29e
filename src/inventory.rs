//! Reads the archive directory and the mount tables, and classifies what it
//! finds (the "read the filesystem" step every command starts with).

use crate::archive::{self, Classified, EntryKind};
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

/// Names of the subvolumes directly in the top level, sorted, for messages.
pub fn top_level_subvolumes(top: &TopLevel) -> Result<Vec<String>> {
    Ok(top_level(top)?
        .into_iter()
        .filter(|(_, subvolume)| *subvolume)
        .map(|(name, _)| name)
        .collect())
}

/// Subvolumes and directories directly in the top level, sorted by name.
fn top_level(top: &TopLevel) -> Result<Vec<(String, bool)>> {
    let mut names: Vec<(String, bool)> = btrfs::read_entries(&top.path)?
        .into_iter()
        .filter_map(|e| match e.kind {
            EntryKind::Subvolume { .. } => Some((e.display, true)),
            EntryKind::Directory => Some((e.display, false)),
            _ => None,
        })
        .collect();
    names.sort_unstable();
    Ok(names)
}

/// The error for a root or archive directory name that is not there: it
/// lists what the top level holds, so a layout with other names (`root`,
/// `old_roots`) shows which flags to pass.
pub fn not_found(top: &TopLevel, what: &str, flag: &str, name: &str) -> Error {
    let found = match top_level(top) {
        Ok(names) if names.is_empty() => "nothing".to_owned(),
        Ok(names) => names
            .iter()
            .map(|(n, subvolume)| {
                if *subvolume {
                    n.clone()
                } else {
                    format!("{n} (directory)")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("(cannot list it: {e})"),
    };
    Error::Runtime(format!(
        "{what} {} does not exist; the top level holds {found}; name yours with {flag} NAME",
        top.join(name).display()
    ))
}

/// Like `archive_dir_node`, but a missing archive directory is an error
/// (`prune`, `list`, `rollback`: nothing to work on, likely a wrong name).
pub fn existing_archive_dir(top: &TopLevel, archive: &str) -> Result<()> {
    match archive_dir_node(top, archive)? {
        Node::Missing => Err(not_found(top, "archive directory", "--archive", archive)),
        _ => Ok(()),
    }
}

/// Number of subvolumes nested (at any depth) inside an archive, from the
/// root tree (by subvolume ID: no path is walked).
pub fn nested_count(top: &TopLevel, archive: &archive::Archive) -> Result<usize> {
    btrfs::nested_count(&top.path, archive.id)
}
