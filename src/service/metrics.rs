//! The signing service's Prometheus metrics (prometheus-client's text
//! exposition at `GET /metrics`): signatures made, requests and their
//! latency, token errors, jobs running and waiting, the token's state,
//! and each zone's earliest signature expiry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    pub zone: String,
}

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    pub signatures: Counter,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
    pub token_errors: Counter,
    pub jobs_running: Gauge,
    pub jobs_waiting: Gauge,
    pub token_up: Gauge,
    pub earliest_expiry: Family<ZoneLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dnsseal");
        let signatures = Counter::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 18))
        });
        let token_errors = Counter::default();
        let (jobs_running, jobs_waiting, token_up) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let earliest_expiry = Family::<ZoneLabels, Gauge>::default();
        registry.register("signatures", "RRSIGs made by the token", signatures.clone());
        registry.register(
            "requests",
            "Requests answered, by endpoint and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_seconds",
            "Request latency in seconds, by endpoint",
            latency.clone(),
        );
        registry.register(
            "token_errors",
            "Jobs and looks that failed on the token",
            token_errors.clone(),
        );
        registry.register(
            "jobs_running",
            "Signing jobs holding a job slot",
            jobs_running.clone(),
        );
        registry.register(
            "jobs_waiting",
            "Signing jobs waiting for their zone",
            jobs_waiting.clone(),
        );
        registry.register(
            "token_up",
            "1 when the token was last seen present",
            token_up.clone(),
        );
        registry.register(
            "zone_earliest_signature_expiry_seconds",
            "Unix time of the earliest RRSIG expiration in the zone's last signed version",
            earliest_expiry.clone(),
        );
        Metrics {
            registry,
            signatures,
            requests,
            latency,
            token_errors,
            jobs_running,
            jobs_waiting,
            token_up,
            earliest_expiry,
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// One answered request.
    pub fn answered(&self, endpoint: &str, status: u16, seconds: f64) {
        let endpoint = endpoint.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.clone(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_what_was_counted() {
        let m = Metrics::new();
        m.signatures.inc_by(42);
        m.answered("sign", 200, 0.25);
        m.earliest_expiry
            .get_or_create(&ZoneLabels {
                zone: "example.com.".into(),
            })
            .set(1_800_000_000);
        let text = m.render();
        assert!(text.contains("dnsseal_signatures_total 42"), "{text}");
        assert!(
            text.contains("dnsseal_requests_total{endpoint=\"sign\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dnsseal_request_seconds_count{endpoint=\"sign\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "dnsseal_zone_earliest_signature_expiry_seconds{zone=\"example.com.\"} 1800000000"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
