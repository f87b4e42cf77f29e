//! Deleting due archives within the budget. The plan is pure (`policy`); this
//! module only acts on it, one archive at a time, logging each deletion.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::archive::Archive;
use crate::btrfs;
use crate::btrfs::Outcome;
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
    /// The archive the budget stopped in the middle of, if any.
    pub partly: Option<Partly>,
    pub took: Duration,
}

/// An archive whose deletion the budget stopped between two subvolumes.
#[derive(Debug)]
pub struct Partly {
    pub name: String,
    /// Subvolumes gone so far (nested ones; the archive itself goes last).
    pub deleted: u32,
    /// The archive and everything nested in it.
    pub total: u32,
    /// Read-only flags cleared so far (that comes before any deletion).
    pub ro_cleared: u32,
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
/// The budget is checked before each archive (its predicted cost) and again
/// before each subvolume inside it, so one huge archive cannot overrun it;
/// an archive stopped part-way is still there (children go first) and the
/// next run finishes it.
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
    let shown = archive_dir.display();
    let mut log = Logs {
        deleted: Batch::new(log::Level::Info, format!("deleted from {shown}:")),
        busy: Batch::new(
            log::Level::Warn,
            format!("not deleting from {shown}, mounted or with something mounted inside:"),
        ),
        failed: Batch::new(log::Level::Error, format!("cannot delete from {shown}:")),
    };
    let due: Vec<u64> = plan
        .order
        .iter()
        .map(|&i| &plan.archives[i])
        .filter(|a| !a.busy)
        .map(|a| a.id)
        .collect();
    let dir = if due.is_empty() {
        None
    } else {
        match btrfs::ArchiveDir::open(archive_dir) {
            Ok(dir) => Some(dir),
            Err(e) => {
                log::error!("{e}");
                report.failed = due.len();
                None
            }
        }
    };
    // Only a speed-up: without it, pruning does the same, one read at a time.
    let read_ahead = if dry_run || dir.is_none() {
        None
    } else {
        btrfs::read_ahead(archive_dir, &due).ok()
    };
    let mut budget = Budget::new(limit);
    for (n, &i) in plan.order.iter().enumerate() {
        let a = &plan.archives[i];
        if a.busy {
            log.busy.add(a.name.clone());
            report.skipped_busy += 1;
            continue;
        }
        let Some(dir) = &dir else { continue };
        let nested = match dir.nested(&a.name, a.id) {
            Ok(n) => n,
            Err(e) => {
                log.failed.add(format!("{e};"));
                report.failed += 1;
                continue;
            }
        };
        let total = nested.count() as u32 + 1;
        if dry_run {
            println!(
                "would delete {}/{} ({} nested subvolumes)",
                shown,
                a.name,
                nested.count()
            );
            report.deleted += 1;
            continue;
        }
        if !budget.may_start(started.elapsed(), total) {
            report.deferred = plan.order.len() - n;
            break;
        }
        let t = Instant::now();
        let (outcome, result) = dir.delete(&a.name, a.id, &nested, || {
            budget.may_start(started.elapsed(), 1)
        });
        budget.record(t.elapsed(), outcome.deleted.max(1));
        report.subvolumes += outcome.deleted;
        match result {
            Err(e) => {
                log.failed.add(format!("{e};"));
                report.failed += 1;
            }
            Ok(()) if outcome.finished => {
                log.deleted.add(deleted_item(&a.name, total, outcome));
                report.deleted += 1;
            }
            Ok(()) => {
                // Stopped between two subvolumes (or before the first).
                let deleted = outcome.deleted + outcome.gone;
                if deleted + outcome.ro_cleared > 0 {
                    report.partly = Some(Partly {
                        name: a.name.clone(),
                        deleted,
                        total,
                        ro_cleared: outcome.ro_cleared,
                    });
                }
                report.deferred = plan.order.len() - n;
                break;
            }
        }
        fault::point("after deleting an archive");
    }
    drop(read_ahead);
    log.busy.flush();
    log.deleted.flush();
    log.failed.flush();
    report.took = t0.elapsed();
    if report.deferred > 0 {
        let partly = match &report.partly {
            Some(p) => format!(
                "; {} is partly deleted ({} of its {} subvolumes gone, {} read-only flags \
                 cleared), the next run finishes it",
                p.name, p.deleted, p.total, p.ro_cleared
            ),
            None => String::new(),
        };
        log::warn!(
            "budget of {} ms spent: {} due archives left for the next run{partly}",
            limit.as_millis(),
            report.deferred
        );
    }
    report
}

/// One batch per kind of per-archive line: a prune writes a handful of
/// lines, whatever the number of archives, so kmsg's rate limit never drops
/// the summary.
struct Logs {
    deleted: Batch,
    busy: Batch,
    failed: Batch,
}

fn deleted_item(name: &str, total: u32, outcome: Outcome) -> String {
    let mut notes = Vec::new();
    if outcome.ro_cleared > 0 {
        notes.push(format!("{} ro cleared", outcome.ro_cleared));
    }
    if outcome.gone > 0 && outcome.deleted == 0 {
        notes.push("already gone".to_owned());
    } else if outcome.gone > 0 {
        notes.push(format!("{} already gone", outcome.gone));
    }
    let notes: String = notes.iter().map(|n| format!(", {n}")).collect();
    format!("{name} (+{} nested{notes})", total - 1)
}
