//! Separate OS processes (the `redis-worker` binary) sharing one limit and one circuit
//! through Redis.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use resilience_tests::redis_server::{RedisServer, unique_prefix};

const WORKER: &str = env!("CARGO_BIN_EXE_redis-worker");

/// Runs `redis-worker args..` to completion and parses its `key=value` line.
fn parse(output: &Output) -> HashMap<String, String> {
    assert!(
        output.status.success(),
        "worker failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn number(fields: &HashMap<String, String>, key: &str) -> u64 {
    fields.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

/// Redis's clock, in seconds.
fn redis_time(con: &mut redis::Connection) -> f64 {
    let (secs, micros): (u64, u64) =
        redis::cmd("TIME").query(con).unwrap_or_else(|e| panic!("TIME: {e}"));
    secs as f64 + micros as f64 / 1e6
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn processes_share_one_limit_and_together_never_exceed_it() {
    let server = RedisServer::shared().unwrap_or_else(|| panic!("no Redis"));
    let mut admin = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("{e}"));
    let prefix = unique_prefix("processes-limit");
    let (per_second, burst, requests, processes) = (200u64, 100u64, 6_000u64, 2);

    let start = redis_time(&mut admin);
    // All processes start before any is waited for: they run at the same time.
    let running: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(WORKER)
                .args(["limit", server.url(), &prefix, "shop"])
                .args([requests.to_string(), per_second.to_string(), burst.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let children: Vec<Output> = running
        .into_iter()
        .map(|c| c.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}")))
        .collect();
    let elapsed = redis_time(&mut admin) - start;

    let results: Vec<_> = children.iter().map(parse).collect();
    let granted: u64 = results.iter().map(|r| number(r, "granted")).sum();
    // They overlapped: each started before the other finished.
    let (first, second) = (&results[0], &results[1]);
    assert!(
        number(first, "started") < number(second, "finished")
            && number(second, "started") < number(first, "finished"),
        "the processes ran one after the other: {results:?}"
    );
    let rejected: u64 = results.iter().map(|r| number(r, "rejected")).sum();
    for r in &results {
        assert_eq!(number(r, "unavailable"), 0, "{r:?}");
        assert!(number(r, "granted") > 0, "every process got permits: {results:?}");
    }
    assert_eq!(granted + rejected, requests * processes, "{results:?}");
    assert!(granted + rejected >= 10_000);
    // GCRA's guarantee over the run, on Redis's clock: at most burst + rate × elapsed
    // (+1 for the permit that refills as the window closes). Two unshared limiters would
    // each have granted about that much.
    let bound = burst as f64 + per_second as f64 * elapsed + 1.0;
    assert!(
        granted as f64 <= bound,
        "granted {granted} > {bound:.1} (burst {burst} + {per_second}/s × {elapsed:.3}s): {results:?}"
    );
    assert!(granted >= burst, "the full burst is granted: {granted}");
    eprintln!(
        "{processes} processes, {} requests, {elapsed:.3}s on Redis's clock: granted {granted} (bound {bound:.1})",
        requests * processes
    );
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_circuit_opened_in_one_process_rejects_calls_in_another() {
    let server = RedisServer::shared().unwrap_or_else(|| panic!("no Redis"));
    let prefix = unique_prefix("processes-circuit");
    let run = |mode: &str| {
        let out = Command::new(WORKER)
            .args([mode, server.url(), &prefix, "warehouse-db", "5"])
            .output()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        parse(&out)
    };
    let before = run("probe");
    assert_eq!(before.get("outcome").map(String::as_str), Some("ok"), "{before:?}");
    assert_eq!(number(&before, "calls"), 1);

    let tripped = run("trip");
    assert_eq!(number(&tripped, "failures"), 5, "opened after exactly 5 failures: {tripped:?}");

    let after = run("probe");
    assert_eq!(after.get("outcome").map(String::as_str), Some("rejected"), "{after:?}");
    assert_eq!(number(&after, "calls"), 0, "the rejected call never ran");
}

#[test]
fn backend_redis_without_any_url_is_an_error_naming_the_fix() {
    // A process with no `redis::configure` and no RESILIENCE_REDIS_URL.
    let out = Command::new(WORKER)
        .args(["orphan", "redis://unused", "unused", "orphan"])
        .env_remove("RESILIENCE_REDIS_URL")
        .output()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let fields = parse(&out);
    assert_eq!(fields.get("closed").map(String::as_str), Some("unavailable"), "{fields:?}");
    assert_eq!(fields.get("open").map(String::as_str), Some("local"), "{fields:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RESILIENCE_REDIS_URL"), "{stdout}");
}
