//! `ChildName`: one entry of a znode's child set, in 16 bytes with no allocation for
//! names of up to 15 bytes.
//!
//! Every znode is named once in its parent's set, so a `Box<str>` there costs its 16
//! bytes plus an allocation (8 to 32 bytes with the allocator's rounding) a million
//! times over. Most names are short: sequential ones (`lock-0000000001`, 15 bytes),
//! ids, short words. Those are kept inline; longer ones fall back to a `Box<str>`.
//!
//! Layout (little-endian only): a boxed name is its (pointer, length) pair, and a length
//! below 2^56 leaves the last byte 0; an inline name keeps its bytes first and `0x80 |
//! length` in the last byte.

use std::borrow::Borrow;
use std::cmp::Ordering;

#[cfg(not(target_endian = "little"))]
compile_error!("ChildName's layout assumes a little-endian target");

const INLINE: usize = 15;
const TAG: u8 = 0x80;

#[derive(Clone, Copy)]
#[repr(C)]
struct Boxed {
    ptr: *mut u8,
    len: usize,
}

#[repr(C)]
union Repr {
    boxed: Boxed,
    inline: [u8; 16],
}

pub struct ChildName(Repr);

// SAFETY: a ChildName owns its bytes (inline or in its own box), as a `Box<str>` does.
unsafe impl Send for ChildName {}
unsafe impl Sync for ChildName {}

impl ChildName {
    pub fn new(s: &str) -> ChildName {
        if s.len() <= INLINE {
            let mut inline = [0u8; 16];
            inline[..s.len()].copy_from_slice(s.as_bytes());
            inline[15] = TAG | s.len() as u8;
            return ChildName(Repr { inline });
        }
        let len = s.len();
        assert!(len < 1 << 56, "child name too long");
        let ptr = Box::into_raw(Box::<str>::from(s)) as *mut u8;
        ChildName(Repr {
            boxed: Boxed { ptr, len },
        })
    }

    fn tag(&self) -> u8 {
        // SAFETY: every bit pattern is a valid [u8; 16].
        unsafe { self.0.inline[15] }
    }

    fn is_inline(&self) -> bool {
        self.tag() & TAG != 0
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: inline bytes up to the tagged length, or the box's (pointer, length),
        // were copied from a `str` in `new` and never changed.
        unsafe {
            let bytes = if self.is_inline() {
                let len = (self.tag() & !TAG) as usize;
                &self.0.inline[..len]
            } else {
                let b = self.0.boxed;
                std::slice::from_raw_parts(b.ptr, b.len)
            };
            std::str::from_utf8_unchecked(bytes)
        }
    }
}

impl Drop for ChildName {
    fn drop(&mut self) {
        if !self.is_inline() {
            // SAFETY: a boxed name holds the parts of a `Box<str>` made in `new`.
            unsafe {
                let b = self.0.boxed;
                let slice = std::ptr::slice_from_raw_parts_mut(b.ptr, b.len);
                drop(Box::from_raw(slice as *mut str));
            }
        }
    }
}

impl Clone for ChildName {
    fn clone(&self) -> ChildName {
        ChildName::new(self.as_str())
    }
}

impl From<&str> for ChildName {
    fn from(s: &str) -> ChildName {
        ChildName::new(s)
    }
}

impl std::ops::Deref for ChildName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ChildName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ChildName {
    fn eq(&self, other: &ChildName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ChildName {}

impl PartialOrd for ChildName {
    fn partial_cmp(&self, other: &ChildName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ChildName {
    // As `str` orders, so that a set of names can be searched by `&str`.
    fn cmp(&self, other: &ChildName) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::fmt::Debug for ChildName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn sixteen_bytes() {
        assert_eq!(std::mem::size_of::<ChildName>(), 16);
    }

    #[test]
    fn short_and_long_names_round_trip() {
        for s in [
            "",
            "a",
            "lock-0000000001",
            "lock-00000000012",
            "member_0000000001",
            "é-ü-ñ",
            &"x".repeat(300),
        ] {
            let n = ChildName::new(s);
            assert_eq!(n.as_str(), s);
            assert_eq!(n.is_inline(), s.len() <= 15, "{s}");
            let c = n.clone();
            drop(n);
            assert_eq!(c.as_str(), s);
        }
    }

    #[test]
    fn a_set_orders_and_finds_names_as_str_does() {
        let long = "z".repeat(20);
        let names = ["b", "a", "lock-0000000002", &long, "lock-0000000001"];
        let set: BTreeSet<ChildName> = names.iter().map(|s| ChildName::new(s)).collect();
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort();
        assert_eq!(set.iter().map(|n| n.as_str()).collect::<Vec<_>>(), sorted);
        assert!(set.contains("lock-0000000002"));
        assert!(set.contains(long.as_str()));
        assert!(!set.contains("c"));
    }
}
