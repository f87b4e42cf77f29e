//! `rollback`: make an archive the next root, keep the current root archived.
//!
//! Order, for crash safety (see docs/explanation/crash-safety.md):
//! 1. snapshot the chosen archive to a fresh `<archive>/<stamp>` (writable,
//!    nested subvolumes included); a crash here leaves one extra archive;
//! 2. write the keep-once marker naming that snapshot's subvolume ID and make
//!    it durable; a crash here leaves a marker that names no root, which the
//!    next `rotate` discards;
//! 3. exchange the snapshot with the root in one `renameat2(RENAME_EXCHANGE)`:
//!    the restored tree becomes the root, the current root becomes the new
//!    archive. Before this step nothing changed for the next boot; after it,
//!    the rollback is complete;
//! 4. commit.

use std::time::Instant;

use crate::archive::Archive;
use crate::btrfs::{self, Node, TopLevel};
use crate::cli::Target;
use crate::error::{Error, Result};
use crate::fault;
use crate::inventory;
use crate::rotate::{create_unique, discard_own, marker_path};

pub enum Choice {
    Named(String),
    Latest,
}

pub fn rollback(target: &Target, choice: &Choice, dry_run: bool, started: Instant) -> Result<()> {
    btrfs::check_device(&target.device)?;
    let top = TopLevel::mount(&target.device, &target.mount_point, dry_run)?;
    let archive_dir = top.join(&target.archive);
    let classified = inventory::scan(&top, &target.archive)?;
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
    let root = top.join(&target.root);
    let root_node = btrfs::node(&root)?;
    if !matches!(root_node, Node::Subvolume | Node::Missing) {
        return Err(Error::Runtime(format!(
            "{} is not a subvolume; refusing to replace it",
            root.display()
        )));
    }
    if dry_run {
        println!(
            "would restore {} as {} (a writable snapshot; the archive stays)",
            source.display(),
            root.display()
        );
        if root_node == Node::Subvolume {
            println!(
                "would archive the current {} in {}",
                root.display(),
                archive_dir.display()
            );
        }
        println!(
            "would leave marker {} so the next rotate keeps it once",
            marker_path(&top, &target.root).display()
        );
        top.unmount()?;
        return Ok(());
    }

    let (fresh, fresh_name, _) =
        create_unique(&archive_dir, |path| btrfs::snapshot(&source, path))?;
    fault::point("after snapshotting the archive");
    let fresh_id = btrfs::subvolume_id(&fresh)?;
    let marker = marker_path(&top, &target.root);
    btrfs::write_durably(&marker, &format!("{fresh_id}\n"))?;
    fault::point("after writing the marker");
    let (moved, current) = if root_node == Node::Subvolume {
        (
            btrfs::exchange(&fresh, &root),
            format!("current root archived as {}/{fresh_name}", target.archive),
        )
    } else {
        (
            btrfs::rename_noreplace(&fresh, &root),
            "there was no current root".to_owned(),
        )
    };
    if let Err(e) = moved {
        // Undo in reverse: the marker first (it names the snapshot), then
        // the snapshot, a copy we made moments ago of an archive that stays.
        let _ = btrfs::remove_file(&marker);
        discard_own(&fresh);
        return Err(e);
    }
    fault::point("after exchanging root and snapshot");
    btrfs::sync(&top.path)?;
    fault::point("after committing the rollback");
    top.unmount()?;
    log::info!(
        "rollback: {} restored from {}/{} (subvolume {fresh_id}); {current}; the next rotate keeps it once ({:.1} ms)",
        target.root,
        target.archive,
        chosen.name,
        started.elapsed().as_secs_f64() * 1000.0
    );
    fault::finish();
    Ok(())
}
