//! The warm path: hand one execution to a pool container that is already running, locked
//! down exactly as a cold one (same body), and waiting on stdin (ADR 0026).

use std::path::Path;

use bollard::query_parameters::RenameContainerOptionsBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{DockerSandbox, RemoveOnDrop, container_name, docker_err, failed};
use crate::frames::Pump;
use crate::metrics::DockerOperation as Op;
use crate::pool::{Pool, Warm, fill_slot};
use crate::{Error, Event, Outcome, Spec};

impl DockerSandbox {
    pub(super) async fn run_warm(
        &self,
        pool: &Pool,
        warm: Warm,
        spec: Spec,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Outcome, Error> {
        let name = container_name(&spec.execution_id);
        let starting = tracing::info_span!(
            "container_start",
            container.name = %name,
            container.image.name = %self.images.for_runtime(spec.runtime),
            container.warm = %warm.name,
            otel.status_code = tracing::field::Empty,
        );
        // The container goes whatever happens, even if this future is dropped.
        let mut guard = RemoveOnDrop {
            docker: Some(self.docker.clone()),
            name: warm.name.clone(),
        };
        let Warm {
            name: warm_name,
            slot,
            output,
            input,
            ..
        } = warm;
        let handed = self
            .hand_off(&warm_name, slot.path(), &spec, &name)
            .instrument(starting.clone())
            .await;
        if let Err(e) = handed {
            // Nothing has reached the container yet: the cold path serves the run instead.
            failed(&starting);
            tracing::warn!(parent: &starting, error = %e, "hand-off to a warm container failed; running cold");
            guard.docker = None;
            pool.retire(warm_name, slot);
            drop(starting);
            return self.run_in_container(spec, events, cancel, None).await;
        }
        guard.name = name.clone();
        // The agent's code starts now: the timeout counts from here, as on the cold path.
        spec.started.mark();
        tracing::debug!(parent: &starting, "handed to a warm container");
        drop(starting);
        let stdin = crate::drive::first_lines(&spec, true);
        // The container is removed off the critical path: a result ends the run at once.
        let pump = Pump::new(events, spec.log_limit_bytes)
            .redacting(&spec.secrets)
            .settle_on_result();
        let outcome = self
            .drive_container(&name, output, input, &stdin, &spec, pump, &cancel)
            .await;
        // One execution per container: it is removed, with its slot, off the critical path.
        guard.docker = None;
        pool.retire(name, slot);
        let outcome = outcome?;
        tracing::info!(outcome = outcome.label(), "execution ended");
        Ok(outcome)
    }

    /// Fills the slot with the package, then gives the container the execution's name, so
    /// that everything that finds containers by name finds it.
    async fn hand_off(
        &self,
        warm_name: &str,
        slot: &Path,
        spec: &Spec,
        name: &str,
    ) -> Result<(), Error> {
        let (from, to) = (spec.package_dir.clone(), slot.to_path_buf());
        tokio::task::spawn_blocking(move || fill_slot(&from, &to))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|filled| filled)
            .map_err(|source| Error::Pool {
                action: "fill a slot",
                source,
            })?;
        let options = || RenameContainerOptionsBuilder::default().name(name).build();
        let renamed = self
            .claim_name(name, || {
                self.metrics.docker(
                    Op::Rename,
                    self.docker.rename_container(warm_name, options()),
                )
            })
            .await?;
        renamed.map_err(|e| docker_err("rename container", e))
    }
}
