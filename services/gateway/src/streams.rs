//! The bounds on open execution event streams (`GET /v1/executions/{id}/events`).
//!
//! A stream outlives its request: the API's deadline and concurrency limit end with the response
//! head, and the events flow for as long as the execution runs. So open streams are counted here,
//! by a slot that the response body holds until the stream ends or the client goes away. Each
//! caller (an account, or the address of a caller without a valid key) has a bound of its own,
//! so one caller at its bound never takes the places of others; the total is the backstop.
//! Streams also end when the gateway stops: a graceful shutdown waits for open responses, and
//! one stream could hold it up for a whole execution. Their clients resume with `Last-Event-ID`.

use frameos_core::ErrorCode;
use frameos_core::slots::{KeyedSlots, Refused, Slot};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::fair_use::Caller;

#[derive(Clone, Debug)]
pub struct EventStreams {
    slots: KeyedSlots<Caller>,
    closing: CancellationToken,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    _slot: Slot<Caller>,
    closing: CancellationToken,
}

impl EventStreams {
    /// At most `per_caller` streams per caller (0: no bound of its own) and `total` in all.
    pub fn new(per_caller: usize, total: usize) -> Self {
        EventStreams {
            slots: KeyedSlots::new((per_caller > 0).then_some(per_caller), Some(total)),
            closing: CancellationToken::new(),
        }
    }

    /// A place for one more stream of `caller`, or at once 429 (this caller has enough open) or
    /// 503 (the gateway is full): a stream waiting for a place could wait for as long as
    /// another execution runs.
    pub fn open(&self, caller: &Caller) -> Result<StreamSlot, ApiError> {
        if self.closing.is_cancelled() {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the gateway is stopping; retry on another instance",
            ));
        }
        let slot = self.slots.acquire(caller).map_err(|refused| match refused {
            Refused::PerOwner { limit } => {
                tracing::info!(caller = %caller, limit, "event stream refused: caller at its limit");
                ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "you have {limit} event streams open, the most one account may; close one and retry"
                    ),
                )
            }
            Refused::Total { limit } => {
                tracing::warn!(limit, "event stream refused: the gateway is full");
                ApiError::new(
                    ErrorCode::Unavailable,
                    format!("too many event streams are open (at most {limit}); retry later"),
                )
            }
        })?;
        Ok(StreamSlot {
            _slot: slot,
            closing: self.closing.clone(),
        })
    }

    /// Ends every open stream and refuses new ones.
    pub fn close_all(&self) {
        self.closing.cancel();
    }
}

impl StreamSlot {
    /// Resolves when the gateway stops.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str) -> Caller {
        Caller::Account(id.into())
    }

    #[tokio::test]
    async fn slots_are_bounded_per_caller_and_in_total_freed_on_drop_and_closed_together() {
        let streams = EventStreams::new(2, 3);
        let first = streams.open(&account("a")).unwrap();
        let second = streams.open(&account("a")).unwrap();
        // A caller at its own bound is told to slow down, not that the gateway is down.
        let refused = streams.open(&account("a")).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert!(refused.0.message.contains("2 event streams"), "{refused:?}");
        // Another caller still gets a place; then the gateway is full for everyone.
        let third = streams.open(&account("b")).unwrap();
        let full = streams.open(&account("c")).unwrap_err();
        assert_eq!(full.code(), ErrorCode::Unavailable);
        assert!(full.0.message.contains("at most 3"), "{full:?}");
        drop(first);
        let fourth = streams.open(&account("c")).unwrap();

        streams.close_all();
        // Every open stream hears of it; new ones are refused.
        tokio::time::timeout(std::time::Duration::from_secs(1), async {
            second.closed().await;
            third.closed().await;
            fourth.closed().await;
        })
        .await
        .unwrap();
        drop((second, third, fourth));
        assert_eq!(
            streams.open(&account("d")).unwrap_err().code(),
            ErrorCode::Unavailable
        );
    }
}
