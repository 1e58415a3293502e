//! The two text formats a scrape may ask for. prometheus-client writes OpenMetrics; the
//! Prometheus text format 0.0.4 is derived from it line by line:
//! - a counter's family is named after its samples (`# TYPE x_total counter`, samples
//!   `x_total`), as 0.0.4 parsers expect — OpenMetrics names the family `x` and a 0.0.4 parser
//!   would then read the `x_total` samples as an untyped metric of their own;
//! - no `# UNIT` lines and no `# EOF` (OpenMetrics only); type `unknown` is `untyped`.

use std::collections::HashSet;

/// What a scrape gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: the default.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`: only when the scrape asks for it.
    OpenMetrics,
}

const OPENMETRICS: &str = "application/openmetrics-text";

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of plain text (as
    /// Prometheus does), the text format otherwise (no header, `*/*`, `text/plain`, …).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut openmetrics = 0.0_f32;
        let mut text = 0.0_f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                OPENMETRICS => openmetrics = openmetrics.max(quality),
                "text/plain" | "text/*" | "*/*" => text = text.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

pub(crate) fn encode(
    registry: &prometheus_client::registry::Registry,
    format: Format,
) -> Result<String, std::fmt::Error> {
    let mut openmetrics = String::new();
    prometheus_client::encoding::text::encode(&mut openmetrics, registry)?;
    Ok(match format {
        Format::OpenMetrics => openmetrics,
        Format::Prometheus => to_prometheus(&openmetrics),
    })
}

/// OpenMetrics text → Prometheus text 0.0.4 (see the module's documentation).
fn to_prometheus(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + counters.len() * 12);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                text.push_str(prefix);
                text.push_str(name);
                if counters.contains(name) {
                    text.push_str("_total");
                }
                text.push(' ');
                text.push_str(if prefix == "# TYPE " && tail == "unknown" {
                    "untyped"
                } else {
                    tail
                });
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;

    use super::*;
    use crate::Registry;

    fn sample() -> Registry {
        let registry = Registry::new();
        let counter = Counter::<u64>::default();
        counter.inc();
        registry.register("frameos_things", "Things done", counter);
        let gauge = Gauge::<i64>::default();
        gauge.set(3);
        registry.register("frameos_waiting", "Things waiting", gauge);
        let histogram = Histogram::new([0.1, 1.0]);
        histogram.observe(0.5);
        registry.register_seconds("frameos_wait_duration", "Time waited", histogram);
        registry
    }

    #[test]
    fn prometheus_text_names_counter_families_after_their_samples() {
        let text = sample().encode(Format::Prometheus).unwrap();
        assert!(
            text.contains("# TYPE frameos_things_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP frameos_things_total Things done"),
            "{text}"
        );
        assert!(text.contains("\nframeos_things_total 1\n"), "{text}");
        assert!(
            text.contains("# TYPE frameos_waiting gauge\nframeos_waiting 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE frameos_wait_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("frameos_wait_duration_seconds_count 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_is_prometheus_clients_own() {
        let text = sample().encode(Format::OpenMetrics).unwrap();
        assert!(text.contains("# TYPE frameos_things counter\n"), "{text}");
        assert!(
            text.contains("# UNIT frameos_wait_duration_seconds seconds\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Prometheus
        );
        // What Prometheus sends.
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;version=0.0.4,application/openmetrics-text;q=0.5"
            )),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0")),
            Format::Prometheus
        );
    }
}
