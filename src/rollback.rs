//! `rollback`: make an archive the next root, keep the current root archived.
//!
//! Order, for crash safety (see docs/explanation/crash-safety.md):
//! 1. snapshot the chosen archive to a fresh `<archive>/<stamp>` (writable,
//!    nested subvolumes included); a crash here leaves one extra archive;
//! 2. write the keep-once marker naming that snapshot's subvolume ID (and the
//!    archive it came from) to a temporary name, fsync it, and rename it into
//!    place; a crash here leaves a marker that names no root, which the next
//!    `rotate` discards;
//! 3. exchange the snapshot with the root in one `renameat2(RENAME_EXCHANGE)`:
//!    the restored tree becomes the root, the current root becomes the new
//!    archive. Before this step nothing changed for the next boot; after it,
//!    the rollback is complete;
//! 4. commit.
//!
//! All or nothing: a failure before the exchange removes what this run
//! created (the snapshot, the marker), so exit 1 leaves nothing behind. A
//! second rollback while one is pending never restores the root the first one
//! archived: `--latest`, or `--to` the same archive, is a no-op; `--to`
//! another archive restores that one instead.

use std::time::Instant;

use crate::archive::Archive;
use crate::btrfs::{self, Node, TopLevel};
use crate::cli::Target;
use crate::error::{Error, Result};
use crate::fault;
use crate::inventory;
use crate::marker::{self, Marker, State};
use crate::rotate::{create_unique, discard_own};

pub enum Choice {
    Named(String),
    Latest,
}

pub fn rollback(target: &Target, choice: &Choice, dry_run: bool, started: Instant) -> Result<()> {
    btrfs::check_device(&target.device)?;
    let top = TopLevel::mount(&target.device, &target.mount_point, dry_run)?;
    let archive_dir = top.join(&target.archive);
    let root = top.join(&target.root);
    match btrfs::node(&root)? {
        Node::Subvolume => {}
        Node::Missing => {
            return Err(inventory::not_found(
                &top,
                "root subvolume",
                "--root",
                &target.root,
            ))
        }
        _ => {
            return Err(Error::Runtime(format!(
                "{} is not a subvolume; refusing to replace it",
                root.display()
            )))
        }
    }
    inventory::existing_archive_dir(&top, &target.archive)?;
    let classified = inventory::scan(&top, &target.archive)?;

    let marker_name = marker::file_name(&target.root);
    let marker_path = top.join(&marker_name);
    let root_id = btrfs::subvolume_id(&root)?;
    let pending = match marker::judge(btrfs::marker::read(&top.path, &marker_name)?, Some(root_id))
    {
        State::Pending(m) => Some(m),
        State::Absent => None,
        State::Stale(why) => {
            if dry_run {
                println!(
                    "would remove stale rollback marker {} ({why})",
                    marker_path.display()
                );
            } else {
                let went = btrfs::marker::remove(&top.path, &marker_name)?;
                log::warn!(
                    "removed stale rollback marker {} ({why}): {went}",
                    marker_path.display()
                );
            }
            None
        }
    };
    if let Some(m) = &pending {
        let same = match choice {
            Choice::Latest => true,
            Choice::Named(name) => m.from.as_deref() == Some(name.as_str()),
        };
        if same {
            let from = m.from.as_deref().ok_or_else(|| {
                Error::Runtime(format!(
                    "a rollback is already pending ({} names the current {}); boot it, or remove the marker to cancel it",
                    marker_path.display(),
                    target.root
                ))
            })?;
            top.unmount()?;
            log::info!(
                "rollback: {} restored from {}/{from} is already pending; nothing to do",
                target.root,
                target.archive
            );
            return Ok(());
        }
    }

    let chosen: &Archive = match choice {
        Choice::Latest => classified
            .archives
            .iter()
            .max_by_key(|a| a.id)
            .ok_or_else(|| {
                Error::Runtime(format!(
                    "no archives in {} to roll back to",
                    archive_dir.display()
                ))
            })?,
        Choice::Named(name) => match classified.archives.iter().find(|a| &a.name == name) {
            Some(a) => a,
            None => {
                let why = classified
                    .foreign
                    .iter()
                    .find(|f| &f.name == name)
                    .map_or("no such archive", |f| f.why);
                return Err(Error::Runtime(format!(
                    "cannot roll back to {}: {why}",
                    archive_dir.join(name).display()
                )));
            }
        },
    };
    let source = archive_dir.join(&chosen.name);
    if dry_run {
        println!(
            "would restore {} as {} (a writable snapshot; the archive stays)",
            source.display(),
            root.display()
        );
        println!(
            "would archive the current {} in {}",
            root.display(),
            archive_dir.display()
        );
        println!(
            "would leave marker {} so the next rotate keeps it once",
            marker_path.display()
        );
        top.unmount()?;
        return Ok(());
    }

    let (fresh, fresh_name, _) = create_unique(&archive_dir, |path| {
        let made = btrfs::snapshot(&source, path);
        if made.is_err() && btrfs::node(path).ok() == Some(Node::Subvolume) {
            // A recursive snapshot that failed part-way (ENOSPC) under the
            // fresh name, which did not exist a moment ago: ours.
            discard_own(path);
        }
        made
    })?;
    fault::point("after snapshotting the archive");
    let done = btrfs::subvolume_id(&fresh).and_then(|fresh_id| {
        let m = Marker {
            id: fresh_id,
            from: Some(chosen.name.clone()),
        };
        let temp = marker::temp_name(&target.root);
        btrfs::marker::write_new(&top.path, &temp, &marker::format(&m), marker::MODE)?;
        fault::point("after writing the marker's temporary file");
        btrfs::marker::rename_into_place(&top.path, &temp, &marker_name).inspect_err(|_| {
            let _ = btrfs::marker::unlink(&top.path, &temp);
        })?;
        fault::point("after renaming the marker into place");
        btrfs::exchange(&fresh, &root)
            .inspect_err(|_| restore_marker(&top, &target.root, pending.as_ref()))
            .map(|()| fresh_id)
    });
    let fresh_id = match done {
        Ok(id) => id,
        Err(e) => {
            // Nothing changed for the next boot; leave nothing behind either:
            // the snapshot would take a keep-at-least slot as the newest
            // archive.
            discard_own(&fresh);
            return Err(e);
        }
    };
    fault::point("after exchanging root and snapshot");
    let default_note = match btrfs::default_subvol::get(&top.path) {
        Ok(d) if d == root_id => match btrfs::default_subvol::set(&top.path, fresh_id) {
            Ok(()) => "; the restored root is now the default subvolume",
            Err(e) => {
                log::error!("{e}");
                ""
            }
        },
        _ => "",
    };
    btrfs::sync(&top.path)?;
    fault::point("after committing the rollback");
    top.unmount()?;
    let replaced = match &pending {
        Some(m) => format!(
            "the pending restore from {} archived as {}/{fresh_name}",
            m.from.as_deref().unwrap_or("an earlier rollback"),
            target.archive
        ),
        None => format!("current root archived as {}/{fresh_name}", target.archive),
    };
    log::info!(
        "rollback: {} restored from {}/{} (subvolume {fresh_id}); {replaced}{default_note}; the next rotate keeps it once ({:.1} ms)",
        target.root,
        target.archive,
        chosen.name,
        started.elapsed().as_secs_f64() * 1000.0
    );
    fault::finish();
    Ok(())
}

/// After a failed exchange: the marker must name what the root is again,
/// the pending rollback's restored root if there was one, else nothing.
fn restore_marker(top: &TopLevel, root: &str, pending: Option<&Marker>) {
    let name = marker::file_name(root);
    let undone = match pending {
        None => btrfs::marker::unlink(&top.path, &name),
        Some(m) => {
            let temp = marker::temp_name(root);
            btrfs::marker::replace(&top.path, &name, &temp, &marker::format(m), marker::MODE)
        }
    };
    if let Err(e) = undone {
        log::error!("{e}");
    }
}
