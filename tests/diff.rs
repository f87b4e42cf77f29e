//! `diff`: on a mounted tree, what will vanish at the next boot. Bind mounts
//! (from @persist) and everything under them are excluded; nested subvolumes
//! of the root that are not mounted are included.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

use common::{rr_raw, Fixture};

/// `@root` mounted at `<dir>/live` like a running system: files, a symlink,
/// a nested subvolume (not mounted) with files, and `@persist/etc/ssh`
/// bind-mounted onto `live/etc/ssh`.
fn live_system(test: &str) -> Option<(Fixture, PathBuf)> {
    let fx = Fixture::standard(test)?;
    fx.write("@persist/etc/ssh/ssh_host_ed25519_key", "persisted");
    fx.write("@persist/var/lib/keep/db", "persisted");
    fx.write("@root/etc/ssh/shadowed", "hidden under the bind mount");
    let live = fx.dir().join("live");
    fx.mount_subvol("@root", &live);
    std::fs::create_dir_all(live.join("etc/ssh")).unwrap();
    fx.bind(&fx.path("@persist/etc/ssh"), &live.join("etc/ssh"));
    std::fs::create_dir_all(live.join("var/lib/keep")).unwrap();
    fx.bind(
        &fx.path("@persist/var/lib/keep"),
        &live.join("var/lib/keep"),
    );
    std::fs::write(live.join("etc/hostname"), "box\n").unwrap();
    std::fs::create_dir_all(live.join("var/log")).unwrap();
    std::fs::write(live.join("var/log/boot.log"), "12345").unwrap();
    std::os::unix::fs::symlink("/nix/store/x", live.join("etc/localtime")).unwrap();
    std::fs::create_dir_all(live.join("home/u/empty-dir")).unwrap();
    common::sh(
        "btrfs",
        &[
            "-q",
            "subvolume",
            "create",
            live.join("var/lib/machines").to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(live.join("var/lib/machines/box/etc")).unwrap();
    std::fs::write(live.join("var/lib/machines/box/etc/os-release"), "x").unwrap();
    Some((fx, live))
}

/// What the fixture leaves in the root outside the bind mounts.
fn expected_vanishing(live: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "etc/hostname",
        "etc/localtime",
        "etc/machine-state",
        "var/lib/machines/box/etc/os-release",
        "var/log/boot.log",
    ]
    .iter()
    .map(|p| live.join(p).to_string_lossy().into_owned())
    .collect();
    v.sort();
    v
}

fn diff(path: &Path, json: bool) -> common::Run {
    let p = path.to_str().unwrap();
    let mut args = vec!["diff", "--path", p];
    if json {
        args.push("--json");
    }
    rr_raw(&args).ok()
}

fn assert_no_persisted(out: &str) {
    assert!(
        !out.contains("ssh_host_ed25519_key"),
        "bind-mounted file listed:\n{out}"
    );
    assert!(
        !out.contains("shadowed"),
        "file under a mount point listed:\n{out}"
    );
    assert!(!out.contains("keep/db"), "bind-mounted file listed:\n{out}");
}

/// The brief's scenario: `--path` is the mount of `@root` itself.
#[test]
fn diff_on_a_mounted_root_lists_root_and_nested_subvolume_files_but_not_bind_mounts() {
    let Some((_fx, live)) = live_system("diff_mounted_root") else {
        return;
    };
    let run = diff(&live, false);
    let lines: Vec<String> = run.stdout.lines().map(str::to_owned).collect();
    assert_no_persisted(&run.stdout);
    assert_eq!(lines, expected_vanishing(&live), "{run:#?}");
}

#[test]
fn diff_json_on_a_mounted_root_parses_and_matches_the_text_output() {
    let Some((_fx, live)) = live_system("diff_json_mounted_root") else {
        return;
    };
    let text = diff(&live, false);
    let run = diff(&live, true);
    let v: Value = serde_json::from_str(&run.stdout).expect("diff --json is JSON");
    let paths: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, expected_vanishing(&live));
    let text_lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(paths, text_lines);
}

/// Same tree, started from a plain directory inside the mounted root (as
/// `--path /` is on a real system: the start is not itself excluded). This
/// covers the walk rules independently of the start-point bug above.
#[test]
fn diff_from_a_directory_in_the_root_skips_bind_mounts_and_includes_nested_subvolumes() {
    let Some((_fx, live)) = live_system("diff_subdir") else {
        return;
    };
    for sub in ["etc", "var"] {
        let start = live.join(sub);
        let run = diff(&start, false);
        let lines: Vec<String> = run.stdout.lines().map(str::to_owned).collect();
        let expected: Vec<String> = expected_vanishing(&live)
            .into_iter()
            .filter(|p| Path::new(p).starts_with(&start))
            .collect();
        assert_no_persisted(&run.stdout);
        assert_eq!(lines, expected, "{run:#?}");
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted, "output not sorted");
    }
}

#[test]
fn diff_json_parses_with_path_kind_and_size() {
    let Some((_fx, live)) = live_system("diff_json") else {
        return;
    };
    let start = live.join("var");
    let run = diff(&start, true);
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("diff --json is not JSON ({e}): {}", run.stdout));
    let items = v.as_array().unwrap();
    let paths: Vec<&str> = items.iter().map(|o| o["path"].as_str().unwrap()).collect();
    let boot = live.join("var/log/boot.log").to_string_lossy().into_owned();
    let os = live
        .join("var/lib/machines/box/etc/os-release")
        .to_string_lossy()
        .into_owned();
    let mut expected = vec![os.as_str(), boot.as_str()];
    expected.sort();
    assert_eq!(paths, expected, "{v:#}");
    let log = items.iter().find(|o| o["path"] == boot.as_str()).unwrap();
    assert_eq!(log["kind"], "file");
    assert_eq!(log["size"].as_u64(), Some(5));

    let etc = diff(&live.join("etc"), true);
    let v: Value = serde_json::from_str(&etc.stdout).unwrap();
    let link = v
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"].as_str().unwrap().ends_with("etc/localtime"))
        .expect("symlink listed");
    assert_eq!(link["kind"], "symlink");
}

#[test]
fn diff_of_a_directory_that_is_only_a_bind_mount_target_lists_nothing() {
    let Some((_fx, live)) = live_system("diff_bind_only") else {
        return;
    };
    // live/var/lib/keep is a bind mount; start at its parent.
    let run = diff(&live.join("var/lib"), false);
    assert!(!run.stdout.contains("keep"), "{run:#?}");
    assert!(run.stdout.contains("os-release"), "{run:#?}");
}

#[test]
fn diff_of_a_missing_path_fails_with_exit_1() {
    let p = std::env::temp_dir().join("rr-it-no-such-dir/for-diff");
    let run = rr_raw(&["diff", "--path", p.to_str().unwrap()]);
    let run = run.fails_with(1);
    assert!(run.stderr_has("for-diff"), "{run:#?}");
}
