//! Hears the other replicas' announcements on a connection of its own and wakes this replica's
//! watchers. A lost connection is made again, with back-off; every watcher then reads again
//! once, since notifications sent meanwhile are gone.

use std::convert::Infallible;
use std::str::FromStr;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use super::{CHANNEL, Change, LISTENER_APPLICATION, Notice};
use crate::execution::Hub;
use crate::execution::relay::{MIN_BACKOFF, pause};

/// Listens until `stop`.
pub async fn run(
    database_url: String,
    hub: Hub,
    replica: String,
    stop: CancellationToken,
) -> Result<(), Infallible> {
    let mut backoff = MIN_BACKOFF;
    let mut connected_before = false;
    while !stop.is_cancelled() {
        let mut listener = match listen(&database_url).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other replicas' live events; retrying");
                if !pause(&mut backoff, &stop).await {
                    break;
                }
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        if connected_before {
            tracing::info!("listening for other replicas' live events again");
        } else {
            tracing::info!(
                channel = CHANNEL,
                "listening for other replicas' live events"
            );
            connected_before = true;
        }
        // What changed while nobody listened is only in the database.
        hub.wake_all();
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                () = stop.cancelled() => return Ok(()),
            };
            match received {
                Ok(Some(notification)) => deliver(&hub, &replica, notification.payload()),
                // The connection was lost and made again (listening again).
                Ok(None) => {
                    tracing::info!("live events connection lost and made again");
                    hub.wake_all();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live events connection failed; reconnecting");
                    break;
                }
            }
        }
        if !pause(&mut backoff, &stop).await {
            break;
        }
    }
    Ok(())
}

/// A connection of its own (one at a time, never timed out for idling), listening.
async fn listen(database_url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let options = PgConnectOptions::from_str(database_url)?.application_name(LISTENER_APPLICATION);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Wakes the watchers of the execution of another replica's notice (this replica's own were
/// woken when it announced them).
fn deliver(hub: &Hub, replica: &str, payload: &str) {
    match Notice::parse(payload) {
        Some(notice) if notice.replica == replica => {}
        Some(Notice {
            change: Change::Changed,
            execution_id,
            ..
        }) => hub.wake(execution_id),
        Some(Notice {
            change: Change::Ended,
            execution_id,
            ..
        }) => hub.wake_ended(execution_id),
        None => tracing::debug!(payload, "unknown live events notice ignored"),
    }
}
