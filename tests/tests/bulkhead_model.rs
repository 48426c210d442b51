//! The bulkhead against a reference model: seeded random sequences of acquisitions,
//! releases, reconfigurations and resets, with every counter checked after each step.
#![allow(clippy::unwrap_used)]

use resilience::Error;
use resilience::bulkhead::{Bulkhead, BulkheadConfig};

fn config(max_concurrent: u32) -> BulkheadConfig {
    BulkheadConfig::builder().max_concurrent(max_concurrent).build().unwrap()
}

#[derive(Debug, Default)]
struct Model {
    max: u32,
    held: u32,
    rejected: u64,
    completed: u64,
}

#[test]
fn bulkhead_matches_the_reference_model() {
    for seed in 0..300 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let b = Bulkhead::new("model", config(2));
        let mut model = Model { max: 2, ..Model::default() };
        let mut held = Vec::new();
        for step in 0..200 {
            match rng.u8(0..10) {
                0..=4 => match b.try_acquire() {
                    Ok(permit) => {
                        assert!(model.held < model.max, "seed {seed} step {step}: {model:?}");
                        held.push(permit);
                        model.held += 1;
                    }
                    Err(e) => {
                        assert!(model.held >= model.max, "seed {seed} step {step}: {model:?}");
                        assert_eq!(e, Error::bulkhead_full("model", model.max));
                        model.rejected += 1;
                    }
                },
                5..=7 => {
                    if !held.is_empty() {
                        drop(held.swap_remove(rng.usize(..held.len())));
                        model.held -= 1;
                        model.completed += 1;
                    }
                }
                8 => {
                    model.max = rng.u32(1..=5);
                    b.reconfigure(config(model.max));
                }
                _ => {
                    b.reset();
                    model.rejected = 0;
                    model.completed = 0;
                }
            }
            let s = b.stats();
            let actual = (s.max_concurrent, s.in_flight, s.waiting, s.rejected, s.completed);
            let expected = (model.max, model.held, 0, model.rejected, model.completed);
            assert_eq!(actual, expected, "seed {seed} step {step}");
        }
    }
}
