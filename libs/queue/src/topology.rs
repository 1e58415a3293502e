use std::collections::BTreeMap;
use std::time::Duration;

use crate::Error;

/// Names and retry policy of one job queue. The RabbitMQ queues derived from it are `{name}`,
/// `{name}.dead` and one `{name}.retry.{ms}` per back-off level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub name: String,
    pub max_priority: u8,
    /// Deliveries of one job (the first one included) before it goes to the dead-letter queue.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            name: "frameos.jobs".to_string(),
            max_priority: 9,
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

pub(crate) enum RetryStep {
    After(Duration),
    Exhausted,
}

impl Topology {
    /// A topology named `name` with the operator's retry settings (at least one delivery and a
    /// 1 ms base delay), defaults otherwise.
    pub fn configured(name: &str, max_attempts: u32, retry_base_ms: u64) -> Topology {
        Topology {
            name: name.to_string(),
            max_attempts: max_attempts.max(1),
            base_delay: Duration::from_millis(retry_base_ms.max(1)),
            ..Topology::default()
        }
    }

    /// The wait before delivery `attempt + 1`: `base_delay * 2^(attempt-1)`, capped at `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        self.base_delay
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    pub(crate) fn retry_step(&self, attempt: u32) -> RetryStep {
        if attempt >= self.max_attempts {
            RetryStep::Exhausted
        } else {
            RetryStep::After(self.backoff(attempt))
        }
    }

    /// Every distinct back-off a retry can use, shortest first: one delay queue each.
    pub(crate) fn retry_delays(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = (1..self.max_attempts).map(|a| self.backoff(a)).collect();
        delays.dedup();
        delays
    }

    pub(crate) fn dead_queue(&self) -> String {
        format!("{}.dead", self.name)
    }

    pub(crate) fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}", self.name, delay.as_millis())
    }

    /// RabbitMQ's limits (255-byte names, 32-bit TTLs) checked up front, so a bad configuration
    /// fails at start-up rather than on the first retry.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::Invalid(format!("topology: {why}")));
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 200
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !name_ok {
            return invalid(format!("bad queue name {:?}", self.name));
        }
        if self.max_priority == 0 {
            return invalid("max_priority must be at least 1".to_string());
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1".to_string());
        }
        if self.base_delay < Duration::from_millis(1) || self.max_delay < self.base_delay {
            return invalid("need 1ms <= base_delay <= max_delay".to_string());
        }
        if self.max_delay.as_millis() > i32::MAX as u128 {
            return invalid("max_delay is longer than a queue ttl can be".to_string());
        }
        Ok(())
    }
}

/// One execution to run. The payload is only the id: the node claims everything else from the
/// control plane, so a stale message can never carry stale instructions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub execution_id: String,
    /// Higher is delivered first; values above the topology's `max_priority` count as the maximum.
    pub priority: u8,
    /// 1 for the first delivery; +1 per platform retry.
    pub attempt: u32,
    /// Trace context (W3C `traceparent`, `tracestate`, ...), carried as AMQP headers.
    pub headers: BTreeMap<String, String>,
}

impl Job {
    pub fn new(execution_id: impl Into<String>, priority: u8) -> Job {
        Job {
            execution_id: execution_id.into(),
            priority,
            attempt: 1,
            headers: BTreeMap::new(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::Invalid(format!("job: {why}")));
        if self.execution_id.is_empty() || self.execution_id.len() > 255 {
            return invalid(format!("bad execution id {:?}", self.execution_id));
        }
        if self.attempt == 0 {
            return invalid("attempt starts at 1".to_string());
        }
        if let Some(key) = self.headers.keys().find(|k| k.is_empty() || k.len() > 255) {
            return invalid(format!("bad header name {key:?}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let t = Topology::default();
        let secs: Vec<u64> = (1..=9).map(|a| t.backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(t.backoff(u32::MAX), t.max_delay);
        assert_eq!(t.backoff(0), t.base_delay);
        assert_eq!(
            t.retry_delays(),
            [1, 2, 4, 8].map(Duration::from_secs).to_vec()
        );
        let capped = Topology {
            max_attempts: 10,
            max_delay: Duration::from_secs(3),
            ..Topology::default()
        };
        assert_eq!(
            capped.retry_delays(),
            [1, 2, 3].map(Duration::from_secs).to_vec()
        );
        assert_eq!(
            capped.retry_queue(Duration::from_secs(3)),
            "frameos.jobs.retry.3000"
        );
    }

    #[test]
    fn validation_refuses_what_rabbitmq_would() {
        Topology::default().validate().unwrap();
        for bad in [
            Topology {
                name: String::new(),
                ..Topology::default()
            },
            Topology {
                name: "a b".to_string(),
                ..Topology::default()
            },
            Topology {
                max_attempts: 0,
                ..Topology::default()
            },
            Topology {
                max_priority: 0,
                ..Topology::default()
            },
            Topology {
                base_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(1),
                ..Topology::default()
            },
            Topology {
                max_delay: Duration::from_secs(40 * 24 * 3600),
                ..Topology::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Invalid(_))), "{bad:?}");
        }
        Job::new("e1", 0).validate().unwrap();
        assert!(Job::new("", 0).validate().is_err());
        let mut zero = Job::new("e1", 0);
        zero.attempt = 0;
        assert!(zero.validate().is_err());
    }
}
