//! `WatchExecution`: log lines, progress and status changes, live, until the execution ends.
//! Each wake-up re-reads the database, so nothing is missed. Changes made on another replica
//! wake it too (ADR 0028); the poll is the safety net for a wake-up that never came.

use frameos_core::{ChargeStatus, ExecutionStatus};
use std::time::Duration;

use frameos_core::slots::Slot;
use frameos_core::{Error, ErrorCode, Role};
use frameos_proto::v1::{self, watch_execution_response::Event};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Hub;
use super::query::{self, Viewed};
use super::stream_token::{self, Grant, StreamTokens};
use crate::accounts::auth::{self, Principal};
use crate::entity::execution;

/// Who opens a stream: the holder of an API key (the execution's user or an admin), or of a
/// stream token of this execution (ADR 0023), which replaces the key.
pub enum Watcher {
    Key(Principal),
    Token(Grant),
}

impl Watcher {
    /// The key's caller, or the grant of the `frameos-stream-token` metadata; not both.
    pub fn of<T>(
        request: &tonic::Request<T>,
        tokens: &StreamTokens,
        execution_id: &str,
    ) -> Result<Watcher, Error> {
        let Some(token) = request.metadata().get(stream_token::METADATA) else {
            return auth::require(request, Role::User).map(Watcher::Key);
        };
        if request.metadata().contains_key("authorization") {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                "send an API key or a stream token, not both",
            ));
        }
        let token = token.to_str().map_err(|_| {
            Error::new(
                ErrorCode::Unauthenticated,
                "invalid stream token: it is not one this platform issued",
            )
        })?;
        tokens
            .verify(token, execution_id, chrono::Utc::now())
            .map(Watcher::Token)
    }

    /// The account the stream counts against.
    pub fn account_id(&self) -> &str {
        match self {
            Watcher::Key(principal) => &principal.account_id,
            Watcher::Token(grant) => &grant.account_id,
        }
    }

    /// The execution, if this watcher may see it (a token's was checked when it was issued).
    pub async fn execution(
        &self,
        db: &DatabaseConnection,
        id: &str,
    ) -> Result<execution::Model, Error> {
        match self {
            Watcher::Key(principal) => query::owned(db, principal, id).await,
            Watcher::Token(grant) => execution::Entity::find_by_id(&grant.execution_id)
                .one(db)
                .await
                .map_err(crate::db::error)?
                .ok_or_else(|| Error::not_found(format!("execution {id:?}"))),
        }
    }
}

pub type EventResult = Result<v1::WatchExecutionResponse, tonic::Status>;

/// Where a watcher sends its events. Boxed, because a channel allocates its first block of 32
/// slots up front and an unboxed event is as large as its largest kind (the status event's
/// execution view): 32 of them were most of an idle stream's memory (ADR 0030).
pub type Sender = mpsc::Sender<Box<EventResult>>;

/// What one stream watches, and its place among the open streams (freed with the task).
pub struct Watch {
    pub execution_id: String,
    pub after_seq: u64,
    pub slot: Slot<String>,
}

/// Starts a watcher task (owned by `tasks`) feeding `sender`; it ends when the execution ends, the receiver goes
/// away, or the server shuts down.
pub fn spawn(
    tasks: &TaskTracker,
    db: DatabaseConnection,
    hub: Hub,
    watch: Watch,
    sender: Sender,
    shutdown: CancellationToken,
) {
    let Watch {
        execution_id,
        after_seq,
        slot,
    } = watch;
    // Every query below is boxed: the task's own state is then what a waiting stream holds
    // (its cursors and a few pointers), not the largest query future (ADR 0030).
    tasks.spawn(async move {
        let _slot = slot;
        let mut subscription = hub.subscribe(&execution_id);
        let mut last_seq = after_seq;
        let mut last_progress: Option<(Option<f64>, Option<String>)> = None;
        let mut last_status: Option<ExecutionStatus> = None;
        let mut ended_at: Option<tokio::time::Instant> = None;
        loop {
            // The row first, then the logs: a node commits its last lines before its outcome,
            // so a terminal row read here means every line is already in the table.
            // With everything the status event shows (names, charge): one statement a wake.
            let Viewed { row, view, charge } =
                match Box::pin(query::viewed(&db, &execution_id)).await {
                    Ok(Some(viewed)) => viewed,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = sender
                            .send(Box::new(Err(frameos_proto::status::to_status(&e))))
                            .await;
                        return;
                    }
                };
            // A batch of lines commits with the row's `log_seq` raised to its last number
            // (reports.rs, system_log.rs), so a row that shows none past `last_seq` means none
            // was committed before it was read: no statement for the logs then.
            let mut more_logs = u64::try_from(row.log_seq).is_ok_and(|seq| seq > last_seq);
            while more_logs {
                let page = match Box::pin(query::logs(&db, &execution_id, last_seq, 500)).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = sender
                            .send(Box::new(Err(frameos_proto::status::to_status(&e))))
                            .await;
                        return;
                    }
                };
                more_logs = !page.next_page_token.is_empty();
                for line in page.items {
                    last_seq = line.seq;
                    if sender.send(event(Event::Log(line))).await.is_err() {
                        return;
                    }
                }
            }
            let progress = (row.progress, row.progress_message.clone());
            if row.progress.is_some() && last_progress.as_ref() != Some(&progress) {
                last_progress = Some(progress);
                let update = v1::Progress {
                    fraction: row.progress.unwrap_or_default(),
                    message: row.progress_message.clone().unwrap_or_default(),
                };
                if sender.send(event(Event::Progress(update))).await.is_err() {
                    return;
                }
            }
            // The final event carries the settled charge: hold it back while the capture or
            // void that follows the outcome is under way (bounded, in case the rail is down).
            let terminal = row.status.is_terminal();
            if terminal {
                let since = *ended_at.get_or_insert_with(tokio::time::Instant::now);
                let settling = charge == Some(ChargeStatus::Authorized);
                if settling && since.elapsed() < SETTLE_WAIT {
                    tokio::select! {
                        () = subscription.changed() => {}
                        () = tokio::time::sleep(SETTLE_POLL.min(hub.poll())) => {}
                        () = sender.closed() => return,
                        () = shutdown.cancelled() => return,
                    }
                    continue;
                }
            }
            if last_status != Some(row.status) {
                last_status = Some(row.status);
                if sender.send(event(Event::Status(view))).await.is_err() {
                    return;
                }
            }
            if terminal {
                return;
            }
            tokio::select! {
                () = subscription.changed() => {}
                () = tokio::time::sleep(hub.poll()) => {}
                () = sender.closed() => return,
                () = shutdown.cancelled() => return,
            }
        }
    });
}

/// How long the final status event waits for the charge to settle.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// How often a watcher holding back the final event reads the charge again: a settlement the
/// billing reconciler finishes wakes nobody.
const SETTLE_POLL: Duration = Duration::from_millis(500);

fn event(event: Event) -> Box<EventResult> {
    Box::new(Ok(v1::WatchExecutionResponse { event: Some(event) }))
}
