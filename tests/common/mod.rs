//! Shared fixture for the integration tests: real Btrfs images on loop
//! devices, and a runner for the built `root-rotate` binary.
//!
//! Every fixture lives in its own temporary directory. On drop it unmounts
//! only mounts below that directory or of its own loop device (deepest and
//! newest first), detaches only its own loop device and removes the directory,
//! also when the test panicked.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_root-rotate");
pub const DAY: i64 = 86_400;

// ---------------------------------------------------------------- root check

pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Prints a loud skip notice; the caller returns. Written to the stderr file
/// descriptor directly, not through `eprintln!`, so that the test harness's
/// output capture does not swallow it for a passing test.
pub fn skip_not_root(test: &str) {
    use std::io::Write;
    let bar = "#".repeat(66);
    let msg = format!(
        "\n{bar}\n## SKIPPED {test}: needs root (loop devices, mkfs.btrfs, mount)\n\
         ## Run `sudo -E cargo test --release` to exercise it.\n{bar}\n\n"
    );
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

// ----------------------------------------------------------------- commands

/// Runs a helper command; panics with its output when it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if !out.status.success() {
        panic!(
            "{program} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a helper command and returns whether it succeeded (output discarded).
pub fn try_sh(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    pub fn warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("root-rotate: warning: "))
            .collect()
    }

    pub fn errors(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("root-rotate: error: "))
            .collect()
    }

    /// Asserts exit code 0.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    /// Asserts the exit code and that the error is exactly one line: every
    /// stderr line is a `root-rotate:` line (no continuation lines); a usage
    /// error (2) is the only line; a runtime error (1) is exactly one
    /// `root-rotate: error:` line (warnings logged before it are fine).
    pub fn fails_with(self, code: i32) -> Run {
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        let lines = self.lines();
        assert!(
            lines.iter().all(|l| l.starts_with("root-rotate: ")),
            "an error must be one line on stderr, got {lines:#?}"
        );
        if code == 2 {
            assert_eq!(lines.len(), 1, "usage error: one line only, got {lines:#?}");
        } else {
            assert_eq!(
                self.errors().len(),
                1,
                "runtime error: exactly one error line, got {lines:#?}"
            );
        }
        self
    }

    pub fn stderr_has(&self, needle: &str) -> bool {
        self.stderr.contains(needle)
    }
}

/// `rotate` writes a status file, by default `/run/root-rotate/status.json`,
/// which a test must not touch: a `rotate` command line that names no
/// `--status-file` gets `--status-file PATH` added (a fixture's file, or
/// `none`). Other command lines are returned as they are.
pub fn with_status_file<S: AsRef<str>>(args: &[S], path: &str) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let named = |flag: &str| out.iter().any(|a| a == flag);
    if out.first().map(String::as_str) == Some("rotate")
        && !named("--status-file")
        && !named("--help")
    {
        out.extend(["--status-file".to_owned(), path.to_owned()]);
    }
    out
}

/// Runs the binary with logging to stderr (a `rotate` with no status file
/// named writes none; see `with_status_file`).
pub fn rr_raw(args: &[&str]) -> Run {
    Run::from(
        Command::new(BIN)
            .args(with_status_file(args, "none"))
            .env("ROOT_ROTATE_LOG", "stderr")
            .output()
            .expect("run root-rotate"),
    )
}

// ----------------------------------------------------------------- mounts

/// `(source, mount point)` of every mount, in /proc/self/mountinfo order.
pub fn mounts() -> Vec<(String, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let mp = unescape(f.get(4)?);
            let dash = f.iter().position(|x| *x == "-")?;
            let source = unescape(f.get(dash + 2)?);
            Some((source, mp))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn is_mount_point(path: &Path) -> bool {
    let p = path.to_string_lossy();
    mounts().iter().any(|(_, mp)| *mp == p)
}

fn under(path: &str, dir: &str) -> bool {
    path == dir || path.starts_with(&format!("{dir}/"))
}

// ----------------------------------------------------------------- scratch

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique temporary directory with an optional loop device; the owner of
/// everything a test creates. Drop cleans up only what is its own.
pub struct Scratch {
    pub dir: PathBuf,
    pub loopdev: Option<String>,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let short: String = test.chars().take(40).collect();
        let dir = std::env::temp_dir().join(format!(
            "rr-it-{}-{n}-{short}-{}",
            std::process::id(),
            now()
        ));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let dir = fs::canonicalize(&dir).expect("canonicalize scratch dir");
        Scratch { dir, loopdev: None }
    }

    /// A sparse image of `size` bytes attached to a fresh loop device.
    pub fn attach_image(&mut self, size: u64, init: impl FnOnce(&Path)) -> String {
        let image = self.dir.join("disk.img");
        let f = fs::File::create(&image).expect("create image");
        f.set_len(size).expect("size image");
        drop(f);
        init(&image);
        let dev = sh("losetup", &["-f", "--show", image.to_str().unwrap()])
            .trim()
            .to_owned();
        assert!(dev.starts_with("/dev/loop"), "losetup said {dev:?}");
        self.loopdev = Some(dev.clone());
        dev
    }

    /// Mounts below our directory or of our loop device, newest first.
    pub fn own_mounts(&self) -> Vec<String> {
        let dir = self.dir.to_string_lossy().into_owned();
        let mut own: Vec<String> = mounts()
            .into_iter()
            .filter(|(src, mp)| under(mp, &dir) || self.loopdev.as_deref() == Some(src.as_str()))
            .map(|(_, mp)| mp)
            .collect();
        own.reverse();
        own
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Unmount until nothing of ours is left (stacked mounts need rounds).
        for _round in 0..5 {
            let own = self.own_mounts();
            if own.is_empty() {
                break;
            }
            for mp in own {
                if !try_sh("umount", &[&mp]) && !try_sh("umount", &["-l", &mp]) {
                    eprintln!("fixture cleanup: cannot unmount {mp}");
                }
            }
        }
        if let Some(dev) = &self.loopdev {
            if !try_sh("losetup", &["-d", dev]) {
                eprintln!("fixture cleanup: cannot detach {dev}");
            }
        }
        let dir = self.dir.to_string_lossy().into_owned();
        if mounts().iter().any(|(_, mp)| under(mp, &dir)) {
            eprintln!("fixture cleanup: mounts remain below {dir}; not removing it");
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ----------------------------------------------------------------- fixture

/// A fresh Btrfs filesystem on a loop device, its top level (subvolid=5)
/// mounted at `top` for setup and inspection. `mnt` is the unique mount point
/// handed to the binary; it does not exist until a test creates it.
pub struct Fixture {
    pub dev: String,
    pub top: PathBuf,
    pub mnt: PathBuf,
    pub scratch: Scratch,
}

pub const IMAGE_SIZE: u64 = 512 << 20;

impl Fixture {
    /// `None` (after a loud notice) when not running as root.
    pub fn new(test: &str) -> Option<Fixture> {
        Fixture::with_size(test, IMAGE_SIZE)
    }

    pub fn with_size(test: &str, size: u64) -> Option<Fixture> {
        if !is_root() {
            skip_not_root(test);
            return None;
        }
        let mut scratch = Scratch::new(test);
        let dev = scratch.attach_image(size, |img| {
            sh("mkfs.btrfs", &["-q", "-f", img.to_str().unwrap()]);
        });
        let top = scratch.dir.join("top");
        let mnt = scratch.dir.join("mnt");
        fs::create_dir(&top).unwrap();
        // noatime: reading directories must not change generations (dry-run
        // tests compare `btrfs subvolume list -a`). commit=300: the only
        // commits we see are the ones root-rotate makes.
        sh(
            "mount",
            &[
                "-t",
                "btrfs",
                "-o",
                "subvolid=5,noatime,commit=300",
                &dev,
                top.to_str().unwrap(),
            ],
        );
        Some(Fixture {
            dev,
            top,
            mnt,
            scratch,
        })
    }

    /// The usual starting point: `@root` with a file, `@old_roots`, `@persist`
    /// and `@nix` with files.
    pub fn standard(test: &str) -> Option<Fixture> {
        let fx = Fixture::new(test)?;
        fx.subvol("@root");
        fx.write("@root/etc/machine-state", "live root\n");
        fx.subvol("@old_roots");
        fx.subvol("@persist");
        fx.write("@persist/etc/ssh/ssh_host_key", "secret\n");
        fx.subvol("@nix");
        fx.write("@nix/store/abc-hello/bin/hello", "#!/bin/sh\n");
        Some(fx)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.top.join(rel)
    }

    pub fn dir(&self) -> &Path {
        &self.scratch.dir
    }

    /// Where the fixture's runs of `rotate` write their status file, unless
    /// a test names another (outside the Btrfs, so `state()` ignores it).
    pub fn status_file(&self) -> PathBuf {
        self.dir().join("status.json")
    }

    // -- running the binary

    /// `root-rotate <cmd> --device DEV --mount-point MNT <extra>`, then checks
    /// that nothing is left mounted at the mount point and that the mount
    /// point exists afterwards exactly when it existed before.
    pub fn rr(&self, cmd: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            cmd,
            "--device",
            &self.dev,
            "--mount-point",
            self.mnt.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.rr_args(&args)
    }

    /// Runs the binary with exactly `args`, with the same after-checks.
    pub fn rr_args(&self, args: &[&str]) -> Run {
        let existed = self.mnt.exists();
        let before = self.device_mount_count();
        let args = with_status_file(args, self.status_file().to_str().unwrap());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = rr_raw(&args);
        assert!(
            !is_mount_point(&self.mnt),
            "root-rotate left {} mounted: {run:#?}",
            self.mnt.display()
        );
        assert_eq!(
            self.device_mount_count(),
            before,
            "root-rotate left a mount of {} behind: {run:#?}",
            self.dev
        );
        assert_eq!(
            self.mnt.exists(),
            existed,
            "mount point {} must exist afterwards iff it existed before: {run:#?}",
            self.mnt.display()
        );
        run
    }

    fn device_mount_count(&self) -> usize {
        mounts().iter().filter(|(src, _)| *src == self.dev).count()
    }

    // -- building fixtures

    pub fn subvol(&self, rel: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        sh("btrfs", &["-q", "subvolume", "create", p.to_str().unwrap()]);
    }

    /// Creates many subvolumes with one shell loop (fast).
    pub fn subvols(&self, dir: &str, names: &[String]) {
        let d = self.path(dir);
        fs::create_dir_all(&d).unwrap();
        let list = self.dir().join("subvol-names");
        fs::write(&list, names.join("\n") + "\n").unwrap();
        sh(
            "sh",
            &[
                "-ec",
                r#"cd "$1"; while IFS= read -r n; do btrfs -q subvolume create "$n"; done < "$2""#,
                "sh",
                d.to_str().unwrap(),
                list.to_str().unwrap(),
            ],
        );
    }

    pub fn set_ro(&self, rel: &str) {
        sh(
            "btrfs",
            &[
                "property",
                "set",
                "-ts",
                self.path(rel).to_str().unwrap(),
                "ro",
                "true",
            ],
        );
    }

    pub fn is_ro(&self, rel: &str) -> bool {
        sh(
            "btrfs",
            &[
                "property",
                "get",
                "-ts",
                self.path(rel).to_str().unwrap(),
                "ro",
            ],
        )
        .trim()
            == "ro=true"
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.path(rel)).ok()
    }

    pub fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.path(rel)).is_ok()
    }

    pub fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.path(rel)).unwrap();
    }

    pub fn symlink(&self, target: &str, rel: &str) {
        std::os::unix::fs::symlink(target, self.path(rel)).unwrap();
    }

    /// Mounts `subvol` (a path at the top level) at `at`, inside our dir.
    pub fn mount_subvol(&self, subvol: &str, at: &Path) {
        fs::create_dir_all(at).unwrap();
        sh(
            "mount",
            &[
                "-t",
                "btrfs",
                "-o",
                &format!("subvol={subvol},noatime"),
                &self.dev,
                at.to_str().unwrap(),
            ],
        );
    }

    pub fn bind(&self, from: &Path, onto: &Path) {
        sh(
            "mount",
            &["--bind", from.to_str().unwrap(), onto.to_str().unwrap()],
        );
    }

    pub fn mount_tmpfs(&self, at: &Path) {
        fs::create_dir_all(at).unwrap();
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                "size=1m",
                "rr-test",
                at.to_str().unwrap(),
            ],
        );
    }

    pub fn umount(&self, at: &Path) {
        sh("umount", &[at.to_str().unwrap()]);
    }

    // -- inspecting

    /// `(id, path)` of every subvolume, paths relative to the top level.
    pub fn subvolumes(&self) -> Vec<(u64, String)> {
        sh("btrfs", &["subvolume", "list", self.top.to_str().unwrap()])
            .lines()
            .map(|l| {
                let id = l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("bad subvolume list line {l:?}"));
                let path = l
                    .split_once(" path ")
                    .map(|(_, p)| p.to_owned())
                    .unwrap_or_else(|| panic!("bad subvolume list line {l:?}"));
                (id, path)
            })
            .collect()
    }

    pub fn subvolume_paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.subvolumes().into_iter().map(|(_, p)| p).collect();
        v.sort();
        v
    }

    pub fn has_subvolume(&self, rel: &str) -> bool {
        self.subvolumes().iter().any(|(_, p)| p == rel)
    }

    pub fn subvol_id(&self, rel: &str) -> u64 {
        sh(
            "btrfs",
            &[
                "inspect-internal",
                "rootid",
                self.path(rel).to_str().unwrap(),
            ],
        )
        .trim()
        .parse()
        .unwrap()
    }

    pub fn is_subvolume(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.path(rel)).is_ok_and(|m| m.is_dir() && m.ino() == 256)
    }

    /// Names of the subvolumes directly inside the archive directory, sorted.
    pub fn archives(&self) -> Vec<String> {
        self.archives_in("@old_roots")
    }

    pub fn archives_in(&self, dir: &str) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.path(dir)) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .flatten()
            .filter(|e| fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir() && m.ino() == 256))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Every path below `rel` (not following symlinks), with its type.
    pub fn tree(&self, rel: &str) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(rd) = fs::read_dir(dir) else { return };
            for e in rd.flatten() {
                let p = e.path();
                let m = fs::symlink_metadata(&p).unwrap();
                let kind = if m.is_dir() && m.ino() == 256 {
                    "subvol"
                } else if m.is_dir() {
                    "dir"
                } else if m.file_type().is_symlink() {
                    "symlink"
                } else {
                    "file"
                };
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.push(format!(
                    "{kind} {rel} {:o} {} {}",
                    m.permissions().mode(),
                    m.len(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000
                ));
                if m.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        let base = self.path(rel);
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// Whether `rel` is an empty directory (a blank subvolume).
    pub fn is_empty_dir(&self, rel: &str) -> bool {
        fs::read_dir(self.path(rel)).is_ok_and(|mut rd| rd.next().is_none())
    }

    /// Everything a command could change: `btrfs subvolume list -a` (with
    /// generations) and the file tree of the whole filesystem.
    pub fn state(&self) -> String {
        let list = sh(
            "btrfs",
            &["subvolume", "list", "-a", self.top.to_str().unwrap()],
        );
        format!("{list}\n{}", self.tree("").join("\n"))
    }

    /// The root must be a blank, writable subvolume.
    pub fn assert_blank_writable_root(&self, rel: &str) {
        assert!(self.is_subvolume(rel), "{rel} is not a subvolume");
        assert!(
            self.is_empty_dir(rel),
            "{rel} is not blank: {:?}",
            self.tree(rel)
        );
        assert!(!self.is_ro(rel), "{rel} is read-only");
        let probe = format!("{rel}/.probe");
        self.write(&probe, "x");
        fs::remove_file(self.path(&probe)).unwrap();
    }

    /// Superblock generation as written on the device.
    pub fn committed_generation(&self) -> u64 {
        sh("btrfs", &["inspect-internal", "dump-super", &self.dev])
            .lines()
            .find_map(|l| {
                l.strip_prefix("generation")
                    .map(|r| r.trim().parse().unwrap())
            })
            .expect("generation in dump-super")
    }

    /// The root tree as committed on disk (a copy of the image read with
    /// btrfs-progs, no mount): what survives a power cut right now.
    pub fn committed_root_tree(&self) -> String {
        let img = self.dir().join("disk.img");
        let copy = self.dir().join("copy.img");
        sh(
            "cp",
            &[
                "--sparse=always",
                img.to_str().unwrap(),
                copy.to_str().unwrap(),
            ],
        );
        let out = sh(
            "btrfs",
            &[
                "inspect-internal",
                "dump-tree",
                "-t",
                "root",
                copy.to_str().unwrap(),
            ],
        );
        let _ = fs::remove_file(&copy);
        out
    }
}

// ----------------------------------------------------------------- stamps

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// (year, month, day) from days since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn split(epoch: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, m, d) = civil_from_days(epoch.div_euclid(DAY));
    let s = epoch.rem_euclid(DAY);
    (y, m, d, s / 3600, s % 3600 / 60, s % 60)
}

/// Our stamp: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn stamp(epoch: i64) -> String {
    let (y, m, d, h, mi, s) = split(epoch);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The README snippet's name: `%Y-%m-%-d_%H:%M:%S`.
pub fn snippet_stamp(epoch: i64) -> String {
    let (y, m, d, h, mi, s) = split(epoch);
    format!("{y:04}-{m:02}-{d}_{h:02}:{mi:02}:{s:02}")
}

/// Parses our stamp (with optional `-NNNN`): `(epoch, counter)`.
pub fn parse_stamp(name: &str) -> Option<(i64, Option<u32>)> {
    let b = name.as_bytes();
    if b.len() < 20 || &name[4..5] != "-" || &name[7..8] != "-" || &name[10..11] != "T" {
        return None;
    }
    if &name[13..14] != ":" || &name[16..17] != ":" || &name[19..20] != "Z" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = &name[r];
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let epoch = days_from_civil(num(0..4)?, num(5..7)? as u32, num(8..10)? as u32) * DAY
        + num(11..13)? * 3600
        + num(14..16)? * 60
        + num(17..19)?;
    let counter = match &name[20..] {
        "" => None,
        rest => {
            let d = rest.strip_prefix('-')?;
            if d.len() != 4 || !d.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some(d.parse().ok()?)
        }
    };
    Some((epoch, counter))
}

/// Parses an RFC 3339 UTC time as `YYYY-MM-DDTHH:MM:SSZ` (what `list --json`
/// promises), returning the epoch.
pub fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    match parse_stamp(s)? {
        (epoch, None) => Some(epoch),
        _ => None,
    }
}

/// How often `name` occurs in `text` as a whole name: not followed by a
/// character that could continue it (`-0002`, more digits, letters).
pub fn mentions(text: &str, name: &str) -> usize {
    text.match_indices(name)
        .filter(|(i, _)| {
            let before = text[..*i].chars().next_back();
            let after = text[i + name.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
        .count()
}

/// Parses `... pruned N (deferred D, skipped S, failed F) ...` or
/// `prune: deleted N, deferred D, skipped S, failed F ...` from the summary.
pub fn summary_numbers(stderr: &str) -> (usize, usize, usize, usize) {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("root-rotate: rotate") || l.starts_with("root-rotate: prune"))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    let after = |word: &str| -> usize {
        let i = line
            .find(word)
            .unwrap_or_else(|| panic!("{word:?} not in summary {line:?}"));
        line[i + word.len()..]
            .trim_start_matches([' ', ':'])
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("no number after {word:?} in {line:?}"))
    };
    let deleted = if line.contains("pruned ") {
        after("pruned ")
    } else {
        after("deleted ")
    };
    (
        deleted,
        after("deferred "),
        after("skipped "),
        after("failed "),
    )
}

#[macro_export]
macro_rules! fixture {
    ($name:expr) => {
        match common::Fixture::standard($name) {
            Some(fx) => fx,
            None => return,
        }
    };
    (bare $name:expr) => {
        match common::Fixture::new($name) {
            Some(fx) => fx,
            None => return,
        }
    };
}

// ---- namespaces (issue: mounts everywhere)

/// Starts the binary with logging to stderr, without waiting for it.
pub fn spawn_rr(args: &[String]) -> std::process::Child {
    Command::new(BIN)
        .args(with_status_file(args, "none"))
        .env("ROOT_ROTATE_LOG", "stderr")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn root-rotate")
}

/// Waits for a started binary and collects its output.
pub fn finish(child: std::process::Child) -> Run {
    Run::from(child.wait_with_output().expect("wait for root-rotate"))
}

/// Polls `cond` (tightly: the moments waited for can be short) until it
/// holds or `secs` pass; returns whether it held.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    cond()
}

/// Sends a signal (`STOP`, `CONT`, `TERM`, `KILL`) to a process.
pub fn signal(pid: u32, sig: &str) {
    sh("kill", &[&format!("-{sig}"), &pid.to_string()]);
}

/// Whether process `pid` sees something mounted at `mount_point` (in its
/// own mount namespace).
pub fn sees_mount_at(pid: u32, mount_point: &Path) -> bool {
    let mp = mount_point.to_string_lossy();
    fs::read_to_string(format!("/proc/{pid}/mountinfo")).is_ok_and(|t| {
        t.lines()
            .any(|l| l.split(' ').nth(4).map(unescape).as_deref() == Some(&*mp))
    })
}

/// Every mount of the filesystem `dev` (`major:minor`) in every mount
/// namespace on the machine, as `(namespace, mount point)`, one namespace
/// read once.
pub fn mounts_everywhere(dev: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/mnt")) else {
            continue;
        };
        let ns = ns.to_string_lossy().into_owned();
        if seen.contains(&ns) {
            continue;
        }
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            continue;
        };
        seen.push(ns.clone());
        for l in text.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            if f.get(2) == Some(&dev) {
                out.push((ns.clone(), unescape(f.get(4).unwrap_or(&""))));
            }
        }
    }
    out
}

/// A helper process (e.g. `unshare -m ...`) that prints a line once it is
/// ready; killed and reaped on drop. Its command must `exec` the final
/// long-running program, so that killing it ends its mount namespace.
pub struct Helper {
    pub child: std::process::Child,
}

impl Helper {
    /// Starts `sh -c script` under `prefix` (e.g. `["unshare", "-m"]`) and
    /// waits up to 30 s for it to print `ready` on stdout.
    pub fn start(prefix: &[&str], script: &str) -> Helper {
        use std::io::BufRead;
        let mut cmd = Command::new(prefix.first().copied().unwrap_or("sh"));
        if prefix.is_empty() {
            cmd.args(["-c", script]);
        } else {
            cmd.args(&prefix[1..]).args(["sh", "-c", script]);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn helper");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let helper = Helper { child };
        assert_eq!(line.trim(), "ready", "helper {script:?} did not get ready");
        helper
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fixture {
    /// The arguments `rr` would pass: `cmd --device DEV --mount-point MNT
    /// extra`, and for `rotate` the fixture's status file if extra names none.
    pub fn args(&self, cmd: &str, mnt: &Path, extra: &[&str]) -> Vec<String> {
        let mut v = vec![
            cmd.to_owned(),
            "--device".to_owned(),
            self.dev.clone(),
            "--mount-point".to_owned(),
            mnt.to_string_lossy().into_owned(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        with_status_file(&v, self.status_file().to_str().unwrap())
    }

    /// `major:minor` of the filesystem, as mountinfo shows it.
    pub fn fs_dev(&self) -> String {
        let top = self.top.to_string_lossy();
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
        text.lines()
            .find(|l| l.split(' ').nth(4).map(unescape).as_deref() == Some(&*top))
            .and_then(|l| l.split(' ').nth(2).map(str::to_owned))
            .expect("the fixture's top level is mounted")
    }

    /// Mounts of this filesystem anywhere on the machine other than the
    /// fixture's own `top`.
    pub fn stray_mounts(&self) -> Vec<(String, String)> {
        let top = self.top.to_string_lossy().into_owned();
        mounts_everywhere(&self.fs_dev())
            .into_iter()
            .filter(|(_, mp)| *mp != top)
            .collect()
    }

    /// Creates subvolumes (paths relative to the top level, parents listed
    /// before their children) with one shell loop.
    pub fn subvol_paths(&self, paths: &[String]) {
        self.subvols("", paths);
    }
}

// ---- deletion (linear nested deletion)

/// Creates `count` subvolumes nested in `rel` (created as a directory when
/// missing), in process: one libbtrfsutil call each, no `btrfs` processes.
/// Every tenth one sits inside the one before it (depth 2), the others
/// directly in `rel`. With `read_only`, each one that holds another is then
/// made read-only (docker-style layers). Returns the paths of the holders.
pub fn nested_in_process(fx: &Fixture, rel: &str, count: usize, read_only: bool) -> Vec<PathBuf> {
    let base = fx.path(rel);
    fs::create_dir_all(&base).unwrap();
    let mut holders = Vec::new();
    let mut last = base.clone();
    for i in 0..count {
        let p = if i % 10 == 9 {
            holders.push(last.clone());
            last.join(format!("n{i}"))
        } else {
            base.join(format!("n{i}"))
        };
        libbtrfsutil::create_subvolume(&p)
            .unwrap_or_else(|e| panic!("create subvolume {}: {e}", p.display()));
        last = p;
    }
    if read_only {
        for h in &holders {
            libbtrfsutil::set_subvolume_read_only(h, true)
                .unwrap_or_else(|e| panic!("make {} read-only: {e}", h.display()));
        }
    }
    holders
}

/// Creates a chain of `levels` subvolumes in the subvolume `rel`, each in a
/// directory `d` of the one before, every name `name_len` bytes long, so the
/// deepest paths exceed PATH_MAX (4096 bytes) when `levels * (name_len + 3)`
/// does. Only short paths are used: `/proc/self/fd/N/<name>` with N an open
/// directory (openat-relative creation). With `read_only` the chain is made
/// read-only from the inside out. Returns the first level's name.
pub fn chain_beyond_path_max(
    fx: &Fixture,
    rel: &str,
    levels: usize,
    name_len: usize,
    read_only: bool,
) -> String {
    use std::os::fd::AsRawFd;
    let via = |dir: &fs::File, name: &str| {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
    };
    let name_at = |level: usize| {
        let tag = format!("-{level:03}");
        format!("{}{tag}", "n".repeat(name_len - tag.len()))
    };
    let mut dir = fs::File::open(fx.path(rel)).expect("open the chain's base");
    let mut levels_open = Vec::new();
    for level in 0..levels {
        let name = name_at(level);
        libbtrfsutil::create_subvolume(via(&dir, &name))
            .unwrap_or_else(|e| panic!("create chain level {level}: {e}"));
        let subvol = fs::File::open(via(&dir, &name)).expect("open chain level");
        fs::create_dir(via(&subvol, "d")).expect("mkdir d");
        fs::write(via(&subvol, "d/data"), name.as_bytes()).expect("write data");
        dir = fs::File::open(via(&subvol, "d")).expect("open d");
        levels_open.push(subvol);
    }
    if read_only {
        for subvol in levels_open.iter().rev() {
            libbtrfsutil::set_subvolume_read_only(via(subvol, "."), true)
                .unwrap_or_else(|e| panic!("make a chain level read-only: {e}"));
        }
    }
    name_at(0)
}

/// User plus system CPU seconds of `root-rotate <cmd> --device ...`, measured
/// by `sh`'s `times` (its only child is the binary, so nothing else a test
/// runs is counted), with the run itself.
pub fn rr_cpu(fx: &Fixture, cmd: &str, extra: &[&str]) -> (Run, f64) {
    let mut args = vec![
        "-c",
        r#""$@"; rc=$?; times >&2; exit $rc"#,
        "sh",
        BIN,
        cmd,
        "--device",
        &fx.dev,
        "--mount-point",
        fx.mnt.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let status_file = fx.status_file();
    if cmd == "rotate" && !extra.contains(&"--status-file") {
        args.extend(["--status-file", status_file.to_str().unwrap()]);
    }
    let out = Command::new("sh")
        .args(&args)
        .env("ROOT_ROTATE_LOG", "stderr")
        .output()
        .expect("run sh");
    let mut run = Run::from(out);
    assert!(!is_mount_point(&fx.mnt), "left mounted: {run:#?}");
    let mut lines: Vec<&str> = run.stderr.lines().collect();
    let children = lines.pop().expect("times output").to_owned();
    lines.pop(); // the shell's own times
    let seconds = |t: &str| -> f64 {
        let (m, s) = t.trim_end_matches('s').split_once('m').expect("NmS.SSs");
        m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
    };
    let cpu: f64 = children.split_whitespace().map(seconds).sum();
    run.stderr = lines.iter().map(|l| format!("{l}\n")).collect();
    (run, cpu)
}

/// Every subvolume path (relative to the top level) that starts with `prefix`.
pub fn subvolumes_under(fx: &Fixture, prefix: &str) -> Vec<String> {
    fx.subvolume_paths()
        .into_iter()
        .filter(|p| p.starts_with(prefix))
        .collect()
}
