//! The benchmark scenarios. Each one measures Corral and, in the same run, a baseline that
//! does the same work without Corral, so the two figures share the machine's conditions.

mod amqp_roundtrip;
pub mod claims;
mod claims_engine;
mod claims_pool;
mod claims_refill;
mod claims_report;
pub mod corral_pod;
mod jupyterhub;
mod jupyterhub_storm;
pub mod pipeline;
mod pipeline_load;
mod pipeline_report;
pub mod raw_amqp;
pub mod raw_docker;
pub mod requests;
pub mod scale;
pub mod scale_out;
mod scale_out_report;
pub mod scale_probe;
mod scale_report;
mod scale_spawner;
pub mod spawn_latency;
pub mod spawn_storm;
mod storm_corral;
mod storm_raw;
mod storm_report;

/// What a scenario hands to the report.
#[derive(Debug)]
pub struct Outcome {
    pub params: serde_json::Value,
    pub results: serde_json::Value,
    pub markdown: String,
}

/// A short random tag (lowercase hex) that keeps this run's names apart from others'.
pub fn run_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_string()
}

/// Median of a list (0 when empty).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_empty_lists() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
