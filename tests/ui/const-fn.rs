use resilience::retry;

#[retry]
const fn answer() -> Result<u8, ()> {
    Ok(42)
}

fn main() {
    let _ = answer();
}
