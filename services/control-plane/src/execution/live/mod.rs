//! Live events between control plane replicas (ADR 0028). Each replica announces the changes
//! its hub hears of with PostgreSQL `NOTIFY` right after they commit, and `LISTEN`s for the
//! others' on a connection of its own, waking its local watchers. A notification only says
//! "read again": the database stays the source of truth, and the watchers' poll stays as the
//! safety net for a notification lost with its connection. SQLite has no other replicas.

mod listener;
mod notifier;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use frameos_lifecycle::Supervisor;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Hub;

/// The PostgreSQL channel of the announcements.
pub const CHANNEL: &str = "frameos_execution";

/// The `application_name` of each replica's listening connection.
pub const LISTENER_APPLICATION: &str = "frameos-live-events";

/// The watchers' poll when replicas do not notify each other on PostgreSQL (as before ADR 0028).
const POLL_WITHOUT_NOTIFY: Duration = Duration::from_millis(500);

/// What happened to an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Read it again.
    Changed,
    /// It ended: read it again, and the relay may dispatch its account's next execution.
    Ended,
}

impl Change {
    /// Two changes of one execution, told once: an end says more.
    fn merge(self, other: Change) -> Change {
        if self == Change::Ended || other == Change::Ended {
            Change::Ended
        } else {
            Change::Changed
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Change::Changed => "changed",
            Change::Ended => "ended",
        }
    }
}

/// One announcement as it travels: `<replica> <change> <execution id>`.
#[derive(Debug, PartialEq, Eq)]
struct Notice<'a> {
    replica: &'a str,
    change: Change,
    execution_id: &'a str,
}

impl<'a> Notice<'a> {
    fn payload(&self) -> String {
        format!(
            "{} {} {}",
            self.replica,
            self.change.as_str(),
            self.execution_id
        )
    }

    fn parse(payload: &'a str) -> Option<Notice<'a>> {
        let mut parts = payload.splitn(3, ' ');
        let replica = parts.next().filter(|r| !r.is_empty())?;
        let change = match parts.next()? {
            "changed" => Change::Changed,
            "ended" => Change::Ended,
            _ => return None,
        };
        let execution_id = parts.next().filter(|id| !id.is_empty())?;
        Some(Notice {
            replica,
            change,
            execution_id,
        })
    }
}

/// The changes waiting to be announced, one per execution, taken by the notifier. Bounded by
/// the executions that changed since its last round trip.
#[derive(Clone, Default)]
pub struct Announcer(Arc<Pending>);

#[derive(Default)]
struct Pending {
    changes: Mutex<HashMap<String, Change>>,
    ready: Notify,
}

impl Announcer {
    /// Queues `change` for the notifier; never waits.
    pub fn announce(&self, execution_id: &str, change: Change) {
        let mut changes = self.0.changes.lock().unwrap_or_else(|e| e.into_inner());
        match changes.get_mut(execution_id) {
            Some(queued) => *queued = queued.merge(change),
            None => {
                changes.insert(execution_id.to_string(), change);
            }
        }
        drop(changes);
        self.0.ready.notify_one();
    }

    /// Resolves once something was announced since the last [`Announcer::take`].
    async fn ready(&self) {
        self.0.ready.notified().await;
    }

    fn take(&self) -> HashMap<String, Change> {
        std::mem::take(&mut *self.0.changes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How this replica's watchers learn of changes made elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct LiveEvents {
    /// `FRAMEOS_WATCH_NOTIFY`.
    pub notify: bool,
    /// `FRAMEOS_WATCH_POLL_MS`, if set.
    pub poll_ms: Option<u64>,
}

/// `hub` as this replica runs it: on PostgreSQL (unless turned off) it announces every change
/// to the other replicas and hears theirs, through a notifier and a listener that are
/// components of `supervisor` and end with `stop`; its watchers poll as configured.
pub fn between_replicas(
    hub: Hub,
    db: &DatabaseConnection,
    database_url: &str,
    live: LiveEvents,
    supervisor: &Supervisor,
    stop: CancellationToken,
) -> Hub {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let notify = postgres && live.notify;
    let poll = match live.poll_ms {
        Some(ms) => Duration::from_millis(ms),
        None if postgres && !notify => POLL_WITHOUT_NOTIFY,
        None => super::hub::DEFAULT_POLL,
    };
    let hub = hub.polling_every(poll);
    if !notify {
        tracing::info!(
            poll_ms = poll.as_millis(),
            "watchers of other replicas' changes poll"
        );
        return hub;
    }
    // Tells this replica's notices from the others' (it hears its own).
    let replica = format!("{:016x}", rand::random::<u64>());
    let announcer = Announcer::default();
    supervisor.component(
        "live events notifier",
        notifier::run(db.clone(), announcer.clone(), replica.clone(), stop.clone()),
    );
    supervisor.component(
        "live events listener",
        listener::run(database_url.to_string(), hub.clone(), replica, stop),
    );
    hub.announcing(announcer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_reads_back_as_written_and_nothing_else_reads() {
        for change in [Change::Changed, Change::Ended] {
            let notice = Notice {
                replica: "0123456789abcdef",
                change,
                execution_id: "019a-ex ecution",
            };
            assert_eq!(Notice::parse(&notice.payload()), Some(notice));
        }
        for odd in [
            "",
            "r",
            "r changed",
            "r changed ",
            "r started e1",
            " changed e1",
        ] {
            assert_eq!(Notice::parse(odd), None, "{odd:?}");
        }
    }

    #[tokio::test]
    async fn announcements_of_one_execution_fold_into_one_and_an_end_wins() {
        let announcer = Announcer::default();
        announcer.announce("e1", Change::Changed);
        announcer.announce("e1", Change::Ended);
        announcer.announce("e1", Change::Changed);
        announcer.announce("e2", Change::Changed);
        announcer.ready().await;
        let taken = announcer.take();
        assert_eq!(taken.len(), 2);
        assert_eq!(taken["e1"], Change::Ended);
        assert_eq!(taken["e2"], Change::Changed);
        assert!(announcer.take().is_empty());
    }

    #[tokio::test]
    async fn a_hub_announces_what_it_is_told_and_not_what_it_hears() {
        let announcer = Announcer::default();
        let hub = Hub::default().announcing(announcer.clone());
        let mut watcher = hub.subscribe("e1");
        hub.touch("e1");
        watcher.changed().await;
        hub.ended("e2");
        assert_eq!(
            announcer.take(),
            HashMap::from([
                ("e1".to_string(), Change::Changed),
                ("e2".to_string(), Change::Ended)
            ])
        );
        // What the listener hears from other replicas wakes this replica's watchers only.
        hub.wake("e1");
        watcher.changed().await;
        hub.wake_ended("e1");
        watcher.changed().await;
        hub.wake_all();
        watcher.changed().await;
        assert!(announcer.take().is_empty());
    }
}
