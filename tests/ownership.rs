//! What counts as ours: only stamp-named subvolumes directly in the archive
//! directory. Everything else is foreign, warned about and never touched.

mod common;

use std::path::Path;

use common::{mentions, now, snippet_stamp, stamp, DAY};

/// The snippet's catastrophic case: `@old_roots` restored from a backup as a
/// plain directory, holding a due archive, next to `@persist` and `@nix`.
#[test]
fn plain_directory_archive_dir_deletes_only_the_due_archive_not_persist_or_nix() {
    let fx = fixture!(bare "plain_dir_archive_dir");
    fx.subvol("@persist");
    fx.write("@persist/etc/ssh/key", "secret");
    fx.subvol("@nix");
    fx.write("@nix/store/x", "store");
    fx.mkdir("@old_roots"); // a plain directory, not a subvolume
    let due = stamp(now() - 60 * DAY);
    fx.subvol(&format!("@old_roots/{due}"));
    fx.write(&format!("@old_roots/{due}/old"), "old root");
    // As on a real machine, the live root was made after the last archive.
    fx.subvol("@root");
    fx.write("@root/f", "live");
    assert!(!fx.is_subvolume("@old_roots"));

    fx.rr("rotate", &["--keep-at-least", "1"]).ok();

    let paths = fx.subvolume_paths();
    assert!(
        paths.contains(&"@persist".to_owned()),
        "@persist gone: {paths:?}"
    );
    assert!(paths.contains(&"@nix".to_owned()), "@nix gone: {paths:?}");
    assert_eq!(fx.read("@persist/etc/ssh/key").as_deref(), Some("secret"));
    assert_eq!(fx.read("@nix/store/x").as_deref(), Some("store"));
    assert!(
        !fx.exists(&format!("@old_roots/{due}")),
        "the due archive stays"
    );
    let archives = fx.archives();
    assert_eq!(archives.len(), 1, "only this boot's archive: {archives:?}");
    assert_eq!(
        fx.read(&format!("@old_roots/{}/f", archives[0])).as_deref(),
        Some("live")
    );
    assert!(
        !fx.is_subvolume("@old_roots"),
        "the plain directory stays plain"
    );
    fx.assert_blank_writable_root("@root");
}

#[test]
fn plain_directory_archive_dir_prune_deletes_only_the_archive() {
    let fx = fixture!(bare "plain_dir_prune");
    fx.subvol("@persist");
    fx.write("@persist/data", "keep me");
    fx.subvol("@nix");
    fx.subvol("@root");
    fx.mkdir("@old_roots");
    let due = stamp(now() - 45 * DAY);
    fx.subvol(&format!("@old_roots/{due}"));
    fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(!fx.exists(&format!("@old_roots/{due}")));
    assert_eq!(fx.subvolume_paths(), ["@nix", "@persist", "@root"]);
    assert_eq!(fx.read("@persist/data").as_deref(), Some("keep me"));
}

#[test]
fn foreign_entries_are_left_alone_and_warned_about_once_each() {
    let fx = fixture!("foreign_entries");
    let due = now() - 90 * DAY;
    let subvol_foreign = "docker";
    let bad_counter = format!("{}-0001", stamp(due));
    let plain_dir = stamp(due + 1);
    let file = stamp(due + 2);
    let link_persist = stamp(due + 3);
    let link_abs = snippet_stamp(due + 4);
    fx.subvol(&format!("@old_roots/{subvol_foreign}"));
    fx.write(&format!("@old_roots/{subvol_foreign}/x"), "docker data");
    fx.subvol(&format!("@old_roots/{bad_counter}"));
    fx.mkdir(&format!("@old_roots/{plain_dir}/etc"));
    fx.write(&format!("@old_roots/{plain_dir}/etc/f"), "plain");
    fx.write(&format!("@old_roots/{file}"), "a file");
    // Symlinks named with due stamps, pointing at @persist.
    fx.symlink("../@persist", &format!("@old_roots/{link_persist}"));
    fx.symlink(
        fx.path("@persist").to_str().unwrap(),
        &format!("@old_roots/{link_abs}"),
    );
    let before = fx.state();

    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();

    assert_eq!(fx.state(), before, "a foreign entry was touched");
    assert_eq!(
        fx.read("@persist/etc/ssh/ssh_host_key").as_deref(),
        Some("secret\n")
    );
    let warnings = run.warnings().join("\n");
    for name in [
        subvol_foreign,
        &bad_counter,
        &plain_dir,
        &file,
        &link_persist,
        &link_abs,
    ] {
        assert_eq!(
            common::mentions(&warnings, name),
            1,
            "expected one warning about {name}: {warnings}"
        );
    }
    let (deleted, _, _, failed) = common::summary_numbers(&run.stderr);
    assert_eq!((deleted, failed), (0, 0), "{run:#?}");
}

#[test]
fn foreign_entries_survive_rotate_too() {
    let fx = fixture!("foreign_rotate");
    let due = now() - 90 * DAY;
    fx.symlink("../@persist", &format!("@old_roots/{}", stamp(due)));
    fx.mkdir(&format!("@old_roots/{}", stamp(due + 1)));
    fx.subvol("@old_roots/machines");
    let run = fx.rr("rotate", &["--keep-at-least", "0"]).ok();
    assert!(fx.exists(&format!("@old_roots/{}", stamp(due))));
    assert!(fx.path(&format!("@old_roots/{}", stamp(due))).is_symlink());
    assert!(fx.path(&format!("@old_roots/{}", stamp(due + 1))).is_dir());
    assert!(fx.is_subvolume("@old_roots/machines"));
    assert!(fx.is_subvolume("@persist"));
    let warnings = run.warnings().join("\n");
    for name in [stamp(due), stamp(due + 1), "machines".to_owned()] {
        assert_eq!(common::mentions(&warnings, &name), 1, "{name}: {warnings}");
    }
    fx.assert_blank_writable_root("@root");
}

#[test]
fn snippet_format_names_are_managed() {
    let fx = fixture!("snippet_names_managed");
    let due = snippet_stamp(now() - 40 * DAY);
    // Unpadded day: pick a date with a single-digit day too.
    let single_digit_day = snippet_stamp(1_741_338_900); // 2025-03-7_09:15:00
    assert_eq!(single_digit_day, "2025-03-7_09:15:00");
    let young = snippet_stamp(now() - DAY);
    for n in [&due, &single_digit_day, &young] {
        fx.subvol(&format!("@old_roots/{n}"));
    }
    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(
        run.warnings().is_empty(),
        "snippet names are not foreign: {run:#?}"
    );
    assert!(
        !fx.exists(&format!("@old_roots/{due}")),
        "due snippet archive kept"
    );
    assert!(!fx.exists(&format!("@old_roots/{single_digit_day}")));
    assert!(
        fx.is_subvolume(&format!("@old_roots/{young}")),
        "young one deleted"
    );
}

#[test]
fn a_due_archive_mounted_elsewhere_is_skipped_with_a_warning() {
    let fx = fixture!("mounted_archive_skipped");
    let busy = stamp(now() - 50 * DAY);
    let other = stamp(now() - 49 * DAY);
    fx.subvol(&format!("@old_roots/{busy}"));
    fx.write(&format!("@old_roots/{busy}/f"), "in use");
    fx.subvol(&format!("@old_roots/{other}"));
    let at = fx.dir().join("inspect");
    fx.mount_subvol(&format!("@old_roots/{busy}"), &at);

    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();

    assert!(
        fx.is_subvolume(&format!("@old_roots/{busy}")),
        "mounted archive deleted"
    );
    assert_eq!(
        std::fs::read_to_string(at.join("f")).as_deref().ok(),
        Some("in use")
    );
    assert!(
        !fx.exists(&format!("@old_roots/{other}")),
        "the free one stays"
    );
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains(&busy) && w.contains("mounted")),
        "{run:#?}"
    );
    let (deleted, _, skipped, failed) = common::summary_numbers(&run.stderr);
    assert_eq!((deleted, skipped, failed), (1, 1, 0), "{run:#?}");
}

#[test]
fn a_due_archive_with_something_mounted_inside_is_skipped() {
    let fx = fixture!("mount_inside_archive");
    let busy = stamp(now() - 50 * DAY);
    fx.subvol(&format!("@old_roots/{busy}"));
    let inside = fx.path(&format!("@old_roots/{busy}/tmp"));
    fx.mount_tmpfs(&inside);
    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(fx.is_subvolume(&format!("@old_roots/{busy}")));
    assert!(common::is_mount_point(&inside));
    assert!(run.warnings().iter().any(|w| w.contains(&busy)), "{run:#?}");
}

#[test]
fn an_archive_directory_that_is_a_symlink_is_refused_with_exit_1() {
    let fx = fixture!(bare "archive_dir_symlink");
    fx.subvol("@root");
    fx.write("@root/f", "live");
    fx.subvol("@persist");
    // A due-looking subvolume inside @persist: following the link would be
    // a disaster.
    let due = stamp(now() - 90 * DAY);
    fx.subvol(&format!("@persist/{due}"));
    fx.symlink("@persist", "@old_roots");
    let before = fx.state();
    for cmd in ["rotate", "prune", "list"] {
        let run = fx.rr(cmd, &["--keep-at-least", "0"]).fails_with(1);
        assert!(
            run.stderr_has("symlink") && run.stderr_has("@old_roots"),
            "{cmd}: {run:#?}"
        );
        assert_eq!(fx.state(), before, "{cmd} changed something");
    }
    let run = fx.rr("rollback", &["--latest"]).fails_with(1);
    assert!(run.stderr_has("symlink"), "{run:#?}");
    assert_eq!(fx.state(), before);
    assert_eq!(fx.read("@root/f").as_deref(), Some("live"));
}

#[test]
fn an_archive_directory_that_is_a_file_is_refused_with_exit_1() {
    let fx = fixture!(bare "archive_dir_file");
    fx.subvol("@root");
    fx.write("@root/f", "live");
    fx.write("@old_roots", "not a directory");
    let before = fx.state();
    for cmd in ["rotate", "prune", "list"] {
        let run = fx.rr(cmd, &[]).fails_with(1);
        assert!(run.stderr_has("@old_roots"), "{cmd}: {run:#?}");
        assert_eq!(fx.state(), before, "{cmd} changed something");
    }
}

#[test]
fn never_operates_outside_the_archive_directory() {
    // Due-stamped subvolumes at the top level and inside @persist are not in
    // the archive directory and must survive rotate and prune.
    let fx = fixture!("outside_archive_dir");
    let due = stamp(now() - 90 * DAY);
    fx.subvol(&due);
    fx.subvol(&format!("@persist/{due}"));
    fx.subvol(&format!("@old_roots/{due}"));
    fx.rr("rotate", &["--keep-at-least", "1"]).ok();
    fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(fx.is_subvolume(&due));
    assert!(fx.is_subvolume(&format!("@persist/{due}")));
    assert!(!fx.exists(&format!("@old_roots/{due}")));
    assert!(Path::new(&fx.path("@nix/store")).is_dir());
}

/// Archives are recognised from the root tree's subvolume links of the
/// archive directory itself: a stamp-named subvolume one directory further
/// down (in a plain directory, stamp-named or not) is not an archive.
#[test]
fn a_stamp_named_subvolume_one_directory_down_is_not_an_archive() {
    let fx = fixture!("one_directory_down");
    let due = now() - 90 * DAY;
    let plain = stamp(due);
    let deeper = stamp(due + 1);
    fx.mkdir(&format!("@old_roots/{plain}"));
    fx.subvol(&format!("@old_roots/{plain}/{deeper}"));
    fx.mkdir("@old_roots/sub");
    fx.subvol(&format!("@old_roots/sub/{deeper}"));
    let real = stamp(due + 2);
    fx.subvol(&format!("@old_roots/{real}"));

    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();

    assert!(
        !fx.exists(&format!("@old_roots/{real}")),
        "the real archive stays"
    );
    assert!(fx.is_subvolume(&format!("@old_roots/{plain}/{deeper}")));
    assert!(fx.is_subvolume(&format!("@old_roots/sub/{deeper}")));
    assert_eq!(mentions(&run.warnings().join("\n"), &plain), 1, "{run:?}");
    assert_eq!(mentions(&run.warnings().join("\n"), "sub"), 1, "{run:?}");
}
