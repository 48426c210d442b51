use resilience::circuit_breaker;

#[circuit_breaker(k = 2.0)]
fn k_without_mode() -> Result<(), resilience::Error> {
    Ok(())
}

#[circuit_breaker(mode = "probabilistic")]
fn bad_mode() -> Result<(), resilience::Error> {
    Ok(())
}

#[circuit_breaker(mode = "adaptive_throttle", failure_threshold = 3, window = 100)]
fn breaker_keys_in_throttle_mode() -> Result<(), resilience::Error> {
    Ok(())
}

#[circuit_breaker(mode = "adaptive_throttle", k = 0.5)]
fn k_below_one() -> Result<(), resilience::Error> {
    Ok(())
}

fn main() {}
