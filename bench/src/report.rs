//! Printing figures: tables in the operator tool's style, or one JSON object; percentiles.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

/// A table with a header row.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// Prints a table (or any text) on stdout.
pub(crate) fn line(text: impl std::fmt::Display) {
    println!("{text}");
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints an error with its chain of causes on stderr.
pub(crate) fn error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

/// The `p` quantile (0..=1) of sorted durations, nearest rank.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Milliseconds, fractional.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Mebibytes from kibibytes.
pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The median, 99th percentile and maximum of some latencies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Spread {
    pub(crate) fn of(mut latencies: Vec<Duration>) -> Spread {
        latencies.sort_unstable();
        Spread {
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
        }
    }
}
