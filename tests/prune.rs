//! `prune`: retention by stamp, keep-at-least by subvolume ID, the clock
//! check, recursive deletion and the time budget.

mod common;

use common::{now, stamp, summary_numbers, Fixture, DAY};

/// A fixture whose archives were made before the live root, as on a real
/// machine (the live root is always the newest subvolume of the three).
fn with_archives(test: &str, names: &[String]) -> Option<Fixture> {
    let fx = Fixture::new(test)?;
    fx.subvol("@old_roots");
    for n in names {
        fx.subvol(&format!("@old_roots/{n}"));
        fx.write(&format!("@old_roots/{n}/etc/name"), n);
    }
    fx.subvol("@persist");
    fx.subvol("@root");
    fx.write("@root/f", "live");
    Some(fx)
}

#[test]
fn prune_deletes_archives_older_than_keep_days_by_stamp() {
    let t = now();
    let old = [
        stamp(t - 31 * DAY),
        stamp(t - 100 * DAY),
        stamp(t - 400 * DAY),
    ];
    let young = [stamp(t - 29 * DAY), stamp(t - DAY), stamp(t - 60)];
    let all: Vec<String> = [&old[..], &young[..]].concat();
    let Some(fx) = with_archives("prune_keep_days", &all) else {
        return;
    };
    let run = fx
        .rr("prune", &["--keep-days", "30", "--keep-at-least", "0"])
        .ok();
    let mut expected = young.to_vec();
    expected.sort();
    assert_eq!(fx.archives(), expected);
    let (deleted, deferred, skipped, failed) = summary_numbers(&run.stderr);
    assert_eq!(
        (deleted, deferred, skipped, failed),
        (3, 0, 0, 0),
        "{run:#?}"
    );
    // A different --keep-days moves the line.
    fx.rr("prune", &["--keep-days", "2", "--keep-at-least", "0"])
        .ok();
    let mut expected = vec![stamp(t - DAY), stamp(t - 60)];
    expected.sort();
    assert_eq!(fx.archives(), expected);
}

#[test]
fn prune_uses_the_default_of_30_days_and_at_least_3() {
    let t = now();
    let names: Vec<String> = (0..6).map(|i| stamp(t - (40 + i) * DAY)).collect();
    let Some(fx) = with_archives("prune_defaults", &names) else {
        return;
    };
    fx.rr("prune", &[]).ok();
    // All six are due; the three most recently created (highest IDs) stay.
    let mut kept = names[3..].to_vec();
    kept.sort();
    assert_eq!(fx.archives(), kept);
}

#[test]
fn keep_at_least_keeps_the_most_recently_archived_by_id_even_when_all_are_due() {
    // Creation (ID) order deliberately differs from stamp order.
    let t = now();
    let names: Vec<String> = [50, 90, 70, 80, 60]
        .iter()
        .map(|d| stamp(t - d * DAY))
        .collect();
    let Some(fx) = with_archives("keep_at_least_by_id", &names) else {
        return;
    };
    let ids: Vec<u64> = names
        .iter()
        .map(|n| fx.subvol_id(&format!("@old_roots/{n}")))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
    fx.rr("prune", &["--keep-at-least", "2"]).ok();
    // Kept: the last two created (80 and 60 days old), not the two with the
    // newest stamps (50 and 60 days old).
    let mut expected = vec![names[3].clone(), names[4].clone()];
    expected.sort();
    assert_eq!(fx.archives(), expected);
}

#[test]
fn keep_at_least_larger_than_the_archive_count_deletes_nothing() {
    let t = now();
    let names: Vec<String> = (0..3).map(|i| stamp(t - (100 + i) * DAY)).collect();
    let Some(fx) = with_archives("keep_at_least_large", &names) else {
        return;
    };
    let before = fx.state();
    fx.rr("prune", &["--keep-at-least", "10"]).ok();
    assert_eq!(fx.state(), before);
}

#[test]
fn rotate_counts_this_boots_archive_towards_keep_at_least() {
    let t = now();
    let names: Vec<String> = (0..4).map(|i| stamp(t - (100 - i) * DAY)).collect();
    let Some(fx) = with_archives("rotate_keep_at_least", &names) else {
        return;
    };
    fx.rr("rotate", &["--keep-at-least", "2"]).ok();
    let archives = fx.archives();
    assert_eq!(archives.len(), 2, "{archives:?}");
    assert!(archives.contains(&names[3]), "{archives:?}");
    let fresh = archives.iter().find(|n| **n != names[3]).unwrap();
    assert_eq!(
        fx.read(&format!("@old_roots/{fresh}/f")).as_deref(),
        Some("live")
    );
}

#[test]
fn no_pruning_when_the_most_recent_archive_is_stamped_in_the_future() {
    let t = now();
    let mut names: Vec<String> = (0..4).map(|i| stamp(t - (60 + i) * DAY)).collect();
    let future = stamp(t + 10 * DAY);
    names.push(future.clone()); // created last: the highest ID
    let Some(fx) = with_archives("clock_future_newest", &names) else {
        return;
    };
    let before = fx.archives();
    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert_eq!(fx.archives(), before, "pruned despite a wrong clock");
    let warnings = run.warnings().join("\n");
    assert!(
        warnings.contains("not pruning") && warnings.contains("clock"),
        "the warning must say why: {run:#?}"
    );
    assert!(
        warnings.contains(&future[..10]),
        "names the stamp: {warnings}"
    );

    // rotate still rotates, but does not prune either.
    let run = fx.rr("rotate", &["--keep-at-least", "0"]).ok();
    assert_eq!(fx.archives().len(), before.len() + 1);
    fx.assert_blank_writable_root("@root");
    assert!(
        run.warnings().iter().any(|w| w.contains("not pruning")),
        "{run:#?}"
    );
}

#[test]
fn a_future_stamp_on_an_older_archive_does_not_block_pruning() {
    let t = now();
    let future = stamp(t + 10 * DAY);
    let mut names = vec![future.clone()]; // lowest ID
    names.extend((0..3).map(|i| stamp(t - (60 + i) * DAY)));
    let Some(fx) = with_archives("clock_future_oldest", &names) else {
        return;
    };
    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert_eq!(fx.archives(), [future], "{run:#?}");
    assert!(!run.stderr_has("not pruning"), "{run:#?}");
}

#[test]
fn prune_deletes_nested_subvolumes_at_any_depth() {
    let t = now();
    let due = stamp(t - 60 * DAY);
    let Some(fx) = with_archives("nested_depth", std::slice::from_ref(&due)) else {
        return;
    };
    let a = format!("@old_roots/{due}");
    for rel in ["a", "a/b", "a/b/c", "a/b/c/d", "var/lib/x", "a/b/sibling"] {
        fx.subvol(&format!("{a}/{rel}"));
        fx.write(&format!("{a}/{rel}/data"), rel);
    }
    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(!fx.exists(&a));
    assert!(
        !fx.subvolume_paths()
            .iter()
            .any(|p| p.starts_with("@old_roots/")),
        "{:?}",
        fx.subvolume_paths()
    );
    let (deleted, _, _, failed) = summary_numbers(&run.stderr);
    assert_eq!((deleted, failed), (1, 0), "{run:#?}");
}

#[test]
fn prune_deletes_read_only_subvolumes_that_contain_other_subvolumes() {
    // docker / machinectl style: a read-only subvolume holding another one
    // (made read-only after its child was created), at several levels, and
    // the archive itself read-only.
    let t = now();
    let due = stamp(t - 60 * DAY);
    let other = stamp(t - 59 * DAY);
    let Some(fx) = with_archives("nested_read_only", &[due.clone(), other.clone()]) else {
        return;
    };
    let a = format!("@old_roots/{due}");
    let docker = format!("{a}/var/lib/docker/btrfs/subvolumes");
    fx.subvol(&format!("{docker}/img"));
    fx.subvol(&format!("{docker}/img/layer"));
    fx.subvol(&format!("{docker}/img/layer/deep"));
    fx.write(&format!("{docker}/img/layer/deep/f"), "deep");
    fx.subvol(&format!("{a}/var/lib/machines/m1"));
    fx.subvol(&format!("{a}/var/lib/machines/m1/child"));
    // Read-only from the inside out: each after its children exist.
    fx.set_ro(&format!("{docker}/img/layer/deep"));
    fx.set_ro(&format!("{docker}/img/layer"));
    fx.set_ro(&format!("{docker}/img"));
    fx.set_ro(&format!("{a}/var/lib/machines/m1"));
    fx.set_ro(&a);
    assert!(fx.is_ro(&a) && fx.is_ro(&format!("{docker}/img/layer")));
    // The other due archive: a read-only one without children.
    fx.set_ro(&format!("@old_roots/{other}"));

    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();

    let left: Vec<String> = fx
        .subvolume_paths()
        .into_iter()
        .filter(|p| p.starts_with("@old_roots/"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{run:#?}");
    assert!(!fx.exists(&a));
    assert!(!fx.exists(&format!("@old_roots/{other}")));
    assert!(run.errors().is_empty(), "{run:#?}");
    let (deleted, _, _, failed) = summary_numbers(&run.stderr);
    assert_eq!((deleted, failed), (2, 0), "{run:#?}");
    // The space is freed later by the cleaner; nothing else was touched.
    assert!(fx.is_subvolume("@persist") && fx.is_subvolume("@root"));
}

fn due_names(count: usize) -> Vec<String> {
    let base = now() - 90 * DAY;
    (0..count as i64).map(|i| stamp(base + i * 60)).collect()
}

/// Fast: one shell loop, archives before the live root.
fn many_due(test: &str, count: usize) -> Option<(Fixture, Vec<String>)> {
    let fx = Fixture::new(test)?;
    let names = due_names(count);
    fx.subvol("@old_roots");
    fx.subvols("@old_roots", &names);
    fx.subvol("@root");
    fx.write("@root/f", "live");
    Some((fx, names))
}

fn check_budget_run(fx: &Fixture, names: &[String], budget: &str) {
    let run = fx
        .rr("rotate", &["--budget-ms", budget, "--keep-at-least", "1"])
        .ok();
    // The rotation happened regardless of the budget.
    fx.assert_blank_writable_root("@root");
    let fresh: Vec<String> = fx
        .archives()
        .into_iter()
        .filter(|n| !names.contains(n))
        .collect();
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_eq!(
        fx.read(&format!("@old_roots/{}/f", fresh[0])).as_deref(),
        Some("live")
    );
    // Some due archives remain for later, and the log says why.
    let remaining = fx.archives().len() - 1;
    assert!(
        remaining > 0,
        "nothing was deferred with a {budget} ms budget"
    );
    let (deleted, deferred, _, failed) = summary_numbers(&run.stderr);
    assert_eq!(failed, 0);
    assert_eq!(deleted + remaining, names.len(), "{run:#?}");
    assert_eq!(deferred, remaining, "{run:#?}");
    assert!(
        run.warnings().iter().any(|w| w.contains("budget")),
        "no warning about the budget: {run:#?}"
    );

    // A later prune with a generous budget finishes the job.
    let run = fx
        .rr("prune", &["--budget-ms", "600000", "--keep-at-least", "1"])
        .ok();
    assert_eq!(fx.archives(), fresh, "{run:#?}");
    assert!(!run.warnings().iter().any(|w| w.contains("budget")));
}

#[test]
fn budget_of_one_ms_rotates_and_defers_pruning_of_hundreds_of_due_archives() {
    let Some((fx, names)) = many_due("budget_1ms", 300) else {
        return;
    };
    check_budget_run(&fx, &names, "1");
}

#[test]
fn budget_of_a_few_ms_rotates_and_defers_the_rest() {
    let Some((fx, names)) = many_due("budget_5ms", 300) else {
        return;
    };
    check_budget_run(&fx, &names, "5");
}

#[test]
fn prune_within_a_budget_accounts_for_every_due_archive() {
    let Some((fx, names)) = many_due("budget_prune_partial", 200) else {
        return;
    };
    let run = fx
        .rr("prune", &["--budget-ms", "3", "--keep-at-least", "0"])
        .ok();
    let (deleted, deferred, skipped, failed) = summary_numbers(&run.stderr);
    let remaining = fx.archives().len();
    eprintln!("3 ms budget: deleted {deleted}, deferred {deferred}");
    assert_eq!((skipped, failed), (0, 0));
    assert_eq!(deleted + remaining, names.len(), "{run:#?}");
    assert_eq!(deferred, remaining, "{run:#?}");
    if deferred > 0 {
        assert!(run.warnings().iter().any(|w| w.contains("budget")));
        // Oldest first: what is left are the youngest of the due ones.
        let mut tail = names[names.len() - remaining..].to_vec();
        tail.sort();
        assert_eq!(fx.archives(), tail);
    }
}

#[test]
fn a_big_prune_logs_few_lines_so_kmsg_rate_limiting_keeps_the_summary() {
    // kmsg keeps ten lines per five seconds from one writer; the summary
    // line is the last one and must not be the one dropped.
    let Some((fx, names)) = many_due("few_log_lines", 200) else {
        return;
    };
    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    let (deleted, ..) = summary_numbers(&run.stderr);
    assert_eq!(deleted, names.len());
    let lines = run.lines();
    assert!(lines.len() <= 6, "{} log lines: {lines:#?}", lines.len());
    assert!(
        lines.last().unwrap().contains("prune: deleted 200"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("more, not listed")),
        "the cap says what it left out: {lines:#?}"
    );
}
