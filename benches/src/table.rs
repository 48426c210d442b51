//! Reading criterion's results and printing the ratio table.
//!
//! Every benchmark group runs `resilience` (function id `resilience`) beside its peers on
//! the same workload; the table gives each median and the ratio `resilience / peer`
//! (below 1 = `resilience` is faster), checked against the issue's targets.
//!
//! ```
//! use resilience_benches::table::{Estimate, render};
//!
//! let rows = vec![
//!     Estimate { group: "limiter_direct_1t".into(), function: "resilience".into(), median_ns: 8.0 },
//!     Estimate { group: "limiter_direct_1t".into(), function: "governor".into(), median_ns: 16.0 },
//! ];
//! let table = render(&rows, &[]);
//! assert!(table.contains("| limiter_direct_1t | | governor | 16.0 | 0.50 | ≤ 1.00× | met |"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The function id of the subject in every group.
pub const SUBJECT: &str = "resilience";

/// The function id of `resilience` run on the `quanta` feature's TSC clock: a variant of
/// the subject, shown on its own line with its own ratios to the targeted peers.
pub const QUANTA_ROW: &str = "resilience (quanta clock)";

/// `Some("quanta clock")` for a variant of the subject such as [`QUANTA_ROW`].
fn variant(function: &str) -> Option<&str> {
    function.strip_prefix("resilience (")?.strip_suffix(')')
}

/// The function id of the baseline in the `redis_acquire_*` groups: one `PING` round trip
/// on the same backend as the Redis-backed limiter.
pub const REDIS_PING: &str = "redis_ping";

/// The file (in the cargo target directory) where the memory benchmark writes its rows.
pub const MEMORY_FILE: &str = "resilience-memory.json";

/// One benchmark's median, as criterion estimated it.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Criterion group id, e.g. `breaker_closed_1t`.
    pub group: String,
    /// Function id inside the group: `resilience` or a peer / baseline.
    pub function: String,
    /// Median time per iteration, nanoseconds.
    pub median_ns: f64,
}

/// One row of the memory table: bytes for `what`, ours and (if any) the peer's.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    /// What is measured, e.g. `bytes per key at 1M keys`.
    pub what: String,
    /// `resilience`'s bytes.
    pub resilience: f64,
    /// The peer measured on the same workload, if any.
    pub peer: Option<(String, f64)>,
}

/// A target from the issue, for one (group, peer) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// `resilience / peer` at most this.
    Ratio(f64),
    /// `resilience - peer` at most this many nanoseconds.
    DiffNs(f64),
}

/// The issue's target for `function` in `group`, if it sets one.
pub fn target(group: &str, function: &str) -> Option<Target> {
    let two_threads = group.ends_with("_2t");
    match (group, function) {
        (g, "recloser") if g.starts_with("breaker_closed") && !two_threads => {
            Some(Target::Ratio(0.6))
        }
        (g, "atomic_increment") if g.starts_with("breaker_closed") => Some(Target::Ratio(2.0)),
        (g, "governor") if g.starts_with("limiter_") && !g.starts_with("limiter_reject") => {
            Some(Target::Ratio(1.0))
        }
        (g, "bare") if g.starts_with("retry_") => Some(Target::DiffNs(2.0)),
        (g, "backon") if g.starts_with("retry_") => Some(Target::Ratio(1.0)),
        ("macro_circuit_breaker", "hand_written") => Some(Target::Ratio(1.05)),
        ("metrics_resilient_sync", "metrics_off") => Some(Target::DiffNs(50.0)),
        (g, REDIS_PING) if g.starts_with("redis_acquire") => Some(Target::Ratio(1.5)),
        ("redis_leased_acquire", "governor") => Some(Target::Ratio(2.0)),
        ("tower_breaker_limiter", "tower-resilience" | "tower-limit-RateLimit") => {
            Some(Target::Ratio(1.0))
        }
        (g, _) if two_threads && g.starts_with("breaker_closed") => Some(Target::Ratio(1.0)),
        _ => None,
    }
}

/// Absolute target for `resilience` in `group` (nanoseconds per call), if any.
pub fn absolute_target(group: &str) -> Option<f64> {
    (group == "macro_resilient_sync").then_some(40.0)
}

/// Every `<dir>/**/new/{benchmark,estimates}.json` pair under criterion's output
/// directory, sorted by group then function.
pub fn collect(criterion_dir: &Path) -> std::io::Result<Vec<Estimate>> {
    let mut out = Vec::new();
    let mut stack = vec![criterion_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some(e) = read_estimate(&path) {
                    out.push(e);
                }
            } else {
                stack.push(path);
            }
        }
    }
    out.sort_by(|a, b| (&a.group, &a.function).cmp(&(&b.group, &b.function)));
    Ok(out)
}

fn read_json(path: PathBuf) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn read_estimate(new_dir: &Path) -> Option<Estimate> {
    let bench = read_json(new_dir.join("benchmark.json"))?;
    let estimates = read_json(new_dir.join("estimates.json"))?;
    Some(Estimate {
        group: bench.get("group_id")?.as_str()?.to_owned(),
        function: bench.get("function_id")?.as_str()?.to_owned(),
        median_ns: estimates.get("median")?.get("point_estimate")?.as_f64()?,
    })
}

/// Parse the memory benchmark's JSON rows (see [`memory_json`]).
pub fn parse_memory(text: &str) -> Vec<MemoryRow> {
    let Ok(Value::Array(rows)) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|r| {
            let peer = match (
                r.get("peer_name").and_then(Value::as_str),
                r.get("peer").and_then(Value::as_f64),
            ) {
                (Some(n), Some(b)) => Some((n.to_owned(), b)),
                _ => None,
            };
            Some(MemoryRow {
                what: r.get("what")?.as_str()?.to_owned(),
                resilience: r.get("resilience")?.as_f64()?,
                peer,
            })
        })
        .collect()
}

/// The memory rows as the JSON [`parse_memory`] reads.
pub fn memory_json(rows: &[MemoryRow]) -> String {
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "what": r.what,
                "resilience": r.resilience,
                "peer_name": r.peer.as_ref().map(|p| p.0.clone()),
                "peer": r.peer.as_ref().map(|p| p.1),
            })
        })
        .collect();
    Value::Array(values).to_string()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// The subject's line (labelled `label`) and one line per peer with the ratio; with
/// `targeted_only`, only the peers that carry a target.
fn subject_rows(
    s: &mut String,
    group: &str,
    label: &str,
    ours: f64,
    peers: &[&Estimate],
    targeted_only: bool,
) {
    let _ = match absolute_target(group) {
        Some(limit) => writeln!(
            s,
            "| {label} | {ours:.1} | | | | ≤ {limit:.0} ns | {} |",
            verdict(ours <= limit)
        ),
        None => writeln!(s, "| {label} | {ours:.1} | | | | | |"),
    };
    for peer in peers {
        let ratio = ours / peer.median_ns;
        let (goal, ok) = match target(group, &peer.function) {
            Some(Target::Ratio(r)) => (format!("≤ {r:.2}×"), Some(ratio <= r)),
            Some(Target::DiffNs(d)) => (format!("≤ +{d:.0} ns"), Some(ours - peer.median_ns <= d)),
            None if targeted_only => continue,
            None => (String::new(), None),
        };
        let _ = writeln!(
            s,
            "| {label} | | {} | {:.1} | {ratio:.2} | {goal} | {} |",
            peer.function,
            peer.median_ns,
            ok.map(verdict).unwrap_or("")
        );
    }
}

/// Keyed limiter groups on distinct keys whose two-thread throughput is compared with
/// one thread's.
const SCALING_GROUPS: [&str; 1] = ["limiter_keyed_1024keys"];

/// Functions named so measure the machine, not a peer: they appear in the scaling table
/// (the machine's own two-thread scaling on work that shares nothing) and not in the
/// ratio table.
pub const CALIBRATION_PREFIX: &str = "calibration";

/// The issue's target: two threads on distinct keys make at least this many times the
/// calls per second of one thread.
const SCALING_TARGET: f64 = 1.6;

/// The scaling table: for each of [`SCALING_GROUPS`], the calls per second of two threads
/// (each on its own half of the keys) over those of one thread, `2 × t(1t) / t(2t)` (a
/// two-thread group's time is the wall time for both threads to make one call each),
/// for `resilience` and each peer measured in both groups.
fn scaling_rows(s: &mut String, estimates: &[Estimate]) {
    let median = |group: &str, function: &str| {
        estimates.iter().find(|e| e.group == group && e.function == function).map(|e| e.median_ns)
    };
    let mut header = false;
    for base in SCALING_GROUPS {
        let (one, two) = (format!("{base}_1t"), format!("{base}_2t"));
        for e in estimates.iter().filter(|e| e.group == one) {
            let (Some(t1), Some(t2)) = (median(&one, &e.function), median(&two, &e.function))
            else {
                continue;
            };
            if !header {
                let _ = writeln!(
                    s,
                    "\n| 2 threads on distinct keys | function | ops/s, 1 thread | ops/s, 2 threads | scaling | target | verdict |"
                );
                let _ = writeln!(s, "|---|---|---:|---:|---:|---|---|");
                header = true;
            }
            let scaling = 2.0 * t1 / t2;
            let (target, verdict) = if e.function == SUBJECT {
                let ok = scaling >= SCALING_TARGET;
                (format!("≥ {SCALING_TARGET:.2}×"), if ok { "met" } else { "MISSED" })
            } else {
                (String::new(), "")
            };
            let _ = writeln!(
                s,
                "| {base} | {} | {:.3e} | {:.3e} | {scaling:.2} | {target} | {verdict} |",
                e.function,
                1e9 / t1,
                2e9 / t2,
            );
        }
    }
}

/// The markdown tables: timings (one row per peer, with the ratio and target) and memory.
pub fn render(estimates: &[Estimate], memory: &[MemoryRow]) -> String {
    let mut groups: BTreeMap<&str, Vec<&Estimate>> = BTreeMap::new();
    for e in estimates {
        groups.entry(e.group.as_str()).or_default().push(e);
    }
    let mut s = String::new();
    let _ =
        writeln!(s, "| group | resilience (ns) | peer | peer (ns) | ratio | target | verdict |");
    let _ = writeln!(s, "|---|---:|---|---:|---:|---|---|");
    for (group, rows) in &groups {
        let Some(ours) = rows.iter().find(|e| e.function == SUBJECT) else {
            continue;
        };
        let peers: Vec<&Estimate> = rows
            .iter()
            .copied()
            .filter(|e| {
                e.function != SUBJECT
                    && variant(&e.function).is_none()
                    && !e.function.starts_with(CALIBRATION_PREFIX)
            })
            .collect();
        subject_rows(&mut s, group, group, ours.median_ns, &peers, false);
        for v in rows.iter() {
            if let Some(what) = variant(&v.function) {
                let label = format!("{group} ({what})");
                subject_rows(&mut s, group, &label, v.median_ns, &peers, true);
            }
        }
    }
    scaling_rows(&mut s, estimates);
    if !memory.is_empty() {
        let _ = writeln!(s, "\n| memory | resilience (bytes) | peer | peer (bytes) | ratio |");
        let _ = writeln!(s, "|---|---:|---|---:|---:|");
        for m in memory {
            match &m.peer {
                Some((name, bytes)) => {
                    let _ = writeln!(
                        s,
                        "| {} | {:.0} | {name} | {bytes:.0} | {:.2} |",
                        m.what,
                        m.resilience,
                        m.resilience / bytes
                    );
                }
                None => {
                    let _ = writeln!(s, "| {} | {:.0} | | | |", m.what, m.resilience);
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(group: &str, function: &str, median_ns: f64) -> Estimate {
        Estimate { group: group.into(), function: function.into(), median_ns }
    }

    #[test]
    fn ratio_is_ours_over_the_peers_and_checked_against_the_target() {
        let rows = [
            est("breaker_closed_1t", "resilience", 6.0),
            est("breaker_closed_1t", "recloser", 20.0),
            est("breaker_closed_1t", "atomic_increment", 2.0),
        ];
        let t = render(&rows, &[]);
        assert!(
            t.contains("| breaker_closed_1t | | recloser | 20.0 | 0.30 | ≤ 0.60× | met |"),
            "{t}"
        );
        assert!(
            t.contains(
                "| breaker_closed_1t | | atomic_increment | 2.0 | 3.00 | ≤ 2.00× | MISSED |"
            ),
            "{t}"
        );
    }

    #[test]
    fn keyed_two_thread_scaling_is_throughput_over_one_thread() {
        let rows = [
            est("limiter_keyed_1024keys_1t", "resilience", 20.0),
            est("limiter_keyed_1024keys_2t", "resilience", 20.0),
            est("limiter_keyed_1024keys_1t", "governor", 30.0),
            est("limiter_keyed_1024keys_2t", "governor", 40.0),
        ];
        let t = render(&rows, &[]);
        assert!(
            t.contains(
                "| limiter_keyed_1024keys | resilience | 5.000e7 | 1.000e8 | 2.00 | ≥ 1.60× | met |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| limiter_keyed_1024keys | governor | 3.333e7 | 5.000e7 | 1.50 |  |  |"),
            "{t}"
        );
    }

    #[test]
    fn a_calibration_row_is_in_the_scaling_table_and_not_among_the_peers() {
        let rows = [
            est("limiter_keyed_1024keys_1t", "resilience", 20.0),
            est("limiter_keyed_1024keys_2t", "resilience", 20.0),
            est("limiter_keyed_1024keys_1t", "calibration-hash-only", 10.0),
            est("limiter_keyed_1024keys_2t", "calibration-hash-only", 8.0),
        ];
        let t = render(&rows, &[]);
        assert!(
            t.contains(
                "| limiter_keyed_1024keys | calibration-hash-only | 1.000e8 | 2.500e8 | 2.50 |  |  |"
            ),
            "{t}"
        );
        assert!(!t.contains("| | calibration-hash-only |"), "no ratio row: {t}");
    }

    #[test]
    fn retry_against_the_bare_call_is_an_absolute_difference() {
        let rows = [
            est("retry_sync_first_success", "resilience", 3.5),
            est("retry_sync_first_success", "bare", 1.0),
        ];
        let t = render(&rows, &[]);
        assert!(t.contains("| bare | 1.0 | 3.50 | ≤ +2 ns | MISSED |"), "{t}");
    }

    #[test]
    fn absolute_target_is_shown_on_the_subject_row() {
        let rows = [
            est("macro_resilient_sync", "resilience", 38.0),
            est("macro_resilient_sync", "bare", 1.0),
        ];
        let t = render(&rows, &[]);
        assert!(t.contains("| macro_resilient_sync | 38.0 | | | | ≤ 40 ns | met |"), "{t}");
        let slower = [est("macro_resilient_sync", "resilience", 42.0)];
        let t = render(&slower, &[]);
        assert!(t.contains("| macro_resilient_sync | 42.0 | | | | ≤ 40 ns | MISSED |"), "{t}");
    }

    #[test]
    fn a_variant_of_the_subject_gets_its_own_line_and_ratios() {
        let rows = [
            est("limiter_direct_1t", "resilience", 40.0),
            est("limiter_direct_1t", QUANTA_ROW, 10.0),
            est("limiter_direct_1t", "governor", 20.0),
            est("limiter_direct_1t", "diag_default_clock_now", 30.0),
        ];
        let t = render(&rows, &[]);
        assert!(
            t.contains("| limiter_direct_1t | | governor | 20.0 | 2.00 | ≤ 1.00× | MISSED |"),
            "{t}"
        );
        assert!(t.contains("| limiter_direct_1t (quanta clock) | 10.0 | | | | | |"), "{t}");
        assert!(
            t.contains(
                "| limiter_direct_1t (quanta clock) | | governor | 20.0 | 0.50 | ≤ 1.00× | met |"
            ),
            "{t}"
        );
        // Untargeted diagnostics are shown once, against the subject only.
        assert_eq!(t.matches("diag_default_clock_now").count(), 1, "{t}");
        assert!(!t.contains("| | resilience (quanta clock)"), "{t}");
    }

    #[test]
    fn redis_acquire_is_held_to_one_and_a_half_pings() {
        let rows = [
            est("redis_acquire_async", "resilience", 45_000.0),
            est("redis_acquire_async", "resilience (keyed, 1024 keys)", 60_000.0),
            est("redis_acquire_async", REDIS_PING, 35_000.0),
        ];
        let t = render(&rows, &[]);
        assert!(
            t.contains("| redis_acquire_async | | redis_ping | 35000.0 | 1.29 | ≤ 1.50× | met |"),
            "{t}"
        );
        assert!(
            t.contains(
                "| redis_acquire_async (keyed, 1024 keys) | | redis_ping | 35000.0 | 1.71 | ≤ 1.50× | MISSED |"
            ),
            "{t}"
        );
    }

    #[test]
    fn group_without_the_subject_is_skipped() {
        let t = render(&[est("other", "governor", 1.0)], &[]);
        assert!(!t.contains("other"), "{t}");
    }

    #[test]
    fn memory_rows_round_trip_through_json() {
        let rows = vec![
            MemoryRow { what: "per breaker".into(), resilience: 400.0, peer: None },
            MemoryRow {
                what: "per key".into(),
                resilience: 90.0,
                peer: Some(("governor".into(), 120.0)),
            },
        ];
        assert_eq!(parse_memory(&memory_json(&rows)), rows);
        let t = render(&[], &rows);
        assert!(t.contains("| per key | 90 | governor | 120 | 0.75 |"), "{t}");
    }

    #[test]
    fn garbage_memory_json_gives_no_rows() {
        assert!(parse_memory("not json").is_empty());
        assert!(parse_memory("{}").is_empty());
    }

    #[test]
    fn collect_reads_criterion_layout() -> std::io::Result<()> {
        let dir =
            std::env::temp_dir().join(format!("resilience-benches-collect-{}", std::process::id()));
        let new = dir.join("g").join("resilience").join("new");
        std::fs::create_dir_all(&new)?;
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"g","function_id":"resilience"}"#,
        )?;
        std::fs::write(new.join("estimates.json"), r#"{"median":{"point_estimate":12.5}}"#)?;
        let got = collect(&dir);
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(got?, vec![est("g", "resilience", 12.5)]);
        Ok(())
    }
}
