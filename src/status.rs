//! The status file `rotate` leaves for monitoring: where it goes and what it
//! holds. Pure; the file is written through btrfs::marker (a temporary file
//! in the same directory, then a rename), and a failure to write it only
//! logs a warning.
//!
//! One JSON object on one line:
//! `{"command":"rotate","exit_code":0,"time":1795385408,"archived":"2026-11-22T22:10:08Z","pruned":1,"deferred":0,"failed":0,"error":null}`

use std::path::PathBuf;

use crate::json;

/// On /run, a tmpfs that NixOS carries from stage 1 into the booted system
/// in both initrd flavours: what is there after boot was written by this
/// boot's initrd.
pub const DEFAULT_PATH: &str = "/run/root-rotate/status.json";

/// Readable by monitoring that does not run as root; set whatever the umask.
pub const DIR_MODE: u32 = 0o755;
pub const FILE_MODE: u32 = 0o644;

/// Where the status file goes: a file `name` in the directory `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub dir: PathBuf,
    pub name: String,
}

/// `--status-file VALUE`: `None` for `''` or `none` (do not write one),
/// else an absolute path that ends in a file name.
pub fn location(value: &str) -> Result<Option<Location>, String> {
    if value.is_empty() || value == "none" {
        return Ok(None);
    }
    let bad = |why: &str| Err(format!("--status-file {value:?} {why}"));
    if !value.starts_with('/') {
        return bad("must be an absolute path (or '' or none to write no status file)");
    }
    if value.contains('\0') {
        return bad("must not contain NUL");
    }
    let (dir, name) = value.rsplit_once('/').expect("starts with /");
    if name.is_empty() || name == "." || name == ".." {
        return bad("must end in a file name");
    }
    Ok(Some(Location {
        dir: PathBuf::from(if dir.is_empty() { "/" } else { dir }),
        name: name.to_owned(),
    }))
}

/// How one run of `rotate` ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Status {
    /// The process's exit code.
    pub exit_code: u8,
    /// When the file was written, seconds since the epoch.
    pub time: i64,
    /// The name of the archive this run made of the root, if it made one.
    pub archived: Option<String>,
    /// Prune's counts; 0 when pruning did not run.
    pub pruned: usize,
    pub deferred: usize,
    pub failed: usize,
    /// The one-line error, when the run failed.
    pub error: Option<String>,
}

/// The file's contents: one JSON object on one line, newline-terminated.
pub fn format(s: &Status) -> String {
    let or_null = |v: &Option<String>| v.as_deref().map_or_else(|| "null".into(), json::string);
    format!(
        "{{\"command\":\"rotate\",\"exit_code\":{},\"time\":{},\"archived\":{},\"pruned\":{},\"deferred\":{},\"failed\":{},\"error\":{}}}\n",
        s.exit_code,
        s.time,
        or_null(&s.archived),
        s.pruned,
        s.deferred,
        s.failed,
        or_null(&s.error)
    )
}

/// The temporary file written first and renamed to `name`. Per process, so
/// that two runs writing the same status file never write into each
/// other's temporary file.
pub fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.tmp-{pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successful_rotation_is_one_line_with_every_field() {
        let s = Status {
            exit_code: 0,
            time: 1_795_385_408,
            archived: Some("2026-11-22T22:10:08Z-0002".into()),
            pruned: 3,
            deferred: 1,
            failed: 0,
            error: None,
        };
        assert_eq!(
            format(&s),
            "{\"command\":\"rotate\",\"exit_code\":0,\"time\":1795385408,\
             \"archived\":\"2026-11-22T22:10:08Z-0002\",\"pruned\":3,\"deferred\":1,\
             \"failed\":0,\"error\":null}\n"
        );
    }

    #[test]
    fn nothing_archived_and_no_error_are_null() {
        let text = format(&Status {
            exit_code: 0,
            time: 5,
            ..Status::default()
        });
        assert!(text.contains("\"archived\":null"), "{text}");
        assert!(text.contains("\"error\":null"), "{text}");
        assert!(
            text.contains("\"pruned\":0,\"deferred\":0,\"failed\":0"),
            "{text}"
        );
    }

    #[test]
    fn the_error_is_escaped_and_the_object_stays_on_one_line() {
        let text = format(&Status {
            exit_code: 1,
            time: 5,
            error: Some("cannot open \"/x\\y\"\nsecond\tline\r\u{1}".into()),
            ..Status::default()
        });
        assert!(
            text.ends_with(concat!(
                r#""error":"cannot open \"/x\\y\"\nsecond\tline\r\u0001"}"#,
                "\n"
            )),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"exit_code\":1,"), "{text}");
    }

    #[test]
    fn empty_or_none_writes_no_status_file() {
        assert_eq!(location(""), Ok(None));
        assert_eq!(location("none"), Ok(None));
    }

    #[test]
    fn a_status_file_is_a_file_name_in_an_absolute_directory() {
        assert_eq!(
            location(DEFAULT_PATH),
            Ok(Some(Location {
                dir: "/run/root-rotate".into(),
                name: "status.json".into()
            }))
        );
        assert_eq!(
            location("/status.json"),
            Ok(Some(Location {
                dir: "/".into(),
                name: "status.json".into()
            }))
        );
        for bad in [
            "status.json",
            "./s",
            "/run/",
            "/",
            "/run/.",
            "/run/..",
            "/a\0b",
        ] {
            assert!(location(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_temporary_file_is_hidden_and_per_process() {
        assert_eq!(temp_name("status.json", 42), ".status.json.tmp-42");
    }
}
