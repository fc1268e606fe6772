//! `NodeData`: a znode's data in one machine word.
//!
//! Every znode holds one, so its size is paid a million times over. A `Bytes` is four
//! words, and the first clone of one made from a `Vec` (a getData, a snapshot) allocates
//! a separate shared header that then lives as long as the data: measured at 1M znodes
//! of 100 bytes, 365 bytes per znode with `Bytes` against 325 with this. Here the word
//! is one of:
//!
//! - `0`: empty data; `1`: jute's null buffer (ZooKeeper keeps the two apart);
//! - a pointer to one allocation holding a reference count and the bytes, the length
//!   in the word's spare top bits (in the allocation when 32 KiB or more);
//! - with the top bit set, a pointer into a mapped snapshot at the record's big-endian
//!   length prefix, the data right after it. Only a restore makes these, the tree that
//!   holds them keeps the mapping alive (`DataTree::mapping`), and a clone copies the
//!   bytes out, so no mapped pointer ever leaves the tree that keeps its mapping.
//!
//! A clone of heap data is a reference count increment: a reply or a prepared change
//! holds the data without copying it, whatever the tree does meanwhile.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::sync::atomic::{fence, AtomicU32, Ordering};

use bytes::Bytes;

use crate::proto::jute::{is_null_buffer, null_buffer, null_slice};

const EMPTY: usize = 0;
const NULL: usize = 1;
const MAPPED: usize = 1 << 63;
/// Bits 0-47: the address (user-space addresses on Linux stay below 2^47).
const ADDR: usize = (1 << 48) - 1;
/// Bits 48-62 of heap data: its length when below `LONG`, else `LONG` and the length is
/// in the allocation. 100 bytes of data take 104 then, not 108: with the allocator's size
/// classes, 112 bytes instead of 128.
const LEN_SHIFT: u32 = 48;
const LONG: usize = (1 << 15) - 1;

/// Heap data starts with its count, then (when `LONG`) its length; the bytes follow.
const COUNT: usize = std::mem::size_of::<AtomicU32>();

pub struct NodeData(usize);

// SAFETY: heap data is immutable once built and its count is atomic (as `Arc<[u8]>`);
// mapped data is immutable and lives as long as the tree that holds it.
unsafe impl Send for NodeData {}
unsafe impl Sync for NodeData {}

impl NodeData {
    pub const fn empty() -> NodeData {
        NodeData(EMPTY)
    }

    pub const fn null() -> NodeData {
        NodeData(NULL)
    }

    /// The data of `d`, copied: null stays null (see `proto::jute::null_buffer`).
    pub fn copy_from(d: &[u8]) -> NodeData {
        if is_null_buffer(d) {
            return NodeData::null();
        }
        if d.is_empty() {
            return NodeData::empty();
        }
        let len = u32::try_from(d.len()).expect("znode data longer than 4 GiB");
        let long = d.len() >= LONG;
        let layout = Self::layout(d.len());
        // SAFETY: the layout is non-zero and 4-aligned; the count, the length when
        // long, and `d.len()` bytes fit in it by construction.
        unsafe {
            let p = alloc(layout);
            if p.is_null() {
                handle_alloc_error(layout);
            }
            p.cast::<AtomicU32>().write(AtomicU32::new(1));
            if long {
                p.add(COUNT).cast::<u32>().write(len);
            }
            std::ptr::copy_nonoverlapping(d.as_ptr(), p.add(Self::offset(d.len())), d.len());
            let addr = p as usize;
            assert!(addr & !ADDR == 0, "heap address {addr:#x} above 2^48");
            NodeData(addr | d.len().min(LONG) << LEN_SHIFT)
        }
    }

    /// Data that stays in a mapped snapshot: `d` must be preceded in `mapping` by its
    /// big-endian length. Anything else (or an address with the top bit set) is copied.
    ///
    /// # Safety
    /// The memory of `mapping` must outlive the returned value and every `NodeData`
    /// moved out of it (not its clones, which copy): the tree keeps the mapping.
    pub(super) unsafe fn in_mapping(mapping: &[u8], d: &[u8]) -> NodeData {
        if d.is_empty() || is_null_buffer(d) {
            return NodeData::copy_from(d);
        }
        let (m0, m1) = (
            mapping.as_ptr() as usize,
            mapping.as_ptr() as usize + mapping.len(),
        );
        let (d0, d1) = (d.as_ptr() as usize, d.as_ptr() as usize + d.len());
        let prefix = d0.wrapping_sub(4);
        if d0 < m0 + 4 || d1 > m1 || prefix & MAPPED != 0 {
            return NodeData::copy_from(d);
        }
        let off = prefix - m0;
        let len = i32::from_be_bytes(mapping[off..off + 4].try_into().unwrap());
        if usize::try_from(len).ok() != Some(d.len()) {
            return NodeData::copy_from(d);
        }
        NodeData(prefix | MAPPED)
    }

    /// Where the bytes of heap data of `len` bytes start in its allocation.
    fn offset(len: usize) -> usize {
        if len >= LONG {
            COUNT + 4
        } else {
            COUNT
        }
    }

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(Self::offset(len) + len, 4).expect("znode data layout")
    }

    /// The count of heap data (`None` for empty, null and mapped data).
    fn heap(&self) -> Option<&AtomicU32> {
        if self.0 > NULL && self.0 & MAPPED == 0 {
            // SAFETY: a heap word points at a live allocation while this value holds a
            // count on it.
            Some(unsafe { &*((self.0 & ADDR) as *const AtomicU32) })
        } else {
            None
        }
    }

    /// The length of heap data.
    fn heap_len(&self) -> usize {
        match (self.0 >> LEN_SHIFT) & LONG {
            // SAFETY: long heap data keeps its length after the count.
            LONG => unsafe {
                ((self.0 & ADDR) as *const u8)
                    .add(COUNT)
                    .cast::<u32>()
                    .read() as usize
            },
            n => n,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self.0 {
            EMPTY => &[],
            NULL => null_slice(),
            w if w & MAPPED != 0 => {
                let p = (w & !MAPPED) as *const u8;
                // SAFETY: `in_mapping` checked that a big-endian length prefix sits at
                // `p` with that many bytes after it, and the mapping outlives `self`.
                unsafe {
                    let len = i32::from_be_bytes(*(p as *const [u8; 4])) as usize;
                    std::slice::from_raw_parts(p.add(4), len)
                }
            }
            w => {
                let len = self.heap_len();
                // SAFETY: the allocation holds `len` bytes from `offset(len)`.
                unsafe {
                    std::slice::from_raw_parts(
                        ((w & ADDR) as *const u8).add(Self::offset(len)),
                        len,
                    )
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Whether the data still lies in a mapped snapshot.
    pub fn is_mapped(&self) -> bool {
        self.0 & MAPPED != 0
    }

    /// As `Bytes`, sharing the allocation (one small allocation for `Bytes`' own count).
    pub fn to_bytes(&self) -> Bytes {
        match self.0 {
            EMPTY => Bytes::new(),
            NULL => null_buffer(),
            _ => Bytes::from_owner(self.clone()),
        }
    }
}

impl Clone for NodeData {
    fn clone(&self) -> NodeData {
        if self.is_mapped() {
            return NodeData::copy_from(self.as_slice());
        }
        if let Some(refs) = self.heap() {
            // As `Arc`: a count near overflow means leaked clones; stop before it wraps.
            let old = refs.fetch_add(1, Ordering::Relaxed);
            assert!(old < i32::MAX as u32, "znode data reference count overflow");
        }
        NodeData(self.0)
    }
}

impl Drop for NodeData {
    fn drop(&mut self) {
        let Some(refs) = self.heap() else {
            return;
        };
        if refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let layout = Self::layout(self.heap_len());
        // SAFETY: this was the last count on an allocation made with this layout.
        unsafe { dealloc((self.0 & ADDR) as *mut u8, layout) };
    }
}

impl AsRef<[u8]> for NodeData {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::Deref for NodeData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Default for NodeData {
    fn default() -> NodeData {
        NodeData::empty()
    }
}

impl PartialEq for NodeData {
    fn eq(&self, other: &NodeData) -> bool {
        self.is_null() == other.is_null() && self.as_slice() == other.as_slice()
    }
}

impl Eq for NodeData {}

impl PartialEq<Bytes> for NodeData {
    fn eq(&self, other: &Bytes) -> bool {
        self.is_null() == is_null_buffer(other) && self.as_slice() == &other[..]
    }
}

impl NodeData {
    pub fn is_null(&self) -> bool {
        self.0 == NULL
    }
}

impl std::fmt::Debug for NodeData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_null() {
            return f.write_str("null");
        }
        std::fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_slice()), f)
    }
}

impl From<&[u8]> for NodeData {
    fn from(d: &[u8]) -> NodeData {
        NodeData::copy_from(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_word() {
        assert_eq!(std::mem::size_of::<NodeData>(), 8);
    }

    #[test]
    fn null_empty_and_heap_data_round_trip() {
        assert!(NodeData::copy_from(&null_buffer()).is_null());
        assert!(is_null_buffer(NodeData::null().as_slice()));
        let e = NodeData::copy_from(b"");
        assert!(e.is_empty() && !e.is_null());
        assert!(!is_null_buffer(e.as_slice()));
        let d = NodeData::copy_from(b"hello");
        assert_eq!(d.as_slice(), b"hello");
        let c = d.clone();
        drop(d);
        assert_eq!(c.as_slice(), b"hello");
        assert_eq!(&c.to_bytes()[..], b"hello");
        assert!(is_null_buffer(&NodeData::null().to_bytes()));
        assert_ne!(NodeData::null(), NodeData::empty());
    }

    #[test]
    fn short_and_long_data_keep_their_length() {
        for len in [1, 100, LONG - 1, LONG, LONG + 1, 1 << 20] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let d = NodeData::copy_from(&v);
            assert_eq!(d.len(), len);
            let c = d.clone();
            drop(d);
            assert_eq!(c.as_slice(), &v[..]);
        }
    }

    #[test]
    fn bytes_share_the_allocation_and_outlive_the_node() {
        let d = NodeData::copy_from(&[7u8; 300]);
        let b = d.to_bytes();
        assert_eq!(b.as_ptr(), d.as_slice().as_ptr());
        drop(d);
        assert_eq!(&b[..], &[7u8; 300][..]);
    }

    #[test]
    fn mapped_data_reads_in_place_and_clones_copy_out() {
        let mut m = vec![0u8; 3];
        m.extend_from_slice(&5i32.to_be_bytes());
        m.extend_from_slice(b"abcde");
        m.extend_from_slice(&[9; 4]);
        let d = &m[7..12];
        // SAFETY: `m` outlives `n` (dropped below before `m`).
        let n = unsafe { NodeData::in_mapping(&m, d) };
        assert!(n.is_mapped());
        assert_eq!(n.as_slice().as_ptr(), d.as_ptr());
        assert_eq!(n.as_slice(), b"abcde");
        let c = n.clone();
        assert!(!c.is_mapped());
        assert_eq!(c.as_slice(), b"abcde");
        drop(n);
        // Without a matching length prefix, or outside the mapping, it copies.
        // SAFETY: as above.
        let wrong = unsafe { NodeData::in_mapping(&m, &m[8..12]) };
        assert!(!wrong.is_mapped());
        assert_eq!(wrong.as_slice(), b"bcde");
        // SAFETY: as above.
        let outside = unsafe { NodeData::in_mapping(&m[7..], &m[7..12]) };
        assert!(!outside.is_mapped());
    }
}
