//! Prometheus metrics of the REST API: `frameos_http_requests_total{method,route,status}` and
//! `frameos_http_request_duration_seconds{method,route}`. Each gateway has its own registry
//! (several gateways in one test never mix their counts), unless it is given one to share:
//! `frameos dev` serves every in-process service's families on the gateway's `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use frameos_metrics::Registry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// Route label of requests no route matched; raw paths would make the label set unbounded.
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

type DurationFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: DurationFamily,
}

impl Metrics {
    /// Registers the HTTP families in `registry`, which `/metrics` serves.
    pub fn new(registry: Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 5 ms … ~20 s: from a cached read to a large package upload.
        let durations: DurationFamily =
            Family::new_with_constructor(|| Histogram::new(frameos_metrics::duration_buckets()));
        registry.register(
            "frameos_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register_seconds(
            "frameos_http_request_duration",
            "Time to answer an HTTP request, by method and route template",
            durations.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
        }
    }

    fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method).to_string();
        let route = route.to_string();
        self.durations
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }
}

/// Unknown methods share one label value, for the same reason as [`UNMATCHED`].
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware recording every request under its route template (`/v1/agents/{slug}`).
pub async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`: Prometheus text, or OpenMetrics when the scrape asks for it.
pub async fn scrape(metrics: &Metrics, headers: &HeaderMap) -> Response {
    frameos_metrics::respond(&metrics.registry, headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_template() {
        let metrics = Metrics::new(Registry::new());
        metrics.observe(&Method::GET, "/v1/agents/{slug}", 200, 0.01);
        metrics.observe(&Method::GET, "/v1/agents/{slug}", 200, 0.02);
        metrics.observe(&Method::from_bytes(b"BREW").unwrap(), UNMATCHED, 404, 0.001);
        let text = metrics
            .registry
            .encode(frameos_metrics::Format::Prometheus)
            .unwrap();
        assert!(
            text.contains(r#"frameos_http_requests_total{method="GET",route="/v1/agents/{slug}",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(
            r#"frameos_http_requests_total{method="OTHER",route="unmatched",status="404"} 1"#
        ));
        assert!(text.contains(
            r#"frameos_http_request_duration_seconds_count{method="GET",route="/v1/agents/{slug}"} 2"#
        ));
    }
}
