#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::convert::Infallible;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Exit, Failure, Signal, Signals, StopSequence, Supervisor, run_service};

const WITHIN: Duration = Duration::from_secs(5);

/// Sends `signal` to this very process, as `docker stop` or Ctrl-C would.
fn raise(signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn broken_invariant() -> Result<(), Infallible> {
    panic!("ledger invariant broken")
}

#[tokio::test]
async fn a_component_that_returns_an_error_stops_the_service_and_names_itself() {
    let shutdown = CancellationToken::new();
    let supervisor = Supervisor::new(&shutdown);
    supervisor.component("outbox relay", async {
        Err::<(), _>("the database went away")
    });
    tokio::time::timeout(WITHIN, supervisor.stopping().cancelled())
        .await
        .expect("a failed component must start the stop");
    assert_eq!(
        supervisor.failure(),
        Some(Failure {
            component: "outbox relay",
            reason: "the database went away".into()
        })
    );
    // The caller's token is the caller's: the service reports, its caller decides.
    assert!(!shutdown.is_cancelled());
    assert!(supervisor.wait(WITHIN).await);
}

#[tokio::test]
async fn a_panicking_component_stops_the_service_with_the_panic_message() {
    let supervisor = Supervisor::new(&CancellationToken::new());
    let healthy = supervisor.stopping();
    supervisor.component("heartbeat", async move {
        healthy.cancelled().await;
        Ok::<(), Infallible>(())
    });
    supervisor.component("reconciler", async { broken_invariant() });
    tokio::time::timeout(WITHIN, supervisor.stopping().cancelled())
        .await
        .unwrap();
    let failure = supervisor.failure().unwrap();
    assert_eq!(failure.component, "reconciler");
    assert_eq!(failure.reason, "panicked: ledger invariant broken");
    assert_eq!(
        failure.to_string(),
        "reconciler failed: panicked: ledger invariant broken"
    );
    // The healthy component ended with the stop and is not blamed; every task is done.
    assert!(supervisor.wait(WITHIN).await);
    assert_eq!(supervisor.failure().unwrap().component, "reconciler");
}

#[tokio::test]
async fn a_component_that_ends_while_the_service_runs_is_a_failure_but_not_after_the_stop() {
    let supervisor = Supervisor::new(&CancellationToken::new());
    supervisor.component("dead letters", async { Ok::<(), Infallible>(()) });
    tokio::time::timeout(WITHIN, supervisor.stopping().cancelled())
        .await
        .unwrap();
    assert_eq!(supervisor.failure().unwrap().component, "dead letters");

    let shutdown = CancellationToken::new();
    let supervisor = Supervisor::new(&shutdown);
    let stopping = supervisor.stopping();
    supervisor.component("health", async move {
        stopping.cancelled().await;
        Ok::<(), Infallible>(())
    });
    shutdown.cancel();
    assert!(supervisor.wait(WITHIN).await);
    assert_eq!(supervisor.failure(), None);
}

#[tokio::test]
async fn the_stop_waits_for_tracked_tasks_within_its_limit() {
    let supervisor = Supervisor::new(&CancellationToken::new());
    let release = CancellationToken::new();
    let held = release.clone();
    supervisor
        .tracker()
        .spawn(async move { held.cancelled().await });
    // A task that does not end makes the wait give up at its limit, and say so.
    assert!(!supervisor.wait(Duration::from_millis(100)).await);
    release.cancel();
    assert!(supervisor.wait(WITHIN).await);
}

#[tokio::test]
async fn stages_run_in_order_and_a_stuck_one_is_cut_at_its_limit() {
    let stop = StopSequence::begin("test", Duration::from_secs(30));
    let mut order = Vec::new();
    let stuck = stop
        .stage(
            "stuck",
            Duration::from_millis(50),
            std::future::pending::<()>(),
        )
        .await;
    order.push("stuck");
    let done = stop
        .stage("quick", WITHIN, async {
            order.push("quick");
            7
        })
        .await;
    assert_eq!(stuck, None);
    assert_eq!(done, Some(7));
    assert_eq!(order, ["stuck", "quick"]);
    assert!(stop.left() <= Duration::from_secs(30));
    stop.finish();
}

#[tokio::test]
async fn sigterm_and_sigint_are_both_seen_once_handlers_are_installed() {
    let mut signals = Signals::install().unwrap();
    raise("TERM");
    assert_eq!(
        tokio::time::timeout(WITHIN, signals.recv()).await.unwrap(),
        Signal::Terminate
    );
    raise("INT");
    assert_eq!(
        tokio::time::timeout(WITHIN, signals.recv()).await.unwrap(),
        Signal::Interrupt
    );
}

#[tokio::test]
async fn a_service_stopped_by_sigterm_exits_cleanly() {
    let exit = run_service("test service", WITHIN, |shutdown| async move {
        raise("TERM");
        shutdown.cancelled().await;
        Ok::<(), Infallible>(())
    })
    .await;
    assert_eq!(exit, Exit::Stopped);
    assert_eq!(
        std::process::ExitCode::from(exit),
        std::process::ExitCode::SUCCESS
    );
}

#[tokio::test]
async fn a_failed_component_fails_the_whole_service_with_its_reason() {
    let exit = run_service("test service", WITHIN, |shutdown| async move {
        let supervisor = Supervisor::new(&shutdown);
        supervisor.component("outbox relay", async {
            Err::<(), _>("broker refused the topology")
        });
        supervisor.stopping().cancelled().await;
        supervisor.wait(WITHIN).await;
        match supervisor.failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    })
    .await;
    assert_eq!(
        exit,
        Exit::Failed("outbox relay failed: broker refused the topology".into())
    );
    assert_eq!(
        std::process::ExitCode::from(exit),
        std::process::ExitCode::FAILURE
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_that_does_not_stop_within_its_grace_is_given_up() {
    let exit = run_service("stuck service", Duration::from_secs(2), |shutdown| {
        shutdown.cancel();
        std::future::pending::<Result<(), Infallible>>()
    })
    .await;
    assert_eq!(
        exit,
        Exit::Failed("did not stop within its grace of 2 s".into())
    );
}
