//! One tree per server, shared by every shard: the owner (shard 0, which runs the
//! commit pipeline) is the only one that changes it; every shard reads it in place, on
//! its own core, without a hop. Memory and apply work stay the same from 1 to 64 cores
//! (issue 9, item 3; `docs/one-tree.md` has the measurements that led here).
//!
//! The lock is a "big reader" lock: one flag per shard, each on its own cache line, and
//! one writer flag. A reader stores its flag, fences and checks the writer flag; the
//! writer stores its flag, fences and waits for every reader flag to clear (the two
//! fences make the pair a Dekker handshake: at least one side sees the other). A read
//! thus costs a store and a fence on a line no other core writes, not a shared counter.
//! Readers hold their flag for one request (or one snapshot step), never across an
//! `.await`; the owner holds the writer flag while it applies one batch.
//!
//! With one tree, a shard can find the tree ahead of what it has told its clients: the
//! owner applied a batch whose watch events and replies this shard has not delivered
//! yet. The owner therefore queues each batch's outcome for every other shard before it
//! drops the writer flag, and a shard that enters a read drains its queue first
//! (`Shard::sync`), so a client still sees a watch event before the data that caused
//! it.
//!
//! A waiter spins briefly first: the other side is usually running on another core
//! and done within microseconds. Past that, a reader waiting for the writer sleeps on
//! the writer flag (a futex), which the writer wakes when it drops the flag only if
//! someone sleeps there. Yielding instead cost a context switch per try when cores are
//! shared (three servers on two cores, or a client beside them): the writer, preempted
//! while applying a batch, was not what the scheduler ran next, and an ensemble
//! follower's second shard yielded 1.3 times per write. The writer, waiting for a
//! reader that holds its flag for one request, keeps to spin-then-yield: a futex there
//! would put a full fence on every read's release.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::messages::Applied;
use crate::tree::DataTree;

/// A value alone on its cache line (two lines: adjacent-line prefetch).
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// Outcomes waiting for one shard, oldest first.
type OutcomeQueue = Mutex<VecDeque<Arc<Applied>>>;

/// The tree and its lock. Shared by every shard through `Arc`; handed out only as
/// [`TreeView`]s.
pub struct SharedTree {
    tree: UnsafeCell<DataTree>,
    /// 1 while the owner holds the writer flag (a futex word readers sleep on).
    writer: Padded<AtomicU32>,
    /// Readers asleep on `writer` (the owner wakes them only if there are any).
    sleepers: Padded<AtomicU32>,
    readers: Box<[Padded<AtomicBool>]>,
    /// Outcomes queued for each shard (index 0, the owner's, stays empty).
    outcomes: Box<[Padded<OutcomeQueue>]>,
    /// Outcomes queued so far, for every shard alike: changed only under the writer
    /// flag, so a reader compares it with what it delivered without taking the mutex.
    queued: Padded<AtomicU64>,
    /// Bumped (under the writer flag) each time the tree is replaced by another (an
    /// ensemble's SNAP, a restore): a snapshot walk of the old tree must not go on in
    /// the new one.
    generation: AtomicU64,
}

// SAFETY: the tree is reached only through `TreeView`, which gives `&DataTree` to a
// shard while it holds its reader flag (or is the owner, the only writer) and
// `&mut DataTree` to the owner while it holds the writer flag with every reader flag
// clear. `DataTree` is `Send + Sync` (checked below).
unsafe impl Sync for SharedTree {}
unsafe impl Send for SharedTree {}

const _: fn() = || {
    fn check<T: Send + Sync>() {}
    check::<DataTree>();
    check::<Applied>();
};

impl SharedTree {
    /// The tree for `shards` shards; shard 0 owns it.
    pub fn new(tree: DataTree, shards: usize) -> Arc<SharedTree> {
        let shards = shards.max(1);
        Arc::new(SharedTree {
            tree: UnsafeCell::new(tree),
            writer: Padded::default(),
            sleepers: Padded::default(),
            readers: (0..shards).map(|_| Padded::default()).collect(),
            outcomes: (0..shards).map(|_| Padded::default()).collect(),
            queued: Padded::default(),
            generation: AtomicU64::new(0),
        })
    }

    pub fn shards(&self) -> usize {
        self.readers.len()
    }

    /// Shard `shard`'s handle.
    pub fn view(self: &Arc<Self>, shard: usize) -> TreeView {
        assert!(shard < self.shards(), "shard {shard} of {}", self.shards());
        TreeView(Rc::new(Slot {
            shared: self.clone(),
            shard,
            depth: Cell::new(0),
            writing: Cell::new(false),
        }))
    }

    fn acquire_read(&self, shard: usize) {
        let flag = &self.readers[shard].0;
        let mut waited: Option<std::time::Instant> = None;
        loop {
            flag.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if self.writer.0.load(Ordering::Acquire) == 0 {
                if let Some(t) = waited {
                    LONGEST_READ_WAIT_US
                        .fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                return;
            }
            // Back off so the writer can go on, and come back once it is done.
            flag.store(false, Ordering::Release);
            waited.get_or_insert_with(std::time::Instant::now);
            self.wait_for_writer();
        }
    }

    /// Until the writer flag is clear: spins, then sleeps on it.
    fn wait_for_writer(&self) {
        let writer = &self.writer.0;
        for _ in 0..SPINS {
            if writer.load(Ordering::Acquire) == 0 {
                return;
            }
            std::hint::spin_loop();
        }
        while writer.load(Ordering::Acquire) == 1 {
            // Counted before the check (both SeqCst, as `release_write`'s store and
            // load): either the writer sees a sleeper and wakes it, or this sees the
            // flag clear; the futex itself rechecks the value before sleeping.
            self.sleepers.0.fetch_add(1, Ordering::SeqCst);
            if writer.load(Ordering::SeqCst) == 1 {
                atomic_wait::wait(writer, 1);
            }
            self.sleepers.0.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn release_read(&self, shard: usize) {
        self.readers[shard].0.store(false, Ordering::Release);
    }

    fn acquire_write(&self) {
        self.writer.0.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        for (i, r) in self.readers.iter().enumerate() {
            // The clock is read only when a reader is in: the common case costs a load.
            if i != 0 && r.0.load(Ordering::Acquire) {
                let t = std::time::Instant::now();
                wait_while(|| r.0.load(Ordering::Acquire));
                LONGEST_WRITE_WAIT_US.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        }
    }

    fn release_write(&self) {
        self.writer.0.store(0, Ordering::SeqCst);
        if self.sleepers.0.load(Ordering::SeqCst) != 0 {
            atomic_wait::wake_all(&self.writer.0);
        }
    }
}

/// The longest a reader waited for the writer since the last `take_longest_read_wait`
/// (us): logged with each snapshot, whose steps are reads too.
static LONGEST_READ_WAIT_US: AtomicU64 = AtomicU64::new(0);

/// The longest wait of a reader for the writer since the last call (us).
pub fn take_longest_read_wait_us() -> u64 {
    LONGEST_READ_WAIT_US.swap(0, Ordering::Relaxed)
}

/// The longest the owner waited for readers to leave before it could apply a batch
/// (us), since the last `take_longest_write_wait`: how long reads (a snapshot walk
/// step among them) held commits. Logged with each snapshot.
static LONGEST_WRITE_WAIT_US: AtomicU64 = AtomicU64::new(0);

/// The longest wait of the owner for readers since the last call (us).
pub fn take_longest_write_wait_us() -> u64 {
    LONGEST_WRITE_WAIT_US.swap(0, Ordering::Relaxed)
}

/// Tries of a waiter before it yields or sleeps.
const SPINS: u32 = 256;

/// Spins a little, then yields the core, until `busy` is false.
fn wait_while(busy: impl Fn() -> bool) {
    let mut spins = 0u32;
    while busy() {
        if spins < SPINS {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

struct Slot {
    shared: Arc<SharedTree>,
    shard: usize,
    /// Read scopes open on this shard (nested scopes share one flag).
    depth: Cell<u32>,
    /// The owner holds the writer flag.
    writing: Cell<bool>,
}

/// One shard's handle on the shared tree (one per shard: `get_mut`'s `&mut self` is
/// what keeps the owner's own reads out of its writes).
pub struct TreeView(Rc<Slot>);

impl TreeView {
    /// A tree of its own, for a single shard (tests, tools).
    pub fn alone(tree: DataTree) -> TreeView {
        SharedTree::new(tree, 1).view(0)
    }

    pub fn shard(&self) -> usize {
        self.0.shard
    }

    /// Whether this shard owns the tree (writes it, reads it without a flag).
    pub fn is_owner(&self) -> bool {
        self.0.shard == 0
    }

    /// The tree, to read. Only inside a read scope, or on the owner.
    pub fn get(&self) -> &DataTree {
        assert!(
            self.is_owner() || self.0.depth.get() > 0,
            "shard {} read the shared tree outside a read scope",
            self.0.shard
        );
        // SAFETY: the owner is the only writer and runs on this thread; any other
        // shard holds its reader flag, so the writer is waiting or done.
        unsafe { &*self.0.shared.tree.get() }
    }

    /// The tree, to change. Only the owner, inside a write scope.
    pub fn get_mut(&mut self) -> &mut DataTree {
        assert!(
            self.is_owner() && self.0.writing.get(),
            "shard {} changed the shared tree outside the owner's write scope",
            self.0.shard
        );
        // SAFETY: the owner holds the writer flag and every reader flag is clear:
        // no other thread reads the tree until the scope ends. `&mut self` keeps
        // this shard's own readers out.
        unsafe { &mut *self.0.shared.tree.get() }
    }

    /// Opens a read scope: the tree does not change until it is dropped. Free on the
    /// owner and when one is already open. Never held across an `.await`.
    pub fn read(&self) -> ReadScope {
        let slot = &self.0;
        if !self.is_owner() {
            if slot.depth.get() == 0 {
                slot.shared.acquire_read(slot.shard);
            }
            slot.depth.set(slot.depth.get() + 1);
        }
        ReadScope(self.0.clone())
    }

    /// Opens the owner's write scope: every other shard's reads are over and none
    /// starts until it is dropped. Never held across an `.await`.
    pub fn write(&self) -> WriteScope {
        assert!(self.is_owner(), "only shard 0 writes the shared tree");
        assert!(!self.0.writing.get(), "write scopes do not nest");
        self.0.shared.acquire_write();
        self.0.writing.set(true);
        WriteScope(self.0.clone())
    }

    /// Queues a batch's outcome for every other shard and counts it. Only in the
    /// owner's write scope, so a reader that sees the tree after the batch finds the
    /// outcome queued.
    pub fn queue_outcome(&self, applied: &Arc<Applied>) -> u64 {
        assert!(self.is_owner() && self.0.writing.get());
        let shared = &self.0.shared;
        for q in shared.outcomes.iter().skip(1) {
            q.0.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(applied.clone());
        }
        let n = shared.queued.0.load(Ordering::Relaxed) + 1;
        shared.queued.0.store(n, Ordering::Release);
        n
    }

    /// Counts a replacement of the tree (see `SharedTree::generation`). Only in the
    /// owner's write scope.
    pub fn replaced(&self) {
        assert!(self.is_owner() && self.0.writing.get());
        self.0.shared.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times the tree was replaced; stable within a read scope.
    pub fn generation(&self) -> u64 {
        self.0.shared.generation.load(Ordering::Relaxed)
    }

    /// Outcomes queued so far (see `SharedTree::queued`).
    pub fn queued(&self) -> u64 {
        self.0.shared.queued.0.load(Ordering::Acquire)
    }

    /// Takes this shard's queued outcomes, oldest first.
    pub fn take_outcomes(&self) -> VecDeque<Arc<Applied>> {
        std::mem::take(
            &mut *self.0.shared.outcomes[self.0.shard]
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

/// An open read scope (see [`TreeView::read`]).
pub struct ReadScope(Rc<Slot>);

impl Drop for ReadScope {
    fn drop(&mut self) {
        let slot = &self.0;
        if slot.shard == 0 {
            return;
        }
        let d = slot.depth.get() - 1;
        slot.depth.set(d);
        if d == 0 {
            slot.shared.release_read(slot.shard);
        }
    }
}

/// The owner's open write scope (see [`TreeView::write`]).
pub struct WriteScope(Rc<Slot>);

impl Drop for WriteScope {
    fn drop(&mut self) {
        self.0.writing.set(false);
        self.0.shared.release_write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_outside_a_scope_is_refused() {
        let shared = SharedTree::new(DataTree::new(), 2);
        let owner = shared.view(0);
        let reader = shared.view(1);
        assert_eq!(owner.get().last_processed_zxid(), 0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reader.get().last_processed_zxid()
        }));
        assert!(r.is_err());
        let _s = reader.read();
        let _inner = reader.read();
        assert_eq!(reader.get().last_processed_zxid(), 0);
    }

    #[test]
    fn the_owner_writes_only_in_its_write_scope() {
        let shared = SharedTree::new(DataTree::new(), 2);
        let mut owner = shared.view(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            owner.get_mut().set_last_processed_zxid(5)
        }));
        assert!(r.is_err());
        let mut owner = shared.view(0);
        {
            let _w = owner.write();
            owner.get_mut().set_last_processed_zxid(5);
        }
        let reader = shared.view(1);
        let _s = reader.read();
        assert_eq!(reader.get().last_processed_zxid(), 5);
    }

    /// Two threads: the owner bumps the zxid twice per write scope; a reader must never
    /// see it odd (half of a write scope), and must see it move.
    #[test]
    fn readers_never_see_a_write_half_done() {
        let shared = SharedTree::new(DataTree::new(), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let moved = Arc::new(AtomicU64::new(0));
        let reader = {
            let (shared, stop, moved) = (shared.clone(), stop.clone(), moved.clone());
            std::thread::spawn(move || {
                let view = shared.view(1);
                let mut seen = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _s = view.read();
                    let z = view.get().last_processed_zxid();
                    assert_eq!(z % 2, 0, "saw a write half done");
                    assert!(z >= seen);
                    if z > seen {
                        moved.fetch_add(1, Ordering::Relaxed);
                    }
                    seen = z;
                }
            })
        };
        let mut owner = shared.view(0);
        let started = std::time::Instant::now();
        let mut writes = 0;
        while writes < 1000
            || (moved.load(Ordering::Relaxed) < 1000 && started.elapsed().as_secs() < 10)
        {
            {
                let _w = owner.write();
                let z = owner.get_mut().last_processed_zxid();
                owner.get_mut().set_last_processed_zxid(z + 1);
                std::hint::black_box(&owner);
                owner.get_mut().set_last_processed_zxid(z + 2);
            }
            writes += 1;
            // The owner does other work between write scopes; a loop that takes the
            // flag back at once leaves a reader on a loaded machine (other tests, two
            // cores) almost no window, and the liveness check below timed out.
            if writes % 4 == 0 {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert!(
            moved.load(Ordering::Relaxed) >= 1000,
            "the reader saw the tree move"
        );
    }
}
