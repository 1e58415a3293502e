//! The bound on open execution event streams (`GET /v1/executions/{id}/events`).
//!
//! A stream outlives its request: the API's deadline and concurrency limit end with the response
//! head, and the events flow for as long as the execution runs. So open streams are counted here,
//! by a slot that the response body holds until the stream ends or the client goes away. Streams
//! also end when the gateway stops: a graceful shutdown waits for open responses, and one stream
//! could hold it up for a whole execution. Their clients resume with `Last-Event-ID`.

use std::sync::Arc;

use frameos_core::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

#[derive(Clone, Debug)]
pub struct EventStreams {
    slots: Arc<Semaphore>,
    limit: usize,
    closing: CancellationToken,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    closing: CancellationToken,
}

impl EventStreams {
    pub fn new(limit: usize) -> Self {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        EventStreams {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            closing: CancellationToken::new(),
        }
    }

    /// A place for one more stream, or 503 at once: a stream waiting for a place could wait for
    /// as long as another execution runs.
    pub fn open(&self) -> Result<StreamSlot, ApiError> {
        if self.closing.is_cancelled() {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the gateway is stopping; retry on another instance",
            ));
        }
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "too many event streams are open (at most {}); retry later",
                    self.limit
                ),
            )
        })?;
        Ok(StreamSlot {
            _permit: permit,
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

    #[tokio::test]
    async fn slots_are_bounded_freed_on_drop_and_closed_together() {
        let streams = EventStreams::new(2);
        let first = streams.open().unwrap();
        let second = streams.open().unwrap();
        let refused = streams.open().unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Unavailable);
        assert!(refused.0.message.contains("at most 2"), "{refused:?}");
        drop(first);
        let third = streams.open().unwrap();

        streams.close_all();
        // Both open streams hear of it; new ones are refused.
        tokio::time::timeout(std::time::Duration::from_secs(1), async {
            second.closed().await;
            third.closed().await;
        })
        .await
        .unwrap();
        drop((second, third));
        assert_eq!(streams.open().unwrap_err().code(), ErrorCode::Unavailable);
    }
}
