//! A Shopify-style connector: `#[resilient(preset = "shopify", key = shop)]` with one
//! bucket and one circuit per shop (one shop's errors never open another shop's
//! circuit), `Retry-After` honoured, and the local bucket re-synced from
//! `X-Shopify-Shop-Api-Call-Limit` after every response.
//!
//! Then the Admin GraphQL API, which limits by calculated query cost instead of
//! requests: a cost-point limiter takes each query's requested cost, is refunded
//! `requested − actual` and re-synced from `extensions.cost.throttleStatus` after every
//! response, and `THROTTLED` is classified as throttled.
//!
//! `cargo run -p resilience-examples --bin shopify_connector`
//!
//! The server is simulated: Shopify's leaky bucket (40 calls per shop, leaking 2 per
//! second), answering 429 with `Retry-After` when a shop's bucket is full. Another app
//! installed on one shop spends that shop's budget behind our back, so our local
//! bucket is wrong until the response headers correct it. Runs on tokio's paused
//! clock: the minutes of pacing cost no real time.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use resilience::classify::{self, Classify, ErrorClass, RetryAfter};
use resilience::rate_limit::graphql::{self, QueryCost, ThrottleStatus};
use resilience::rate_limit::{RateLimitConfig, RateLimiter, headers};
use resilience::{Error, KeyedRateLimiter, registry, resilient};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// What the connector's callers see.
#[derive(Debug)]
enum ShopifyError {
    /// 429 Too Many Requests, with the server's `Retry-After`.
    Throttled { retry_after: Duration },
    /// Another HTTP error status.
    Status(u16),
    /// A resilience layer refused the call.
    Resilience(Error),
}

impl From<Error> for ShopifyError {
    fn from(e: Error) -> Self {
        ShopifyError::Resilience(e)
    }
}

/// Picked up by `#[resilient]` without being asked: only transient and throttled errors
/// are retried, and the circuit breaker counts only transient ones (a 402 or 403 is the
/// shop's answer, a 429 asks to slow down: neither means Shopify is failing).
impl Classify for ShopifyError {
    fn class(&self) -> ErrorClass {
        match self {
            ShopifyError::Throttled { .. } => ErrorClass::Throttled,
            ShopifyError::Status(code) => {
                classify::http_status(*code).unwrap_or(ErrorClass::Permanent)
            }
            ShopifyError::Resilience(e) => e.class(),
        }
    }
}

/// Picked up too: the server's hint replaces the computed backoff.
impl RetryAfter for ShopifyError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ShopifyError::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Shopify's leaky bucket per shop, as the server keeps it.
#[derive(Debug, Default)]
struct Server {
    buckets: HashMap<String, (f64, Option<Instant>)>,
    requests: HashMap<String, u64>,
    throttled: HashMap<String, u64>,
}

const CAPACITY: f64 = 40.0;
const LEAK_PER_SECOND: f64 = 2.0;

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
}

impl Server {
    fn level(&mut self, shop: &str) -> &mut f64 {
        let (level, last) = self.buckets.entry(shop.to_string()).or_insert((0.0, None));
        let now = Instant::now();
        if let Some(last) = last {
            *level = (*level - now.duration_since(*last).as_secs_f64() * LEAK_PER_SECOND).max(0.0);
        }
        *last = Some(now);
        level
    }

    /// Another app on the same shop spends `calls` of its budget.
    fn other_app(&mut self, shop: &str, calls: f64) {
        let level = self.level(shop);
        *level = (*level + calls).min(CAPACITY);
    }

    fn handle(&mut self, shop: &str) -> Response {
        *self.requests.entry(shop.to_string()).or_default() += 1;
        let level = self.level(shop);
        if *level + 1.0 > CAPACITY {
            let wait = ((*level + 1.0 - CAPACITY) / LEAK_PER_SECOND).ceil().max(1.0);
            *self.throttled.entry(shop.to_string()).or_default() += 1;
            return Response {
                status: 429,
                headers: vec![
                    ("Retry-After", format!("{wait}")),
                    ("X-Shopify-Shop-Api-Call-Limit", "40/40".into()),
                ],
            };
        }
        *level += 1.0;
        let used = level.ceil() as u32;
        Response {
            status: 200,
            headers: vec![("X-Shopify-Shop-Api-Call-Limit", format!("{used}/40"))],
        }
    }
}

impl ShopifyError {
    /// A 429 says "slow down", not "the service is down": the breaker ignores it.
    fn is_throttled(&self) -> bool {
        matches!(self, ShopifyError::Throttled { .. })
    }
}

/// The per-shop limiter `#[resilient]` created for `products_page`, looked up once.
fn shopify_limiter() -> Option<&'static Arc<KeyedRateLimiter>> {
    static LIMITER: OnceLock<Arc<KeyedRateLimiter>> = OnceLock::new();
    if let Some(limiter) = LIMITER.get() {
        return Some(limiter);
    }
    let limiter = registry().keyed_rate_limiters().get("shopify")?;
    Some(LIMITER.get_or_init(|| limiter))
}

/// One page of products: the connector function. `key = shop` gives each shop its own
/// bucket and its own circuit. Throttling is handled by the retry (which waits the
/// server's `Retry-After`) and the per-shop bucket, never by opening a circuit.
#[resilient(
    preset = "shopify",
    key = shop,
    circuit_breaker(name = "shopify", ignore_if = ShopifyError::is_throttled),
    rate_limit(name = "shopify")
)]
async fn products_page(server: &Mutex<Server>, shop: &str) -> Result<u32, ShopifyError> {
    tokio::time::sleep(Duration::from_millis(80)).await; // network round trip
    let response = server.lock().await.handle(shop);
    // Keep our bucket for this shop in step with the server's view (the limiter is looked
    // up once; the attribute created it on this function's first call).
    if let Some(limiter) = shopify_limiter() {
        limiter.sync_from_headers(shop, response.headers.iter().map(|(k, v)| (*k, v.as_str())));
    }
    match response.status {
        200 => Ok(50),
        429 => {
            // The crate's parser: delta or decimal seconds, or an HTTP date.
            let retry_after = response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(headers::RETRY_AFTER))
                .and_then(|(_, v)| headers::parse_retry_after(v, SystemTime::now()).ok())
                .unwrap_or(Duration::from_secs(1));
            Err(ShopifyError::Throttled { retry_after })
        }
        code => Err(ShopifyError::Status(code)),
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let server = Arc::new(Mutex::new(Server::default()));
    let shops = ["alpha.myshopify.com", "beta.myshopify.com", "gamma.myshopify.com"];
    let pages_per_shop = 120u32;
    let workers_per_shop = 4u32;
    println!(
        "syncing {pages_per_shop} pages from each of {} shops, {workers_per_shop} workers per shop; \
         another app spends 30 calls of beta's budget at 10 s\n",
        shops.len()
    );

    let started = Instant::now();
    {
        let server = server.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            server.lock().await.other_app("beta.myshopify.com", 30.0);
        });
    }
    let mut tasks = Vec::new();
    for shop in shops {
        for worker in 0..workers_per_shop {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, 0u32);
                for _ in (worker..pages_per_shop).step_by(workers_per_shop as usize) {
                    match products_page(&server, shop).await {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            eprintln!("{shop}: {e:?}");
                        }
                    }
                }
                (shop, ok, failed, started.elapsed())
            }));
        }
    }
    let mut per_shop: HashMap<&str, (u32, u32, Duration)> = HashMap::new();
    for task in tasks {
        if let Ok((shop, ok, failed, took)) = task.await {
            let entry = per_shop.entry(shop).or_default();
            entry.0 += ok;
            entry.1 += failed;
            entry.2 = entry.2.max(took);
        }
    }

    let server = server.lock().await;
    println!(
        "{:<22} {:>6} {:>7} {:>9} {:>13} {:>8}",
        "shop", "pages", "failed", "requests", "429 received", "time"
    );
    for shop in shops {
        let (ok, failed, took) = per_shop.get(shop).copied().unwrap_or_default();
        println!(
            "{:<22} {:>6} {:>7} {:>9} {:>13} {:>7.1}s",
            shop,
            ok,
            failed,
            server.requests.get(shop).copied().unwrap_or(0),
            server.throttled.get(shop).copied().unwrap_or(0),
            took.as_secs_f64()
        );
    }
    println!(
        "\nA full bucket of 40 then 2 calls per second: {pages_per_shop} pages take about {:.0} s per shop.",
        (f64::from(pages_per_shop) - CAPACITY) / LEAK_PER_SECOND
    );
    println!("\n{}", registry().snapshot());

    graphql_sync().await;
}

/// Shopify's GraphQL bucket (1 000 points restored at 50 per second), simulated on the
/// paused clock.
struct GraphqlShop {
    points: f64,
    at: Instant,
}

impl GraphqlShop {
    /// One query: `THROTTLED` when its requested cost is not available, else charged its
    /// actual cost. Returns the error code, if any, and `extensions.cost`.
    fn query(&mut self, requested: u32, actual: u32) -> (Option<&'static str>, QueryCost) {
        let now = Instant::now();
        self.points = (self.points + (now - self.at).as_secs_f64() * 50.0).min(1000.0);
        self.at = now;
        let throttled = self.points + 1e-6 < f64::from(requested);
        if !throttled {
            self.points -= f64::from(actual);
        }
        let cost = QueryCost {
            requested,
            actual: (!throttled).then_some(actual),
            throttle_status: Some(ThrottleStatus {
                maximum_available: 1000.0,
                currently_available: self.points,
                restore_rate: 50.0,
            }),
        };
        (throttled.then_some("THROTTLED"), cost)
    }
}

async fn graphql_sync() {
    // A first guess of the bucket (a Plus shop's 2 000 points at 100 per second): the
    // first response corrects it.
    let limiter = match RateLimitConfig::builder().per_second(100).burst(2000).build() {
        Ok(config) => RateLimiter::new("shopify-graphql", config),
        Err(e) => return eprintln!("graphql limiter: {e}"),
    };
    let mut shop = GraphqlShop { points: 1000.0, at: Instant::now() };
    let started = Instant::now();
    let (mut throttled, mut charged) = (0u32, 0u64);
    for i in 0..300u32 {
        // Mixed queries: a product page (requested 112, actual about 40), a bulk
        // update (requested 250, actual 250), an order lookup (requested 12, actual 3).
        let (requested, actual) = match i % 3 {
            0 => (112, 38 + i % 7),
            1 => (250, 250),
            _ => (12, 3),
        };
        if let Err(e) = limiter.acquire_async(requested).await {
            eprintln!("graphql query {i}: {e}");
            continue;
        }
        let (code, cost) = shop.query(requested, actual);
        match code.map(graphql::error_code_class) {
            Some(ErrorClass::Throttled) => throttled += 1,
            _ => charged += u64::from(actual),
        }
        limiter.sync_from_query_cost(&cost);
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "\nGraphQL: 300 queries, {throttled} THROTTLED, {charged} points charged in {took:.0} s \
         (the shop restores {:.0} in that time, plus its 1 000-point bucket); bucket adopted: {} points",
        took * 50.0,
        limiter.config().burst()
    );
}
