use resilience::{circuit_breaker, rate_limit, resilient};

#[derive(Debug)]
enum ShopError {
    Resilience(resilience::Error),
}

impl From<resilience::Error> for ShopError {
    fn from(e: resilience::Error) -> Self {
        ShopError::Resilience(e)
    }
}

// Shopify's limits are per shop: one shop's errors must not open every shop's circuit.
#[resilient(preset = "shopify")]
async fn products(shop: &str) -> Result<u32, ShopError> {
    let _ = shop;
    Ok(250)
}

#[circuit_breaker(preset = "shopify")]
fn orders(shop: &str) -> Result<u32, ShopError> {
    let _ = shop;
    Ok(3)
}

#[rate_limit(preset = "shopify")]
fn customers(shop: &str) -> Result<u32, ShopError> {
    let _ = shop;
    Ok(3)
}

// Either form compiles.
#[resilient(preset = "shopify", key = shop)]
async fn keyed(shop: &str) -> Result<u32, ShopError> {
    let _ = shop;
    Ok(250)
}

#[resilient(preset = "shopify", key = none)]
async fn shared(shop: &str) -> Result<u32, ShopError> {
    let _ = shop;
    Ok(250)
}

fn main() {
    let _ = (products("a"), orders("a"), customers("a"), keyed("a"), shared("a"));
}
