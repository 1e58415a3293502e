//! Sends this replica's announcements as PostgreSQL notifications. Whatever changed while the
//! previous statement was under way goes out in the next one; an execution goes out at most
//! once per [`WINDOW`] (an end at once), so a flood of log lines costs a notification every few
//! milliseconds, while the first change of a quiet execution goes out without waiting.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Announcer, CHANNEL, Change, Notice};

/// The shortest time between two notifications of one execution.
const WINDOW: Duration = Duration::from_millis(5);

/// Notifications per statement.
const BATCH: usize = 100;

/// Announces until `stop`, then sends what is still waiting.
pub async fn run(
    db: DatabaseConnection,
    announcer: Announcer,
    replica: String,
    stop: CancellationToken,
) -> Result<(), Infallible> {
    let mut coalescer = Coalescer::default();
    let mut failing = false;
    loop {
        let due = coalescer.due();
        let stopping = tokio::select! {
            () = announcer.ready() => false,
            () = sleep_until(due) => false,
            () = stop.cancelled() => true,
        };
        coalescer.add(announcer.take());
        let batch = if stopping {
            coalescer.drain()
        } else {
            coalescer.release(Instant::now())
        };
        match send(&db, &replica, &batch).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("live events are announced again");
            }
            Ok(()) => {}
            // The other replicas' watchers catch up at their next poll.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot announce live events to the other replicas");
            }
            Err(_) => {}
        }
        if stopping {
            return Ok(());
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// `SELECT pg_notify($1, $2), pg_notify($1, $3), …`: one round trip per [`BATCH`].
async fn send(
    db: &DatabaseConnection,
    replica: &str,
    batch: &[(String, Change)],
) -> Result<(), DbErr> {
    for chunk in batch.chunks(BATCH) {
        let calls: Vec<String> = (0..chunk.len())
            .map(|i| format!("pg_notify($1, ${})", i + 2))
            .collect();
        let mut values: Vec<sea_orm::Value> = vec![CHANNEL.into()];
        values.extend(chunk.iter().map(|(execution_id, change)| {
            Notice {
                replica,
                change: *change,
                execution_id: execution_id.as_str(),
            }
            .payload()
            .into()
        }));
        let sql = format!("SELECT {}", calls.join(", "));
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Holds back the changes of executions notified less than [`WINDOW`] ago.
#[derive(Default)]
struct Coalescer {
    /// When each execution notified within the window was.
    sent: HashMap<String, Instant>,
    /// Changes waiting for their execution's window to pass.
    held: HashMap<String, Change>,
}

impl Coalescer {
    fn add(&mut self, changes: HashMap<String, Change>) {
        for (execution_id, change) in changes {
            let held = self.held.entry(execution_id).or_insert(change);
            *held = held.merge(change);
        }
    }

    /// The changes that may go out at `now` (ends always); the others stay held.
    fn release(&mut self, now: Instant) -> Vec<(String, Change)> {
        self.sent.retain(|_, at| now.duration_since(*at) < WINDOW);
        let mut out = Vec::new();
        let sent = &self.sent;
        self.held.retain(|execution_id, change| {
            let free = *change == Change::Ended || !sent.contains_key(execution_id);
            if free {
                out.push((execution_id.clone(), *change));
            }
            !free
        });
        for (execution_id, _) in &out {
            self.sent.insert(execution_id.clone(), now);
        }
        out
    }

    /// Everything held, window or not (the replica stops).
    fn drain(&mut self) -> Vec<(String, Change)> {
        self.sent.clear();
        self.held.drain().collect()
    }

    /// When the first held change may go out.
    fn due(&self) -> Option<Instant> {
        self.held
            .keys()
            .filter_map(|execution_id| self.sent.get(execution_id))
            .min()
            .map(|at| *at + WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[(&str, Change)]) -> HashMap<String, Change> {
        list.iter().map(|(id, c)| (id.to_string(), *c)).collect()
    }

    fn one(id: &str, change: Change) -> Vec<(String, Change)> {
        vec![(id.to_string(), change)]
    }

    #[test]
    fn the_first_change_goes_at_once_and_a_burst_after_it_once_per_window() {
        let start = Instant::now();
        let mut coalescer = Coalescer::default();
        coalescer.add(changes(&[("e1", Change::Changed)]));
        assert_eq!(coalescer.release(start), one("e1", Change::Changed));
        assert_eq!(coalescer.due(), None);

        // A burst within the window is held, as one, until the window has passed.
        let soon = start + Duration::from_millis(1);
        for _ in 0..3 {
            coalescer.add(changes(&[("e1", Change::Changed)]));
        }
        // Another execution's first change does not wait for e1's window.
        coalescer.add(changes(&[("e2", Change::Changed)]));
        assert_eq!(coalescer.release(soon), one("e2", Change::Changed));
        assert_eq!(coalescer.due(), Some(start + WINDOW));
        assert!(coalescer.release(start + WINDOW / 2).is_empty());
        assert_eq!(
            coalescer.release(start + WINDOW),
            one("e1", Change::Changed)
        );
        assert_eq!(coalescer.due(), None);
    }

    #[test]
    fn an_end_is_not_held_and_stopping_sends_everything() {
        let start = Instant::now();
        let mut coalescer = Coalescer::default();
        coalescer.add(changes(&[("e1", Change::Changed), ("e2", Change::Changed)]));
        assert_eq!(coalescer.release(start).len(), 2);
        coalescer.add(changes(&[("e1", Change::Changed)]));
        coalescer.add(changes(&[("e1", Change::Ended), ("e2", Change::Changed)]));
        assert_eq!(coalescer.release(start), one("e1", Change::Ended));
        assert_eq!(coalescer.drain(), one("e2", Change::Changed));
        assert_eq!(coalescer.due(), None);
    }
}
