//! `rollback`: an archive becomes the next root (a writable snapshot), the
//! current root is archived, the next rotate keeps it once, the one after
//! wipes.

mod common;

use common::{now, stamp, Fixture, DAY};

const MARKER: &str = "@root.keep-once";

/// Two boots' worth of archives: "old" (older) and "previous" (latest), then
/// the current root with its own file.
fn booted(test: &str) -> Option<(Fixture, String, String)> {
    let fx = Fixture::new(test)?;
    fx.subvol("@persist");
    fx.subvol("@root");
    fx.write("@root/state", "old");
    fx.rr("rotate", &[]).ok();
    fx.write("@root/state", "previous");
    fx.subvol("@root/var/lib/machines/m"); // a nested subvolume in the root
    fx.write("@root/var/lib/machines/m/disk", "nested");
    fx.rr("rotate", &[]).ok();
    fx.write("@root/state", "current");
    let archives = fx.archives();
    assert_eq!(archives.len(), 2);
    let (old, previous) = (archives[0].clone(), archives[1].clone());
    assert_eq!(
        fx.read(&format!("@old_roots/{old}/state")).as_deref(),
        Some("old")
    );
    assert_eq!(
        fx.read(&format!("@old_roots/{previous}/state")).as_deref(),
        Some("previous")
    );
    Some((fx, old, previous))
}

fn tree_of(fx: &Fixture, rel: &str) -> Vec<String> {
    // Names and contents only (mtimes differ between a snapshot and origin).
    fx.tree(rel)
        .into_iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn rollback_latest_then_rotate_keeps_the_root_once_then_rotate_wipes() {
    let Some((fx, old, previous)) = booted("rollback_latest_cycle") else {
        return;
    };
    let archive_tree = tree_of(&fx, &format!("@old_roots/{previous}"));
    let archive_id = fx.subvol_id(&format!("@old_roots/{previous}"));

    let run = fx.rr("rollback", &["--latest"]).ok();

    // The root now holds the archive's files, nested subvolume included.
    assert_eq!(
        fx.read("@root/state").as_deref(),
        Some("previous"),
        "{run:#?}"
    );
    assert_eq!(
        fx.read("@root/var/lib/machines/m/disk").as_deref(),
        Some("nested")
    );
    assert!(fx.is_subvolume("@root/var/lib/machines/m"));
    assert!(!fx.is_ro("@root"), "restored root must be writable");
    fx.write("@root/probe", "writable");
    std::fs::remove_file(fx.path("@root/probe")).unwrap();
    // The archive itself is intact (same subvolume, same files).
    assert_eq!(fx.subvol_id(&format!("@old_roots/{previous}")), archive_id);
    assert_eq!(
        tree_of(&fx, &format!("@old_roots/{previous}")),
        archive_tree
    );
    assert_ne!(fx.subvol_id("@root"), archive_id, "root must be a snapshot");
    // The root we replaced is archived, not lost.
    let archives = fx.archives();
    assert_eq!(archives.len(), 3, "{archives:?}");
    let replaced = archives
        .iter()
        .find(|n| **n != old && **n != previous)
        .unwrap()
        .clone();
    assert_eq!(
        fx.read(&format!("@old_roots/{replaced}/state")).as_deref(),
        Some("current")
    );
    // The marker sits at the top level and names the restored root.
    // Its first line is the restored root's ID, the second the archive it came from.
    let marker = fx.read(MARKER).expect("rollback marker");
    let mut lines = marker.lines();
    assert_eq!(
        lines.next().unwrap().parse::<u64>().unwrap(),
        fx.subvol_id("@root")
    );
    assert_eq!(lines.next(), Some(format!("from {previous}").as_str()));

    // First rotate: keeps the restored root once and consumes the marker.
    let restored_id = fx.subvol_id("@root");
    let run = fx.rr("rotate", &[]).ok();
    assert_eq!(
        fx.read("@root/state").as_deref(),
        Some("previous"),
        "{run:#?}"
    );
    assert_eq!(fx.subvol_id("@root"), restored_id);
    assert!(!fx.exists(MARKER), "marker not consumed");
    assert_eq!(fx.archives(), archives, "keeping the root archives nothing");

    // Second rotate: wipes as usual, archiving the restored root.
    fx.rr("rotate", &[]).ok();
    fx.assert_blank_writable_root("@root");
    let after = fx.archives();
    assert_eq!(after.len(), 4, "{after:?}");
    let newest = after.iter().find(|n| !archives.contains(n)).unwrap();
    assert_eq!(
        fx.read(&format!("@old_roots/{newest}/state")).as_deref(),
        Some("previous")
    );
}

#[test]
fn rollback_to_a_named_archive_restores_that_archive() {
    let Some((fx, old, previous)) = booted("rollback_to_named") else {
        return;
    };
    fx.rr("rollback", &["--to", &old]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("old"));
    assert!(!fx.exists("@root/var/lib/machines"));
    assert_eq!(
        fx.read(&format!("@old_roots/{old}/state")).as_deref(),
        Some("old")
    );
    assert_eq!(
        fx.read(&format!("@old_roots/{previous}/state")).as_deref(),
        Some("previous")
    );
    let states: Vec<String> = fx
        .archives()
        .iter()
        .map(|n| fx.read(&format!("@old_roots/{n}/state")).unwrap())
        .collect();
    assert_eq!(states, ["old", "previous", "current"]);

    fx.rr("rotate", &[]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("old"));
    assert!(!fx.exists(MARKER));
    fx.rr("rotate", &[]).ok();
    fx.assert_blank_writable_root("@root");
}

#[test]
fn rollback_of_a_snippet_named_archive_works() {
    let fx = fixture!("rollback_snippet_name");
    let name = common::snippet_stamp(now() - 3 * DAY);
    fx.subvol(&format!("@old_roots/{name}"));
    fx.write(&format!("@old_roots/{name}/state"), "snippet era");
    fx.rr("rollback", &["--to", &name]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("snippet era"));
    assert!(fx.is_subvolume(&format!("@old_roots/{name}")));
}

#[test]
fn rollback_without_a_current_root_refuses_until_one_is_created() {
    let fx = fixture!(bare "rollback_no_root");
    let name = stamp(now() - DAY);
    fx.subvol(&format!("@old_roots/{name}"));
    fx.write(&format!("@old_roots/{name}/state"), "archived");
    // A missing root is most often a wrong --root: refused, naming what is there.
    let before = fx.state();
    let run = fx.rr("rollback", &["--latest"]).fails_with(1);
    assert!(run.errors()[0].contains("@root does not exist"), "{run:#?}");
    assert!(run.errors()[0].contains("@old_roots"), "{run:#?}");
    assert_eq!(fx.state(), before, "a refused rollback changed something");
    // Really without a root: create a blank one, then roll back.
    fx.subvol("@root");
    fx.rr("rollback", &["--latest"]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("archived"));
    assert_eq!(fx.archives().len(), 2, "the blank root is archived too");
    fx.rr("rotate", &[]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("archived"));
    fx.rr("rotate", &[]).ok();
    fx.assert_blank_writable_root("@root");
}

#[test]
fn stale_rollback_marker_is_ignored_with_a_warning() {
    let fx = fixture!("stale_marker");
    let root_id = fx.subvol_id("@root");
    fx.write(MARKER, &format!("{}\n", root_id + 1000));
    let run = fx.rr("rotate", &[]).ok();
    fx.assert_blank_writable_root("@root");
    assert_eq!(fx.archives().len(), 1);
    assert!(!fx.exists(MARKER), "stale marker must be removed");
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("stale") && w.contains("marker")),
        "{run:#?}"
    );
}

#[test]
fn garbage_rollback_marker_is_ignored_with_a_warning() {
    let fx = fixture!("garbage_marker");
    fx.write(MARKER, "not a number\n");
    let run = fx.rr("rotate", &[]).ok();
    fx.assert_blank_writable_root("@root");
    assert!(!fx.exists(MARKER));
    assert!(
        run.warnings().iter().any(|w| w.contains("marker")),
        "{run:#?}"
    );
}

#[test]
fn rollback_to_a_foreign_or_missing_name_fails_with_exit_1() {
    let fx = fixture!("rollback_foreign");
    fx.subvol("@old_roots/docker");
    fx.mkdir(&format!("@old_roots/{}", stamp(now() - DAY)));
    fx.rr("rotate", &[]).ok();
    let before = fx.state();
    for name in [
        "docker".to_owned(),
        stamp(now() - DAY),     // a plain directory
        stamp(now() - 5 * DAY), // missing
        "@persist".to_owned(),
    ] {
        let run = fx.rr("rollback", &["--to", &name]).fails_with(1);
        assert!(run.stderr_has(&name), "{name}: {run:#?}");
        assert_eq!(fx.state(), before, "rollback --to {name} changed something");
    }
    assert!(!fx.exists(MARKER));
}

#[test]
fn rollback_latest_without_archives_fails_with_exit_1() {
    let fx = fixture!("rollback_no_archives");
    let before = fx.state();
    fx.rr("rollback", &["--latest"]).fails_with(1);
    assert_eq!(fx.state(), before);
}
