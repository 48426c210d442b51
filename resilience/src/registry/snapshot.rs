//! A point-in-time copy of every stat in the registry, printable as a table.

use std::fmt;

use crate::bulkhead::BulkheadStats;
use crate::circuit::{CircuitStats, KeyedCircuitStats, ThrottleStats};
use crate::hedge::HedgeStats;
use crate::rate_limit::RateLimiterStats;
use crate::retry::RetryBudgetStats;

/// Stats of every named instance, from [`Registry::snapshot`](super::Registry::snapshot).
///
/// `Display` prints aligned tables (one per kind that has instances).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RegistrySnapshot {
    /// Circuit breakers, by name.
    pub circuits: Vec<CircuitStats>,
    /// Keyed circuit breakers, by name: totals and the worst keys.
    pub keyed_circuits: Vec<KeyedCircuitStats>,
    /// Circuits in mode `adaptive_throttle`, by name: requests and accepts in the window,
    /// rejections, the rejection probability.
    pub throttles: Vec<ThrottleStats>,
    /// Rate limiters (direct and keyed), by name.
    pub rate_limiters: Vec<RateLimiterStats>,
    /// Bulkheads, by name.
    pub bulkheads: Vec<BulkheadStats>,
    /// Retry budgets, by name.
    pub retry_budgets: Vec<RetryBudgetStats>,
    /// Hedges, by name.
    pub hedges: Vec<HedgeStats>,
    /// Names that have a config in the registry (set with `configure` or loaded from a
    /// file) but that nothing has used yet: no instance of that name, no call site
    /// resolving it, no attribute taking it as a preset. Often a typo.
    pub unused_configs: Vec<String>,
}

/// Write one row of cells per item under `header`, with every column as wide as its
/// widest cell; nothing at all when there are no items.
fn table<T>(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    header: &[&str],
    items: &[T],
    cells: impl Fn(&T) -> Vec<String>,
) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items.iter().map(cells).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    writeln!(f, "{title}")?;
    let line = |f: &mut fmt::Formatter<'_>, cells: &mut dyn Iterator<Item = &str>| -> fmt::Result {
        let mut first = true;
        for (cell, w) in cells.zip(&widths) {
            if first {
                write!(f, "  {cell:<w$}")?;
                first = false;
            } else {
                write!(f, "  {cell:>w$}")?;
            }
        }
        writeln!(f)
    };
    line(f, &mut header.iter().copied())?;
    for row in &rows {
        line(f, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// The cells of a row, each value as it displays.
fn cells<'a>(values: &'a [&'a dyn fmt::Display]) -> impl Iterator<Item = String> + 'a {
    values.iter().map(|v| v.to_string())
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0))
}

impl fmt::Display for RegistrySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.unused_configs.is_empty() {
            writeln!(
                f,
                "Configured but not used (yet): {} (a typo in a name?)",
                self.unused_configs.join(", ")
            )?;
        }
        if self.circuits.is_empty()
            && self.keyed_circuits.is_empty()
            && self.throttles.is_empty()
            && self.rate_limiters.is_empty()
            && self.bulkheads.is_empty()
            && self.hedges.is_empty()
        {
            return writeln!(f, "(the registry is empty)");
        }
        let header = [
            "circuit",
            "state",
            "calls",
            "ok",
            "failed",
            "rejected",
            "fail rate",
            "consec",
            "transitions",
        ];
        table(f, "Circuit breakers", &header, &self.circuits, |c| {
            let failure_rate = rate(c.failure_rate);
            let row: [&dyn fmt::Display; 9] = [
                &c.name,
                &c.state,
                &c.calls,
                &c.successes,
                &c.failures,
                &c.rejections,
                &failure_rate,
                &c.consecutive_failures,
                &c.transitions,
            ];
            cells(&row).collect()
        })?;
        let header = ["keyed circuit", "keys", "open", "calls", "failed", "rejected", "worst keys"];
        table(f, "Keyed circuit breakers", &header, &self.keyed_circuits, |c| {
            let worst: Vec<String> = c
                .worst
                .iter()
                .map(|w| format!("{} ({}, {} failed)", w.key, w.stats.state, w.stats.failures))
                .collect();
            let worst = if worst.is_empty() { "-".to_string() } else { worst.join(", ") };
            cells(&[&c.name, &c.keys, &c.open_keys, &c.calls, &c.failures, &c.rejections, &worst])
                .collect()
        })?;
        let header = ["throttle", "state", "k", "requests", "accepts", "rejected", "p(reject)"];
        table(f, "Adaptive throttles", &header, &self.throttles, |t| {
            vec![
                t.name.clone(),
                t.state.to_string(),
                format!("{:.2}", t.k),
                t.requests.to_string(),
                t.accepts.to_string(),
                t.rejections.to_string(),
                format!("{:.1}%", t.rejection_probability * 100.0),
            ]
        })?;
        let header = ["limiter", "rate", "available", "granted", "waited", "rejected", "keys"];
        table(f, "Rate limiters", &header, &self.rate_limiters, |l| {
            vec![
                l.name.clone(),
                format!("{:.2}/s", l.rate_per_second),
                format!("{}/{}", l.available, l.capacity),
                l.granted.to_string(),
                l.waited.to_string(),
                l.rejected.to_string(),
                l.keys.map_or_else(|| "-".to_string(), |k| k.to_string()),
            ]
        })?;
        let header = ["bulkhead", "in flight", "completed", "rejected"];
        table(f, "Bulkheads", &header, &self.bulkheads, |b| {
            let in_flight = format!("{}/{}", b.in_flight, b.max_concurrent);
            cells(&[&b.name, &in_flight, &b.completed, &b.rejected]).collect()
        })?;
        let header = ["budget", "calls", "retries", "refused"];
        table(f, "Retry budgets", &header, &self.retry_budgets, |b| {
            cells(&[&b.name, &b.calls, &b.retries, &b.exhausted]).collect()
        })?;
        let header = ["hedge", "delay", "calls", "hedges", "won", "refused"];
        table(f, "Hedges", &header, &self.hedges, |h| {
            let delay =
                h.delay_secs.map_or_else(|| "-".to_string(), |d| format!("{:.1}ms", d * 1e3));
            cells(&[&h.name, &delay, &h.calls, &h.hedges, &h.hedges_won, &h.budget_refusals])
                .collect()
        })?;
        Ok(())
    }
}
