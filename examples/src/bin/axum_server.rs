//! An axum server with per-client rate limits (429 with `Retry-After` and `RateLimit`
//! headers, keyed by the `x-api-key` header) whose handler calls a flaky upstream through
//! a `ResilienceLayer` on a hyper client (503s retried, breaker and limiter per the
//! `api` preset).
//!
//! It starts the upstream and the server on free 127.0.0.1 ports, sends `--requests N`
//! requests (default 12) from two API keys, prints what each got, and exits.
//!
//! `cargo run -p resilience-examples --bin axum_server -- --requests 12`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::get;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use resilience::tower::{RateLimitLayer, Resilience, ResilienceLayer};
use resilience::{KeyedRateLimiter, Preset, RateLimitConfig};
use tower::{Layer, ServiceExt};

type Upstream = Resilience<Client<HttpConnector, Full<Bytes>>>;

/// Every third call fails with 503 and `Retry-After: 0`.
async fn flaky(
    State(calls): State<Arc<AtomicU32>>,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    if calls.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
        (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")], "busy")
    } else {
        (StatusCode::OK, [("x-upstream", "1")], "42.17")
    }
}

/// The server's handler: the upstream's quote, through the client layer.
async fn quote(State((upstream, addr)): State<(Upstream, SocketAddr)>) -> (StatusCode, String) {
    let request = http::Request::get(format!("http://{addr}/price")).body(Full::default());
    let Ok(request) = request else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "bad upstream address".into());
    };
    match upstream.oneshot(request).await {
        Ok(response) if response.status().is_success() => {
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            match body {
                Ok(bytes) => (StatusCode::OK, String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
            }
        }
        Ok(response) => {
            (StatusCode::BAD_GATEWAY, format!("upstream answered {}", response.status()))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream refused: {e}")),
    }
}

async fn serve(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn requests_flag() -> Result<u32, String> {
    let mut args = std::env::args().skip(1);
    let mut n = 12;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => {
                let v = args.next().ok_or("--requests needs a number")?;
                n = v.parse().map_err(|_| format!("--requests: not a number: {v}"))?;
            }
            other => {
                return Err(format!("unknown argument {other}; usage: axum_server [--requests N]"));
            }
        }
    }
    Ok(n)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests = requests_flag()?;

    // The upstream: a flaky price service.
    let upstream_addr =
        serve(Router::new().route("/price", get(flaky)).with_state(Arc::new(AtomicU32::new(0))))
            .await?;

    // The client layer on the upstream call: the `api` preset's retry, breaker, limiter,
    // bulkhead and timeout, named like an attribute would name them.
    let http = Client::builder(TokioExecutor::new()).build_http();
    let upstream = ResilienceLayer::from_preset("quotes-upstream", Preset::Api)?.layer(http);

    // The server: 3 requests per API key at once, then 1 per second.
    let per_client = Arc::new(KeyedRateLimiter::new(
        "quotes-per-client",
        RateLimitConfig::builder().per_second(1).burst(3).build()?,
    ));
    let api_key = |r: &Request| {
        r.headers().get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("anonymous").to_owned()
    };
    let app = Router::new()
        .route("/quote", get(quote))
        .with_state((upstream, upstream_addr))
        .layer(RateLimitLayer::keyed(per_client, api_key).answer_too_many_requests());
    let addr = serve(app).await?;
    println!("upstream on {upstream_addr}, server on {addr}");

    // A client of the server: two API keys, `requests` requests in all.
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let (mut ok, mut limited) = (0, 0);
    for i in 0..requests {
        let key = if i % 4 == 3 { "bob" } else { "alice" };
        let request = http::Request::get(format!("http://{addr}/quote"))
            .header("x-api-key", key)
            .body(Full::default())?;
        let response = client.request(request).await?;
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let body = response.into_body().collect().await?.to_bytes();
        match retry_after {
            Some(wait) => {
                limited += 1;
                println!("{key:>5}: {status} (retry after {}s)", wait.to_str().unwrap_or("?"));
            }
            None => {
                ok += 1;
                println!("{key:>5}: {status} {}", String::from_utf8_lossy(&body));
            }
        }
    }
    println!("{ok} answered, {limited} limited");
    Ok(())
}
