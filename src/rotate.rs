//! `rotate` and `prune`: read the filesystem, plan, act, log.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::archive::Archive;
use crate::btrfs::{self, Node, TopLevel};
use crate::cli::Target;
use crate::error::{Error, Result};
use crate::fault;
use crate::inventory;
use crate::policy::{self, Retention};
use crate::prune;
use crate::stamp::{self, Stamp, MAX_COUNTER};

/// Build time of this binary (or `SOURCE_DATE_EPOCH`), set by build.rs.
/// A clock earlier than this is plainly wrong.
pub const BUILD_EPOCH: i64 = match i64::from_str_radix(env!("ROOT_ROTATE_BUILD_EPOCH"), 10) {
    Ok(v) => v,
    Err(_) => 0,
};

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Options {
    pub target: Target,
    pub retention: Retention,
    pub budget: Duration,
    pub dry_run: bool,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The marker `rollback` leaves next to the root: the ID of the restored root.
pub fn marker_path(top: &TopLevel, root: &str) -> std::path::PathBuf {
    top.join(&format!("{root}.keep-once"))
}

/// What happened to the root.
enum Rotation {
    Archived(Archive),
    CreatedMissing,
    KeptOnce,
}

pub fn rotate(opts: &Options, started: Instant) -> Result<()> {
    let t = &opts.target;
    btrfs::check_device(&t.device)?;
    let top = TopLevel::mount(&t.device, &t.mount_point, opts.dry_run)?;
    fault::point("after mounting the top level");
    let mounted = started.elapsed();

    let archive_dir = top.join(&t.archive);
    if inventory::archive_dir_node(&top, &t.archive)? == Node::Missing {
        if opts.dry_run {
            println!("would create archive subvolume {}", archive_dir.display());
        } else {
            btrfs::create_subvolume(&archive_dir)?;
            log::info!("created archive subvolume {}", archive_dir.display());
            fault::point("after creating the archive subvolume");
        }
    }
    let t_scan = Instant::now();
    let mut archives = inventory::scan(&top, &t.archive)?.archives;
    let scanned = t_scan.elapsed();
    // The clock is judged against the archives that existed before this boot.
    let clock = policy::check_clock(now(), BUILD_EPOCH, &prune::candidates(&archives));

    let t_rotate = Instant::now();
    let rotation = rotate_root(&top, t, opts.dry_run)?;
    if let Rotation::Archived(a) = &rotation {
        archives.push(a.clone());
    }
    let rotated = t_rotate.elapsed();

    let report = prune_within_budget(&archive_dir, &archives, clock, opts, started);
    // One commit makes the rotation and the deletions durable together, so a
    // power cut after `rotate` returns cannot bring the old root back. Until
    // it, a crash leaves the last committed state: the root not yet rotated,
    // which the next boot rotates. (A separate commit before pruning cost a
    // second flush, about 5 ms, for no safety gain.)
    let t_commit = Instant::now();
    if !opts.dry_run {
        btrfs::sync(&top.path)?;
        fault::point("after committing");
    }
    let committed = t_commit.elapsed();
    top.unmount()?;
    fault::point("after unmounting");
    let what = match rotation {
        Rotation::Archived(a) => format!("archived {} as {}/{}", t.root, t.archive, a.name),
        Rotation::CreatedMissing => format!("created missing {}", t.root),
        Rotation::KeptOnce => format!("kept restored {} once", t.root),
    };
    log::info!(
        "rotate{}: {what}; pruned {} (deferred {}, skipped {}, failed {}) in {} (mount {}, scan {}, rotate {}, prune {}, commit {})",
        if opts.dry_run { " (dry run)" } else { "" },
        report.deleted,
        report.deferred,
        report.skipped_busy,
        report.failed,
        ms(started.elapsed()),
        ms(mounted),
        ms(scanned),
        ms(rotated),
        ms(report.took),
        ms(committed)
    );
    fault::finish();
    Ok(())
}

fn rotate_root(top: &TopLevel, t: &Target, dry_run: bool) -> Result<Rotation> {
    let root = top.join(&t.root);
    match btrfs::node(&root)? {
        Node::Missing => {
            if dry_run {
                println!("would create missing root subvolume {}", root.display());
            } else {
                btrfs::create_subvolume(&root)?;
                log::warn!(
                    "root subvolume {} was missing; created a blank one",
                    root.display()
                );
            }
            return Ok(Rotation::CreatedMissing);
        }
        Node::Subvolume => {}
        _ => {
            return Err(Error::Runtime(format!(
                "{} is not a subvolume; refusing to rotate it",
                root.display()
            )))
        }
    }
    if keep_once(top, &t.root, dry_run)? {
        return Ok(Rotation::KeptOnce);
    }
    if dry_run {
        let epoch = now();
        let name = stamp::format(epoch, 0);
        println!(
            "would archive {} as {}",
            root.display(),
            top.join(&t.archive).join(&name).display()
        );
        return Ok(Rotation::Archived(Archive {
            name,
            id: u64::MAX,
            stamp: Stamp {
                epoch,
                format: stamp::Format::RootRotate,
            },
            busy: false,
        }));
    }
    let (blank, name, epoch) = create_unique(&top.join(&t.archive), btrfs::create_subvolume)?;
    fault::point("after creating the blank subvolume");
    // One atomic step: the old root becomes the archive, the blank one the root.
    if let Err(e) = btrfs::exchange(&blank, &root) {
        // Our own, empty, just-created subvolume: leave nothing behind that
        // would count as an archive (and take a keep-at-least slot).
        discard_own(&blank);
        return Err(e);
    }
    fault::point("after exchanging root and blank");
    let id = btrfs::subvolume_id(&blank)?;
    Ok(Rotation::Archived(Archive {
        name,
        id,
        stamp: Stamp {
            epoch,
            format: stamp::Format::RootRotate,
        },
        busy: false,
    }))
}

/// Deletes a subvolume this run created moments ago, after a later step
/// failed. Logged; a failure to clean up is logged but not fatal.
pub fn discard_own(path: &Path) {
    match btrfs::delete_subvolume(path) {
        Ok(()) => log::warn!(
            "removed {} again, which this run had just created",
            path.display()
        ),
        Err(e) => log::error!("{e}"),
    }
}

/// Creates `<dir>/<stamp>` with `make`, appending a counter when the name is
/// taken (two rotations in one second, or a clock stuck at one value).
pub fn create_unique(
    dir: &Path,
    make: impl Fn(&Path) -> Result<bool>,
) -> Result<(std::path::PathBuf, String, i64)> {
    let epoch = now();
    for counter in 1..=MAX_COUNTER {
        let name = stamp::format(epoch, counter);
        let path = dir.join(&name);
        if make(&path)? {
            return Ok((path, name, epoch));
        }
    }
    Err(Error::Runtime(format!(
        "{} already holds {MAX_COUNTER} archives stamped {}; is the clock stuck?",
        dir.display(),
        stamp::format(epoch, 0)
    )))
}

/// Honours and consumes a rollback marker naming the current root.
fn keep_once(top: &TopLevel, root: &str, dry_run: bool) -> Result<bool> {
    let marker = marker_path(top, root);
    let Some(text) = btrfs::read_small(&marker)? else {
        return Ok(false);
    };
    let root_id = btrfs::subvolume_id(&top.join(root))?;
    let matches = text.trim().parse::<u64>().ok() == Some(root_id);
    if dry_run {
        println!(
            "would {} rollback marker {}",
            if matches {
                "keep the root once and consume"
            } else {
                "ignore stale"
            },
            marker.display()
        );
        return Ok(matches);
    }
    btrfs::remove_file(&marker)?;
    if matches {
        log::info!("rollback marker found: keeping restored root {root} (subvolume {root_id}) for this boot");
    } else {
        log::warn!(
            "ignoring stale rollback marker {} (names subvolume {}, root is {root_id})",
            marker.display(),
            text.trim()
        );
    }
    Ok(matches)
}

fn prune_within_budget(
    archive_dir: &Path,
    archives: &[Archive],
    clock: std::result::Result<(), policy::ClockProblem>,
    opts: &Options,
    started: Instant,
) -> prune::Report {
    let plan = prune::plan(archives, now(), opts.retention);
    prune::execute(
        archive_dir,
        &plan,
        clock,
        opts.budget,
        started,
        opts.dry_run,
    )
}

pub fn prune(opts: &Options, started: Instant) -> Result<()> {
    let t = &opts.target;
    btrfs::check_device(&t.device)?;
    let top = TopLevel::mount(&t.device, &t.mount_point, opts.dry_run)?;
    let archive_dir = top.join(&t.archive);
    let archives = inventory::scan(&top, &t.archive)?.archives;
    let clock = policy::check_clock(now(), BUILD_EPOCH, &prune::candidates(&archives));
    let report = prune_within_budget(&archive_dir, &archives, clock, opts, started);
    top.unmount()?;
    log::info!(
        "prune{}: deleted {}, deferred {}, skipped {}, failed {} of {} archives in {}",
        if opts.dry_run { " (dry run)" } else { "" },
        report.deleted,
        report.deferred,
        report.skipped_busy,
        report.failed,
        archives.len(),
        ms(started.elapsed())
    );
    fault::finish();
    if report.failed > 0 {
        return Err(Error::Runtime(format!(
            "{} archives in {} could not be deleted (see the lines above)",
            report.failed,
            archive_dir.display()
        )));
    }
    Ok(())
}
