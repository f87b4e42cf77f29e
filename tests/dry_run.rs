//! `--dry-run`: says what would happen, changes nothing. "Nothing" is checked
//! with `btrfs subvolume list -a` (IDs, generations, paths) plus the full file
//! tree of the filesystem, before and after.

mod common;

use common::{now, stamp, Fixture, DAY};

/// Due archives (one with nested subvolumes), a young one, then the root.
fn scene(test: &str) -> Option<(Fixture, Vec<String>)> {
    let fx = Fixture::new(test)?;
    let t = now();
    let names = vec![
        stamp(t - 90 * DAY),
        stamp(t - 80 * DAY),
        stamp(t - 70 * DAY),
        stamp(t - DAY),
    ];
    fx.subvol("@old_roots");
    for n in &names {
        fx.subvol(&format!("@old_roots/{n}"));
        fx.write(&format!("@old_roots/{n}/etc/name"), n);
    }
    fx.subvol(&format!("@old_roots/{}/var/lib/machines/m", names[0]));
    fx.subvol("@persist");
    fx.subvol("@root");
    fx.write("@root/etc/live", "live");
    common::sh("sync", &[]);
    Some((fx, names))
}

#[test]
fn dry_run_rotate_changes_nothing_and_says_what_it_would_do() {
    let Some((fx, names)) = scene("dry_run_rotate") else {
        return;
    };
    let before = fx.state();
    let gen = fx.committed_generation();
    let run = fx.rr("rotate", &["--dry-run", "--keep-at-least", "1"]).ok();
    assert_eq!(fx.state(), before, "dry-run rotate changed the filesystem");
    assert_eq!(fx.committed_generation(), gen, "dry-run rotate committed");
    assert!(
        run.stdout.contains("would archive") && run.stdout.contains("@root"),
        "{run:#?}"
    );
    for due in &names[..3] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains("would delete") && l.contains(due.as_str())),
            "stdout does not announce deleting {due}: {run:#?}"
        );
    }
    assert!(
        !run.stdout.contains(&names[3]),
        "young archive announced: {run:#?}"
    );
}

#[test]
fn dry_run_rotate_with_missing_archive_dir_and_root_changes_nothing() {
    let fx = fixture!(bare "dry_run_rotate_empty");
    let before = fx.state();
    let run = fx.rr("rotate", &["--dry-run"]).ok();
    assert_eq!(fx.state(), before);
    assert!(run.stdout.contains("would create"), "{run:#?}");
    assert!(!fx.exists("@root") && !fx.exists("@old_roots"));
}

/// Neither name exists but the top level holds other subvolumes: a layout
/// made for other names. Refused, listing what is there, before anything
/// is created.
#[test]
fn rotate_refuses_when_neither_name_exists_beside_other_subvolumes() {
    let fx = fixture!(bare "rotate_wrong_names");
    fx.subvol("@persist");
    let before = fx.state();
    for dry in [&["--dry-run"][..], &[]] {
        let run = fx.rr("rotate", dry).fails_with(1);
        assert!(run.errors()[0].contains("@root does not exist"), "{run:#?}");
        assert!(run.errors()[0].contains("@persist"), "{run:#?}");
        assert!(run.errors()[0].contains("--root"), "{run:#?}");
        assert_eq!(fx.state(), before);
    }
}

#[test]
fn dry_run_prune_changes_nothing_and_lists_what_it_would_delete() {
    let Some((fx, names)) = scene("dry_run_prune") else {
        return;
    };
    let before = fx.state();
    let run = fx.rr("prune", &["--dry-run", "--keep-at-least", "0"]).ok();
    assert_eq!(fx.state(), before, "dry-run prune changed the filesystem");
    let would: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("would delete"))
        .collect();
    assert_eq!(would.len(), 3, "{run:#?}");
    for due in &names[..3] {
        assert!(would.iter().any(|l| l.contains(due.as_str())), "{run:#?}");
    }
    // The nested subvolume count is announced for the first one.
    assert!(
        would
            .iter()
            .any(|l| l.contains(&names[0]) && l.contains("1 nested")),
        "{run:#?}"
    );
}

#[test]
fn dry_run_rollback_changes_nothing_and_says_what_it_would_do() {
    let Some((fx, names)) = scene("dry_run_rollback") else {
        return;
    };
    let before = fx.state();
    let run = fx.rr("rollback", &["--latest", "--dry-run"]).ok();
    assert_eq!(
        fx.state(),
        before,
        "dry-run rollback --latest changed something"
    );
    assert!(run.stdout.contains("would restore"), "{run:#?}");
    assert!(
        run.stdout.contains(&names[3]),
        "latest is {}: {run:#?}",
        names[3]
    );
    assert!(!fx.exists("@root.keep-once"));

    let run = fx.rr("rollback", &["--to", &names[1], "--dry-run"]).ok();
    assert_eq!(
        fx.state(),
        before,
        "dry-run rollback --to changed something"
    );
    assert!(run.stdout.contains(&names[1]), "{run:#?}");
    assert!(run.stdout.contains("marker"), "{run:#?}");
}

#[test]
fn dry_run_rotate_does_not_consume_a_rollback_marker() {
    let Some((fx, names)) = scene("dry_run_marker") else {
        return;
    };
    fx.rr("rollback", &["--to", &names[3]]).ok();
    assert!(fx.exists("@root.keep-once"));
    let before = fx.state();
    let run = fx.rr("rotate", &["--dry-run"]).ok();
    assert_eq!(fx.state(), before);
    assert!(fx.exists("@root.keep-once"));
    assert!(run.stdout.contains("marker"), "{run:#?}");
}
