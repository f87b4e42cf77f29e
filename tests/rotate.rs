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

// ------------------------------------------------------------ status file

/// The status file, parsed; it must be one JSON object on one line.
fn status_of(text: &str) -> serde_json::Value {
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "not one line: {text:?}"
    );
    let v: serde_json::Value = serde_json::from_str(text).expect("status file is JSON");
    let mut got: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    got.sort();
    let mut want = [
        "command",
        "exit_code",
        "time",
        "archived",
        "pruned",
        "deferred",
        "failed",
        "error",
    ];
    want.sort();
    assert_eq!(got, want, "{text}");
    assert_eq!(v["command"], "rotate");
    v
}

/// `pruned`, `deferred`, `failed`.
fn counts(v: &serde_json::Value) -> [i64; 3] {
    ["pruned", "deferred", "failed"].map(|k| v[k].as_i64().unwrap_or(-1))
}

fn read_status(path: &std::path::Path) -> serde_json::Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no status file at {}: {e}", path.display()));
    status_of(&text)
}

/// What a fresh /run held after a run: `path mode` of each entry below it,
/// and the status file.
struct RunDir {
    listing: Vec<String>,
    status: Option<String>,
}

/// Runs `rotate --device DEV --mount-point MNT extra` (and no
/// `--status-file` unless `extra` has one) in a mount namespace of its own
/// with an empty tmpfs on /run, as in a fresh initrd; the host's /run is
/// never touched. Under umask 077: the modes must not depend on it.
fn rotate_with_a_fresh_run(fx: &common::Fixture, extra: &[&str]) -> (common::Run, RunDir) {
    let out = fx.dir().join("run-after");
    fs::create_dir_all(&out).unwrap();
    let script = r#"mount -t tmpfs -o mode=0755 tmpfs /run || exit 99
umask 077
"$@"; rc=$?
find /run -mindepth 1 -printf '%P %m\n' | sort > "$OUT/listing"
if [ -e /run/root-rotate/status.json ]; then cat /run/root-rotate/status.json > "$OUT/status"; else rm -f "$OUT/status"; fi
exit $rc"#;
    let mut args = vec![
        "-m",
        "sh",
        "-c",
        script,
        "sh",
        common::BIN,
        "rotate",
        "--device",
        &fx.dev,
        "--mount-point",
        fx.mnt.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = std::process::Command::new("unshare")
        .args(&args)
        .env("ROOT_ROTATE_LOG", "stderr")
        .env("OUT", &out)
        .output()
        .expect("run unshare");
    let run = common::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_ne!(run.code, 99, "cannot mount a tmpfs on /run: {run:#?}");
    let listing = fs::read_to_string(out.join("listing"))
        .unwrap_or_else(|e| panic!("no listing ({e}): {run:#?}"))
        .lines()
        .map(str::to_owned)
        .collect();
    let status = fs::read_to_string(out.join("status")).ok();
    (run, RunDir { listing, status })
}

#[test]
fn rotate_writes_its_status_file_under_run_by_default() {
    let fx = fixture!("status_default_path");
    let due = stamp(now() - 90 * common::DAY);
    fx.subvol(&format!("@old_roots/{due}"));
    let before = now();
    // keep-at-least 0: the due archive has the highest subvolume ID.
    let (run, after) = rotate_with_a_fresh_run(&fx, &["--keep-at-least", "0"]);
    let run = run.ok();
    assert!(run.warnings().is_empty(), "{run:#?}");
    // The directory is created 0755, the file is 0644, nothing else is left.
    assert_eq!(
        after.listing,
        ["root-rotate 755", "root-rotate/status.json 644"],
        "{run:#?}"
    );
    let v = status_of(after.status.as_deref().unwrap());
    let archives = fx.archives();
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["archived"], archives[0].as_str());
    assert_eq!(counts(&v), [1, 0, 0], "{v}");
    assert!(v["error"].is_null(), "{v}");
    let time = v["time"].as_i64().unwrap();
    assert!((before..=now()).contains(&time), "{v}");
}

#[test]
fn status_file_after_a_rotation_names_the_archive_as_list_shows_it() {
    let fx = fixture!("status_after_rotation");
    // Whatever was there is replaced.
    fs::write(fx.status_file(), "stale\n").unwrap();
    let before = now();
    let run = fx.rr("rotate", &[]).ok();
    let after = now();
    let v = read_status(&fx.status_file());
    let list = fx.rr("list", &["--json"]).ok();
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(v["archived"], list[0]["name"], "{v} vs {list:?}");
    assert!(run.stderr_has(&format!(
        "archived @root as @old_roots/{}",
        v["archived"].as_str().unwrap()
    )));
    assert_eq!(v["exit_code"], run.code);
    assert!(v["error"].is_null(), "{v}");
    assert_eq!(counts(&v), [0, 0, 0], "{v}");
    assert!(
        (before..=after).contains(&v["time"].as_i64().unwrap()),
        "{v}"
    );
    // No temporary file left beside it.
    let names: Vec<String> = fs::read_dir(fx.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("status"))
        .collect();
    assert_eq!(names, ["status.json"]);
    // Nothing to archive (a missing root is created): archived is null.
    let fx = fixture!(bare "status_nothing_archived");
    fx.rr("rotate", &[]).ok();
    let v = read_status(&fx.status_file());
    assert_eq!(v["exit_code"], 0);
    assert!(v["archived"].is_null() && v["error"].is_null(), "{v}");
}

#[test]
fn status_file_after_a_failed_rotate_has_its_exit_code_and_error() {
    // No such device: fails before anything is mounted (no root needed).
    let scratch = common::Scratch::new("status_wrong_device");
    let path = scratch.dir.join("status.json");
    let mnt = scratch.dir.join("mnt");
    let run = common::rr_raw(&[
        "rotate",
        "--device",
        "/nonexistent-device",
        "--mount-point",
        mnt.to_str().unwrap(),
        "--status-file",
        path.to_str().unwrap(),
    ])
    .fails_with(1);
    let v = read_status(&path);
    assert_eq!(v["exit_code"], run.code);
    let error = run.errors()[0]
        .strip_prefix("root-rotate: error: ")
        .unwrap();
    assert_eq!(v["error"], error);
    assert_eq!(v["error"], "device /nonexistent-device does not exist");
    assert!(v["archived"].is_null(), "{v}");
    assert_eq!(counts(&v), [0, 0, 0], "{v}");

    // A missing root on a layout with other names: refused after mounting.
    let fx = fixture!(bare "status_missing_root");
    fx.subvol("@persist");
    let run = fx.rr("rotate", &[]).fails_with(1);
    let v = read_status(&fx.status_file());
    assert_eq!(v["exit_code"], run.code);
    assert_eq!(
        v["error"],
        run.errors()[0]
            .strip_prefix("root-rotate: error: ")
            .unwrap()
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("@root does not exist"),
        "{v}"
    );
    assert!(v["archived"].is_null(), "{v}");
}

#[test]
fn status_file_none_or_empty_writes_nothing() {
    let fx = fixture!("status_none");
    for (i, off) in ["none", ""].iter().enumerate() {
        let (run, after) = rotate_with_a_fresh_run(&fx, &["--status-file", off]);
        run.ok();
        assert_eq!(after.listing, Vec::<String>::new(), "--status-file {off:?}");
        assert_eq!(fx.archives().len(), i + 1, "the rotation itself happened");
    }
    assert!(!fx.status_file().exists());
}

#[test]
fn dry_run_writes_no_status_file() {
    let fx = fixture!("status_dry_run");
    let (run, after) = rotate_with_a_fresh_run(&fx, &["--dry-run"]);
    assert!(run.ok().stdout.contains("would archive"));
    assert_eq!(after.listing, Vec::<String>::new());
    fx.rr("rotate", &["--dry-run"]).ok();
    assert!(!fx.status_file().exists());
    // Nor when it fails.
    let fx = fixture!(bare "status_dry_run_fails");
    fx.subvol("@persist");
    fx.rr("rotate", &["--dry-run"]).fails_with(1);
    assert!(!fx.status_file().exists());
}

#[test]
fn an_unwritable_status_file_is_one_warning_and_keeps_the_exit_code() {
    let fx = fixture!("status_unwritable");
    // Its directory is a regular file.
    let file = fx.dir().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let path = file.join("status.json");
    let run = fx
        .rr("rotate", &["--status-file", path.to_str().unwrap()])
        .ok();
    assert_eq!(fx.archives().len(), 1, "the rotation itself happened");
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{run:#?}");
    assert!(
        warnings[0].starts_with(&format!(
            "root-rotate: warning: status file {} not written: ",
            path.display()
        )),
        "{run:#?}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "x");
    // A failing run keeps its exit code and its one error line.
    let fx = fixture!(bare "status_unwritable_failing");
    fx.subvol("@persist");
    let file = fx.dir().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let path = file.join("status.json");
    let run = fx
        .rr("rotate", &["--status-file", path.to_str().unwrap()])
        .fails_with(1);
    assert_eq!(run.warnings().len(), 1, "{run:#?}");
}
