//! Mounts everywhere: archives in use in another mount namespace, the
//! private namespace that holds the top-level mount (no leftover mount after
//! SIGTERM or SIGKILL, no EBUSY from other processes, a stale mount at the
//! mount point), and the lock that serialises concurrent runs.

mod common;

use std::fs;
use std::path::Path;

use common::{
    finish, now, signal, spawn_rr, stamp, summary_numbers, wait_until, Fixture, Helper, DAY,
};

/// `@old_roots` with `due` archives 90 days old, each holding `nested`
/// nested subvolumes, then `@root` (the newest subvolume, as on a machine).
fn with_due(test: &str, due: usize, nested: usize) -> Option<(Fixture, Vec<String>)> {
    let fx = Fixture::new(test)?;
    let base = now() - 90 * DAY;
    let names: Vec<String> = (0..due as i64).map(|i| stamp(base + i * 60)).collect();
    let mut paths = vec!["@old_roots".to_owned()];
    for n in &names {
        paths.push(format!("@old_roots/{n}"));
        for k in 0..nested {
            paths.push(format!("@old_roots/{n}/n{k}"));
        }
    }
    paths.push("@root".to_owned());
    fx.subvol_paths(&paths);
    fx.write("@root/f", "live");
    Some((fx, names))
}

fn no_such_file_lines(run: &common::Run) -> Vec<&str> {
    run.lines()
        .into_iter()
        .filter(|l| l.contains("No such file or directory"))
        .collect()
}

#[test]
fn a_due_archive_mounted_in_another_mount_namespace_is_kept_and_listed_as_mounted() {
    let Some((fx, names)) = with_due("ns_mounted_elsewhere", 3, 0) else {
        return;
    };
    let (mounted, holder, free) = (&names[0], &names[1], &names[2]);
    fx.write(&format!("@old_roots/{mounted}/f"), "in use");
    let at = fx.dir().join("container-root");
    let top = fx.dir().join("container-top");
    fs::create_dir_all(&at).unwrap();
    fs::create_dir_all(&top).unwrap();
    fs::create_dir_all(fx.path(&format!("@old_roots/{holder}/tmp"))).unwrap();
    // A container: one archive is its root, another has a tmpfs inside it,
    // reached through the container's own mount of the top level. None of
    // this is visible in our namespace.
    let script = format!(
        "mount -t btrfs -o subvol=@old_roots/{mounted} {dev} {at} && \
         mount -t btrfs -o subvolid=5 {dev} {top} && \
         mount -t tmpfs ns-test {top}/@old_roots/{holder}/tmp && \
         echo ready && exec sleep 120",
        dev = fx.dev,
        at = at.display(),
        top = top.display(),
    );
    let container = Helper::start(&["unshare", "-m", "--propagation", "private"], &script);
    assert!(
        !common::is_mount_point(&at),
        "the other namespace's mount leaked into ours"
    );

    let list = fx.rr("list", &["--json", "--keep-at-least", "0"]).ok();
    let json: serde_json::Value = serde_json::from_str(&list.stdout).expect("list --json");
    let mounted_flag = |name: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {json}"))["mounted"]
            .clone()
    };
    assert_eq!(mounted_flag(mounted), true, "{json}");
    assert_eq!(mounted_flag(holder), true, "{json}");
    assert_eq!(mounted_flag(free), false, "{json}");

    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(
        fx.is_subvolume(&format!("@old_roots/{mounted}")),
        "an archive mounted in another namespace was deleted: {run:#?}"
    );
    assert!(
        fx.is_subvolume(&format!("@old_roots/{holder}")),
        "an archive with a mount inside, in another namespace, was deleted: {run:#?}"
    );
    assert!(!fx.exists(&format!("@old_roots/{free}")), "{run:#?}");
    for name in [mounted, holder] {
        assert!(
            run.warnings()
                .iter()
                .any(|w| w.contains(name.as_str()) && w.contains("mounted")),
            "no busy warning for {name}: {run:#?}"
        );
    }
    let (deleted, _, skipped, failed) = summary_numbers(&run.stderr);
    assert_eq!((deleted, skipped, failed), (1, 2, 0), "{run:#?}");
    assert_eq!(
        fs::read_to_string(format!("/proc/{}/root{}/f", container.pid(), at.display()))
            .ok()
            .as_deref(),
        Some("in use"),
        "the container lost its root"
    );

    // Once the container is gone, the next prune deletes both.
    drop(container);
    fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(fx.archives().is_empty(), "{:?}", fx.archives());
}

/// Starts `cmd`, waits until it has mounted the top level, and stops it
/// there (SIGSTOP). Returns the child, stopped.
fn stopped_while_mounted(fx: &Fixture, args: &[String]) -> std::process::Child {
    let child = spawn_rr(args);
    let pid = child.id();
    let seen = wait_until(30, || common::sees_mount_at(pid, &fx.mnt));
    signal(pid, "STOP");
    assert!(
        seen && common::sees_mount_at(pid, &fx.mnt),
        "never saw the top level mounted: {:#?}",
        finish(child)
    );
    child
}

#[test]
fn a_shell_sitting_in_the_mount_point_does_not_fail_a_rotation() {
    // An administrator's shell in /btrfs_tmp while the boot rotates: its
    // working directory is the directory, never our private mount on it.
    let Some((fx, _)) = with_due("ns_shell_in_mount_point", 10, 2) else {
        return;
    };
    fs::create_dir(&fx.mnt).unwrap();
    let args = fx.args("rotate", &fx.mnt, &["--keep-at-least", "1"]);
    let rotate = stopped_while_mounted(&fx, &args);
    let shell = Helper::start(
        &[],
        &format!("cd {} && echo ready && exec sleep 120", fx.mnt.display()),
    );
    signal(rotate.id(), "CONT");
    let run = finish(rotate);
    drop(shell);
    assert_eq!(
        run.code, 0,
        "a shell in the mount point failed it: {run:#?}"
    );
    assert_eq!(
        fx.archives().len(),
        1,
        "the rotated root is the one archive"
    );
    fx.assert_blank_writable_root("@root");
    assert!(!common::is_mount_point(&fx.mnt));
    assert!(fx.stray_mounts().is_empty(), "{:?}", fx.stray_mounts());
}

#[test]
fn a_process_inside_the_private_mount_does_not_fail_a_rotation() {
    // The one way left to enter the private mount: through the process's
    // root in /proc. The unmount cannot be plain then; the rotation stands.
    let Some((fx, _)) = with_due("ns_process_inside_mount", 10, 2) else {
        return;
    };
    let args = fx.args("rotate", &fx.mnt, &["--keep-at-least", "1"]);
    let rotate = stopped_while_mounted(&fx, &args);
    let inside = Helper::start(
        &[],
        &format!(
            "cd /proc/{}/root{}/@old_roots && echo ready && exec sleep 120",
            rotate.id(),
            fx.mnt.display()
        ),
    );
    signal(rotate.id(), "CONT");
    let run = finish(rotate);
    assert_eq!(
        run.code, 0,
        "a process inside the mount failed a rotation: {run:#?}"
    );
    assert_eq!(
        fx.archives().len(),
        1,
        "the rotated root is the one archive"
    );
    fx.assert_blank_writable_root("@root");
    assert!(!common::is_mount_point(&fx.mnt), "{run:#?}");
    assert!(
        !fx.mnt.exists(),
        "the mount point it created stays: {run:#?}"
    );
    drop(inside);
    assert!(
        wait_until(10, || fx.stray_mounts().is_empty()),
        "{:?}",
        fx.stray_mounts()
    );
}

/// Kills a prune with `sig` once it has deleted some archives, then checks
/// that no mount is left anywhere and that the next prune finishes the job.
fn kill_mid_prune(test: &str, sig: &str) {
    let Some((fx, names)) = with_due(test, 40, 4) else {
        return;
    };
    let args = fx.args("prune", &fx.mnt, &["--keep-at-least", "0"]);
    let prune = spawn_rr(&args);
    let pid = prune.id();
    let started = wait_until(60, || fx.archives().len() < names.len());
    signal(pid, "STOP");
    let left = fx.archives().len();
    assert!(
        started && left > 0,
        "could not catch the prune mid-way ({left} left): {:#?}",
        finish(prune)
    );
    signal(pid, sig);
    signal(pid, "CONT");
    let run = finish(prune);
    assert_ne!(run.code, 0, "the prune was not killed: {run:#?}");
    eprintln!("{sig} with {left} of {} archives left", names.len());

    assert!(
        wait_until(10, || fx.stray_mounts().is_empty()),
        "a mount of the filesystem outlived the killed prune: {:?}",
        fx.stray_mounts()
    );
    assert!(!common::is_mount_point(&fx.mnt));
    if fx.mnt.exists() {
        // What a kill can leave: the empty directory, nothing mounted on it.
        assert!(fs::read_dir(&fx.mnt).unwrap().next().is_none());
    }
    let run = fx.rr("prune", &["--keep-at-least", "0"]).ok();
    assert!(fx.archives().is_empty(), "{run:#?}");
    assert!(no_such_file_lines(&run).is_empty(), "{run:#?}");
    assert!(fx.is_subvolume("@root"));
}

#[test]
fn sigterm_mid_prune_leaves_no_mount_and_the_next_prune_finishes() {
    kill_mid_prune("ns_sigterm_mid_prune", "TERM");
}

#[test]
fn sigkill_mid_prune_leaves_no_mount_and_the_next_prune_finishes() {
    kill_mid_prune("ns_sigkill_mid_prune", "KILL");
}

#[test]
fn a_leftover_mount_at_the_mount_point_does_not_break_the_next_run() {
    let Some((fx, names)) = with_due("ns_leftover_mount", 3, 1) else {
        return;
    };
    // What an earlier version killed mid-run left behind.
    fs::create_dir(&fx.mnt).unwrap();
    fx.mount_subvol("/", &fx.mnt);
    for (cmd, extra) in [
        ("list", vec![]),
        ("prune", vec!["--keep-at-least", "1"]),
        ("rotate", vec!["--keep-at-least", "1"]),
    ] {
        let args = fx.args(cmd, &fx.mnt, &extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = common::rr_raw(&args);
        assert_eq!(run.code, 0, "{cmd} with a leftover mount: {run:#?}");
        assert!(
            common::is_mount_point(&fx.mnt),
            "{cmd} touched a mount outside its namespace"
        );
    }
    let archives = fx.archives();
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(
        !names.contains(&archives[0]),
        "the newest is this rotation's"
    );
    fx.assert_blank_writable_root("@root");
    fx.umount(&fx.mnt);
}

#[test]
fn two_concurrent_prunes_both_succeed_and_delete_everything_due() {
    let Some((fx, names)) = with_due("ns_concurrent_prunes", 120, 1) else {
        return;
    };
    let other_mnt = fx.dir().join("mnt2");
    // The same mount point (both runs' default), then different ones.
    for (round, mnts) in [[&fx.mnt, &fx.mnt], [&fx.mnt, &other_mnt]]
        .iter()
        .enumerate()
    {
        if round > 0 {
            let mut paths: Vec<String> = names.iter().map(|n| format!("@old_roots/{n}")).collect();
            paths.extend(names.iter().map(|n| format!("@old_roots/{n}/n0")));
            fx.subvol_paths(&paths);
        }
        let runs: Vec<_> = mnts
            .iter()
            .map(|m| spawn_rr(&fx.args("prune", m, &["--keep-at-least", "0"])))
            .collect();
        let runs: Vec<_> = runs.into_iter().map(finish).collect();
        for run in &runs {
            assert_eq!(run.code, 0, "round {round}: {run:#?}");
            assert!(
                no_such_file_lines(run).is_empty(),
                "round {round}: {run:#?}"
            );
        }
        let waited = runs
            .iter()
            .filter(|r| r.stderr_has("waiting for another"))
            .count();
        eprintln!("round {round}: {waited} of 2 runs waited for the other");
        let deleted: usize = runs.iter().map(|r| summary_numbers(&r.stderr).0).sum();
        assert_eq!(deleted, names.len(), "round {round}: {runs:#?}");
        assert!(fx.archives().is_empty(), "{:?}", fx.archives());
        assert!(!fx.mnt.exists() && !other_mnt.exists(), "{runs:#?}");
        assert!(fx.stray_mounts().is_empty(), "{:?}", fx.stray_mounts());
    }
}

/// Another run's lock on the filesystem, taken through a different mount
/// of it (the fixture's own), held until the helper is dropped.
fn hold_lock(fx: &Fixture) -> Helper {
    Helper::start(
        &[],
        &format!(
            "exec 9<{} && flock -x 9 && echo ready && exec sleep 120",
            fx.top.display()
        ),
    )
}

#[test]
fn a_run_waits_for_another_run_on_the_same_filesystem() {
    let Some((fx, names)) = with_due("ns_lock_waits", 2, 0) else {
        return;
    };
    let holder = hold_lock(&fx);
    let prune = spawn_rr(&fx.args("prune", &fx.mnt, &["--keep-at-least", "0"]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let archives_while_held = fx.archives();
    drop(holder);
    let run = finish(prune).ok();
    assert_eq!(archives_while_held, names, "it did not wait: {run:#?}");
    assert!(
        run.stderr_has(&format!("waiting for another root-rotate on {}", fx.dev)),
        "{run:#?}"
    );
    assert!(fx.archives().is_empty(), "{run:#?}");
    assert!(!Path::new(&fx.mnt).exists());
}

#[test]
fn a_run_whose_mount_point_is_removed_while_it_waits_mounts_again() {
    // Removing a directory detaches the mounts on it in every namespace: what
    // happens to a waiting run when the run before it removes the mount
    // point it had created.
    let Some((fx, _)) = with_due("ns_mount_point_removed", 2, 1) else {
        return;
    };
    let holder = hold_lock(&fx);
    let prune = spawn_rr(&fx.args("prune", &fx.mnt, &["--keep-at-least", "0"]));
    let pid = prune.id();
    let mounted = wait_until(30, || common::sees_mount_at(pid, &fx.mnt));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let removed = fs::remove_dir(&fx.mnt);
    drop(holder);
    let run = finish(prune);
    assert!(mounted, "never saw it mounted: {run:#?}");
    removed.unwrap_or_else(|e| panic!("cannot remove {}: {e}", fx.mnt.display()));
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr_has("waiting for another root-rotate"),
        "{run:#?}"
    );
    assert!(fx.archives().is_empty(), "{run:#?}");
    assert!(
        !fx.mnt.exists(),
        "the mount point it made again stays: {run:#?}"
    );
    assert!(fx.stray_mounts().is_empty(), "{:?}", fx.stray_mounts());
}
