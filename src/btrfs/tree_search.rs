//! `BTRFS_IOC_TREE_SEARCH` on the root tree: which subvolumes are linked in
//! a directory, without loading any of them.
//!
//! Looking up a subvolume's directory entry makes the kernel load that
//! subvolume's root (one metadata read each, waited for one by one). The
//! root tree already records every link as a `ROOT_REF` item keyed by the
//! parent subvolume: one search returns them all. `btrfs subvolume list`
//! reads the same items.

use std::mem::size_of;
use std::ops::Range;

use rustix::fd::AsFd;
use rustix::io::{Errno, Result};
use rustix::ioctl::{self, opcode, Opcode, Updater};

use super::SUBVOLUME_INO;

/// `BTRFS_ROOT_TREE_OBJECTID`: the tree of all subvolume roots.
const ROOT_TREE: u64 = 1;
/// `BTRFS_ROOT_REF_KEY`: key (parent ID, ROOT_REF, child ID).
const ROOT_REF_KEY: u32 = 156;
/// `BTRFS_INODE_ITEM_KEY`.
const INODE_ITEM_KEY: u32 = 1;
/// `BTRFS_INODE_REF_KEY`: key (inode, INODE_REF, parent directory inode).
const INODE_REF_KEY: u32 = 12;
/// How many directories deep `dir_components` follows a chain of parents.
const MAX_DIR_DEPTH: usize = 1 << 16;

/// `struct btrfs_ioctl_search_key` (linux/btrfs.h).
#[repr(C)]
#[derive(Default)]
struct SearchKey {
    tree_id: u64,
    min_objectid: u64,
    max_objectid: u64,
    min_offset: u64,
    max_offset: u64,
    min_transid: u64,
    max_transid: u64,
    min_type: u32,
    max_type: u32,
    nr_items: u32,
    unused: u32,
    unused1: u64,
    unused2: u64,
    unused3: u64,
    unused4: u64,
}

const SEARCH_BUF_SIZE: usize = 4096 - size_of::<SearchKey>();

/// `struct btrfs_ioctl_search_args` (linux/btrfs.h): 4096 bytes.
#[repr(C)]
struct SearchArgs {
    key: SearchKey,
    buf: [u8; SEARCH_BUF_SIZE],
}

/// `BTRFS_IOC_TREE_SEARCH = _IOWR(0x94, 17, struct btrfs_ioctl_search_args)`.
const TREE_SEARCH: Opcode = opcode::read_write::<SearchArgs>(0x94, 17);

/// `struct btrfs_ioctl_search_header`: CPU byte order.
const HEADER_SIZE: usize = 32;
/// `struct btrfs_root_ref` before the name: dirid, sequence (__le64), name_len (__le16).
const ROOT_REF_SIZE: usize = 18;
/// `struct btrfs_inode_ref` before the name: index (__le64), name_len (__le16).
const INODE_REF_SIZE: usize = 10;

/// One subvolume link: subvolume `child` sits in directory `dirid` of its
/// parent, under `name`.
#[derive(Debug, PartialEq, Eq)]
pub struct Link {
    pub child: u64,
    pub dirid: u64,
    pub name: Vec<u8>,
}

/// Every subvolume linked anywhere in subvolume `parent` (one level, not
/// recursive), from the root tree. `fd` is any file on the filesystem.
/// Needs CAP_SYS_ADMIN.
pub fn links_from(fd: impl AsFd, parent: u64) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    let mut next_child = 0;
    loop {
        let key = SearchKey {
            tree_id: ROOT_TREE,
            min_objectid: parent,
            max_objectid: parent,
            min_type: ROOT_REF_KEY,
            max_type: ROOT_REF_KEY,
            min_offset: next_child,
            max_offset: u64::MAX,
            max_transid: u64::MAX,
            nr_items: u32::MAX,
            ..SearchKey::default()
        };
        let found = search(&fd, key, |buf, count| {
            let mut pos = 0;
            for _ in 0..count {
                let item = parse_item(buf, pos).ok_or(Errno::IO)?;
                pos = item.end;
                if item.objectid == parent && item.kind == ROOT_REF_KEY {
                    let r = parse_root_ref(item.data).ok_or(Errno::IO)?;
                    links.push(Link {
                        child: item.offset,
                        dirid: r.dirid,
                        name: r.name.to_vec(),
                    });
                }
                next_child = item.offset;
            }
            Ok(())
        })?;
        if found == 0 {
            return Ok(links);
        }
        match next_child.checked_add(1) {
            Some(n) => next_child = n,
            None => return Ok(links),
        }
    }
}

/// A subvolume nested in the one searched: its link, and where the
/// subvolumes linked in it are in the same list.
#[derive(Debug)]
pub struct Descendant {
    pub link: Link,
    pub children: Range<usize>,
}

/// Every subvolume nested in subvolume `top` at any depth, breadth first:
/// the range of `top`'s own children, and the list. One root-tree search
/// per subvolume, none of them loaded.
pub fn descendants(fd: impl AsFd, top: u64) -> Result<(Range<usize>, Vec<Descendant>)> {
    let mut found: Vec<Descendant> = Vec::new();
    let adopt = |found: &mut Vec<Descendant>, parent: u64| -> Result<Range<usize>> {
        let start = found.len();
        for link in links_from(&fd, parent)? {
            // A subvolume is linked in one place only, so the walk cannot
            // come back to `top`; refuse a root tree that says otherwise
            // rather than loop.
            if link.child == top {
                return Err(Errno::IO);
            }
            found.push(Descendant {
                link,
                children: 0..0,
            });
        }
        Ok(start..found.len())
    };
    let top_children = adopt(&mut found, top)?;
    let mut next = 0;
    while next < found.len() {
        let id = found[next].link.child;
        found[next].children = adopt(&mut found, id)?;
        next += 1;
    }
    Ok((top_children, found))
}

/// The directory `ino` of subvolume `tree` as names from the subvolume's
/// root down to it (empty for the root itself), read from its `INODE_REF`
/// items: no path is ever looked up, so it works at any length.
pub fn dir_components(fd: impl AsFd, tree: u64, ino: u64) -> Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let mut ino = ino;
    while ino != SUBVOLUME_INO {
        // Each step goes to a parent directory; a directory tree deeper
        // than this is a corrupt one.
        if names.len() > MAX_DIR_DEPTH {
            return Err(Errno::LOOP);
        }
        let key = SearchKey {
            tree_id: tree,
            min_objectid: ino,
            max_objectid: ino,
            min_type: INODE_REF_KEY,
            max_type: INODE_REF_KEY,
            max_offset: u64::MAX,
            max_transid: u64::MAX,
            nr_items: 1,
            ..SearchKey::default()
        };
        let mut step = None;
        search(&fd, key, |buf, count| {
            if count > 0 {
                let item = parse_item(buf, 0).ok_or(Errno::IO)?;
                if item.objectid == ino && item.kind == INODE_REF_KEY {
                    let name = parse_inode_ref(item.data).ok_or(Errno::IO)?;
                    step = Some((item.offset, name.to_vec()));
                }
            }
            Ok(())
        })?;
        let (parent, name) = step.ok_or(Errno::NOENT)?;
        names.push(name);
        ino = parent;
    }
    names.reverse();
    Ok(names)
}

/// Makes the kernel load subvolume `tree`'s root (if not yet loaded) by
/// reading its root directory's inode item: one small search.
pub fn load_root(fd: impl AsFd, tree: u64) -> Result<()> {
    let key = SearchKey {
        tree_id: tree,
        min_objectid: SUBVOLUME_INO,
        max_objectid: SUBVOLUME_INO,
        min_type: INODE_ITEM_KEY,
        max_type: INODE_ITEM_KEY,
        max_offset: u64::MAX,
        max_transid: u64::MAX,
        nr_items: 1,
        ..SearchKey::default()
    };
    search(fd, key, |_, _| Ok(())).map(|_| ())
}

/// Runs one TREE_SEARCH and hands the result buffer and item count to `read`.
/// Returns the item count.
fn search(
    fd: impl AsFd,
    key: SearchKey,
    read: impl FnOnce(&[u8], usize) -> Result<()>,
) -> Result<usize> {
    let mut args = Box::new(SearchArgs {
        key,
        buf: [0; SEARCH_BUF_SIZE],
    });
    // SAFETY: TREE_SEARCH reads and writes exactly one
    // `struct btrfs_ioctl_search_args`, which `SearchArgs` mirrors field for
    // field (`repr(C)`, 4096 bytes; checked by a test below).
    #[allow(unsafe_code)]
    unsafe {
        ioctl::ioctl(fd, Updater::<TREE_SEARCH, SearchArgs>::new(&mut args))?;
    }
    let count = args.key.nr_items as usize;
    read(&args.buf, count)?;
    Ok(count)
}

/// One item of a search result: its key and its data.
struct Item<'a> {
    objectid: u64,
    kind: u32,
    offset: u64,
    data: &'a [u8],
    end: usize,
}

/// The item at `pos`: a search header, then the item's data. `None` when the
/// buffer is shorter than the length it claims.
fn parse_item(buf: &[u8], pos: usize) -> Option<Item<'_>> {
    let header = buf.get(pos..pos.checked_add(HEADER_SIZE)?)?;
    let ne64 = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
    let objectid = ne64(&header[8..16]);
    let offset = ne64(&header[16..24]);
    let kind = u32::from_ne_bytes(header[24..28].try_into().expect("4 bytes"));
    let len = u32::from_ne_bytes(header[28..32].try_into().expect("4 bytes")) as usize;
    let start = pos + HEADER_SIZE;
    let data = buf.get(start..start.checked_add(len)?)?;
    Some(Item {
        objectid,
        kind,
        offset,
        data,
        end: start + len,
    })
}

struct RootRef<'a> {
    dirid: u64,
    name: &'a [u8],
}

/// A `btrfs_root_ref` and its name.
fn parse_root_ref(data: &[u8]) -> Option<RootRef<'_>> {
    let item = data.get(..ROOT_REF_SIZE)?;
    let dirid = u64::from_le_bytes(item[0..8].try_into().expect("8 bytes"));
    let name_len = u16::from_le_bytes(item[16..18].try_into().expect("2 bytes")) as usize;
    let name = data.get(ROOT_REF_SIZE..ROOT_REF_SIZE + name_len)?;
    Some(RootRef { dirid, name })
}

/// The name of the first `btrfs_inode_ref` of an `INODE_REF` item (a
/// directory has exactly one).
fn parse_inode_ref(data: &[u8]) -> Option<&[u8]> {
    let item = data.get(..INODE_REF_SIZE)?;
    let name_len = u16::from_le_bytes(item[8..10].try_into().expect("2 bytes")) as usize;
    let name = data.get(INODE_REF_SIZE..INODE_REF_SIZE + name_len)?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(child: u64, dirid: u64, name: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&7u64.to_ne_bytes()); // transid
        b.extend_from_slice(&300u64.to_ne_bytes()); // objectid: the parent
        b.extend_from_slice(&child.to_ne_bytes()); // offset: the child
        b.extend_from_slice(&ROOT_REF_KEY.to_ne_bytes());
        b.extend_from_slice(&((ROOT_REF_SIZE + name.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&dirid.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes()); // sequence
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(name);
        b
    }

    fn root_ref(b: &[u8]) -> (u64, u64, &[u8]) {
        let item = parse_item(b, 0).unwrap();
        let r = parse_root_ref(item.data).unwrap();
        (item.offset, r.dirid, r.name)
    }

    #[test]
    fn parses_consecutive_root_refs() {
        let mut buf = item(301, 256, b"2026-11-01T00:00:00Z");
        let second = buf.len();
        buf.extend(item(302, 257, b"x"));
        assert_eq!(root_ref(&buf), (301, 256, &b"2026-11-01T00:00:00Z"[..]));
        let a = parse_item(&buf, 0).unwrap();
        assert_eq!((a.objectid, a.kind, a.end), (300, ROOT_REF_KEY, second));
        assert_eq!(root_ref(&buf[second..]), (302, 257, &b"x"[..]));
        assert_eq!(parse_item(&buf, second).unwrap().end, buf.len());
    }

    #[test]
    fn rejects_an_item_longer_than_the_buffer() {
        let buf = item(301, 256, b"name");
        assert!(parse_item(&buf[..buf.len() - 1], 0).is_none());
        assert!(parse_item(&buf, buf.len()).is_none());
    }

    #[test]
    fn rejects_a_name_longer_than_its_item() {
        let mut buf = item(301, 256, b"name");
        // Claim a 5-byte name in an item that holds 4.
        let at = HEADER_SIZE + 16;
        buf[at..at + 2].copy_from_slice(&5u16.to_le_bytes());
        assert!(parse_root_ref(parse_item(&buf, 0).unwrap().data).is_none());
    }

    #[test]
    fn parses_an_inode_ref_name() {
        let mut data = 2u64.to_le_bytes().to_vec(); // index
        data.extend_from_slice(&3u16.to_le_bytes());
        data.extend_from_slice(b"lib");
        assert_eq!(parse_inode_ref(&data), Some(&b"lib"[..]));
        assert_eq!(parse_inode_ref(&data[..data.len() - 1]), None);
    }

    #[test]
    fn search_args_match_the_kernel_layout() {
        assert_eq!(size_of::<SearchKey>(), 104);
        assert_eq!(size_of::<SearchArgs>(), 4096);
    }
}
