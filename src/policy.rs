//! Retention and budget planning. Pure: no I/O, no clock reads.
//!
//! Recency is decided by subvolume ID, never by the clock: IDs grow
//! monotonically, so the archives we always keep are the newest even when a
//! dead RTC stamped them 1970 or a bad NTP step stamped them 2099. Age (what is
//! due) necessarily comes from the stamp, so pruning refuses to run when the
//! clock is plainly wrong.

use std::time::Duration;

pub const DAY: i64 = 86_400;

/// What the user asked to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keep_days: u32,
    pub keep_at_least: usize,
}

/// The facts about one archive that retention needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: u64,
    pub epoch: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Among the `keep_at_least` most recently archived.
    KeepRecent,
    /// Younger than `keep_days`.
    KeepYoung,
    Delete,
}

impl Decision {
    pub fn keeps(self) -> bool {
        self != Decision::Delete
    }
}

/// Decides, for each candidate in input order, whether retention keeps it.
pub fn decide(candidates: &[Candidate], now: i64, retention: Retention) -> Vec<Decision> {
    let mut by_recency: Vec<usize> = (0..candidates.len()).collect();
    by_recency.sort_by_key(|&i| std::cmp::Reverse(candidates[i].id));
    let mut decisions = vec![Decision::Delete; candidates.len()];
    let cutoff = now.saturating_sub(i64::from(retention.keep_days) * DAY);
    for (rank, &i) in by_recency.iter().enumerate() {
        decisions[i] = if rank < retention.keep_at_least {
            Decision::KeepRecent
        } else if candidates[i].epoch >= cutoff {
            Decision::KeepYoung
        } else {
            Decision::Delete
        };
    }
    decisions
}

/// Indices of the candidates to delete, oldest archived (lowest ID) first,
/// so that a budget cut leaves the youngest of the due ones for later.
pub fn deletion_order(candidates: &[Candidate], decisions: &[Decision]) -> Vec<usize> {
    let mut due: Vec<usize> = (0..candidates.len())
        .filter(|&i| decisions[i] == Decision::Delete)
        .collect();
    due.sort_by_key(|&i| candidates[i].id);
    due
}

/// Why the clock cannot be trusted for age decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockProblem {
    BeforeBuild { now: i64, build: i64 },
    BeforeNewestArchive { now: i64, newest: i64 },
}

impl std::fmt::Display for ClockProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::stamp::rfc3339;
        match self {
            ClockProblem::BeforeBuild { now, build } => write!(
                f,
                "clock reads {} which is before this binary was built ({})",
                rfc3339(*now),
                rfc3339(*build)
            ),
            ClockProblem::BeforeNewestArchive { now, newest } => write!(
                f,
                "clock reads {} which is before the most recent archive's stamp ({})",
                rfc3339(*now),
                rfc3339(*newest)
            ),
        }
    }
}

/// Checks the clock against the build date and the stamp of the most recently
/// archived root (the highest ID, not the highest stamp: one archive stamped
/// in the future by a bad clock must not block pruning forever).
pub fn check_clock(
    now: i64,
    build_epoch: i64,
    candidates: &[Candidate],
) -> Result<(), ClockProblem> {
    if now < build_epoch {
        return Err(ClockProblem::BeforeBuild {
            now,
            build: build_epoch,
        });
    }
    match candidates.iter().max_by_key(|c| c.id) {
        Some(newest) if now < newest.epoch => Err(ClockProblem::BeforeNewestArchive {
            now,
            newest: newest.epoch,
        }),
        _ => Ok(()),
    }
}

/// Decides whether the next deletion may start within the budget. The cost of
/// a deletion is roughly proportional to the number of subvolumes it removes,
/// so the prediction is the mean cost per subvolume seen so far in this run.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: Duration,
    spent_on_deletes: Duration,
    subvolumes_deleted: u32,
}

impl Budget {
    pub fn new(limit: Duration) -> Self {
        Budget {
            limit,
            spent_on_deletes: Duration::ZERO,
            subvolumes_deleted: 0,
        }
    }

    /// Predicted cost of deleting `subvolumes` subvolumes.
    pub fn predict(&self, subvolumes: u32) -> Duration {
        if self.subvolumes_deleted == 0 {
            return Duration::ZERO;
        }
        self.spent_on_deletes / self.subvolumes_deleted * subvolumes
    }

    /// `elapsed` is the time since the command started.
    pub fn may_start(&self, elapsed: Duration, subvolumes: u32) -> bool {
        elapsed < self.limit && elapsed + self.predict(subvolumes) <= self.limit
    }

    pub fn record(&mut self, took: Duration, subvolumes: u32) {
        self.spent_on_deletes += took;
        self.subvolumes_deleted += subvolumes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_385_408;
    const KEEP: Retention = Retention {
        keep_days: 30,
        keep_at_least: 3,
    };

    /// The default 30 days, keeping at least `n`.
    fn at_least(n: usize) -> Retention {
        Retention {
            keep_at_least: n,
            ..KEEP
        }
    }

    fn aged(id: u64, days: i64) -> Candidate {
        Candidate {
            id,
            epoch: NOW - days * DAY,
        }
    }

    #[test]
    fn deletes_only_archives_older_than_keep_days() {
        let c = [aged(256, 60), aged(257, 31), aged(258, 29), aged(259, 1)];
        let d = decide(&c, NOW, at_least(0));
        assert_eq!(
            d,
            [
                Decision::Delete,
                Decision::Delete,
                Decision::KeepYoung,
                Decision::KeepYoung
            ]
        );
    }

    #[test]
    fn an_archive_exactly_keep_days_old_is_kept() {
        let d = decide(&[aged(300, 30)], NOW, at_least(0));
        assert_eq!(d, [Decision::KeepYoung]);
    }

    #[test]
    fn keeps_at_least_n_even_when_all_are_due() {
        let c: Vec<_> = (0..6).map(|i| aged(256 + i, 100)).collect();
        let d = decide(&c, NOW, KEEP);
        let kept: Vec<u64> = c
            .iter()
            .zip(&d)
            .filter(|(_, d)| d.keeps())
            .map(|(c, _)| c.id)
            .collect();
        assert_eq!(kept, [259, 260, 261]);
    }

    #[test]
    fn keeps_newest_even_when_clock_is_wrong() {
        // The most recent archive was stamped 1970 by a dead RTC; the older
        // ones carry sane stamps. Recency follows the ID, not the stamp.
        let c = [
            aged(256, 90),
            aged(257, 80),
            Candidate { id: 900, epoch: 5 },
        ];
        let d = decide(&c, NOW, at_least(1));
        assert_eq!(
            d,
            [Decision::Delete, Decision::Delete, Decision::KeepRecent]
        );
    }

    #[test]
    fn deletes_oldest_archived_first() {
        let c = [aged(300, 40), aged(256, 50), aged(280, 45), aged(400, 1)];
        let d = decide(&c, NOW, at_least(1));
        assert_eq!(deletion_order(&c, &d), [1, 2, 0]);
    }

    #[test]
    fn refuses_a_clock_before_the_build_date() {
        assert_eq!(
            check_clock(10, 1_000, &[]),
            Err(ClockProblem::BeforeBuild {
                now: 10,
                build: 1_000
            })
        );
    }

    #[test]
    fn refuses_a_clock_before_the_most_recent_archive() {
        let c = [aged(256, -5), aged(257, 1)];
        assert!(check_clock(NOW, 0, &c).is_ok(), "highest ID is in the past");
        let c = [aged(256, 1), aged(257, -5)];
        assert_eq!(
            check_clock(NOW, 0, &c),
            Err(ClockProblem::BeforeNewestArchive {
                now: NOW,
                newest: NOW + 5 * DAY
            })
        );
    }

    #[test]
    fn a_sane_clock_passes() {
        assert!(check_clock(NOW, NOW - DAY, &[aged(256, 2)]).is_ok());
    }

    #[test]
    fn budget_allows_the_first_delete_while_time_remains() {
        let b = Budget::new(Duration::from_millis(10));
        assert!(b.may_start(Duration::from_millis(9), 1000));
        assert!(!b.may_start(Duration::from_millis(10), 1));
    }

    #[test]
    fn budget_predicts_from_cost_per_subvolume() {
        let mut b = Budget::new(Duration::from_millis(100));
        b.record(Duration::from_millis(20), 4);
        assert_eq!(b.predict(2), Duration::from_millis(10));
        assert!(b.may_start(Duration::from_millis(50), 10));
        assert!(!b.may_start(Duration::from_millis(50), 11));
    }
}
