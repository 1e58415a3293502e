//! The fields of a text log line: a span's and an event's, without those that only steer
//! OpenTelemetry (`otel.name`, `otel.kind`, `otel.status_code`). They repeat the span's other
//! fields (`otel.name` is `{method} {route}`), and the fmt layer keeps a span's formatted fields
//! for as long as the span lives: an event stream's request span lives as long as its execution.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// `tracing_subscriber`'s default text fields, less the `otel.*` ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogFields;

impl<'writer> FormatFields<'writer> for LogFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = WithoutOtel(DefaultVisitor::new(writer, true));
        fields.record(&mut visitor);
        visitor.0.finish()
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // Not empty: the visitor puts a space before the first field it writes, and none when
        // every recorded field is skipped.
        let is_empty = current.fields.is_empty();
        let mut visitor = WithoutOtel(DefaultVisitor::new(current.as_writer(), is_empty));
        fields.record(&mut visitor);
        visitor.0.finish()
    }
}

struct WithoutOtel<V>(V);

fn shown(field: &Field) -> bool {
    !field.name().starts_with("otel.")
}

impl<V: Visit> Visit for WithoutOtel<V> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if shown(field) {
            self.0.record_f64(field, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if shown(field) {
            self.0.record_i64(field, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if shown(field) {
            self.0.record_u64(field, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if shown(field) {
            self.0.record_bool(field, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if shown(field) {
            self.0.record_str(field, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if shown(field) {
            self.0.record_error(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if shown(field) {
            self.0.record_debug(field, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::LogFields;

    /// What the fmt layer with [`LogFields`] writes while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let out = Arc::clone(&out);
            move || Sink(Arc::clone(&out))
        };
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(LogFields)
            .with_ansi(false)
            .without_time()
            .with_writer(writer);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        String::from_utf8(out.lock().unwrap().clone()).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_leave_out_what_only_steers_opentelemetry() {
        let text = logged(|| {
            let span = tracing::info_span!(
                "http_request",
                otel.name = "GET /v1/agents",
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                http.route = "/v1/agents",
                http.response.status_code = tracing::field::Empty,
            );
            span.record("otel.status_code", "error");
            span.record("http.response.status_code", 503);
            let _entered = span.enter();
            tracing::info!(otel.name = "hidden", outcome = "shown", "answered");
        });
        assert!(!text.contains("otel."), "{text}");
        assert!(!text.contains("hidden"), "{text}");
        assert!(
            text.contains(r#"http_request{http.route="/v1/agents" http.response.status_code=503}"#),
            "{text}"
        );
        assert!(text.contains(r#"answered outcome="shown""#), "{text}");
    }

    #[test]
    fn a_span_with_only_opentelemetry_fields_has_none_in_its_lines() {
        let text = logged(|| {
            let span = tracing::info_span!("call", otel.kind = "client");
            span.record("otel.kind", "server");
            let _entered = span.enter();
            tracing::info!("done");
        });
        assert!(text.contains("call: "), "{text}");
        assert!(!text.contains("otel"), "{text}");
    }
}
