//! `BTRFS_IOC_TREE_SEARCH` on the root tree: which subvolumes are linked in
//! a directory, without loading any of them.
//!
//! Looking up a subvolume's directory entry makes the kernel load that
//! subvolume's root (one metadata read each, waited for one by one). The
//! root tree already records every link as a `ROOT_REF` item keyed by the
//! parent subvolume: one search returns them all. `btrfs subvolume list`
//! reads the same items.

use std::mem::size_of;

use rustix::fd::AsFd;
use rustix::io::Result;
use rustix::ioctl::{self, opcode, Opcode, Updater};

use super::SUBVOLUME_INO;

/// `BTRFS_ROOT_TREE_OBJECTID`: the tree of all subvolume roots.
const ROOT_TREE: u64 = 1;
/// `BTRFS_ROOT_REF_KEY`: key (parent ID, ROOT_REF, child ID).
const ROOT_REF_KEY: u32 = 156;
/// `BTRFS_INODE_ITEM_KEY`.
const INODE_ITEM_KEY: u32 = 1;

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
                let item = parse_item(buf, pos).ok_or(rustix::io::Errno::IO)?;
                pos = item.end;
                if item.parent == parent && item.kind == ROOT_REF_KEY {
                    links.push(Link {
                        child: item.child,
                        dirid: item.dirid,
                        name: item.name.to_vec(),
                    });
                }
                next_child = item.child;
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

struct RootRef<'a> {
    parent: u64,
    kind: u32,
    child: u64,
    dirid: u64,
    name: &'a [u8],
    end: usize,
}

/// One search result at `pos`: header, then a `btrfs_root_ref` and its name.
/// `None` when the buffer is shorter than the lengths it claims.
fn parse_item(buf: &[u8], pos: usize) -> Option<RootRef<'_>> {
    let header = buf.get(pos..pos + HEADER_SIZE)?;
    let ne64 = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
    let parent = ne64(&header[8..16]);
    let child = ne64(&header[16..24]);
    let kind = u32::from_ne_bytes(header[24..28].try_into().expect("4 bytes"));
    let len = u32::from_ne_bytes(header[28..32].try_into().expect("4 bytes")) as usize;
    let start = pos + HEADER_SIZE;
    let data = buf.get(start..start + len)?;
    let item = data.get(..ROOT_REF_SIZE)?;
    let dirid = u64::from_le_bytes(item[0..8].try_into().expect("8 bytes"));
    let name_len = u16::from_le_bytes(item[16..18].try_into().expect("2 bytes")) as usize;
    let name = data.get(ROOT_REF_SIZE..ROOT_REF_SIZE + name_len)?;
    Some(RootRef {
        parent,
        kind,
        child,
        dirid,
        name,
        end: start + len,
    })
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

    #[test]
    fn parses_consecutive_root_refs() {
        let mut buf = item(301, 256, b"2026-11-01T00:00:00Z");
        let second = buf.len();
        buf.extend(item(302, 257, b"x"));
        let a = parse_item(&buf, 0).unwrap();
        assert_eq!(
            (a.child, a.dirid, a.name),
            (301, 256, &b"2026-11-01T00:00:00Z"[..])
        );
        assert_eq!(a.end, second);
        let b = parse_item(&buf, a.end).unwrap();
        assert_eq!(
            (b.child, b.dirid, b.name, b.end),
            (302, 257, &b"x"[..], buf.len())
        );
    }

    #[test]
    fn rejects_an_item_longer_than_the_buffer() {
        let buf = item(301, 256, b"name");
        assert!(parse_item(&buf[..buf.len() - 1], 0).is_none());
        assert!(parse_item(&buf, buf.len()).is_none());
    }

    #[test]
    fn search_args_match_the_kernel_layout() {
        assert_eq!(size_of::<SearchKey>(), 104);
        assert_eq!(size_of::<SearchArgs>(), 4096);
    }
}
