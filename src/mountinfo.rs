//! Parsing `/proc/<pid>/mountinfo`. Pure: the caller reads the files.
//!
//! Btrfs does not stop a mounted subvolume from being deleted, so we check
//! mounts ourselves before deleting anything, in every mount namespace: the
//! caller finds the filesystem's `major:minor` in its own table
//! (`device_at`), then asks each namespace's table which paths of that
//! filesystem are in use there (`busy_paths`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem; the same for every mount of one Btrfs.
    pub dev: String,
    /// The path inside the filesystem that is mounted (`/@root`, `/@persist/etc`).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: String,
    pub fs_type: String,
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let _id = fields.next()?;
    let _parent = fields.next()?;
    let dev = fields.next()?.to_owned();
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    // Optional fields end at a lone "-"; the file system type follows.
    let fs_type = fields.skip_while(|f| *f != "-").nth(1)?.to_owned();
    Some(Mount {
        dev,
        root,
        mount_point,
        fs_type,
    })
}

/// The kernel escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `major:minor` of the filesystem mounted at `mount_point`: the last mount
/// there, the one path lookups see.
pub fn device_at(mounts: &[Mount], mount_point: &str) -> Option<String> {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == mount_point)
        .map(|m| m.dev.clone())
}

/// Paths, relative to the top level of the filesystem `dev` (`major:minor`),
/// that are in use in one mount table: mounted from (`subvol=`, bind mounts)
/// or mounted onto (anything mounted below any mount of this filesystem).
/// Works on any namespace's table: `dev` is the same in all of them.
pub fn busy_paths(mounts: &[Mount], dev: &str) -> Vec<String> {
    let same_fs: Vec<&Mount> = mounts.iter().filter(|m| m.dev == dev).collect();
    let mut busy = Vec::new();
    for m in &same_fs {
        if m.root != "/" {
            busy.push(relative(&m.root));
        }
    }
    for inner in mounts {
        for outer in &same_fs {
            if std::ptr::eq(inner, *outer) {
                continue;
            }
            if let Some(rest) = below(&inner.mount_point, &outer.mount_point) {
                busy.push(relative(&format!("{}/{}", outer.root, rest)));
            }
        }
    }
    busy
}

/// The part of `path` below `dir`, if `path` is strictly below it.
fn below<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    if dir == "/" {
        return path.strip_prefix('/').filter(|r| !r.is_empty());
    }
    path.strip_prefix(dir)?
        .strip_prefix('/')
        .filter(|r| !r.is_empty())
}

fn relative(path: &str) -> String {
    path.trim_matches('/').replace("//", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:35 / /btrfs_tmp rw,relatime shared:20 - btrfs /dev/loop0 rw,space_cache=v2,subvolid=5,subvol=/
41 22 0:35 /@old_roots/2026-11-01T00:00:00Z /mnt/old rw shared:21 - btrfs /dev/loop0 rw,subvolid=300
42 22 0:35 /@persist/etc /etc/ssh rw shared:22 - btrfs /dev/loop0 rw
43 40 0:50 / /btrfs_tmp/@old_roots/2026-11-02T00:00:00Z/tmp rw shared:23 - tmpfs tmpfs rw
44 22 0:36 / /with\\040space rw shared:24 master:3 - btrfs /dev/loop1 rw
";

    #[test]
    fn parses_fields_and_unescapes_spaces() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 6);
        assert_eq!(m[1].dev, "0:35");
        assert_eq!(m[1].fs_type, "btrfs");
        assert_eq!(m[2].root, "/@old_roots/2026-11-01T00:00:00Z");
        assert_eq!(m[5].mount_point, "/with space");
        assert_eq!(m[5].fs_type, "btrfs");
    }

    #[test]
    fn finds_the_device_of_the_topmost_mount_at_a_path() {
        let stacked = format!("{SAMPLE}45 40 0:99 / /btrfs_tmp rw - tmpfs tmpfs rw\n");
        assert_eq!(
            device_at(&parse(SAMPLE), "/btrfs_tmp").as_deref(),
            Some("0:35")
        );
        assert_eq!(
            device_at(&parse(&stacked), "/btrfs_tmp").as_deref(),
            Some("0:99")
        );
        assert_eq!(device_at(&parse(SAMPLE), "/elsewhere"), None);
    }

    #[test]
    fn finds_subvolumes_mounted_elsewhere_and_mounts_inside_archives() {
        let busy = busy_paths(&parse(SAMPLE), "0:35");
        assert!(busy.contains(&"@old_roots/2026-11-01T00:00:00Z".to_owned()));
        assert!(busy.contains(&"@persist/etc".to_owned()));
        assert!(busy.contains(&"@old_roots/2026-11-02T00:00:00Z/tmp".to_owned()));
        assert!(
            !busy.iter().any(|p| p.contains("space")),
            "other filesystem: {busy:?}"
        );
    }

    #[test]
    fn another_namespace_without_our_mount_still_shows_a_mounted_archive() {
        // A container's table: our top-level mount does not exist there.
        let other = "\
100 99 0:35 /@old_roots/2026-11-03T00:00:00Z / rw - btrfs /dev/loop0 rw
101 100 0:60 / /proc rw - proc proc rw
102 100 0:35 /@persist /data rw - btrfs /dev/loop0 rw
103 102 0:61 / /data/cache rw - tmpfs tmpfs rw
";
        let busy = busy_paths(&parse(other), "0:35");
        assert!(busy.contains(&"@old_roots/2026-11-03T00:00:00Z".to_owned()));
        assert!(busy.contains(&"@old_roots/2026-11-03T00:00:00Z/proc".to_owned()));
        assert!(busy.contains(&"@persist/cache".to_owned()));
        assert!(busy_paths(&parse(other), "0:36").is_empty());
    }

    #[test]
    fn skips_malformed_lines() {
        assert!(parse("garbage\n1 2 3\n").is_empty());
    }
}
