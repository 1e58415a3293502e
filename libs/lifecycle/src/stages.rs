//! A service's stop, as named stages that run in order, each within its own time limit: a
//! stuck stage is logged and passed over, never waited for without end.

use std::future::Future;
use std::time::{Duration, Instant};

pub struct StopSequence {
    service: &'static str,
    started: Instant,
    grace: Duration,
}

impl StopSequence {
    /// Starts the stop of `service`, which should be over within `grace`.
    pub fn begin(service: &'static str, grace: Duration) -> StopSequence {
        tracing::info!(
            service,
            grace_secs = grace.as_secs_f64(),
            "shutdown started"
        );
        StopSequence {
            service,
            started: Instant::now(),
            grace,
        }
    }

    /// What is left of the grace.
    pub fn left(&self) -> Duration {
        self.grace.saturating_sub(self.started.elapsed())
    }

    /// Runs one stage for at most `limit`: its output, or `None` when it ran out of time (the
    /// stage's future is dropped then).
    pub async fn stage<F: Future>(
        &self,
        stage: &'static str,
        limit: Duration,
        work: F,
    ) -> Option<F::Output> {
        let started = Instant::now();
        match tokio::time::timeout(limit, work).await {
            Ok(output) => {
                tracing::info!(
                    service = self.service,
                    stage,
                    elapsed_ms = elapsed_ms(started),
                    "stop stage done"
                );
                Some(output)
            }
            Err(_) => {
                tracing::warn!(
                    service = self.service,
                    stage,
                    limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                    "stop stage ran out of time"
                );
                None
            }
        }
    }

    pub fn finish(self) {
        tracing::info!(
            service = self.service,
            elapsed_ms = elapsed_ms(self.started),
            "stopped"
        );
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
