//! The rollback marker `<root>.keep-once` in the top level: what it holds and
//! what a found one means. Pure; the file operations are in btrfs::marker.
//!
//! Contents: the restored root's subvolume ID on the first line, then
//! `from <archive>` (the archive it was restored from), so a second
//! `rollback` can tell what is pending. Markers of earlier versions hold the
//! ID alone and are still honoured.

use crate::btrfs::marker::Found;

pub fn file_name(root: &str) -> String {
    format!("{root}.keep-once")
}

/// The marker's permissions: root's alone.
pub const MODE: u32 = 0o600;

/// Written first, then renamed to `file_name`: a crash never leaves a
/// half-written marker under the real name.
pub fn temp_name(root: &str) -> String {
    format!("{root}.keep-once.tmp")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Subvolume ID of the restored root.
    pub id: u64,
    /// The archive it was restored from, when the marker says.
    pub from: Option<String>,
}

pub fn format(m: &Marker) -> String {
    match &m.from {
        Some(from) => format!("{}\nfrom {from}\n", m.id),
        None => format!("{}\n", m.id),
    }
}

pub fn parse(text: &str) -> Option<Marker> {
    let mut lines = text.lines();
    let id = lines.next()?.trim().parse::<u64>().ok()?;
    let from = match lines.next() {
        None => None,
        Some(line) => Some(line.strip_prefix("from ")?.to_owned()),
    };
    if lines.any(|l| !l.trim().is_empty()) {
        return None;
    }
    Some(Marker { id, from })
}

/// What a found marker means for the current root.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    Absent,
    /// A rollback made the current root; the next rotate keeps it once.
    Pending(Marker),
    /// Anything else: logged, removed, and ignored.
    Stale(String),
}

pub fn judge(found: Found, root_id: Option<u64>) -> State {
    match found {
        Found::Absent => State::Absent,
        Found::Invalid(why) => State::Stale(why),
        Found::Text(text) => match (parse(&text), root_id) {
            (None, _) => State::Stale(format!("unreadable contents {:?}", text.trim())),
            (Some(m), Some(id)) if m.id == id => State::Pending(m),
            (Some(m), Some(id)) => {
                State::Stale(format!("names subvolume {}, the root is {id}", m.id))
            }
            (Some(m), None) => State::Stale(format!("names subvolume {}, there is no root", m.id)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        for m in [
            Marker {
                id: 257,
                from: Some("2026-01-02T03:04:05Z".into()),
            },
            Marker { id: 9, from: None },
        ] {
            assert_eq!(parse(&format(&m)), Some(m));
        }
    }

    #[test]
    fn earlier_markers_hold_the_id_alone() {
        assert_eq!(
            parse("312\n"),
            Some(Marker {
                id: 312,
                from: None
            })
        );
        assert_eq!(
            parse(" 312 "),
            Some(Marker {
                id: 312,
                from: None
            })
        );
    }

    #[test]
    fn anything_else_does_not_parse() {
        for bad in [
            "",
            "\n",
            "x",
            "-1\n",
            "12\nto x\n",
            "12\nfrom a\njunk\n",
            "1 2\n",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_marker_naming_the_current_root_is_pending() {
        let text = |s: &str| Found::Text(s.into());
        assert_eq!(
            judge(text("300\nfrom a\n"), Some(300)),
            State::Pending(Marker {
                id: 300,
                from: Some("a".into())
            })
        );
        assert!(matches!(judge(text("300\n"), Some(301)), State::Stale(_)));
        assert!(matches!(judge(text("300\n"), None), State::Stale(_)));
        assert!(matches!(judge(text("junk"), Some(300)), State::Stale(_)));
        assert!(
            matches!(judge(Found::Invalid("a FIFO".into()), Some(300)), State::Stale(w) if w == "a FIFO")
        );
        assert_eq!(judge(Found::Absent, Some(300)), State::Absent);
    }
}
