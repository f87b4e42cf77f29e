//! Deleting due archives within the budget. The plan is pure (`policy`); this
//! module only acts on it, one archive at a time, logging each deletion.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::archive::Archive;
use crate::btrfs;
use crate::error::Result;
use crate::fault;
use crate::kmsg::Batch;
use crate::policy::{self, Budget, Candidate, ClockProblem, Decision, Retention};

#[derive(Debug, Default)]
pub struct Report {
    pub deleted: usize,
    pub subvolumes: u32,
    pub deferred: usize,
    pub skipped_busy: usize,
    pub failed: usize,
    pub took: Duration,
}

pub fn candidates(archives: &[Archive]) -> Vec<Candidate> {
    archives
        .iter()
        .map(|a| Candidate {
            id: a.id,
            epoch: a.stamp.epoch,
        })
        .collect()
}

pub struct Plan<'a> {
    pub archives: &'a [Archive],
    pub decisions: Vec<Decision>,
    pub order: Vec<usize>,
}

pub fn plan(archives: &[Archive], now: i64, retention: Retention) -> Plan<'_> {
    let c = candidates(archives);
    let decisions = policy::decide(&c, now, retention);
    let order = policy::deletion_order(&c, &decisions);
    Plan {
        archives,
        decisions,
        order,
    }
}

/// Deletes what the plan says, oldest first, until the budget is spent.
/// `started` is when the whole command started: the budget covers it all.
pub fn execute(
    archive_dir: &Path,
    plan: &Plan,
    clock: std::result::Result<(), ClockProblem>,
    limit: Duration,
    started: Instant,
    dry_run: bool,
) -> Report {
    let t0 = Instant::now();
    let mut report = Report::default();
    if let Err(problem) = clock {
        log::warn!("not pruning: {problem}");
        return report;
    }
    let mut budget = Budget::new(limit);
    let mut deleted_log = Batch::new(
        log::Level::Info,
        format!("deleted from {}:", archive_dir.display()),
    );
    let due: Vec<u64> = plan
        .order
        .iter()
        .map(|&i| &plan.archives[i])
        .filter(|a| !a.busy)
        .map(|a| a.id)
        .collect();
    // Only a speed-up: without it, pruning does the same, one read at a time.
    let read_ahead = if dry_run || due.is_empty() {
        None
    } else {
        btrfs::read_ahead(archive_dir, &due).ok()
    };
    for (n, &i) in plan.order.iter().enumerate() {
        let a = &plan.archives[i];
        let path = archive_dir.join(&a.name);
        if a.busy {
            log::warn!(
                "not deleting {}: it is mounted or has something mounted inside",
                path.display()
            );
            report.skipped_busy += 1;
            continue;
        }
        let nested = match btrfs::nested_subvolumes(&path) {
            Ok(n) => n,
            Err(e) => {
                log::error!("{e}");
                report.failed += 1;
                continue;
            }
        };
        let count = nested.len() as u32 + 1;
        if dry_run {
            println!(
                "would delete {} ({} nested subvolumes)",
                path.display(),
                nested.len()
            );
            report.deleted += 1;
            continue;
        }
        if !budget.may_start(started.elapsed(), count) {
            report.deferred = plan.order.len() - n;
            break;
        }
        let t = Instant::now();
        match delete_tree(&path, &nested) {
            Ok(cleared) => {
                let ro = if cleared > 0 {
                    format!(", {cleared} ro cleared")
                } else {
                    String::new()
                };
                deleted_log.add(format!("{} (+{} nested{ro})", a.name, nested.len()));
                report.deleted += 1;
                report.subvolumes += count;
            }
            Err(e) => {
                log::error!("{e}");
                report.failed += 1;
            }
        }
        budget.record(t.elapsed(), count);
        fault::point("after deleting an archive");
    }
    drop(read_ahead);
    deleted_log.flush();
    report.took = t0.elapsed();
    if report.deferred > 0 {
        log::warn!(
            "budget of {} ms spent: {} due archives left for the next run",
            limit.as_millis(),
            report.deferred
        );
    }
    report
}

/// Deletes an archive and everything nested in it, children first. A nested
/// subvolume inside a read-only one cannot be unlinked (EROFS), so read-only
/// flags are cleared first on every subvolume that has children.
/// Returns how many read-only flags it cleared.
fn delete_tree(path: &Path, nested: &[PathBuf]) -> Result<usize> {
    let holds_others = |rel: &Path| nested.iter().any(|n| n != rel && n.starts_with(rel));
    let tree = std::iter::once(Path::new("")).chain(nested.iter().map(PathBuf::as_path));
    let mut cleared = 0;
    for rel in tree.filter(|rel| holds_others(rel)) {
        let full = path.join(rel);
        if btrfs::is_read_only(&full)? {
            btrfs::set_writable(&full)?;
            cleared += 1;
        }
    }
    for rel in nested {
        btrfs::delete_subvolume(&path.join(rel))?;
    }
    btrfs::delete_subvolume(path)?;
    Ok(cleared)
}
