//! The global allocator: mimalloc, asked for plain blocks whenever plain blocks are aligned
//! enough.
//!
//! The `mimalloc` crate's allocator hands every request to `mi_malloc_aligned`, whose fast
//! path takes only blocks of at most 1 KiB that happen to sit at the right alignment. The rest
//! (a boxed handler future of a few KiB, a 1.5 KiB body, any block whose size class is not a
//! power of two) went through its generic aligned path and often an over-allocation: ~150
//! instructions each, 2.5 times per cached manifest (callgrind, benches/README.md). A plain
//! `mi_malloc` block is aligned to 16 bytes, or to its size class below that (mimalloc's own
//! invariant), so a request whose alignment is at most 16 and at most its size gets one, as
//! the standard library's `System` allocator decides for the C allocator; the others still
//! go the aligned way. Written here because no published allocator crate makes that choice
//! over mimalloc (the dispatch is a dozen lines; the allocator is mimalloc's).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Alignment every `mi_malloc` block of at least this size has.
const PLAIN_ALIGN: usize = 16;

/// mimalloc, with plain calls where their blocks are aligned enough.
pub struct Mimalloc;

fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

/// A block for `l` from `plain_call` when a plain block is aligned enough, else from
/// `aligned_call`.
#[inline]
fn block(l: Layout, plain_call: unsafe extern "C" fn(usize) -> *mut c_void, aligned_call: unsafe extern "C" fn(usize, usize) -> *mut c_void) -> *mut u8 {
    // SAFETY: mimalloc's allocation calls take any size and (the aligned ones) a power-of-two
    // alignment, which a `Layout` always has.
    unsafe {
        if plain(l.align(), l.size()) {
            plain_call(l.size()) as *mut u8
        } else {
            aligned_call(l.size(), l.align()) as *mut u8
        }
    }
}

// SAFETY: every call returns a block of at least `size` bytes aligned to `align` (plain
// blocks per the invariant above, the others by mimalloc's aligned calls) or null, and frees
// only what mimalloc allocated.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        block(l, mi::mi_malloc, mi::mi_malloc_aligned)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        block(l, mi::mi_zalloc, mi::mi_zalloc_aligned)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _l: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract), so from mimalloc.
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from mimalloc; the new block keeps `l.align()` (plain only when
        // the plain invariant gives it for `new_size`).
        unsafe {
            if plain(l.align(), new_size) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, l.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to a few pages, every alignment up to 4 KiB, through all four calls: the
    /// block is aligned as asked and keeps its bytes across a reallocation.
    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes() {
        let a = Mimalloc;
        for size in (1..=4200usize).step_by(37).chain([1, 8, 15, 16, 17, 1024, 1025, 1 << 20]) {
            for align in [1usize, 2, 4, 8, 16, 32, 64, 128, 4096] {
                let l = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(l);
                    assert!(!p.is_null() && p as usize % align == 0, "{size} {align}");
                    std::ptr::write_bytes(p, 0xA5, size);
                    let grown = size * 3 + 5;
                    let q = a.realloc(p, l, grown);
                    assert!(!q.is_null() && q as usize % align == 0, "realloc {size} {align}");
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xA5));
                    let shrunk = size / 2 + 1;
                    let r = a.realloc(q, Layout::from_size_align(grown, align).unwrap(), shrunk);
                    assert!(!r.is_null() && r as usize % align == 0, "shrink {size} {align}");
                    assert!(std::slice::from_raw_parts(r, shrunk).iter().all(|&b| b == 0xA5));
                    a.dealloc(r, Layout::from_size_align(shrunk, align).unwrap());
                    let z = a.alloc_zeroed(l);
                    assert!(!z.is_null() && z as usize % align == 0, "zeroed {size} {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, l);
                }
            }
        }
    }
}
