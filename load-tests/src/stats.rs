//! Latency distributions: an HDR histogram in microseconds, summarised in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest value a histogram tracks (one hour, in microseconds); larger values are clamped.
const MAX_MICROS: u64 = 3_600_000_000;

/// Records durations with 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        // Constant bounds within hdrhistogram's limits: this cannot fail at run time.
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid");
        Self { hist }
    }

    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS);
        self.hist.saturating_record(micros);
    }

    /// Records a duration given in (possibly negative, from clock skew) milliseconds.
    pub fn record_ms(&mut self, ms: i64) {
        self.record(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail; a failure would only lose samples.
        let _ = self.hist.add(&other.hist);
    }

    pub fn summary(&self) -> Summary {
        if self.hist.is_empty() {
            return Summary::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Summary {
            count: self.hist.len(),
            min_ms: ms(self.hist.min()),
            mean_ms: self.hist.mean() / 1000.0,
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
        }
    }
}

/// A distribution's key figures, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Header of the table [`Summary::row`] fills.
pub const TABLE_HEADER: &str =
    "| measure | n | p50 ms | p90 ms | p99 ms | max ms | mean ms |\n|---|---:|---:|---:|---:|---:|---:|\n";

impl Summary {
    /// One markdown table row (see [`TABLE_HEADER`]).
    pub fn row(&self, label: &str) -> String {
        if self.count == 0 {
            return format!("| {label} | 0 | – | – | – | – | – |\n");
        }
        format!(
            "| {label} | {} | {} | {} | {} | {} | {} |\n",
            self.count,
            fmt_ms(self.p50_ms),
            fmt_ms(self.p90_ms),
            fmt_ms(self.p99_ms),
            fmt_ms(self.max_ms),
            fmt_ms(self.mean_ms),
        )
    }
}

/// Milliseconds with a precision that suits their size: 0.123, 12.3, 1234.
pub fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.3}")
    } else if ms < 1000.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// `a / b - 1` as a signed percentage ("+12.3%"), or "n/a" when `b` is zero.
pub fn overhead_pct(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "n/a".to_string();
    }
    format!("{:+.1}%", (a / b - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let mut l = Latencies::new();
        for i in 1..=100 {
            l.record(Duration::from_millis(i));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        // Three significant digits: values are exact to within 0.1%.
        assert!((s.p50_ms - 50.0).abs() < 0.06, "{s:?}");
        assert!((s.p90_ms - 90.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
        assert!((s.mean_ms - 50.5).abs() < 0.1, "{s:?}");
    }

    #[test]
    fn negative_and_huge_values_are_clamped() {
        let mut l = Latencies::new();
        l.record_ms(-5);
        l.record(Duration::from_secs(10 * 3600));
        let s = l.summary();
        assert_eq!(s.count, 2);
        assert!(s.min_ms <= 0.001 + f64::EPSILON, "{s:?}");
        assert!(s.max_ms >= 3_590_000.0, "{s:?}");
    }

    #[test]
    fn rows_and_numbers_are_formatted_for_reading() {
        assert_eq!(fmt_ms(0.1234), "0.123");
        assert_eq!(fmt_ms(12.345), "12.3");
        assert_eq!(fmt_ms(1234.5), "1234");
        assert_eq!(overhead_pct(115.0, 100.0), "+15.0%");
        assert_eq!(overhead_pct(90.0, 100.0), "-10.0%");
        assert_eq!(overhead_pct(1.0, 0.0), "n/a");
        let mut l = Latencies::new();
        l.record(Duration::from_millis(20));
        let row = l.summary().row("post");
        assert!(row.starts_with("| post | 1 | 20.0 | 20.0 | 20.0 | 20.0 | 20.0 |"), "{row}");
        assert_eq!(Summary::default().row("none"), "| none | 0 | – | – | – | – | – |\n");
    }
}
