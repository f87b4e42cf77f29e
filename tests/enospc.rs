//! ENOSPC: a tiny filesystem whose data and metadata are full. `rotate` must
//! fail with exit code 1 and one error line, keep the live root, and leave the
//! filesystem as it was.

mod common;

use common::Fixture;

/// 128 MiB: data filled with one big file, metadata with files carrying
/// ~4 KiB extended attributes until ENOSPC.
fn full_filesystem(test: &str) -> Option<Fixture> {
    let fx = Fixture::with_size(test, 128 << 20)?;
    fx.subvol("@old_roots");
    fx.subvol("@root");
    fx.write("@root/f", "live");
    let root = fx.path("@root");
    common::sh(
        "sh",
        &[
            "-c",
            r#"dd if=/dev/zero of="$1/big" bs=1M 2>/dev/null; exit 0"#,
            "sh",
            root.to_str().unwrap(),
        ],
    );
    let value = vec![b'x'; 3900];
    let mut n = 0;
    loop {
        let p = root.join(format!("x{n}"));
        if std::fs::File::create(&p).is_err() || xattr_set(&p, &value).is_err() {
            break;
        }
        n += 1;
        assert!(n < 200_000, "metadata never filled up");
    }
    common::sh("sync", &[]);
    Some(fx)
}

/// Sets a `user.` extended attribute (stored in metadata on Btrfs).
fn xattr_set(path: &std::path::Path, value: &[u8]) -> Result<(), ()> {
    rustix::fs::setxattr(path, "user.fill", value, rustix::fs::XattrFlags::empty()).map_err(|_| ())
}

#[test]
fn rotate_on_a_full_filesystem_fails_with_exit_1_and_keeps_the_root() {
    let Some(fx) = full_filesystem("enospc_keeps_root") else {
        return;
    };
    let root_id = fx.subvol_id("@root");
    let run = fx.rr("rotate", &[]);
    if run.code == 0 {
        eprintln!("\n### ENOSPC NOT REPRODUCED on this kernel: rotate succeeded ###\n");
        fx.assert_blank_writable_root("@root");
        return;
    }
    let run = run.fails_with(1);
    assert!(
        run.stderr_has("No space left") || run.stderr_has("ENOSPC"),
        "{run:#?}"
    );
    assert_eq!(fx.subvol_id("@root"), root_id, "the root was replaced");
    assert_eq!(fx.read("@root/f").as_deref(), Some("live"));
}

#[test]
fn rotate_on_a_full_filesystem_leaves_no_stray_archive() {
    let Some(fx) = full_filesystem("enospc_no_stray") else {
        return;
    };
    let before = fx.subvolume_paths();
    let run = fx.rr("rotate", &[]);
    if run.code == 0 {
        eprintln!("\n### ENOSPC NOT REPRODUCED on this kernel: rotate succeeded ###\n");
        return;
    }
    assert_eq!(run.code, 1);
    assert_eq!(
        fx.subvolume_paths(),
        before,
        "a failed rotate left subvolumes behind: {run:#?}"
    );
    assert!(fx.archives().is_empty(), "{:?}", fx.archives());
}

/// A rollback on a full filesystem fails with exit 1 and leaves nothing
/// behind: no snapshot taking a keep-at-least slot, no marker.
#[test]
fn rollback_on_a_full_filesystem_leaves_no_snapshot_and_no_marker() {
    let Some(fx) = full_filesystem("enospc_rollback") else {
        return;
    };
    // An archive with content to restore (made before the disk filled up
    // would be nicer, but a rotation needs space: seed it by hand).
    common::sh(
        "btrfs",
        &[
            "subvolume",
            "snapshot",
            fx.path("@root").to_str().unwrap(),
            fx.path("@old_roots/2026-01-01T00:00:00Z").to_str().unwrap(),
        ],
    );
    let before = fx.subvolume_paths();
    let run = fx.rr("rollback", &["--latest"]);
    if run.code == 0 {
        eprintln!("\n### ENOSPC NOT REPRODUCED on this kernel: rollback succeeded ###\n");
        return;
    }
    let run = run.fails_with(1);
    assert_eq!(
        fx.subvolume_paths(),
        before,
        "a failed rollback left subvolumes: {run:#?}"
    );
    assert!(!fx.exists("@root.keep-once"), "{run:#?}");
    assert!(!fx.exists("@root.keep-once.tmp"), "{run:#?}");
}
