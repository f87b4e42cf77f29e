//! Accidents and attacks: hostile markers, failing and repeated rollbacks,
//! a root that is the default subvolume, layouts with other names, bad
//! arguments, and logs that must reach the user.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use common::{Fixture, BIN};

const MARKER: &str = "@root.keep-once";

/// Runs the binary without `ROOT_ROTATE_LOG`, as a user or a unit would.
fn rr_env(args: &[&std::ffi::OsStr], env: &[(&str, &str)], stderr: Stdio) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("ROOT_ROTATE_LOG")
        .env_remove("JOURNAL_STREAM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stderr(stderr).output().expect("run root-rotate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

// ------------------------------------------------------------- the marker

#[test]
fn rollback_never_writes_through_a_planted_marker_symlink() {
    let fx = fixture!("marker_symlink_rollback");
    fx.rr("rotate", &[]).ok();
    let victim = fx.dir().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, fx.path(MARKER)).unwrap();
    std::os::unix::fs::symlink(&victim, fx.path("@root.keep-once.tmp")).unwrap();
    let run = fx.rr("rollback", &["--latest"]).ok();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "{run:#?}"
    );
    let meta = std::fs::symlink_metadata(fx.path(MARKER)).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the marker must be a regular file now"
    );
    let marker = fx.read(MARKER).unwrap();
    assert_eq!(
        marker.lines().next().unwrap().parse::<u64>().unwrap(),
        fx.subvol_id("@root")
    );
    assert!(!fx.exists("@root.keep-once.tmp"));
}

/// Puts something at the marker's name.
type Plant = fn(&Fixture);

/// Whatever sits at the marker's name, rotate proceeds: it logs it as
/// stale, moves it out of the way and wipes the root.
#[test]
fn a_marker_that_is_not_a_small_text_file_never_stops_the_rotation() {
    let plant: [(&str, Plant); 6] = [
        ("fifo", |fx| {
            common::sh("mkfifo", &[fx.path(MARKER).to_str().unwrap()]);
        }),
        ("empty dir", |fx| fx.mkdir(MARKER)),
        ("full dir", |fx| {
            fx.write(&format!("{MARKER}/keep"), "user data")
        }),
        ("huge", |fx| {
            let f = std::fs::File::create(fx.path(MARKER)).unwrap();
            f.set_len(1 << 30).unwrap();
        }),
        ("binary", |fx| {
            std::fs::write(fx.path(MARKER), [0xff, 0xfe, 0x00, 0x31]).unwrap()
        }),
        ("symlink to /dev/zero", |fx| {
            std::os::unix::fs::symlink("/dev/zero", fx.path(MARKER)).unwrap()
        }),
    ];
    for (what, plant) in plant {
        let fx = fixture!(&format!(
            "bad_marker_{}",
            what.replace(' ', "_").replace('/', "")
        ));
        plant(&fx);
        let started = std::time::Instant::now();
        let run = fx.rr("rotate", &[]).ok();
        assert!(started.elapsed().as_secs() < 20, "{what}: rotate blocked");
        fx.assert_blank_writable_root("@root");
        assert_eq!(fx.archives().len(), 1, "{what}: {run:#?}");
        assert!(
            run.warnings()
                .iter()
                .any(|w| w.contains("stale rollback marker")),
            "{what}: {run:#?}"
        );
        assert!(!fx.exists(MARKER), "{what}: marker still in place");
        if what == "full dir" {
            // Never deleted: moved aside with its contents.
            assert_eq!(
                fx.read(&format!("{MARKER}.stale-1/keep")).as_deref(),
                Some("user data")
            );
        }
    }
}

// -------------------------------------------------------------- rollback

#[test]
fn rollback_latest_twice_does_not_restore_the_root_it_just_archived() {
    let fx = fixture!(bare "rollback_twice");
    fx.subvol("@root");
    fx.write("@root/state", "previous boot");
    fx.rr("rotate", &[]).ok();
    fx.write("@root/state", "broken");
    fx.rr("rollback", &["--latest"]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("previous boot"));
    let archives = fx.archives();
    let run = fx.rr("rollback", &["--latest"]).ok();
    assert_eq!(
        fx.read("@root/state").as_deref(),
        Some("previous boot"),
        "{run:#?}"
    );
    assert_eq!(
        fx.archives(),
        archives,
        "a repeated rollback must change nothing"
    );
    assert!(run.stderr_has("already pending"), "{run:#?}");
}

#[test]
fn rollback_to_another_archive_while_one_is_pending_restores_that_one() {
    let fx = fixture!(bare "rollback_retarget");
    fx.subvol("@root");
    fx.write("@root/state", "one");
    fx.rr("rotate", &[]).ok();
    fx.write("@root/state", "two");
    fx.rr("rotate", &[]).ok();
    let [one, _two] = <[String; 2]>::try_from(fx.archives()).unwrap();
    fx.rr("rollback", &["--latest"]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("two"));
    fx.rr("rollback", &["--to", &one]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("one"));
    // The next boot keeps it once.
    fx.rr("rotate", &[]).ok();
    assert_eq!(fx.read("@root/state").as_deref(), Some("one"));
}

#[test]
fn a_rollback_that_fails_after_its_snapshot_leaves_nothing_behind() {
    let fx = fixture!("rollback_fails_cleanly");
    fx.rr("rotate", &[]).ok();
    fx.write("@root/state", "current");
    // The marker's temporary name is taken by a directory with contents:
    // the marker cannot be written, after the snapshot was made.
    fx.write("@root.keep-once.tmp/x", "in the way");
    let before = fx.subvolume_paths();
    let archives = fx.archives();
    let run = fx.rr("rollback", &["--latest"]).fails_with(1);
    assert_eq!(fx.subvolume_paths(), before, "{run:#?}");
    assert_eq!(fx.archives(), archives);
    assert!(!fx.exists(MARKER), "{run:#?}");
    assert_eq!(fx.read("@root/state").as_deref(), Some("current"));
}

// ---------------------------------------------------- default subvolume

#[test]
fn a_root_that_is_the_default_subvolume_stays_the_default_after_rotation() {
    let fx = fixture!("default_subvolume_root");
    common::sh(
        "btrfs",
        &[
            "subvolume",
            "set-default",
            fx.path("@root").to_str().unwrap(),
        ],
    );
    let run = fx.rr("rotate", &[]).ok();
    let default = common::sh(
        "btrfs",
        &["subvolume", "get-default", fx.path("").to_str().unwrap()],
    );
    let root_id = fx.subvol_id("@root");
    assert!(
        default.starts_with(&format!("ID {root_id} ")),
        "{default} vs {root_id}: {run:#?}"
    );
    // The archive is an ordinary archive again: deletable (the default
    // subvolume is not: EPERM).
    let run = fx.rr("prune", &[]).ok();
    assert!(run.warnings().is_empty(), "{run:#?}");
    let archive = fx.path(&format!("@old_roots/{}", fx.archives()[0]));
    common::sh("btrfs", &["subvolume", "delete", archive.to_str().unwrap()]);
}

#[test]
fn an_archive_that_is_the_default_subvolume_is_repaired_by_rotate() {
    let fx = fixture!("default_subvolume_archive");
    fx.rr("rotate", &[]).ok();
    let archive = fx.archives().remove(0);
    let path = fx.path(&format!("@old_roots/{archive}"));
    common::sh(
        "btrfs",
        &["subvolume", "set-default", path.to_str().unwrap()],
    );
    // prune skips it with a warning instead of failing with EPERM.
    let run = fx
        .rr("prune", &["--keep-at-least", "0", "--keep-days", "0"])
        .ok();
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.contains("default subvolume")),
        "{run:#?}"
    );
    assert_eq!(fx.archives(), vec![archive.clone()]);
    // rotate moves the default to the new root.
    fx.rr("rotate", &[]).ok();
    let default = common::sh(
        "btrfs",
        &["subvolume", "get-default", fx.path("").to_str().unwrap()],
    );
    assert!(
        default.starts_with(&format!("ID {} ", fx.subvol_id("@root"))),
        "{default}"
    );
}

// ----------------------------------------------------------- wrong names

#[test]
fn a_migrated_layout_with_default_flags_is_refused_naming_what_is_there() {
    let fx = fixture!(bare "migrated_names");
    fx.subvol("root");
    fx.write("root/state", "live");
    fx.subvol("old_roots");
    fx.subvol("old_roots/2026-01-01_00:00:00");
    fx.subvol("persist");
    let before = fx.state();
    for (cmd, extra) in [
        ("rollback", &["--archive", "old_roots", "--latest"][..]),
        ("rollback", &["--latest"][..]),
        ("list", &[][..]),
        ("prune", &[][..]),
        ("rotate", &[][..]),
    ] {
        let run = fx.rr(cmd, extra).fails_with(1);
        let err = run.errors()[0];
        assert!(err.contains("does not exist"), "{cmd}: {run:#?}");
        assert!(
            err.contains("old_roots") && err.contains("persist") && err.contains("root"),
            "{cmd}: {run:#?}"
        );
        assert_eq!(fx.state(), before, "{cmd} changed something");
    }
    // With the right names everything works.
    fx.rr("rotate", &["--root", "root", "--archive", "old_roots"])
        .ok();
    fx.assert_blank_writable_root("root");
}

#[test]
fn rotate_refuses_a_plain_directory_root_before_creating_the_archive_directory() {
    let fx = fixture!(bare "plain_dir_root");
    fx.mkdir("@root");
    let before = fx.state();
    fx.rr("rotate", &[]).fails_with(1);
    assert_eq!(fx.state(), before);
    assert!(!fx.exists("@old_roots"));
}

// --------------------------------------------------------------- inputs

#[test]
fn arguments_that_are_not_utf8_are_usage_errors() {
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/\xff\xfe");
    for args in [
        vec![os("diff"), os("--path"), bad],
        vec![os("list"), os("--device"), bad],
        vec![
            os("rotate"),
            os("--device"),
            os("/dev/null"),
            os("--mount-point"),
            bad,
        ],
        vec![
            os("rollback"),
            os("--device"),
            os("/dev/null"),
            os("--to"),
            bad,
        ],
    ] {
        let (code, stderr) = rr_env(&args, &[("ROOT_ROTATE_LOG", "stderr")], Stdio::piped());
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("root-rotate: ") && stderr.contains("UTF-8"),
            "{stderr}"
        );
    }
}

#[test]
fn diff_of_a_regular_file_is_a_usage_error() {
    let file = std::env::temp_dir().join(format!("rr-diff-file-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let run = common::rr_raw(&["diff", "--path", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    let run = run.fails_with(2);
    assert!(run.stderr.contains("not a directory"), "{run:#?}");
}

// -------------------------------------------------------------- logging

/// With kmsg writable and stderr a file, every line still reaches stderr.
#[test]
fn errors_and_lines_reach_a_redirected_stderr_when_kmsg_is_writable() {
    if !common::is_root() {
        return common::skip_not_root("stderr_file");
    }
    let log = std::env::temp_dir().join(format!("rr-stderr-{}", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    let (code, _) = rr_env(
        &[os("list"), os("--device"), os("/nonexistent-device")],
        &[],
        Stdio::from(file),
    );
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(code, 1);
    assert_eq!(
        text, "root-rotate: error: device /nonexistent-device does not exist\n",
        "{text:?}"
    );
}

/// Under systemd (JOURNAL_STREAM names stderr) lines carry sd-daemon level
/// prefixes and no "root-rotate:" (journald adds the identifier).
#[test]
fn under_systemd_lines_go_to_the_journal_stream_with_levels() {
    let fx = fixture!("journal_stream");
    let log = fx.dir().join("journal");
    let file = std::fs::File::create(&log).unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let stream = {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", meta.dev(), meta.ino())
    };
    let mnt = fx.dir().join("mnt");
    let (code, _) = rr_env(
        &[
            os("rotate"),
            os("--device"),
            os(&fx.dev),
            os("--mount-point"),
            mnt.as_os_str(),
            os("--status-file"),
            fx.status_file().as_os_str(),
        ],
        &[("JOURNAL_STREAM", &stream)],
        Stdio::from(file),
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("<6>") || l.starts_with("<4>")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>rotate: archived @root")),
        "{text}"
    );
}
