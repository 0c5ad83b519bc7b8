//! A global allocator for benchmarks: the binary's own (mimalloc), counting
//! live bytes and allocations, so figures of memory come from the allocator
//! rather than estimates.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

pub struct Counting;

/// Bytes allocated and not yet freed.
pub static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Allocations made.
pub static ALLOCS: AtomicIsize = AtomicIsize::new(0);
/// Whether allocations are counted. A bench that times runs turns it off
/// around them: the counters' locked additions would weigh on the side
/// that allocates more.
pub static COUNTING: AtomicBool = AtomicBool::new(true);

/// Allocations one call of `f` makes, counted whether or not counting was
/// on; it is left as it was.
#[allow(dead_code, reason = "the load bench reads only live bytes")]
pub fn allocations(f: impl FnOnce()) -> isize {
    let was = COUNTING.swap(true, Ordering::Relaxed);
    let before = ALLOCS.load(Ordering::Relaxed);
    f();
    let made = ALLOCS.load(Ordering::Relaxed) - before;
    COUNTING.store(was, Ordering::Relaxed);
    made
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        }
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        unsafe { mimalloc::MiMalloc.realloc(p, l, new) }
    }
}
