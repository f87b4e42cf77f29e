//! Command-line interface (argh). Parsing and validation only: a usage error
//! is found here, before anything is mounted.

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::error::{Error, Result};
use crate::policy::Retention;
use crate::stamp::check_component;

#[derive(FromArgs, Debug)]
/// Archive and wipe the Btrfs root subvolume at every boot, safely.
#[argh(
    note = "Run `root-rotate <command> --help` for a command's flags. Docs: docs/reference/cli.md",
    error_code(0, "success (also: pruning deferred by the budget, nothing to do)"),
    error_code(1, "runtime failure: device missing or not Btrfs, mount/ioctl/rename failed, ENOSPC, no such archive"),
    error_code(2, "usage error: bad flag, value or name; nothing was touched")
)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Rotate(RotateArgs),
    Prune(PruneArgs),
    List(ListArgs),
    Rollback(RollbackArgs),
    Diff(DiffArgs),
}

fn default_mount_point() -> PathBuf {
    PathBuf::from("/btrfs_tmp")
}
fn default_root() -> String {
    "@root".into()
}
fn default_archive() -> String {
    "@old_roots".into()
}
fn default_status_file() -> String {
    crate::status::DEFAULT_PATH.into()
}

#[derive(FromArgs, Debug)]
/// Archive the live root as <archive>/<UTC stamp>, leave a blank root, prune.
#[argh(subcommand, name = "rotate")]
pub struct RotateArgs {
    /// block device holding the Btrfs filesystem
    #[argh(option)]
    pub device: PathBuf,
    /// where to mount the top-level volume (default: /btrfs_tmp)
    #[argh(option, default = "default_mount_point()")]
    pub mount_point: PathBuf,
    /// root subvolume name at the top level (default: @root)
    #[argh(option, default = "default_root()")]
    pub root: String,
    /// archive directory name at the top level (default: @old_roots)
    #[argh(option, default = "default_archive()")]
    pub archive: String,
    /// delete archives older than this many days (default: 30)
    #[argh(option, default = "30")]
    pub keep_days: u32,
    /// always keep this many most recently archived roots (default: 3)
    #[argh(option, default = "3")]
    pub keep_at_least: u32,
    /// time budget in milliseconds; pruning stops when spent (default: 5000)
    #[argh(option, default = "5000")]
    pub budget_ms: u64,
    /// print what would happen; mount read-only and change nothing
    #[argh(switch)]
    pub dry_run: bool,
    /// write how the run ended, as JSON, to this file; '' or none: do not
    /// (default: /run/root-rotate/status.json)
    #[argh(option, default = "default_status_file()")]
    pub status_file: String,
}

#[derive(FromArgs, Debug)]
/// Delete archives older than --keep-days, within the budget.
#[argh(subcommand, name = "prune")]
pub struct PruneArgs {
    /// block device holding the Btrfs filesystem
    #[argh(option)]
    pub device: PathBuf,
    /// where to mount the top-level volume (default: /btrfs_tmp)
    #[argh(option, default = "default_mount_point()")]
    pub mount_point: PathBuf,
    /// archive directory name at the top level (default: @old_roots)
    #[argh(option, default = "default_archive()")]
    pub archive: String,
    /// delete archives older than this many days (default: 30)
    #[argh(option, default = "30")]
    pub keep_days: u32,
    /// always keep this many most recently archived roots (default: 3)
    #[argh(option, default = "3")]
    pub keep_at_least: u32,
    /// time budget in milliseconds (default: 5000)
    #[argh(option, default = "5000")]
    pub budget_ms: u64,
    /// print what would happen; mount read-only and change nothing
    #[argh(switch)]
    pub dry_run: bool,
}

#[derive(FromArgs, Debug)]
/// List archives with their age and whether the policy keeps them.
#[argh(subcommand, name = "list")]
pub struct ListArgs {
    /// block device holding the Btrfs filesystem
    #[argh(option)]
    pub device: PathBuf,
    /// where to mount the top-level volume, read-only (default: /btrfs_tmp)
    #[argh(option, default = "default_mount_point()")]
    pub mount_point: PathBuf,
    /// archive directory name at the top level (default: @old_roots)
    #[argh(option, default = "default_archive()")]
    pub archive: String,
    /// policy to evaluate: keep archives younger than this (default: 30)
    #[argh(option, default = "30")]
    pub keep_days: u32,
    /// policy to evaluate: keep this many most recent (default: 3)
    #[argh(option, default = "3")]
    pub keep_at_least: u32,
    /// print a JSON array instead of a table
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Make an archive the next root; the next rotate keeps it once.
#[argh(subcommand, name = "rollback")]
pub struct RollbackArgs {
    /// block device holding the Btrfs filesystem
    #[argh(option)]
    pub device: PathBuf,
    /// where to mount the top-level volume (default: /btrfs_tmp)
    #[argh(option, default = "default_mount_point()")]
    pub mount_point: PathBuf,
    /// root subvolume name at the top level (default: @root)
    #[argh(option, default = "default_root()")]
    pub root: String,
    /// archive directory name at the top level (default: @old_roots)
    #[argh(option, default = "default_archive()")]
    pub archive: String,
    /// name of the archive to restore
    #[argh(option)]
    pub to: Option<String>,
    /// restore the most recently archived root
    #[argh(switch)]
    pub latest: bool,
    /// print what would happen; mount read-only and change nothing
    #[argh(switch)]
    pub dry_run: bool,
}

#[derive(FromArgs, Debug)]
/// List files on the root filesystem that will vanish at the next boot.
#[argh(subcommand, name = "diff")]
pub struct DiffArgs {
    /// directory to examine (default: /)
    #[argh(option, default = "PathBuf::from(\"/\")")]
    pub path: PathBuf,
    /// print a JSON array instead of paths
    #[argh(switch)]
    pub json: bool,
}

/// The filesystem a command works on, validated.
#[derive(Debug, Clone)]
pub struct Target {
    pub device: PathBuf,
    pub mount_point: PathBuf,
    pub root: String,
    pub archive: String,
}

impl Target {
    pub fn new(
        device: PathBuf,
        mount_point: PathBuf,
        root: String,
        archive: String,
    ) -> Result<Target> {
        check_component("--root", &root).map_err(Error::Usage)?;
        check_component("--archive", &archive).map_err(Error::Usage)?;
        if root == archive {
            return Err(Error::Usage(format!(
                "--root and --archive are both {root:?}"
            )));
        }
        if device.as_os_str().is_empty() {
            return Err(Error::Usage("--device must not be empty".into()));
        }
        if !mount_point.is_absolute() || mount_point.parent().is_none() {
            return Err(Error::Usage(format!(
                "--mount-point {} must be an absolute path other than /",
                mount_point.display()
            )));
        }
        Ok(Target {
            device,
            mount_point,
            root,
            archive,
        })
    }
}

/// `--status-file`: where `rotate` writes its status file, if anywhere.
pub fn status_file(value: &str) -> Result<Option<crate::status::Location>> {
    crate::status::location(value).map_err(Error::Usage)
}

pub fn retention(keep_days: u32, keep_at_least: u32) -> Retention {
    Retention {
        keep_days,
        keep_at_least: keep_at_least as usize,
    }
}

pub fn budget(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The arguments as UTF-8, or a one-line usage error naming the first that
/// is not (std::env::args would panic on it). Device and mount point paths
/// with such bytes are not supported; subvolume names never have them.
pub fn utf8_args(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> std::result::Result<Vec<String>, String> {
    args.enumerate()
        .map(|(i, a)| {
            a.into_string().map_err(|bad| {
                format!("argument {i} is not valid UTF-8: {}", bad.to_string_lossy())
            })
        })
        .collect()
}

/// Parses argv; `Err(Ok(text))` is --help output, `Err(Err(text))` a usage error.
pub fn parse(args: &[String]) -> std::result::Result<Cli, std::result::Result<String, String>> {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (cmd, rest) = strs
        .split_first()
        .map(|(c, r)| (*c, r))
        .unwrap_or(("root-rotate", &[]));
    let name = std::path::Path::new(cmd)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("root-rotate");
    Cli::from_args(&[name], rest).map_err(|e| match e.status {
        Ok(()) => Ok(e.output),
        Err(()) => Err(e.output),
    })
}
