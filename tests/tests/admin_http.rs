//! The admin endpoint over real HTTP: a server on a free loopback port, a hyper client.
//! Shapes of every endpoint, the 404 / 400 / 401 / 403 paths, a state change seen by a
//! call through the attribute, the event stream (a transition caused by failures, a
//! burst of 10 000 events), and `/health` flipping to 503 and back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use resilience::admin::{AdminConfig, AdminServer};
use resilience::bulkhead::BulkheadConfig;
use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::rate_limit::RateLimitConfig;
use resilience::registry::Registry;
use resilience::{Error, circuit_breaker, registry};
use serde_json::{Value, json};

const TOKEN: &str = "correct horse battery staple";

/// A registry of its own for one test (the router wants a `&'static`).
fn leaked() -> &'static Registry {
    Box::leak(Box::new(Registry::new()))
}

fn breaker(failures: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_threshold(failures)
        .recovery_timeout(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// Serve `registry` on a free loopback port; the address to send requests to.
async fn start(registry: &'static Registry, config: AdminConfig) -> SocketAddr {
    let server = AdminServer::bind(registry, 0, config).await.expect("bound a free port");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback(), "binds the loopback address unless told otherwise");
    tokio::spawn(server.run());
    addr
}

async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connected");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    sender.send_request(request).await.expect("answered")
}

struct Answer {
    status: u16,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = send(addr, request.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.expect("whole body").to_bytes();
    Answer { status, content_type, text: String::from_utf8(bytes.to_vec()).unwrap() }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    call(addr, "GET", path, None, "").await
}

async fn set_state(addr: SocketAddr, name: &str, state: &str, token: Option<&str>) -> Answer {
    let body = json!({ "state": state }).to_string();
    call(addr, "POST", &format!("/circuit-breakers/{name}/state"), token, &body).await
}

fn fail(b: &resilience::CircuitBreaker) {
    let _ = b.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
}

/// An open `/events` stream, read event by event.
struct Events {
    body: Incoming,
    buffer: String,
}

impl Events {
    async fn open(addr: SocketAddr) -> Events {
        let request =
            Request::get("/events").header("host", addr.to_string()).body(Full::default()).unwrap();
        let response = send(addr, request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events { body: response.into_body(), buffer: String::new() }
    }

    /// The next event's JSON (keep-alive comments skipped).
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
            }
            let frame = tokio::time::timeout(Duration::from_secs(30), self.body.frame())
                .await
                .expect("an event within 30 s")
                .expect("the stream is open")
                .expect("a frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_endpoint_answers_its_documented_shape() {
    let reg = leaked();
    reg.circuit_breakers().get_or_create("zeta", breaker(5)).unwrap();
    let alpha = reg.circuit_breakers().get_or_create("alpha", breaker(5)).unwrap();
    fail(&alpha);
    reg.keyed_circuit_breakers().get_or_create("shops", breaker(5)).unwrap();
    let limit = RateLimitConfig::builder().per_second(10).burst(20).build().unwrap();
    reg.rate_limiters().get_or_create("shopify", limit).unwrap();
    let bulkhead = BulkheadConfig::builder().max_concurrent(4).build().unwrap();
    reg.bulkheads().get_or_create("db", bulkhead).unwrap();
    reg.retry_budget("orders");
    let addr = start(reg, AdminConfig::new()).await;

    let circuits = get(addr, "/circuit-breakers").await;
    assert_eq!(circuits.status, 200);
    assert_eq!(circuits.content_type, "application/json");
    let circuits = circuits.json();
    let names: Vec<&str> = circuits["circuit_breakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "zeta"], "sorted by name");
    let a = &circuits["circuit_breakers"][0];
    for field in [
        "name",
        "state",
        "failure_rate",
        "calls",
        "successes",
        "failures",
        "rejections",
        "consecutive_failures",
    ] {
        assert!(a.get(field).is_some(), "field {field} in {a}");
    }
    assert_eq!(a["state"], "closed");
    assert_eq!(a["failures"], 1);
    assert_eq!(a["consecutive_failures"], 1);
    assert_eq!(circuits["keyed_circuit_breakers"][0]["name"], "shops");

    let one = get(addr, "/circuit-breakers/alpha").await;
    assert_eq!((one.status, one.json()["name"].clone()), (200, json!("alpha")));
    let keyed = get(addr, "/circuit-breakers/shops").await.json();
    assert_eq!((keyed["name"].clone(), keyed["keys"].clone()), (json!("shops"), json!(0)));

    let limiters = get(addr, "/rate-limiters").await.json();
    assert_eq!(limiters["rate_limiters"][0]["name"], "shopify");
    assert_eq!(limiters["rate_limiters"][0]["capacity"], 20);
    assert_eq!(get(addr, "/rate-limiters/shopify").await.json()["available"], 20);
    let bulkheads = get(addr, "/bulkheads").await.json();
    assert_eq!(bulkheads["bulkheads"][0]["name"], "db");
    assert_eq!(bulkheads["bulkheads"][0]["max_concurrent"], 4);
    assert_eq!(get(addr, "/bulkheads/db").await.json()["in_flight"], 0);
    let budgets = get(addr, "/retry-budgets").await.json();
    assert_eq!(budgets["retry_budgets"][0]["name"], "orders");
    assert_eq!(get(addr, "/retry-budgets/orders").await.json()["exhausted"], 0);

    let health = get(addr, "/health").await;
    assert_eq!((health.status, health.json()), (200, json!({ "status": "up" })));

    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    assert!(page.text.contains("<title>resilience</title>"));
    assert!(!page.text.contains("http://") && !page.text.contains("https://"), "no CDN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_and_routes_are_404_with_a_json_error() {
    let reg = leaked();
    let addr = start(reg, AdminConfig::new().with_token(TOKEN)).await;
    for path in [
        "/circuit-breakers/nope",
        "/rate-limiters/nope",
        "/bulkheads/nope",
        "/retry-budgets/nope",
        "/circuit-breakers/with%20space",
        "/no/such/route",
        "/metrics",
    ] {
        let answer = get(addr, path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
        assert!(answer.json()["error"].is_string(), "{path}: {}", answer.text);
    }
    let unknown = set_state(addr, "nope", "closed", Some(TOKEN)).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].as_str().unwrap().contains("nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_paths_are_url_decoded() {
    let reg = leaked();
    reg.circuit_breakers().get_or_create("billing api/v2", breaker(5)).unwrap();
    let addr = start(reg, AdminConfig::new().with_token(TOKEN)).await;
    let one = get(addr, "/circuit-breakers/billing%20api%2Fv2").await;
    assert_eq!((one.status, one.json()["name"].clone()), (200, json!("billing api/v2")));
    let changed = set_state(addr, "billing%20api%2Fv2", "forced_open", Some(TOKEN)).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        reg.circuit_breakers().get("billing api/v2").unwrap().state(),
        CircuitState::ForcedOpen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_state_body_is_400_naming_the_accepted_values() {
    let reg = leaked();
    let b = reg.circuit_breakers().get_or_create("payments", breaker(5)).unwrap();
    let addr = start(reg, AdminConfig::new().with_token(TOKEN)).await;
    for body in
        [r#"{"state":"open"}"#, r#"{"state":3}"#, "{}", "not json", r#"{"state":"closed","x":1}"#]
    {
        let path = "/circuit-breakers/payments/state";
        let answer = call(addr, "POST", path, Some(TOKEN), body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        for accepted in ["closed", "forced_open", "disabled"] {
            assert!(error.contains(accepted), "{body}: {error}");
        }
    }
    assert_eq!(b.state(), CircuitState::Closed, "nothing changed");
    let big = format!(r#"{{"state":"closed","pad":"{}"}}"#, "x".repeat(10_000));
    let too_big = call(addr, "POST", "/circuit-breakers/payments/state", Some(TOKEN), &big).await;
    assert_eq!(too_big.status, 413, "bodies are limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_needs_the_token_and_changes_nothing_without_it() {
    let reg = leaked();
    let b = reg.circuit_breakers().get_or_create("payments", breaker(5)).unwrap();
    let addr = start(reg, AdminConfig::new().with_token(TOKEN)).await;

    let missing = set_state(addr, "payments", "forced_open", None).await;
    assert_eq!(missing.status, 401);
    assert!(missing.json()["error"].as_str().unwrap().contains("Bearer"));
    let wrong = set_state(addr, "payments", "forced_open", Some("guess")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(b.state(), CircuitState::Closed, "nothing changed without the token");

    for (state, expected) in [
        ("forced_open", CircuitState::ForcedOpen),
        ("disabled", CircuitState::Disabled),
        ("closed", CircuitState::Closed),
    ] {
        let answer = set_state(addr, "payments", state, Some(TOKEN)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json(), json!({ "name": "payments", "state": state }));
        assert_eq!(b.state(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_mutation_is_off_and_says_how_to_enable_it() {
    let reg = leaked();
    let b = reg.circuit_breakers().get_or_create("payments", breaker(5)).unwrap();
    let addr = start(reg, AdminConfig::new()).await;
    let answer = set_state(addr, "payments", "forced_open", Some("anything")).await;
    assert_eq!(answer.status, 403);
    assert!(answer.json()["error"].as_str().unwrap().contains("with_token"), "{}", answer.text);
    assert_eq!(b.state(), CircuitState::Closed);
    let get_on_post_route = get(addr, "/circuit-breakers/payments/state").await;
    assert_eq!(get_on_post_route.status, 405);
}

#[circuit_breaker(name = "admin-http-checkout", failure_threshold = 50)]
fn checkout() -> Result<u32, Error> {
    Ok(7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_over_http_is_seen_by_a_call_through_the_attribute() {
    assert_eq!(checkout().unwrap(), 7, "the call site resolved its circuit");
    let addr = start(registry(), AdminConfig::new().with_token(TOKEN)).await;

    let opened = set_state(addr, "admin-http-checkout", "forced_open", Some(TOKEN)).await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    assert!(matches!(checkout(), Err(Error::CircuitOpen { .. })));
    let stats = get(addr, "/circuit-breakers/admin-http-checkout").await.json();
    assert_eq!(stats["state"], "forced_open");
    assert_eq!(stats["rejections"], 1);

    let closed = set_state(addr, "admin-http-checkout", "closed", Some(TOKEN)).await;
    assert_eq!(closed.status, 200);
    assert_eq!(checkout().unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_a_transition_caused_by_failures() {
    let reg = leaked();
    let b = reg.circuit_breakers().get_or_create("inventory", breaker(2)).unwrap();
    let addr = start(reg, AdminConfig::new()).await;
    let mut events = Events::open(addr).await;

    fail(&b);
    fail(&b);
    let _ = b.call(|| Ok::<(), Error>(()));
    let transition = events.next().await;
    assert_eq!(transition["type"], "transition", "{transition}");
    assert_eq!(transition["layer"], "circuit_breaker");
    assert_eq!(transition["name"], "inventory");
    assert_eq!(
        (transition["from"].clone(), transition["to"].clone()),
        (json!("closed"), json!("open"))
    );
    assert!(transition["at"].is_number());
    let rejected = events.next().await;
    assert_eq!(
        (rejected["type"].clone(), rejected["name"].clone()),
        (json!("rejected"), json!("inventory"))
    );
}

// One thread: the server cannot drain the client's buffer while the calls run, so the
// client is stalled for the whole burst.
#[tokio::test]
async fn a_burst_of_10_000_events_is_delivered_or_counted_never_blocking_the_calls() {
    let reg = leaked();
    let b = reg.circuit_breakers().get_or_create("burst", breaker(1)).unwrap();
    let addr = start(reg, AdminConfig::new().event_buffer(256)).await;
    let mut events = Events::open(addr).await;
    fail(&b);
    assert_eq!(events.next().await["type"], "transition");

    // The client reads nothing while 10 000 rejections are reported on this thread: the
    // calls must finish (an observer that waited for the client would hang here).
    for _ in 0..10_000 {
        let _ = b.call(|| Ok::<(), Error>(()));
    }
    let (mut delivered, mut skipped) = (0u64, 0u64);
    while delivered + skipped < 10_000 {
        let event = events.next().await;
        match event["type"].as_str() {
            Some("rejected") => delivered += 1,
            Some("gap") => skipped += event["skipped"].as_u64().unwrap(),
            other => panic!("unexpected event {other:?}: {event}"),
        }
    }
    assert_eq!(delivered + skipped, 10_000, "every event delivered or counted in a gap");
    assert_eq!(delivered, 256, "a stalled client holds its buffer, no more");
    assert_eq!(skipped, 10_000 - 256);
    eprintln!(
        "burst of 10000 events: {delivered} delivered, {skipped} counted in gaps; a stalled \
         client holds at most 256 x {} bytes of events",
        std::mem::size_of::<resilience::events::Event>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_flips_to_503_with_the_open_circuits_and_back() {
    let reg = leaked();
    let b = reg.circuit_breakers().get_or_create("payments", breaker(1)).unwrap();
    reg.circuit_breakers().get_or_create("search", breaker(1)).unwrap();
    let addr = start(reg, AdminConfig::new()).await;
    assert_eq!(get(addr, "/health").await.status, 200);

    fail(&b);
    let down = get(addr, "/health").await;
    assert_eq!(down.status, 503);
    assert_eq!(down.json(), json!({ "status": "down", "open": ["payments"] }));

    reg.reset("payments").unwrap();
    let up = get(addr, "/health").await;
    assert_eq!((up.status, up.json()), (200, json!({ "status": "up" })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_counts_only_the_configured_circuits() {
    let reg = leaked();
    let search = reg.circuit_breakers().get_or_create("search", breaker(1)).unwrap();
    reg.circuit_breakers().get_or_create("payments", breaker(1)).unwrap();
    let addr = start(reg, AdminConfig::new().health_circuits(["payments"])).await;
    fail(&search);
    assert_eq!(get(addr, "/health").await.status, 200, "search does not count");
    reg.force_open("payments").unwrap();
    let down = get(addr, "/health").await;
    assert_eq!((down.status, down.json()["open"].clone()), (503, json!(["payments"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_serves_the_configured_renderer_as_prometheus_text() {
    let reg = leaked();
    let config = AdminConfig::new().with_metrics(|| "resilience_calls_total 3\n".to_owned());
    let addr = start(reg, config).await;
    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.content_type, "text/plain; version=0.0.4");
    assert_eq!(metrics.text, "resilience_calls_total 3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_refreshes_the_gauges_from_the_routers_registry() {
    // The only test of this binary that installs a recorder.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap();
    let reg = leaked();
    let config = RateLimitConfig::builder().per_second(1).burst(5).build().unwrap();
    let limiter = reg.rate_limiters().get_or_create("scrape-quota", config).unwrap();
    for _ in 0..3 {
        limiter.try_acquire(1).unwrap();
    }
    let config = AdminConfig::new().with_metrics(move || handle.render());
    let addr = start(reg, config).await;
    let text = get(addr, "/metrics").await.text;
    let line = |metric: &str| {
        text.lines()
            .find(|l| l.starts_with(metric) && l.contains("name=\"scrape-quota\""))
            .unwrap_or_else(|| panic!("{metric} missing from:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(line("resilience_rate_limiter_available_permits"), "2", "5 - 3 taken");
    assert_eq!(line("resilience_rate_limiter_permits_total"), "3", "granted at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_nests_under_a_prefix_of_the_service() {
    let reg = leaked();
    reg.circuit_breakers().get_or_create("payments", breaker(1)).unwrap();
    let app = axum::Router::new()
        .route("/orders", axum::routing::get(|| async { "orders" }))
        .nest("/resilience", resilience::admin::router(reg, AdminConfig::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(get(addr, "/orders").await.text, "orders");
    let circuits = get(addr, "/resilience/circuit-breakers").await.json();
    assert_eq!(circuits["circuit_breakers"][0]["name"], "payments");
    assert_eq!(get(addr, "/resilience").await.status, 200, "the dashboard at the prefix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_retries_and_budget_refusals() {
    use resilience::backoff::Backoff;
    use resilience::clock::ManualClock;
    use resilience::retry::{RetryBudgetConfig, RetryPolicy};

    let reg = leaked();
    let empty = RetryBudgetConfig::builder().ratio(0.001).min_retries_per_sec(0).build().unwrap();
    reg.retry_budgets().configure("orders-budget", empty);
    let policy = |name: &str, budget: bool| {
        let mut builder = RetryPolicy::builder()
            .name(name)
            .max_attempts(2)
            .backoff(Backoff::constant(Duration::ZERO))
            .clock(ManualClock::new().shared());
        if budget {
            builder = builder.budget(reg.retry_budget("orders-budget"));
        }
        let policy = builder.build().unwrap();
        reg.resolve_retry(name, || Ok(policy)).unwrap()
    };
    let addr = start(reg, AdminConfig::new()).await;
    let mut events = Events::open(addr).await;

    let _ =
        policy("search", false).call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    let _ =
        policy("orders", true).call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    let mut seen = Vec::new();
    while !seen.iter().any(|(t, _): &(String, String)| t == "budget_exhausted") {
        let e = events.next().await;
        seen.push((e["type"].as_str().unwrap().to_owned(), e["name"].as_str().unwrap().to_owned()));
    }
    let has = |t: &str, n: &str| seen.iter().any(|(a, b)| a == t && b == n);
    assert!(has("retry_scheduled", "search"), "{seen:?}");
    assert!(has("gave_up", "search"), "{seen:?}");
    assert!(has("budget_exhausted", "orders"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_circuit_is_operated_over_http_for_every_key() {
    let reg = leaked();
    let shops = reg.keyed_circuit_breakers().get_or_create("shops", breaker(5)).unwrap();
    shops.call("a.myshopify.com", || Ok::<(), Error>(())).unwrap();
    let addr = start(reg, AdminConfig::new().with_token(TOKEN).health_circuits(["shops"])).await;
    let opened = set_state(addr, "shops", "forced_open", Some(TOKEN)).await;
    assert_eq!(opened.json(), json!({ "name": "shops", "state": "forced_open" }));
    assert_eq!(shops.state("a.myshopify.com"), CircuitState::ForcedOpen);
    let stats = get(addr, "/circuit-breakers/shops").await.json();
    assert_eq!(
        (stats["open_keys"].clone(), stats["operator_state"].clone()),
        (json!(1), json!("forced_open"))
    );
    assert_eq!(shops.state("a key not seen yet"), CircuitState::ForcedOpen);
    let down = get(addr, "/health").await;
    assert_eq!((down.status, down.json()["open"].clone()), (503, json!(["shops"])));
    set_state(addr, "shops", "closed", Some(TOKEN)).await;
    assert_eq!(shops.state("a.myshopify.com"), CircuitState::Closed);
    assert_eq!(get(addr, "/health").await.status, 200);
    assert_eq!(get(addr, "/circuit-breakers/shops").await.json()["operator_state"], Value::Null);

    // Forced open as a whole with no key in memory still counts as down.
    let empty = reg.keyed_circuit_breakers().get_or_create("tenants", breaker(5)).unwrap();
    let addr = start(reg, AdminConfig::new().with_token(TOKEN).health_circuits(["tenants"])).await;
    set_state(addr, "tenants", "forced_open", Some(TOKEN)).await;
    assert!(empty.is_empty());
    assert_eq!(get(addr, "/health").await.status, 503);
}
