//! `ThinPath`: a node table key in one pointer, its length stored in front of the bytes.
//!
//! The table holds one key per znode; a `Box<str>` there is two words. Paths are
//! immutable once in the table and read only through the pointer (to hash or compare),
//! so the length can live in the allocation: 8 bytes per znode less in the table, for
//! 4 more bytes in an allocation that the allocator's rounding usually absorbs.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

const HEADER: usize = std::mem::size_of::<u32>();

pub struct ThinPath(NonNull<u8>);

// SAFETY: a ThinPath owns its immutable allocation, as a `Box<str>` does.
unsafe impl Send for ThinPath {}
unsafe impl Sync for ThinPath {}

impl ThinPath {
    pub fn new(s: &str) -> ThinPath {
        let len = u32::try_from(s.len()).expect("path longer than 4 GiB");
        let layout = Self::layout(s.len());
        // SAFETY: the layout is non-zero and 4-aligned; the length and the bytes fit.
        unsafe {
            let p = alloc(layout);
            let Some(p) = NonNull::new(p) else {
                handle_alloc_error(layout);
            };
            p.as_ptr().cast::<u32>().write(len);
            std::ptr::copy_nonoverlapping(s.as_ptr(), p.as_ptr().add(HEADER), s.len());
            ThinPath(p)
        }
    }

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(HEADER + len, 4).expect("path layout")
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: `new` wrote the length and that many bytes of a `str`, never changed.
        unsafe {
            let p = self.0.as_ptr();
            let len = p.cast::<u32>().read() as usize;
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(p.add(HEADER), len))
        }
    }
}

impl Drop for ThinPath {
    fn drop(&mut self) {
        let layout = Self::layout(self.as_str().len());
        // SAFETY: allocated in `new` with this layout, owned by `self` alone.
        unsafe { dealloc(self.0.as_ptr(), layout) }
    }
}

impl Clone for ThinPath {
    fn clone(&self) -> ThinPath {
        ThinPath::new(self.as_str())
    }
}

impl From<&str> for ThinPath {
    fn from(s: &str) -> ThinPath {
        ThinPath::new(s)
    }
}

impl std::ops::Deref for ThinPath {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for ThinPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_holding_any_path() {
        assert_eq!(std::mem::size_of::<ThinPath>(), 8);
        assert_eq!(std::mem::size_of::<Option<ThinPath>>(), 8);
        for s in ["", "/", "/a/b", "/é/ü", &"/x".repeat(5000)] {
            let p = ThinPath::new(s);
            let c = p.clone();
            drop(p);
            assert_eq!(c.as_str(), s);
        }
    }
}
