//! Exit codes and error lines of the built binary: 0 success, 1 runtime
//! failure, 2 usage error (nothing touched). `--help` and `--version`.

mod common;

use common::{is_root, rr_raw, skip_not_root, Fixture, Scratch};

#[test]
fn help_exits_0_and_documents_the_exit_codes() {
    let run = rr_raw(&["--help"]).ok();
    let out = &run.stdout;
    for cmd in ["rotate", "prune", "list", "rollback", "diff"] {
        assert!(out.contains(cmd), "--help does not mention {cmd}:\n{out}");
    }
    for (code, word) in [("0", "success"), ("1", "runtime"), ("2", "usage")] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(code) && l.contains(word)),
            "--help does not document exit code {code} ({word}):\n{out}"
        );
    }
}

#[test]
fn subcommand_help_exits_0_and_lists_the_flags() {
    let run = rr_raw(&["rotate", "--help"]).ok();
    for flag in [
        "--device",
        "--mount-point",
        "--root",
        "--archive",
        "--keep-days",
        "--keep-at-least",
        "--budget-ms",
        "--dry-run",
        "--status-file",
    ] {
        assert!(run.stdout.contains(flag), "rotate --help lacks {flag}");
    }
    let run = rr_raw(&["rollback", "--help"]).ok();
    assert!(run.stdout.contains("--to") && run.stdout.contains("--latest"));
    let run = rr_raw(&["diff", "--help"]).ok();
    assert!(run.stdout.contains("--path") && run.stdout.contains("--json"));
}

#[test]
fn version_exits_0_and_prints_the_version() {
    let run = rr_raw(&["--version"]).ok();
    assert_eq!(
        run.stdout.trim(),
        format!("root-rotate {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(run.stderr.is_empty());
}

/// Runs a usage error against a real filesystem (when root) and checks that
/// nothing was touched: same subvolumes, generations and files, no mount
/// point created. `{dev}` and `{mnt}` in `args` are filled in.
fn assert_usage_error(test: &str, args: &[&str]) {
    let fx = Fixture::standard(test);
    let scratch = Scratch::new(test);
    let (dev, mnt) = match &fx {
        Some(fx) => (fx.dev.clone(), fx.mnt.clone()),
        // Without root: still the exit code and the mount point.
        None => ("/dev/null".to_owned(), scratch.dir.join("mnt")),
    };
    let mnt_s = mnt.to_string_lossy().into_owned();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{dev}", &dev).replace("{mnt}", &mnt_s))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = fx.as_ref().map(Fixture::state);
    let run = match &fx {
        Some(fx) => fx.rr_args(&args),
        None => rr_raw(&args),
    };
    assert_eq!(run.code, 2, "{args:?}: {run:#?}");
    assert!(
        run.stderr.starts_with("root-rotate: "),
        "{args:?}: usage error must say so on stderr: {run:#?}"
    );
    assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
    assert!(!mnt.exists(), "{args:?}: mount point created");
    if let Some(fx) = &fx {
        assert_eq!(Some(fx.state()), before, "{args:?} touched the filesystem");
        assert!(!fx.status_file().exists(), "{args:?} wrote a status file");
        assert_eq!(
            fx.read("@root/etc/machine-state").as_deref(),
            Some("live root\n")
        );
    }
}

#[test]
fn unknown_flag_is_a_usage_error_and_touches_nothing() {
    assert_usage_error(
        "usage_unknown_flag",
        &[
            "rotate",
            "--device",
            "{dev}",
            "--mount-point",
            "{mnt}",
            "--bogus",
        ],
    );
}

#[test]
fn missing_device_flag_is_a_usage_error_and_touches_nothing() {
    assert_usage_error(
        "usage_missing_device",
        &["rotate", "--mount-point", "{mnt}"],
    );
}

#[test]
fn root_name_with_a_slash_is_a_usage_error_and_touches_nothing() {
    assert_usage_error(
        "usage_root_slash",
        &[
            "rotate",
            "--device",
            "{dev}",
            "--mount-point",
            "{mnt}",
            "--root",
            "a/b",
        ],
    );
}

#[test]
fn archive_name_dot_dot_is_a_usage_error_and_touches_nothing() {
    for cmd in ["rotate", "prune", "list"] {
        assert_usage_error(
            "usage_archive_dotdot",
            &[
                cmd,
                "--device",
                "{dev}",
                "--mount-point",
                "{mnt}",
                "--archive",
                "..",
            ],
        );
    }
}

#[test]
fn empty_or_dot_names_are_usage_errors() {
    for (flag, value) in [
        ("--root", ""),
        ("--root", "."),
        ("--archive", "/abs"),
        ("--archive", ""),
    ] {
        assert_usage_error(
            "usage_empty_names",
            &[
                "rotate",
                "--device",
                "{dev}",
                "--mount-point",
                "{mnt}",
                flag,
                value,
            ],
        );
    }
}

#[test]
fn rollback_to_a_path_is_a_usage_error_and_touches_nothing() {
    for to in ["../x", "a/b", ".."] {
        assert_usage_error(
            "usage_rollback_to_path",
            &[
                "rollback",
                "--device",
                "{dev}",
                "--mount-point",
                "{mnt}",
                "--to",
                to,
            ],
        );
    }
}

#[test]
fn rollback_with_both_to_and_latest_is_a_usage_error() {
    assert_usage_error(
        "usage_rollback_both",
        &[
            "rollback",
            "--device",
            "{dev}",
            "--mount-point",
            "{mnt}",
            "--to",
            "2026-01-01T00:00:00Z",
            "--latest",
        ],
    );
}

#[test]
fn rollback_with_neither_to_nor_latest_is_a_usage_error() {
    assert_usage_error(
        "usage_rollback_neither",
        &["rollback", "--device", "{dev}", "--mount-point", "{mnt}"],
    );
}

#[test]
fn no_command_is_a_usage_error() {
    let run = rr_raw(&[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.starts_with("root-rotate: "), "{run:#?}");
}

#[test]
fn malformed_numbers_are_usage_errors() {
    for (flag, value) in [
        ("--keep-days", "abc"),
        ("--keep-at-least", "-1"),
        ("--budget-ms", "1.5"),
    ] {
        assert_usage_error(
            "usage_bad_numbers",
            &[
                "rotate",
                "--device",
                "{dev}",
                "--mount-point",
                "{mnt}",
                flag,
                value,
            ],
        );
    }
}

#[test]
fn same_root_and_archive_name_is_a_usage_error() {
    assert_usage_error(
        "usage_root_eq_archive",
        &[
            "rotate",
            "--device",
            "{dev}",
            "--mount-point",
            "{mnt}",
            "--root",
            "x",
            "--archive",
            "x",
        ],
    );
}

#[test]
fn relative_mount_point_is_a_usage_error() {
    assert_usage_error(
        "usage_relative_mount_point",
        &[
            "rotate",
            "--device",
            "{dev}",
            "--mount-point",
            "relative/mnt",
        ],
    );
}

#[test]
fn stray_positional_argument_is_a_usage_error() {
    assert_usage_error(
        "usage_positional",
        &[
            "rotate",
            "--device",
            "{dev}",
            "--mount-point",
            "{mnt}",
            "extra",
        ],
    );
}

#[test]
fn a_relative_status_file_is_a_usage_error_and_touches_nothing() {
    for bad in ["status.json", "/run/root-rotate/"] {
        assert_usage_error(
            "usage_status_file",
            &[
                "rotate",
                "--device",
                "{dev}",
                "--mount-point",
                "{mnt}",
                "--status-file",
                bad,
            ],
        );
    }
}

/// Every usage error is one line on stderr.
#[test]
fn every_usage_error_is_one_line_on_stderr() {
    let cases: &[&[&str]] = &[
        &["rotate"],
        &["prune"],
        &["list"],
        &["rollback", "--latest"],
        &["rotate", "--device", "/dev/null", "--bogus"],
        &["rotate", "--device", "/dev/null", "--root", "a/b"],
        &["rotate", "--device", "/dev/null", "--keep-days", "abc"],
        &["rollback", "--device", "/dev/null", "--to", "../x"],
        &["rollback", "--device", "/dev/null", "--to", "x", "--latest"],
        &[],
    ];
    for args in cases {
        rr_raw(args).fails_with(2);
    }
}

#[test]
fn usage_errors_other_than_a_missing_flag_are_one_line_on_stderr() {
    let cases: &[&[&str]] = &[
        &["rotate", "--device", "/dev/null", "--bogus"],
        &["rotate", "--device", "/dev/null", "--root", "a/b"],
        &["rotate", "--device", "/dev/null", "--archive", ".."],
        &["rotate", "--device", "/dev/null", "--keep-days", "abc"],
        &["rollback", "--device", "/dev/null", "--to", "../x"],
        &["rollback", "--device", "/dev/null", "--to", "x", "--latest"],
        &[],
    ];
    for args in cases {
        rr_raw(args).fails_with(2);
    }
}

// ------------------------------------------------------------ runtime errors

fn skip(test: &str) -> bool {
    if is_root() {
        return false;
    }
    skip_not_root(test);
    true
}

#[test]
fn a_missing_device_exits_1_with_one_line_and_creates_no_mount_point() {
    let s = Scratch::new("missing_device");
    let dev = s.dir.join("no-such-device");
    let mnt = s.dir.join("mnt");
    for cmd in ["rotate", "prune", "list"] {
        let run = rr_raw(&[
            cmd,
            "--device",
            dev.to_str().unwrap(),
            "--mount-point",
            mnt.to_str().unwrap(),
        ])
        .fails_with(1);
        assert!(
            run.stderr_has("no-such-device"),
            "names the device: {run:#?}"
        );
        assert!(!mnt.exists(), "mount point created for a missing device");
    }
    let run = rr_raw(&[
        "rollback",
        "--latest",
        "--device",
        dev.to_str().unwrap(),
        "--mount-point",
        mnt.to_str().unwrap(),
    ])
    .fails_with(1);
    assert!(run.stderr_has("no-such-device"));
    assert!(!mnt.exists());
}

/// A loop device holding something that is not Btrfs.
fn assert_not_btrfs(test: &str, size: u64, init: impl FnOnce(&std::path::Path)) {
    if skip(test) {
        return;
    }
    let mut s = Scratch::new(test);
    let dev = s.attach_image(size, init);
    let mnt = s.dir.join("mnt");
    let before = common::sh("sha256sum", &[s.dir.join("disk.img").to_str().unwrap()]);
    for cmd in ["rotate", "prune", "list"] {
        let run = rr_raw(&[
            cmd,
            "--device",
            &dev,
            "--mount-point",
            mnt.to_str().unwrap(),
        ])
        .fails_with(1);
        assert!(run.stderr_has(&dev), "names the device: {run:#?}");
        assert!(run.stderr_has("Btrfs"), "says what is wrong: {run:#?}");
        assert!(!mnt.exists(), "mount point created");
        assert!(!common::mounts().iter().any(|(src, _)| *src == dev));
    }
    let run = rr_raw(&[
        "rollback",
        "--latest",
        "--device",
        &dev,
        "--mount-point",
        mnt.to_str().unwrap(),
    ])
    .fails_with(1);
    assert!(run.stderr_has("Btrfs"), "{run:#?}");
    let after = common::sh("sha256sum", &[s.dir.join("disk.img").to_str().unwrap()]);
    assert_eq!(before, after, "the device was written to");
}

#[test]
fn an_ext4_device_exits_1_and_is_not_touched() {
    assert_not_btrfs("ext4_device", 64 << 20, |img| {
        common::sh("mkfs.ext4", &["-q", "-F", img.to_str().unwrap()]);
    });
}

#[test]
fn a_zero_filled_device_exits_1_and_is_not_touched() {
    assert_not_btrfs("zero_device", 64 << 20, |_| {});
}

#[test]
fn a_device_too_small_for_a_superblock_exits_1() {
    assert_not_btrfs("tiny_device", 32 << 10, |_| {});
}

#[test]
fn a_regular_file_as_device_exits_1() {
    let s = Scratch::new("file_device");
    let f = s.dir.join("not-a-device");
    std::fs::write(&f, vec![0u8; 1 << 20]).unwrap();
    let mnt = s.dir.join("mnt");
    rr_raw(&[
        "rotate",
        "--device",
        f.to_str().unwrap(),
        "--mount-point",
        mnt.to_str().unwrap(),
    ])
    .fails_with(1);
    assert!(!mnt.exists());
}
