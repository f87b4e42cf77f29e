//! Running one documented command against its block's fixture: the doc's
//! device and paths mapped onto the fixture, the line run by a shell with
//! `root-rotate` found on PATH, and the result checked.

use std::path::Path;
use std::process::Command;

use crate::common::{self, Run};
use crate::extract::DocCommand;
use crate::fixtures::DocFixture;

/// The argv a doc line becomes on the fixture:
/// - `--device` (`/dev/disk/by-partlabel/disk-main-root`, `"$DEV"`) -> the
///   fixture's loop device;
/// - `--mount-point` (`/mnt/top`) -> a directory in the fixture, added when
///   the line has none, so the default `/btrfs_tmp` of the host is not used;
/// - `rotate` gets the fixture's `--status-file` when the line names none,
///   so the host's `/run/root-rotate/status.json` is not written;
/// - `diff` looks at `/` in the docs; here `--path /X` becomes
///   `<live root>/X` and a missing `--path` the live root itself.
pub fn argv(cmd: &DocCommand, df: &DocFixture) -> Result<Vec<String>, String> {
    let sub = cmd.words.get(1).cloned().unwrap_or_default();
    let path_of = |p: &Path| p.to_string_lossy().into_owned();
    let live = || {
        df.live_root
            .as_deref()
            .ok_or("`diff` examples need <!-- sh-example: fixture=live-root -->")
    };
    let mut out = vec![cmd.words[0].clone()];
    let (mut has_mount_point, mut has_path) = (false, false);
    let mut it = cmd.words[1..].iter();
    while let Some(word) = it.next() {
        let mut value = || it.next().ok_or(format!("{word} without a value"));
        match word.as_str() {
            "--device" => {
                let dev = value()?;
                if !dev.starts_with("/dev/") {
                    return Err(format!("--device {dev:?} is not a device path"));
                }
                out.extend([word.clone(), df.fx.dev.clone()]);
            }
            "--mount-point" => {
                value()?;
                out.extend([word.clone(), path_of(&df.mnt)]);
                has_mount_point = true;
            }
            "--path" if sub == "diff" => {
                let p = value()?;
                let rel = p.strip_prefix('/').ok_or("diff --path must be absolute")?;
                let mapped = live()?.join(rel);
                out.extend([word.clone(), path_of(&mapped).trim_end_matches('/').into()]);
                has_path = true;
            }
            _ => out.push(word.clone()),
        }
    }
    match sub.as_str() {
        "diff" if !has_path => out.extend(["--path".into(), path_of(live()?)]),
        "diff" | "--help" | "--version" => {}
        _ if !has_mount_point => out.extend(["--mount-point".into(), path_of(&df.mnt)]),
        _ => {}
    }
    if sub == "rotate"
        && !cmd
            .words
            .iter()
            .any(|w| w == "--status-file" || w == "--help")
    {
        out.extend(["--status-file".into(), path_of(&df.fx.status_file())]);
    }
    Ok(out)
}

/// The shell line to run: the argv, quoted, and the doc's pipe tail kept.
/// A `diff` feeding a pipeline first has the live root's path cut from its
/// output, so the tail sees `/etc/...` as on a real host (the fixture lives
/// under /tmp, and the triage pipeline's `grep -v '^/tmp/'` would otherwise
/// drop every line).
pub fn script(argv: &[String], tail: Option<&str>, df: &DocFixture) -> String {
    let mut s = argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    if let Some(tail) = tail {
        if let (Some(root), Some("diff")) = (&df.live_root, argv.get(1).map(String::as_str)) {
            s.push_str(&format!(
                " | sed {}",
                quote(&format!("s#{}/#/#g", root.display()))
            ));
        }
        s.push_str(" | ");
        s.push_str(tail);
    }
    s
}

/// Programs a pipe tail starts (`jq`, `grep`...) that are not installed.
/// scripts/setup installs them; a missing one is a failure, not a skip, so
/// that the pipeline is really exercised.
pub fn missing_tools(tail: &str) -> Vec<String> {
    let mut quote = None;
    let mut segments = vec![String::new()];
    for c in tail.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '|') => segments.push(String::new()),
            _ => segments.last_mut().unwrap().push(c),
        }
    }
    segments
        .iter()
        .filter_map(|s| s.split_whitespace().next().map(str::to_owned))
        .filter(|tool| !common::try_sh("sh", &["-c", "command -v \"$1\"", "sh", tool]))
        .collect()
}

/// Runs the line with bash `pipefail`, so a failing `root-rotate` inside a
/// pipeline fails the line even when the last tool (`head`) succeeds; and
/// checks, like `Fixture::rr_args`, that nothing stays mounted.
pub fn run(script: &str, df: &DocFixture) -> Result<Run, String> {
    let existed = df.mnt.exists();
    let dev_mounts = || {
        common::mounts()
            .iter()
            .filter(|(s, _)| *s == df.fx.dev)
            .count()
    };
    let before = dev_mounts();
    let path = format!(
        "{}:{}",
        df.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .env("PATH", path)
        .env("ROOT_ROTATE_LOG", "stderr")
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if common::is_mount_point(&df.mnt) || dev_mounts() != before {
        return Err("left a mount behind".into());
    }
    if df.mnt.exists() != existed {
        return Err("created or removed the mount point for good".into());
    }
    Ok(run)
}

/// What the doc promises: the exit code, and output where the reader is
/// meant to read some (`list`, `diff`, any pipeline).
pub fn check(cmd: &DocCommand, expect: i32, df: &DocFixture, run: &Run) -> Result<(), String> {
    if run.code != expect {
        return Err(format!("exit code {} (expected {expect})", run.code));
    }
    if run.stdout.trim().is_empty() && run.stderr.trim().is_empty() {
        return Err("printed nothing".into());
    }
    if expect != 0 {
        return Ok(());
    }
    let sub = cmd.words.get(1).map_or("", String::as_str);
    let reads_stdout = cmd.pipe_tail.is_some() || matches!(sub, "list" | "diff");
    if reads_stdout && run.stdout.trim().is_empty() {
        return Err("printed nothing on stdout, where the doc shows output".into());
    }
    if sub == "list"
        && cmd.pipe_tail.is_none()
        && !df.archives.iter().any(|a| run.stdout.contains(a))
    {
        return Err("list shows none of the fixture's archives".into());
    }
    Ok(())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
