use resilience::retry;

type Count = u32;

#[retry(max_attempts = 3)]
fn count() -> Count {
    42
}

fn main() {
    let _ = count();
}
