//! [`KeyMap`]: the keyed limiter's lock-free map, replaced by a right-sized one when a
//! sweep leaves it far below its peak.
//!
//! papaya's table never shrinks: after a burst of a million keys has been evicted, the
//! empty table still holds its slots (about 19 MB). So the map is one *generation*, and
//! a sweep that leaves at most a quarter of the peak swaps in a fresh generation holding
//! the live entries. The old one is freed when the last call still reading it is done.
//!
//! The current generation sits in a one-entry papaya map (the *cell*, keyed by `()`),
//! not behind an `ArcSwap`: reaching it costs an epoch guard (a thread-local counter, a
//! plain store on entry and one swap on exit) and a probe of a one-slot table, where an
//! `ArcSwap` load pays a thread-local debt slot (a sequentially consistent store, then a
//! compare-and-swap to pay the debt back) on every call. Replacing the entry retires the
//! old generation through the cell's own collector, which frees it once no guard that
//! could have read it is left (batches of one, so right after the rebuild's own guard
//! is gone when nobody else is reading). Every generation keeps its own collector: a
//! papaya map dropped with a collector it shares would reclaim what other maps still
//! read.
//!
//! Invariants:
//! - Values (a key's bucket) move to the new generation as the same `V` (an `Arc`): a
//!   call still working on the old generation takes from the very bucket the new one
//!   holds, so no grant is lost or doubled across a rebuild.
//! - No key is inserted into a generation once it is being copied: an insert raises the
//!   generation's `inserting` count and then checks `frozen`; the rebuild sets `frozen`
//!   and then waits until `inserting` is zero (both sequentially consistent, so at least
//!   one side sees the other). An insert that finds its generation frozen waits for the
//!   new one and retries there. Lookups of existing keys never wait.
//! - One sweep or rebuild at a time (`sweeping`).

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// The keys' hasher: foldhash, seeded per map from process randomness. Several times
/// faster than SipHash on short keys (host names, tenant ids), and still keyed, so an
/// outsider cannot choose colliding keys without knowing the seed.
pub(crate) type KeyHasher = foldhash::fast::RandomState;

/// The pinned map of one generation.
pub(crate) type Pinned<'g, K, V> = papaya::HashMapRef<'g, K, V, KeyHasher, papaya::LocalGuard<'g>>;

/// A map smaller than this is never rebuilt (its table is small anyway).
const MIN_REBUILD: usize = 1024;

/// One generation of the map.
struct Gen<K, V> {
    map: papaya::HashMap<K, V, KeyHasher>,
    /// Inserts in progress.
    inserting: AtomicUsize,
    /// Being copied into a new generation: no more inserts.
    frozen: AtomicBool,
    /// The most entries a sweep has seen in this generation (or its initial capacity).
    peak: AtomicUsize,
}

impl<K, V> Gen<K, V>
where
    K: Hash + Eq,
{
    fn new(capacity: usize) -> Gen<K, V> {
        let map =
            papaya::HashMap::builder().hasher(KeyHasher::default()).capacity(capacity).build();
        Gen {
            map,
            inserting: AtomicUsize::new(0),
            frozen: AtomicBool::new(false),
            peak: AtomicUsize::new(capacity),
        }
    }
}

/// Lowers `inserting` when an insert ends, even by unwinding out of a key's `Hash`.
struct Inserting<'a>(&'a AtomicUsize);

impl Drop for Inserting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Thaws a generation whose rebuild unwound (a key's `Clone` or `Hash` panicked), so
/// that inserts go on in it.
struct Thaw<'a>(Option<&'a AtomicBool>);

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        if let Some(frozen) = self.0 {
            frozen.store(false, Ordering::SeqCst);
        }
    }
}

/// The hasher of the cell: its one key is `()`, whatever it hashes to.
#[derive(Debug, Default, Clone, Copy)]
struct UnitHasher;

impl std::hash::Hasher for UnitHasher {
    #[inline(always)]
    fn finish(&self) -> u64 {
        0
    }

    #[inline(always)]
    fn write(&mut self, _: &[u8]) {}
}

type UnitHash = std::hash::BuildHasherDefault<UnitHasher>;

/// The pinned cell.
type Cell<'g, K, V> = papaya::HashMapRef<'g, (), Gen<K, V>, UnitHash, papaya::LocalGuard<'g>>;

/// A lock-free map that gives its memory back after mass eviction; see the module docs.
pub(crate) struct KeyMap<K, V> {
    /// The current generation, under `()`.
    current: papaya::HashMap<(), Gen<K, V>, UnitHash>,
    sweeping: Mutex<()>,
    /// Generations replaced so far.
    rebuilds: AtomicUsize,
}

impl<K, V> KeyMap<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty map (it allocates no table until the first insert).
    pub(crate) fn new() -> Self {
        let current = papaya::HashMap::builder()
            .hasher(UnitHash::default())
            .collector(seize::Collector::new().batch_size(1))
            .capacity(1)
            .build();
        current.pin().insert((), Gen::new(0));
        KeyMap { current, sweeping: Mutex::new(()), rebuilds: AtomicUsize::new(0) }
    }

    /// Runs `f` on the current generation.
    #[inline(always)]
    fn with_gen<R>(&self, f: impl FnOnce(&Gen<K, V>) -> R) -> R {
        let cell = self.current.pin();
        let g = match cell.get(&()) {
            Some(g) => g,
            // Not reached: the cell's entry is replaced, never removed.
            None => Self::refill(&cell),
        };
        // One call site of `f`, so that it is inlined.
        f(g)
    }

    /// The cell's generation, inserted empty if missing (out of line: never reached).
    #[cold]
    #[inline(never)]
    fn refill<'c>(cell: &'c Cell<'_, K, V>) -> &'c Gen<K, V> {
        cell.get_or_insert_with((), || Gen::new(0))
    }

    /// Runs `f` on the current generation's pinned map (for reads, updates of existing
    /// values and removals; inserts go through [`get_or_insert`](Self::get_or_insert)).
    #[inline]
    pub(crate) fn pinned<R>(&self, f: impl FnOnce(&Pinned<'_, K, V>) -> R) -> R {
        self.with_gen(|g| f(&g.map.pin()))
    }

    /// `f` of `key`'s value; `None` when the key is missing. Inserts nothing.
    #[inline(always)]
    pub(crate) fn get<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> Option<R>) -> Option<R>
    where
        Q: ?Sized + Hash + Eq,
        K: Borrow<Q>,
    {
        self.with_gen(|g| g.map.pin().get(key).and_then(f))
    }

    /// Runs `f` on `key`'s value, inserted from `make` if missing, and the pinned map
    /// that holds it. The flag says whether this call inserted the value.
    #[inline]
    pub(crate) fn get_or_insert<Q, R>(
        &self,
        key: &Q,
        make: impl Fn() -> V,
        f: impl FnOnce(&Pinned<'_, K, V>, &V) -> R,
    ) -> (R, bool)
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
        K: Borrow<Q>,
    {
        let found = self.with_gen(|g| {
            let map = g.map.pin();
            match map.get(key) {
                Some(v) => Ok(f(&map, v)),
                None => Err(f),
            }
        });
        match found {
            Ok(r) => (r, false),
            Err(f) => self.insert_slow(key, make, f),
        }
    }

    #[cold]
    #[inline(never)]
    fn insert_slow<Q, R>(
        &self,
        key: &Q,
        make: impl Fn() -> V,
        f: impl FnOnce(&Pinned<'_, K, V>, &V) -> R,
    ) -> (R, bool)
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
        K: Borrow<Q>,
    {
        let mut f = Some(f);
        loop {
            let done = self.with_gen(|g| {
                g.inserting.fetch_add(1, Ordering::SeqCst);
                let _inserting = Inserting(&g.inserting);
                if g.frozen.load(Ordering::SeqCst) {
                    return None;
                }
                let map = g.map.pin();
                let mut inserted = false;
                let v = map.get_or_insert_with(key.to_owned(), || {
                    inserted = true;
                    make()
                });
                let f = f.take()?;
                Some((f(&map, v), inserted))
            });
            match done {
                Some(done) => return done,
                // Being rebuilt: the new generation is published once the copy is done.
                None => std::thread::yield_now(),
            }
        }
    }

    /// Entries in the current generation.
    pub(crate) fn len(&self) -> usize {
        self.with_gen(|g| g.map.len())
    }

    /// Keeps the entries for which `keep` is true, then rebuilds the map if what is left
    /// is at most a quarter of its peak. Returns how many entries were removed.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        let _sweeping = self.sweeping.lock();
        self.with_gen(|g| {
            let map = g.map.pin();
            let before = map.len();
            let peak = g.peak.fetch_max(before, Ordering::Relaxed).max(before);
            let mut removed = 0;
            map.retain(|k, v| {
                let kept = keep(k, v);
                removed += usize::from(!kept);
                kept
            });
            let left = map.len();
            drop(map);
            if peak >= MIN_REBUILD && left.saturating_mul(4) <= peak {
                self.rebuild(g, true);
            }
            removed
        })
    }

    /// Forgets every entry, giving the table back.
    pub(crate) fn clear(&self) {
        let _sweeping = self.sweeping.lock();
        self.with_gen(|g| self.rebuild(g, false));
    }

    /// How many times the map was rebuilt.
    #[cfg(test)]
    pub(crate) fn generation(&self) -> usize {
        self.rebuilds.load(Ordering::Relaxed)
    }

    /// Rebuilds the map now, keeping every entry (for tests racing calls against a swap).
    #[cfg(test)]
    pub(crate) fn rebuild_now(&self) {
        let _sweeping = self.sweeping.lock();
        self.with_gen(|g| self.rebuild(g, true));
    }

    /// Replaces `g` (the current generation) by a right-sized one holding its entries
    /// (`copy`) or none. Callers hold `sweeping`.
    fn rebuild(&self, g: &Gen<K, V>, copy: bool) {
        g.frozen.store(true, Ordering::SeqCst);
        let mut thaw = Thaw(Some(&g.frozen));
        while g.inserting.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        let old = g.map.pin();
        let fresh = Gen::new(if copy { old.len() } else { 0 });
        if copy {
            let new = fresh.map.pin();
            for (k, v) in old.iter() {
                new.insert(k.clone(), v.clone());
            }
        }
        drop(old);
        // The old generation is freed when the last call still reading it is done.
        self.current.pin().insert((), fresh);
        thaw.0 = None;
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_sweep_far_below_the_peak_rebuilds_and_keeps_the_live_entries() {
        let m: KeyMap<u64, Arc<u64>> = KeyMap::new();
        for k in 0..10_000 {
            let _ = m.get_or_insert(&k, || Arc::new(k), |_, _| ());
        }
        let kept = Arc::clone(&m.pinned(|p| p.get(&7).cloned()).unwrap_or_default());
        let before = m.generation();
        assert_eq!(m.retain(|k, _| k % 100 == 7), 9_900);
        assert_ne!(m.generation(), before, "rebuilt");
        assert_eq!(m.len(), 100);
        // The same value moved over, not a copy of it.
        let ((), inserted) =
            m.get_or_insert(&7, || Arc::new(0), |_, v| assert!(Arc::ptr_eq(v, &kept)));
        assert!(!inserted);
    }

    #[test]
    fn a_sweep_that_keeps_most_entries_does_not_rebuild() {
        let m: KeyMap<u64, Arc<u64>> = KeyMap::new();
        for k in 0..10_000 {
            let _ = m.get_or_insert(&k, || Arc::new(k), |_, _| ());
        }
        let before = m.generation();
        assert_eq!(m.retain(|k, _| k % 2 == 0), 5_000);
        assert_eq!(m.generation(), before);
        assert_eq!(m.len(), 5_000);
    }

    /// One step of the reference-model test.
    #[derive(Debug, Clone)]
    enum Op {
        /// Look a key up, inserting it if missing.
        Touch(u16),
        /// Keep the keys whose value is divisible by this.
        Retain(u16),
        /// Rebuild, keeping every entry.
        Rebuild,
        /// Forget everything.
        Clear,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            8 => (0u16..3000).prop_map(Op::Touch),
            1 => (1u16..8).prop_map(Op::Retain),
            1 => Just(Op::Rebuild),
            1 => Just(Op::Clear),
        ]
    }

    proptest::proptest! {
        /// Any sequence of lookups, sweeps, rebuilds and clears leaves the map holding
        /// exactly what a `HashMap` holds after the same steps, each key with the very
        /// value (the same `Arc`) inserted first, whichever generation it is in now.
        #[test]
        fn the_map_agrees_with_a_hash_map_across_rebuilds(
            ops in proptest::collection::vec(op(), 1..400),
        ) {
            let m: KeyMap<u16, Arc<u16>> = KeyMap::new();
            let mut model: std::collections::HashMap<u16, Arc<u16>> = Default::default();
            for op in ops {
                match op {
                    Op::Touch(k) => {
                        let existed = model.contains_key(&k);
                        let (v, inserted) = m.get_or_insert(&k, || Arc::new(k), |_, v| Arc::clone(v));
                        proptest::prop_assert_eq!(inserted, !existed, "key {}", k);
                        let want = model.entry(k).or_insert_with(|| Arc::clone(&v));
                        proptest::prop_assert!(Arc::ptr_eq(&v, want), "key {}: another value", k);
                    }
                    Op::Retain(d) => {
                        let before = model.len();
                        model.retain(|k, _| k % d == 0);
                        proptest::prop_assert_eq!(m.retain(|k, _| k % d == 0), before - model.len());
                    }
                    Op::Rebuild => m.rebuild_now(),
                    Op::Clear => {
                        m.clear();
                        model.clear();
                    }
                }
                proptest::prop_assert_eq!(m.len(), model.len());
            }
            for (k, want) in &model {
                let got = m.pinned(|p| p.get(k).cloned());
                proptest::prop_assert!(got.is_some_and(|v| Arc::ptr_eq(&v, want)), "key {k}");
            }
        }
    }

    #[test]
    fn clear_forgets_every_entry() {
        let m: KeyMap<String, Arc<u64>> = KeyMap::new();
        let ((), inserted) = m.get_or_insert("a", || Arc::new(1), |_, _| ());
        assert!(inserted);
        m.clear();
        assert_eq!(m.len(), 0);
        let ((), inserted) = m.get_or_insert("a", || Arc::new(2), |_, v| assert_eq!(**v, 2));
        assert!(inserted);
    }
}
