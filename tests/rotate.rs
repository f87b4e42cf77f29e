//! `rotate`: archive the live root, leave a blank one, commit, unmount.

mod common;

use std::collections::HashSet;
use std::fs;

use common::{now, parse_stamp, stamp};

#[test]
fn rotate_archives_root_under_a_stamp_and_leaves_a_blank_writable_root() {
    let fx = fixture!("rotate_archives_root");
    let old_id = fx.subvol_id("@root");
    let before = now();
    let run = fx.rr("rotate", &[]).ok();
    let after = now();

    let archives = fx.archives();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let name = &archives[0];
    let (epoch, counter) = parse_stamp(name).unwrap_or_else(|| panic!("bad stamp {name}"));
    assert_eq!(counter, None);
    assert!(
        (before..=after).contains(&epoch),
        "stamp {name} is not the UTC time of the rotation ({before}..{after})"
    );
    // The archive is the old root itself (same subvolume), with its files.
    assert_eq!(fx.subvol_id(&format!("@old_roots/{name}")), old_id);
    assert_eq!(
        fx.read(&format!("@old_roots/{name}/etc/machine-state"))
            .as_deref(),
        Some("live root\n")
    );
    fx.assert_blank_writable_root("@root");
    assert_ne!(fx.subvol_id("@root"), old_id);
    // @persist and @nix untouched.
    assert_eq!(
        fx.read("@persist/etc/ssh/ssh_host_key").as_deref(),
        Some("secret\n")
    );
    assert!(fx.exists("@nix/store/abc-hello/bin/hello"));
    assert!(
        run.stderr_has(&format!("archived @root as @old_roots/{name}")),
        "{run:#?}"
    );
}

#[test]
fn rotate_creates_the_archive_subvolume_when_missing() {
    let fx = fixture!(bare "rotate_creates_archive");
    fx.subvol("@root");
    fx.write("@root/f", "x");
    assert!(!fx.exists("@old_roots"));
    fx.rr("rotate", &[]).ok();
    assert!(
        fx.is_subvolume("@old_roots"),
        "@old_roots must be a subvolume"
    );
    let archives = fx.archives();
    assert_eq!(archives.len(), 1);
    assert_eq!(
        fx.read(&format!("@old_roots/{}/f", archives[0])).as_deref(),
        Some("x")
    );
    fx.assert_blank_writable_root("@root");
}

#[test]
fn rotate_creates_a_blank_root_when_root_is_missing() {
    let fx = fixture!(bare "rotate_missing_root");
    fx.subvol("@old_roots");
    fx.subvol("@persist");
    let run = fx.rr("rotate", &[]).ok();
    fx.assert_blank_writable_root("@root");
    assert!(fx.archives().is_empty(), "nothing to archive on first boot");
    assert!(
        run.warnings().iter().any(|w| w.contains("missing")),
        "a missing root deserves a warning: {run:#?}"
    );
    // And the next boot rotates normally.
    fx.write("@root/f", "second boot");
    fx.rr("rotate", &[]).ok();
    assert_eq!(fx.archives().len(), 1);
    fx.assert_blank_writable_root("@root");
}

#[test]
fn rotate_on_an_empty_filesystem_creates_root_and_archive_directory() {
    let fx = fixture!(bare "rotate_empty_fs");
    fx.rr("rotate", &[]).ok();
    fx.assert_blank_writable_root("@root");
    assert!(fx.is_subvolume("@old_roots"));
    assert!(fx.archives().is_empty());
}

#[test]
fn rotate_unmounts_and_removes_the_mount_point_it_created() {
    let fx = fixture!("rotate_removes_mount_point");
    assert!(!fx.mnt.exists());
    // Fixture::rr asserts: not mounted afterwards, no extra mount of the
    // device anywhere, and the mount point gone again.
    fx.rr("rotate", &[]).ok();
    assert!(!fx.mnt.exists());
    assert!(!common::is_mount_point(&fx.mnt));
}

#[test]
fn rotate_leaves_an_existing_mount_point_directory_in_place() {
    let fx = fixture!("rotate_keeps_mount_point");
    fs::create_dir(&fx.mnt).unwrap();
    fs::write(fx.dir().join("marker"), "x").unwrap();
    fx.rr("rotate", &[]).ok();
    assert!(fx.mnt.is_dir(), "a pre-existing mount point must stay");
    assert!(!common::is_mount_point(&fx.mnt));
    assert!(fs::read_dir(&fx.mnt).unwrap().next().is_none());
}

#[test]
fn two_rotations_in_one_second_get_distinct_names() {
    let fx = fixture!("two_rotations_one_second");
    // Retry the pair until both start in the same second (a rotation takes
    // tens of milliseconds, so this needs at most a couple of attempts).
    for attempt in 0..5 {
        let archived_before = fx.archives().len();
        fx.write("@root/which", "first");
        let t0 = now();
        fx.rr("rotate", &[]).ok();
        fx.write("@root/which", "second");
        fx.rr("rotate", &[]).ok();
        let t1 = now();
        let archives = fx.archives();
        assert_eq!(archives.len(), archived_before + 2);
        if t0 != t1 {
            eprintln!("attempt {attempt}: crossed a second boundary, retrying");
            continue;
        }
        let base = stamp(t0);
        let first = archives.iter().find(|n| **n == base);
        let second = archives.iter().find(|n| **n == format!("{base}-0002"));
        assert!(
            first.is_some() && second.is_some(),
            "expected {base} and {base}-0002 in {archives:?}"
        );
        assert_eq!(
            fx.read(&format!("@old_roots/{base}/which")).as_deref(),
            Some("first")
        );
        assert_eq!(
            fx.read(&format!("@old_roots/{base}-0002/which")).as_deref(),
            Some("second")
        );
        // Not nested: both sit directly in @old_roots.
        let paths = fx.subvolume_paths();
        assert!(paths.contains(&format!("@old_roots/{base}")), "{paths:?}");
        assert!(
            paths.contains(&format!("@old_roots/{base}-0002")),
            "{paths:?}"
        );
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with(&format!("@old_roots/{base}/"))),
            "the live root was nested inside the previous archive: {paths:?}"
        );
        fx.assert_blank_writable_root("@root");
        return;
    }
    panic!("two rotations never fit in one second");
}

#[test]
fn several_rotations_in_quick_succession_all_succeed_with_distinct_names() {
    let fx = fixture!("several_rotations");
    let n = 8;
    for i in 0..n {
        fx.write("@root/generation", &i.to_string());
        fx.rr("rotate", &[]).ok();
    }
    let archives = fx.archives();
    assert_eq!(archives.len(), n, "{archives:?}");
    let unique: HashSet<_> = archives.iter().collect();
    assert_eq!(unique.len(), n);
    let mut seen = Vec::new();
    for name in &archives {
        assert!(parse_stamp(name).is_some(), "not one of our stamps: {name}");
        assert!(
            !fx.subvolume_paths()
                .iter()
                .any(|p| p.starts_with(&format!("@old_roots/{name}/"))),
            "nested subvolume inside {name}"
        );
        seen.push(fx.read(&format!("@old_roots/{name}/generation")).unwrap());
    }
    // Names sort in time order, so each archive holds its own generation.
    let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected, "archives {archives:?}");
    fx.assert_blank_writable_root("@root");
}

#[test]
fn rotation_whose_stamp_is_taken_gets_a_counter_suffix() {
    let fx = fixture!("stamp_taken_counter");
    // Occupy every name the rotation could pick in the next seconds.
    let t = now();
    let taken: Vec<String> = (t - 1..t + 6).map(stamp).collect();
    fx.subvols("@old_roots", &taken);
    fx.rr("rotate", &[]).ok();
    let fresh: Vec<String> = fx
        .archives()
        .into_iter()
        .filter(|n| !taken.contains(n))
        .collect();
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    let (epoch, counter) = parse_stamp(&fresh[0]).unwrap();
    assert_eq!(counter, Some(2), "{}", fresh[0]);
    assert!(taken.contains(&stamp(epoch)));
    assert_eq!(
        fx.read(&format!("@old_roots/{}/etc/machine-state", fresh[0]))
            .as_deref(),
        Some("live root\n")
    );
    // The occupied archives are untouched (still empty).
    for name in &taken {
        assert!(fx.is_empty_dir(&format!("@old_roots/{name}")), "{name}");
    }
}

#[test]
fn rotate_is_durable_when_it_exits() {
    let fx = fixture!("rotate_durable");
    sh_sync();
    let gen_before = fx.committed_generation();
    fx.rr("rotate", &[]).ok();
    let name = fx.archives().pop().unwrap();
    // Visible to btrfs-progs.
    assert!(fx.has_subvolume(&format!("@old_roots/{name}")));
    assert!(fx.has_subvolume("@root"));
    // Committed: the superblock on the device moved on, and the root tree as
    // committed on disk (read from a copy of the image, no mount, no sync by
    // us) already holds the new archive name. The fixture is mounted with
    // commit=300, so only root-rotate's own commit can have written it.
    assert!(
        fx.committed_generation() > gen_before,
        "no transaction commit after rotate"
    );
    let tree = fx.committed_root_tree();
    assert!(
        tree.contains(&format!("name {name}")),
        "the committed root tree does not name {name}:\n{tree}"
    );
}

/// The one commit at the end covers the deletions too: the committed root
/// tree names the new archive and no longer the pruned one.
#[test]
fn rotate_and_its_deletions_are_durable_when_it_exits() {
    let fx = fixture!("rotate_prune_durable");
    let due = stamp(now() - 90 * common::DAY);
    fx.subvol(&format!("@old_roots/{due}"));
    fx.subvol(&format!("@old_roots/{due}/var/lib/nested"));
    sh_sync();
    assert!(fx.committed_root_tree().contains(&format!("name {due}")));
    // The due archive was made after the fixture's root, so it has the higher
    // subvolume ID: with keep-at-least 1 it would count as the newest.
    fx.rr("rotate", &["--keep-at-least", "0"]).ok();
    let name = fx.archives().pop().unwrap();
    assert_ne!(name, due);
    let tree = fx.committed_root_tree();
    assert!(
        tree.contains(&format!("name {name}")),
        "new archive not committed:\n{tree}"
    );
    assert!(
        !tree.contains(&format!("name {due}")),
        "deletion not committed:\n{tree}"
    );
    assert!(
        !tree.contains("name nested"),
        "nested deletion not committed:\n{tree}"
    );
}

fn sh_sync() {
    common::sh("sync", &[]);
}

#[test]
fn rotate_with_custom_root_and_archive_names() {
    let fx = fixture!(bare "rotate_custom_names");
    fx.subvol("root-sv");
    fx.write("root-sv/f", "custom");
    fx.subvol("@root");
    fx.write("@root/f", "default root must stay");
    fx.rr("rotate", &["--root", "root-sv", "--archive", "snapshots"])
        .ok();
    let archives = fx.archives_in("snapshots");
    assert_eq!(archives.len(), 1);
    assert_eq!(
        fx.read(&format!("snapshots/{}/f", archives[0])).as_deref(),
        Some("custom")
    );
    fx.assert_blank_writable_root("root-sv");
    assert_eq!(
        fx.read("@root/f").as_deref(),
        Some("default root must stay")
    );
    assert!(!fx.exists("@old_roots"));
}

#[test]
fn rotate_refuses_a_root_that_is_not_a_subvolume() {
    let fx = fixture!(bare "rotate_root_plain_dir");
    fx.mkdir("@root/etc");
    fx.write("@root/etc/f", "plain");
    fx.subvol("@old_roots");
    let before = fx.state();
    let run = fx.rr("rotate", &[]).fails_with(1);
    assert!(run.stderr_has("@root"), "{run:#?}");
    assert_eq!(fx.state(), before, "nothing may change");
}
