use resilience::circuit_breaker;

#[circuit_breaker(failure_threshold = 3)]
fn count() -> u32 {
    42
}

fn main() {
    let _ = count();
}
