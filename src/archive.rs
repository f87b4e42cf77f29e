//! What counts as one of our archives. Pure: the caller reads the directory.
//!
//! An entry of the archive directory is an archive only if it is a real
//! subvolume (inode 256 on Btrfs), sits directly in the archive directory and
//! is named by one of the stamp schemes. Everything else is foreign and is
//! never touched. This is the rule the README snippet lacked: it asked
//! `btrfs subvolume list -o` about a path, which on a plain directory answers
//! for the *containing* subvolume, and so deleted `@persist`.

use crate::stamp::{self, Stamp};

/// What `fstatat(AT_SYMLINK_NOFOLLOW)` found for a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory with inode 256 on Btrfs: the root of a subvolume.
    Subvolume {
        id: u64,
    },
    Directory,
    Symlink,
    Other,
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// `None` when the name is not valid UTF-8 (never one of ours).
    pub name: Option<String>,
    /// The name as found, for messages.
    pub display: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub name: String,
    pub id: u64,
    pub stamp: Stamp,
    /// Mounted somewhere, or something is mounted inside it: never deleted.
    pub busy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    pub name: String,
    pub why: &'static str,
}

#[derive(Debug, Default)]
pub struct Classified {
    /// Sorted by subvolume ID, oldest archived first.
    pub archives: Vec<Archive>,
    pub foreign: Vec<Foreign>,
}

/// Splits the entries of the archive directory into archives and foreign
/// entries. `busy_paths` are paths relative to the filesystem's top level that
/// something is mounted from or onto (see `mountinfo`); `archive_dir` is the
/// archive directory's name at the top level.
pub fn classify(archive_dir: &str, entries: Vec<Entry>, busy_paths: &[String]) -> Classified {
    let mut out = Classified::default();
    for entry in entries {
        let foreign = |why| Foreign {
            name: entry.display.clone(),
            why,
        };
        let id = match entry.kind {
            EntryKind::Subvolume { id } => id,
            EntryKind::Directory => {
                out.foreign
                    .push(foreign("a plain directory, not a subvolume"));
                continue;
            }
            EntryKind::Symlink => {
                out.foreign.push(foreign("a symlink"));
                continue;
            }
            EntryKind::Other => {
                out.foreign.push(foreign("not a directory"));
                continue;
            }
        };
        let Some((name, stamp)) = entry
            .name
            .as_deref()
            .and_then(|n| stamp::parse(n).map(|s| (n, s)))
        else {
            out.foreign
                .push(foreign("a subvolume whose name is not an archive stamp"));
            continue;
        };
        let path = format!("{archive_dir}/{name}");
        out.archives.push(Archive {
            name: name.to_owned(),
            id,
            stamp,
            busy: busy_paths.iter().any(|p| is_within(p, &path)),
        });
    }
    out.archives.sort_by_key(|a| a.id);
    out
}

/// Whether `path` is `dir` or lies below it (both relative, no leading `/`).
pub fn is_within(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: EntryKind) -> Entry {
        Entry {
            name: Some(name.to_owned()),
            display: name.to_owned(),
            kind,
        }
    }

    fn subvol(name: &str, id: u64) -> Entry {
        entry(name, EntryKind::Subvolume { id })
    }

    #[test]
    fn accepts_subvolumes_named_by_either_scheme() {
        let c = classify(
            "@old_roots",
            vec![
                subvol("2026-11-22T22:10:08Z", 300),
                subvol("2025-03-7_09:15:00", 260),
            ],
            &[],
        );
        let names: Vec<_> = c.archives.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["2025-03-7_09:15:00", "2026-11-22T22:10:08Z"]);
        assert!(c.foreign.is_empty());
    }

    #[test]
    fn plain_directories_with_stamp_names_are_foreign() {
        let c = classify(
            "@old_roots",
            vec![entry("2020-01-01T00:00:00Z", EntryKind::Directory)],
            &[],
        );
        assert!(c.archives.is_empty());
        assert_eq!(c.foreign[0].why, "a plain directory, not a subvolume");
    }

    #[test]
    fn symlinks_files_and_foreign_subvolumes_are_never_archives() {
        let c = classify(
            "@old_roots",
            vec![
                entry("2020-01-01T00:00:00Z", EntryKind::Symlink),
                entry("2020-01-02T00:00:00Z", EntryKind::Other),
                subvol("@persist", 257),
                subvol("docker", 258),
                Entry {
                    name: None,
                    display: "\\xff".into(),
                    kind: EntryKind::Subvolume { id: 259 },
                },
            ],
            &[],
        );
        assert!(c.archives.is_empty());
        assert_eq!(c.foreign.len(), 5);
    }

    #[test]
    fn marks_archives_that_are_mounted_or_hold_a_mount() {
        let busy = [
            "@old_roots/2026-11-01T00:00:00Z/var/lib/x".to_owned(),
            "@old_roots/2026-11-02T00:00:00Z".to_owned(),
        ];
        let c = classify(
            "@old_roots",
            vec![
                subvol("2026-11-01T00:00:00Z", 256),
                subvol("2026-11-02T00:00:00Z", 257),
                subvol("2026-11-03T00:00:00Z", 258),
            ],
            &busy,
        );
        let busy: Vec<bool> = c.archives.iter().map(|a| a.busy).collect();
        assert_eq!(busy, [true, true, false]);
    }

    #[test]
    fn a_sibling_with_a_common_prefix_is_not_inside() {
        assert!(!is_within(
            "@old_roots/2026-11-01T00:00:00Z-0002",
            "@old_roots/2026-11-01T00:00:00Z"
        ));
        assert!(is_within("@old_roots/a", "@old_roots/a"));
        assert!(is_within("@old_roots/a/b", "@old_roots/a"));
    }
}
