//! A Shopify-style connector: `#[resilient(preset = "shopify")]` with one token bucket
//! per shop (40 requests, refilled at 2 per second) and `Retry-After` honoured.
//!
//! `cargo run -p resilience-examples --bin shopify_connector`
//!
//! The simulated API answers 429 with a `Retry-After` now and then; the error type says
//! so through `RetryAfter`, and the retry waits exactly that long instead of its own
//! backoff. Runs on tokio's paused clock.

use std::collections::HashMap;
use std::time::Duration;

use resilience::classify::{Classify, ErrorClass, RetryAfter};
use resilience::{Error, registry, resilient};
use tokio::sync::Mutex;

/// What the connector's calls fail with.
#[derive(Debug)]
enum ShopifyError {
    /// 429 with `Retry-After` (seconds).
    Throttled(Duration),
    /// A 4xx that retrying cannot fix.
    Rejected(u16),
    /// A resilience layer refused or cut short the call.
    Resilience(Error),
}

impl From<Error> for ShopifyError {
    fn from(e: Error) -> Self {
        ShopifyError::Resilience(e)
    }
}

impl Classify for ShopifyError {
    fn class(&self) -> ErrorClass {
        match self {
            ShopifyError::Throttled(_) => ErrorClass::Transient,
            ShopifyError::Rejected(_) => ErrorClass::Permanent,
            ShopifyError::Resilience(e) => e.class(),
        }
    }
}

impl RetryAfter for ShopifyError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ShopifyError::Throttled(d) => Some(*d),
            _ => None,
        }
    }
}

/// A simulated Admin API: every 7th request of a shop is throttled for 2 s.
#[derive(Default)]
struct FakeShopify {
    requests: Mutex<HashMap<String, u32>>,
}

impl FakeShopify {
    async fn get(&self, shop: &str, path: &str) -> Result<String, ShopifyError> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut requests = self.requests.lock().await;
        let n = requests.entry(shop.to_owned()).or_default();
        *n += 1;
        if *n % 7 == 0 {
            return Err(ShopifyError::Throttled(Duration::from_secs(2)));
        }
        if path.contains("forbidden") {
            return Err(ShopifyError::Rejected(403));
        }
        Ok(format!("{shop}{path} #{n}"))
    }
}

struct Connector {
    api: FakeShopify,
}

impl Connector {
    /// Every layer of the `shopify` preset; the limiter keeps one bucket per shop.
    #[resilient(preset = "shopify", rate_limit(key = shop))]
    async fn get(&self, shop: &str, path: &str) -> Result<String, ShopifyError> {
        self.api.get(shop, path).await
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let connector = Connector { api: FakeShopify::default() };
    let started = tokio::time::Instant::now();
    for shop in ["alpha.myshopify.com", "beta.myshopify.com"] {
        for page in 0..50 {
            match connector.get(shop, &format!("/admin/api/orders.json?page={page}")).await {
                Ok(_) => {}
                Err(e) => println!("{shop}: {e:?}"),
            }
        }
    }
    match connector.get("alpha.myshopify.com", "/admin/api/forbidden.json").await {
        Err(ShopifyError::Rejected(status)) => {
            println!("a permanent {status} is returned at once, not retried")
        }
        other => println!("unexpected: {other:?}"),
    }
    println!(
        "100 pages from two shops in {:?} of simulated time (each shop's bucket holds 40, refills at 2/s; 429s waited their Retry-After)\n",
        started.elapsed()
    );
    println!("{}", registry().snapshot());
}
