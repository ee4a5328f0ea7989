//! Operator metrics in the Prometheus text format (`GET /metrics`): requests and latency by
//! operation and status, database pool use, statements and slow statements, report cache hits.
//! A few counters and histograms do not justify a metrics crate and its dependencies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Distinct operation names kept; names past this count as "other", so a client sending a
/// new operationName with every request cannot grow the metrics without bound.
const MAX_OPERATIONS: usize = 200;

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The server's counters, shared by every worker.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), Histogram>>,
}

/// What `/metrics` reads from elsewhere at scrape time.
pub struct Gauges {
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    pub statements: u64,
    pub slow_statements: u64,
    pub replica_reads: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, operation: &str, status: u16, elapsed: Duration) {
        let Ok(mut requests) = self.requests.lock() else {
            return;
        };
        let known = requests.keys().any(|(op, _)| op == operation);
        let distinct = requests
            .keys()
            .map(|(op, _)| op)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let name = if known || distinct < MAX_OPERATIONS {
            operation.to_string()
        } else {
            "other".to_string()
        };
        requests
            .entry((name, status))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP funnelgraph_requests_total Requests answered, by GraphQL operation (or route) and HTTP status."
        );
        let _ = writeln!(out, "# TYPE funnelgraph_requests_total counter");
        for ((op, status), h) in &requests {
            let _ = writeln!(
                out,
                "funnelgraph_requests_total{{operation=\"{}\",status=\"{status}\"}} {}",
                escape(op),
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP funnelgraph_request_duration_seconds Time from request to response."
        );
        let _ = writeln!(out, "# TYPE funnelgraph_request_duration_seconds histogram");
        for ((op, status), h) in &requests {
            let labels = format!("operation=\"{}\",status=\"{status}\"", escape(op));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "funnelgraph_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "funnelgraph_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "funnelgraph_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "funnelgraph_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        gauge(
            &mut out,
            "funnelgraph_db_pool_connections",
            "Open database connections in the pool.",
            "gauge",
            gauges.pool_connections.to_string(),
        );
        gauge(
            &mut out,
            "funnelgraph_db_pool_idle_connections",
            "Open connections not in use.",
            "gauge",
            gauges.pool_idle.to_string(),
        );
        gauge(
            &mut out,
            "funnelgraph_db_pool_max_connections",
            "The pool's size limit.",
            "gauge",
            gauges.pool_max.to_string(),
        );
        gauge(
            &mut out,
            "funnelgraph_db_statements_total",
            "SQL statements run.",
            "counter",
            gauges.statements.to_string(),
        );
        gauge(
            &mut out,
            "funnelgraph_db_slow_statements_total",
            "SQL statements slower than FUNNELGRAPH_SLOW_QUERY_MS (each is logged).",
            "counter",
            gauges.slow_statements.to_string(),
        );
        gauge(
            &mut out,
            "funnelgraph_db_replica_reads_total",
            "Reads served by the read replica (FUNNELGRAPH_DATABASE_READ_URL).",
            "counter",
            gauges.replica_reads.to_string(),
        );
        gauge(
            &mut out,
            "funnelgraph_report_cache_hits_total",
            "Report fact sets served from the cache.",
            "counter",
            gauges.cache_hits.to_string(),
        );
        gauge(
            &mut out,
            "funnelgraph_report_cache_misses_total",
            "Report fact sets read from the database.",
            "counter",
            gauges.cache_misses.to_string(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_into_buckets_by_operation_and_status() {
        let m = Metrics::default();
        m.observe("Dashboard", 200, Duration::from_millis(30));
        m.observe("Dashboard", 200, Duration::from_millis(300));
        m.observe("Dash\"board", 401, Duration::from_millis(1));
        let text = m.render(&Gauges {
            pool_connections: 3,
            pool_idle: 2,
            pool_max: 8,
            statements: 17,
            slow_statements: 0,
            replica_reads: 0,
            cache_hits: 1,
            cache_misses: 2,
        });
        assert!(
            text.contains("funnelgraph_requests_total{operation=\"Dashboard\",status=\"200\"} 2")
        );
        assert!(text.contains("funnelgraph_request_duration_seconds_bucket{operation=\"Dashboard\",status=\"200\",le=\"0.05\"} 1"));
        assert!(text.contains("funnelgraph_request_duration_seconds_bucket{operation=\"Dashboard\",status=\"200\",le=\"0.5\"} 2"));
        assert!(text.contains("operation=\"Dash\\\"board\",status=\"401\""));
        assert!(text.contains("funnelgraph_db_pool_max_connections 8"));
    }

    #[test]
    fn operation_names_past_the_cap_count_as_other() {
        let m = Metrics::default();
        for i in 0..MAX_OPERATIONS + 50 {
            m.observe(&format!("op{i}"), 200, Duration::from_millis(1));
        }
        let text = m.render(&Gauges {
            pool_connections: 0,
            pool_idle: 0,
            pool_max: 0,
            statements: 0,
            slow_statements: 0,
            replica_reads: 0,
            cache_hits: 0,
            cache_misses: 0,
        });
        assert!(text.contains("funnelgraph_requests_total{operation=\"other\",status=\"200\"} 50"));
    }
}
