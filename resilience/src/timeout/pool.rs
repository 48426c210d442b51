//! The bounded pool of worker threads that runs timed blocking calls.
//!
//! A job goes to an idle worker if there is one, else to a new worker while fewer than
//! the maximum exist; otherwise it is refused at once. A worker that finishes its job
//! waits for the next one and exits after [`IDLE_TIMEOUT`] without work, or as soon as
//! the pool holds more workers than a lowered maximum.
//!
//! Invariant (under the lock): `idle` = workers waiting for a job − jobs queued, so a job
//! is queued only when a waiting worker is reserved for it, and the queue never holds
//! more jobs than there are waiting workers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A blocking call, wrapped so that it cannot panic and sends its own result.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// The default maximum of worker threads.
pub(crate) const DEFAULT_MAX_WORKERS: usize = 64;

/// How long a worker waits for a job before it exits.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a job was not started.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Every worker is busy: this many.
    Full(usize),
    /// The OS would not start a thread.
    Spawn(std::io::Error),
}

struct State {
    jobs: VecDeque<Job>,
    /// Worker threads alive.
    workers: usize,
    /// Workers waiting for a job, minus the jobs queued.
    idle: usize,
}

pub(crate) struct Pool {
    max: AtomicUsize,
    idle_timeout: Duration,
    state: Mutex<State>,
    ready: Condvar,
}

impl Pool {
    pub(crate) const fn new(max: usize, idle_timeout: Duration) -> Self {
        Pool {
            max: AtomicUsize::new(max),
            idle_timeout,
            state: parking_lot::const_mutex(State { jobs: VecDeque::new(), workers: 0, idle: 0 }),
            ready: Condvar::new(),
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Worker threads alive (busy or waiting for a job).
    pub(crate) fn workers(&self) -> usize {
        self.state.lock().workers
    }

    /// Workers waiting for a job (minus the jobs queued for them).
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.state.lock().idle
    }

    /// Runs `job` on a worker, or refuses at once.
    pub(crate) fn submit(&'static self, job: Job) -> Result<(), Refused> {
        let mut state = self.state.lock();
        if state.idle > 0 {
            state.idle -= 1;
            state.jobs.push_back(job);
            drop(state);
            self.ready.notify_one();
            return Ok(());
        }
        if state.workers >= self.max() {
            return Err(Refused::Full(state.workers));
        }
        state.workers += 1;
        drop(state);
        let spawned = std::thread::Builder::new()
            .name("resilience-timeout".into())
            .spawn(move || self.work(job));
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                self.state.lock().workers -= 1;
                Err(Refused::Spawn(e))
            }
        }
    }

    fn work(&self, first: Job) {
        let mut job = first;
        loop {
            job();
            let mut state = self.state.lock();
            if state.workers > self.max() {
                state.workers -= 1;
                return;
            }
            state.idle += 1;
            job = loop {
                if let Some(next) = state.jobs.pop_front() {
                    break next;
                }
                let waited = self.ready.wait_for(&mut state, self.idle_timeout);
                if waited.timed_out() && state.jobs.is_empty() {
                    state.idle -= 1;
                    state.workers -= 1;
                    return;
                }
            };
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn leak(pool: Pool) -> &'static Pool {
        Box::leak(Box::new(pool))
    }

    #[test]
    fn workers_are_reused() {
        let pool = leak(Pool::new(4, Duration::from_secs(60)));
        for i in 0..100 {
            let (tx, rx) = mpsc::channel();
            pool.submit(Box::new(move || tx.send(i).unwrap())).unwrap();
            assert_eq!(rx.recv().unwrap(), i);
            // Until the worker reports itself idle, a new job would start a new worker.
            while pool.idle() == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(pool.workers(), 1, "one call at a time: the first worker takes every job");
    }

    #[test]
    fn a_full_pool_refuses_and_recovers() {
        let pool = leak(Pool::new(3, Duration::from_secs(60)));
        let (release, gate) = mpsc::channel::<()>();
        let gate = std::sync::Arc::new(Mutex::new(gate));
        let (done_tx, done) = mpsc::channel();
        for _ in 0..3 {
            let (gate, done_tx) = (gate.clone(), done_tx.clone());
            pool.submit(Box::new(move || {
                let _ = gate.lock().recv();
                done_tx.send(()).unwrap();
            }))
            .unwrap();
        }
        assert!(matches!(pool.submit(Box::new(|| {})), Err(Refused::Full(3))));
        for _ in 0..3 {
            release.send(()).unwrap();
            done.recv().unwrap();
        }
        // The workers report themselves idle after their job: until then a job is refused.
        let (tx, rx) = mpsc::channel();
        loop {
            let tx = tx.clone();
            match pool.submit(Box::new(move || tx.send(7).unwrap())) {
                Ok(()) => break,
                Err(Refused::Full(3)) => std::thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(rx.recv().unwrap(), 7);
        assert_eq!(pool.workers(), 3, "an idle worker ran it, no new thread");
    }

    #[test]
    fn idle_workers_exit() {
        let pool = leak(Pool::new(2, Duration::ZERO));
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
        rx.recv().unwrap();
        while pool.workers() > 0 {
            std::thread::yield_now();
        }
        assert_eq!(pool.workers(), 0);
    }
}
