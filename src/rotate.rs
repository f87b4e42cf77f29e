//! `rotate` and `prune`: read the filesystem, plan, act, log.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::archive::Archive;
use crate::btrfs::{self, Node, TopLevel};
use crate::cli::Target;
use crate::error::{Error, Result};
use crate::fault;
use crate::inventory;
use crate::marker;
use crate::policy::{self, Retention};
use crate::prune;
use crate::stamp::{self, Stamp, MAX_COUNTER};
use crate::status::{self, Status};

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
    /// `rotate` only: where to write how it ended (never in a dry run).
    pub status_file: Option<status::Location>,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// What happened to the root.
enum Rotation {
    Archived(Archive),
    CreatedMissing,
    KeptOnce,
}

/// `rotate`, then its status file: whatever the outcome, unless this is a
/// dry run or there is no status file. Writing it cannot change the
/// outcome; a failure is a warning.
pub fn rotate(opts: &Options, started: Instant) -> Result<()> {
    let mut done = Status::default();
    let result = rotate_and_prune(opts, started, &mut done);
    if let (Some(at), false) = (&opts.status_file, opts.dry_run) {
        done.exit_code = result.as_ref().map_or_else(Error::code, |()| 0);
        done.error = result.as_ref().err().map(Error::to_string);
        done.time = now();
        write_status(at, &done);
    }
    result
}

fn write_status(at: &status::Location, done: &Status) {
    let temp = status::temp_name(&at.name, std::process::id());
    let written = btrfs::marker::ensure_dir(&at.dir, status::DIR_MODE).and_then(|()| {
        let text = status::format(done);
        btrfs::marker::replace(&at.dir, &at.name, &temp, &text, status::FILE_MODE)
    });
    if let Err(e) = written {
        log::warn!(
            "status file {} not written: {e}",
            at.dir.join(&at.name).display()
        );
    }
}

/// The rotation and pruning; `done` records what happened as it happens,
/// so that it is right also when a later step fails.
fn rotate_and_prune(opts: &Options, started: Instant, done: &mut Status) -> Result<()> {
    let t = &opts.target;
    btrfs::check_device(&t.device)?;
    let top = TopLevel::mount(&t.device, &t.mount_point, opts.dry_run)?;
    fault::point("after mounting the top level");
    let mounted = started.elapsed();

    let archive_dir = top.join(&t.archive);
    // Every refusal comes before anything is created.
    let root_node = root_node(&top, &t.root)?;
    let archive_node = inventory::archive_dir_node(&top, &t.archive)?;
    if root_node == Node::Missing
        && archive_node == Node::Missing
        && !inventory::top_level_subvolumes(&top)?.is_empty()
    {
        // A first boot on a layout made for other names would otherwise
        // create both here and wipe nothing, leaving the real root alone.
        return Err(inventory::not_found(
            &top,
            "root subvolume",
            "--root",
            &t.root,
        ));
    }
    if archive_node == Node::Missing {
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
    let default = default_subvolume(&top, &mut archives);
    let scanned = t_scan.elapsed();
    // The clock is judged against the archives that existed before this boot.
    let clock = policy::check_clock(now(), BUILD_EPOCH, &prune::candidates(&archives));

    let t_rotate = Instant::now();
    let rotation = rotate_root(&top, t, root_node, opts.dry_run, &mut done.archived)?;
    if let Rotation::Archived(a) = &rotation {
        archives.push(a.clone());
    }
    if let Some(default) = default {
        follow_default(&top, &t.root, default, &mut archives, opts.dry_run);
    }
    let rotated = t_rotate.elapsed();

    let report = prune_within_budget(&archive_dir, &archives, clock, opts, started);
    done.pruned = report.deleted;
    done.deferred = report.deferred;
    done.failed = report.failed;
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

/// The root's node; anything but a subvolume or nothing is refused.
fn root_node(top: &TopLevel, name: &str) -> Result<Node> {
    let root = top.join(name);
    match btrfs::node(&root)? {
        n @ (Node::Missing | Node::Subvolume) => Ok(n),
        _ => Err(Error::Runtime(format!(
            "{} is not a subvolume; refusing to rotate it",
            root.display()
        ))),
    }
}

/// `archived` gets the archive's name as soon as the exchange made it.
fn rotate_root(
    top: &TopLevel,
    t: &Target,
    node: Node,
    dry_run: bool,
    archived: &mut Option<String>,
) -> Result<Rotation> {
    let root = top.join(&t.root);
    if node == Node::Missing {
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
    *archived = Some(name.clone());
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
    match btrfs::delete_own_tree(path) {
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

/// Honours and consumes a rollback marker naming the current root. Anything
/// else at the marker's name is stale: logged, removed (or moved aside) and
/// ignored, and the root rotates. Nothing here can stop the rotation.
fn keep_once(top: &TopLevel, root: &str, dry_run: bool) -> Result<bool> {
    let name = marker::file_name(root);
    let shown = top.join(&name);
    let root_id = btrfs::subvolume_id(&top.join(root))?;
    let state = match btrfs::marker::read(&top.path, &name) {
        Ok(found) => marker::judge(found, Some(root_id)),
        Err(e) => marker::State::Stale(e.to_string()),
    };
    let why = match state {
        marker::State::Absent => return Ok(false),
        marker::State::Stale(why) => why,
        marker::State::Pending(_) if dry_run => {
            println!(
                "would keep the root once and consume rollback marker {}",
                shown.display()
            );
            return Ok(true);
        }
        marker::State::Pending(_) => {
            // A marker that cannot be removed would keep this root at every
            // boot: then rotate it after all; the restored root is archived.
            return match btrfs::marker::remove(&top.path, &name) {
                Ok(_) => {
                    log::info!("rollback marker found: keeping restored root {root} (subvolume {root_id}) for this boot");
                    Ok(true)
                }
                Err(e) => {
                    log::error!("{e}; rotating the restored root instead of keeping it");
                    Ok(false)
                }
            };
        }
    };
    if dry_run {
        println!(
            "would remove stale rollback marker {} ({why})",
            shown.display()
        );
        return Ok(false);
    }
    match btrfs::marker::remove(&top.path, &name) {
        Ok(went) => log::warn!(
            "ignoring stale rollback marker {} ({why}): {went}",
            shown.display()
        ),
        Err(e) => log::error!(
            "ignoring stale rollback marker {} ({why}): {e}",
            shown.display()
        ),
    }
    Ok(false)
}

/// The default subvolume, when it is the root or one of the archives (a
/// layout that boots without `subvol=`). An archive that is the default
/// cannot be deleted (EPERM): it is marked busy, so pruning skips it with
/// this warning instead of failing at every run.
fn default_subvolume(top: &TopLevel, archives: &mut [Archive]) -> Option<u64> {
    let default = match btrfs::default_subvol::get(&top.path) {
        Ok(id) => id,
        Err(e) => {
            log::warn!("{e}");
            return None;
        }
    };
    for a in archives.iter_mut().filter(|a| a.id == default) {
        log::warn!(
            "archive {} is the filesystem's default subvolume (btrfs subvolume set-default); it cannot be deleted while it is",
            a.name
        );
        a.busy = true;
    }
    Some(default)
}

/// If the default subvolume was the root before the rotation (its ID moved
/// into the archive with it), or is an archive, makes the new root the
/// default, so a boot without `subvol=` gets the blank root. In the same
/// transaction as the rotation; see docs/explanation/crash-safety.md.
fn follow_default(
    top: &TopLevel,
    root: &str,
    default: u64,
    archives: &mut [Archive],
    dry_run: bool,
) {
    let Some(archived) = archives.iter_mut().find(|a| a.id == default) else {
        return;
    };
    if dry_run {
        println!(
            "would make the new {root} the default subvolume instead of {}",
            archived.name
        );
        return;
    }
    let new_root = top.join(root);
    let done = btrfs::subvolume_id(&new_root)
        .and_then(|id| btrfs::default_subvol::set(&top.path, id).map(|()| id));
    match done {
        Ok(id) => {
            log::info!(
                "default subvolume moved from {} to the new {root} (subvolume {id})",
                archived.name
            );
            archived.busy = false;
            fault::point("after moving the default subvolume");
        }
        Err(e) => log::error!("{e}; a boot without subvol= gets archive {}", archived.name),
    }
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
    inventory::existing_archive_dir(&top, &t.archive)?;
    let mut archives = inventory::scan(&top, &t.archive)?.archives;
    default_subvolume(&top, &mut archives);
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
