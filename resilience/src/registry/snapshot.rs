//! A point-in-time copy of every stat in the registry, printable as a table.

use std::fmt;

use crate::bulkhead::BulkheadStats;
use crate::circuit::CircuitStats;
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
    /// Rate limiters (direct and keyed), by name.
    pub rate_limiters: Vec<RateLimiterStats>,
    /// Bulkheads, by name.
    pub bulkheads: Vec<BulkheadStats>,
    /// Retry budgets, by name.
    pub retry_budgets: Vec<RetryBudgetStats>,
}

/// Write `rows` under `header` with every column as wide as its widest cell.
fn table(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> fmt::Result {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
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
    for row in rows {
        line(f, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0))
}

impl fmt::Display for RegistrySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.circuits.is_empty() && self.rate_limiters.is_empty() && self.bulkheads.is_empty() {
            return writeln!(f, "(the registry is empty)");
        }
        if !self.circuits.is_empty() {
            let rows: Vec<Vec<String>> = self
                .circuits
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.state.to_string(),
                        c.calls.to_string(),
                        c.successes.to_string(),
                        c.failures.to_string(),
                        c.rejections.to_string(),
                        rate(c.failure_rate),
                        c.consecutive_failures.to_string(),
                        c.transitions.to_string(),
                    ]
                })
                .collect();
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
            table(f, "Circuit breakers", &header, &rows)?;
        }
        if !self.rate_limiters.is_empty() {
            let rows: Vec<Vec<String>> = self
                .rate_limiters
                .iter()
                .map(|l| {
                    vec![
                        l.name.clone(),
                        format!("{:.2}/s", l.rate_per_second),
                        format!("{}/{}", l.available, l.capacity),
                        l.granted.to_string(),
                        l.waited.to_string(),
                        l.rejected.to_string(),
                        l.keys.map_or_else(|| "-".to_string(), |k| k.to_string()),
                    ]
                })
                .collect();
            let header = ["limiter", "rate", "available", "granted", "waited", "rejected", "keys"];
            table(f, "Rate limiters", &header, &rows)?;
        }
        if !self.bulkheads.is_empty() {
            let rows: Vec<Vec<String>> = self
                .bulkheads
                .iter()
                .map(|b| {
                    vec![
                        b.name.clone(),
                        format!("{}/{}", b.in_flight, b.max_concurrent),
                        b.completed.to_string(),
                        b.rejected.to_string(),
                    ]
                })
                .collect();
            table(f, "Bulkheads", &["bulkhead", "in flight", "completed", "rejected"], &rows)?;
        }
        if !self.retry_budgets.is_empty() {
            let rows: Vec<Vec<String>> = self
                .retry_budgets
                .iter()
                .map(|b| {
                    vec![
                        b.name.clone(),
                        b.calls.to_string(),
                        b.retries.to_string(),
                        b.exhausted.to_string(),
                    ]
                })
                .collect();
            table(f, "Retry budgets", &["budget", "calls", "retries", "refused"], &rows)?;
        }
        Ok(())
    }
}
