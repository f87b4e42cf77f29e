//! The filesystems the doc examples talk about, chosen by a block's
//! `fixture=` marker: each a fresh Btrfs image on a loop device shaped as
//! the page says the reader's disk is.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::common::{self, Fixture, DAY};

pub const KINDS: &[&str] = &["standard", "snippet", "live-root"];

/// The snippet archive name migrate-from-snippet.md shows as its example,
/// so the snippet fixture holds exactly what the page describes.
const SNIPPET_EXAMPLE: &str = "2025-03-7_09:15:00";

pub struct DocFixture {
    pub fx: Fixture,
    /// Replaces the doc's mount point (`/mnt/top`, or the default
    /// `/btrfs_tmp` when the line names none): a test must not use the host's.
    pub mnt: PathBuf,
    /// `live-root` only: the mounted `@root` that `diff` looks at instead of `/`.
    pub live_root: Option<PathBuf>,
    /// The archives the fixture made; `list` must show at least one of them.
    pub archives: Vec<String>,
    /// Holds `root-rotate` -> the built binary; first on the commands' PATH,
    /// so the docs' lines run the way a reader's shell would run them.
    pub bin_dir: PathBuf,
}

/// Builds the fixture `kind`. `doc_archives` are the archive names the
/// block's commands name (`--to NAME`): they must exist, as on the reader's
/// disk, so they are created alongside the usual ones, in time order.
/// `None` when not running as root.
pub fn build(kind: &str, test: &str, doc_archives: &[String]) -> Option<DocFixture> {
    let (fx, archive_dir, usual) = match kind {
        "standard" | "live-root" => standard(test)?,
        "snippet" => snippet(test)?,
        _ => panic!("unknown fixture {kind} (extract checks markers against KINDS)"),
    };
    let mut archives: Vec<(i64, String)> = usual;
    for name in doc_archives {
        if !archives.iter().any(|(_, n)| n == name) {
            archives.push((epoch_of(name), name.clone()));
        }
    }
    // Subvolume IDs grow in creation order and `--latest` goes by ID, so
    // create them oldest first, as rotations would have.
    archives.sort();
    for (_, name) in &archives {
        let a = format!("{archive_dir}/{name}");
        fx.subvol(&a);
        fx.write(
            &format!("{a}/etc/machine-state"),
            &format!("root of {name}\n"),
        );
        fx.write(&format!("{a}/var/lib/acme/cert.pem"), "cert\n");
    }
    if kind == "snippet" {
        // The snippet's `mv` into an existing name nests a root inside an
        // archive; the page says those show up as nested. The newest one,
        // so that it is kept and `list` shows the count.
        let newest = &archives.last().unwrap().1;
        fx.subvol(&format!("{archive_dir}/{newest}/root"));
    }
    let live_root = (kind == "live-root").then(|| live_root(&fx));
    let bin_dir = fx.dir().join("bin");
    fs::create_dir(&bin_dir).unwrap();
    symlink(common::BIN, bin_dir.join("root-rotate")).unwrap();
    Some(DocFixture {
        mnt: fx.dir().join("mnt"),
        live_root,
        archives: archives.into_iter().map(|(_, n)| n).collect(),
        bin_dir,
        fx,
    })
}

type Shape = (Fixture, &'static str, Vec<(i64, String)>);

/// The server layout (`@root`, `@old_roots`, `@persist`, `@nix`) after a
/// few boots: archives 3, 2 and 1 days old, and one 40 days old that the
/// default retention (30 days, at least 3) prunes.
fn standard(test: &str) -> Option<Shape> {
    let fx = Fixture::standard(test)?;
    let now = common::now();
    let usual = [40, 3, 2, 1]
        .map(|d| (now - d * DAY, common::stamp(now - d * DAY)))
        .to_vec();
    Some((fx, "@old_roots", usual))
}

/// A layout installed for the impermanence README snippet: `root`,
/// `old_roots` (a plain directory: the snippet made it with `mkdir`),
/// `persistent`, `nix`, archives named `%Y-%m-%-d_%H:%M:%S`: three recent
/// ones and the page's example, old enough that `prune --keep-days 30
/// --dry-run` has something to report past the keep-at-least floor of 3.
fn snippet(test: &str) -> Option<Shape> {
    let fx = Fixture::new(test)?;
    fx.subvol("root");
    fx.write("root/etc/machine-state", "live root\n");
    fx.mkdir("old_roots");
    fx.subvol("persistent");
    fx.write("persistent/etc/ssh/ssh_host_key", "secret\n");
    fx.subvol("nix");
    fx.write("nix/store/abc-hello/bin/hello", "#!/bin/sh\n");
    let now = common::now();
    let mut usual = vec![(epoch_of(SNIPPET_EXAMPLE), SNIPPET_EXAMPLE.to_owned())];
    usual.extend([3, 2, 1].map(|d| (now - d * DAY, common::snippet_stamp(now - d * DAY))));
    Some((fx, "old_roots", usual))
}

/// `@root` mounted at `<dir>/root` like `/` on a running host: state
/// outside `/etc` and `/tmp` (what the triage pipeline keeps), a file over
/// 1 MiB (what the `jq` size filter keeps), and `@persist/etc/ssh` bind
/// mounted onto it, which `diff` must leave out.
fn live_root(fx: &Fixture) -> PathBuf {
    let root = fx.dir().join("root");
    fx.mount_subvol("@root", &root);
    for (rel, len) in [
        ("etc/hostname", 4),
        ("root/.bash_history", 100),
        ("var/lib/acme/cert.pem", 1_000),
        ("var/cache/app/blob", 2 << 20),
        ("tmp/scratch", 10),
    ] {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, vec![b'x'; len]).unwrap();
    }
    fs::create_dir_all(root.join("etc/ssh")).unwrap();
    fx.bind(&fx.path("@persist/etc/ssh"), &root.join("etc/ssh"));
    root
}

/// The time an archive name stands for, in either format; 0 for a name
/// that is neither (the command naming it will then fail, as it should).
fn epoch_of(name: &str) -> i64 {
    let ours = match name.split_once('_') {
        // Snippet `2025-03-7_09:15:00` -> `2025-03-07T09:15:00Z`.
        Some((date, time)) => match date.rsplit_once('-') {
            Some((ym, d)) => format!("{ym}-{d:0>2}T{time}Z"),
            None => return 0,
        },
        None => name.to_owned(),
    };
    common::parse_stamp(&ours).map_or(0, |(epoch, _)| epoch)
}
