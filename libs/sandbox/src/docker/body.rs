//! The one container body both paths create: a cold container for one execution, and a warm
//! pool container that waits for one. Only the mount source, the environment and the labels
//! differ; every limit and every lockdown flag comes from the same [`Class`].

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};

use crate::docker::snapshot::Snapshots;
use crate::{Runtime, Spec};

/// The runtime images run the runner as this (non-root) user.
const USER: &str = "10001:10001";

/// What a container is created with, apart from the agent: a warm container of one class can
/// serve exactly the specs of that class.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Class {
    pub runtime: Runtime,
    pub memory_mb: u64,
    pub nano_cpus: i64,
    pub pids_limit: u32,
    pub tmp_size_mb: u64,
}

impl Class {
    pub fn of(spec: &Spec) -> Class {
        Class {
            runtime: spec.runtime,
            memory_mb: spec.memory_mb,
            nano_cpus: (spec.cpu_cores * 1e9).round() as i64,
            pids_limit: spec.pids_limit,
            tmp_size_mb: spec.tmp_size_mb,
        }
    }
}

/// Who the container is for: one execution (cold), or the pool (warm, named later).
pub(crate) enum Tenant<'a> {
    Execution {
        execution_id: &'a str,
        entrypoint: &'a str,
    },
    Pool {
        name: &'a str,
    },
}

pub(crate) fn container_body(
    class: &Class,
    image: &str,
    node_id: &str,
    agent_dir: &Path,
    tenant: Tenant<'_>,
    snapshots: &Snapshots,
) -> ContainerCreateBody {
    let mut labels = HashMap::from([
        ("frameos.managed".to_string(), "true".to_string()),
        ("frameos.node".to_string(), node_id.to_string()),
    ]);
    let env = match tenant {
        Tenant::Execution {
            execution_id,
            entrypoint,
        } => {
            labels.insert("frameos.execution".to_string(), execution_id.to_string());
            // Secrets never go here (`docker inspect` shows it): they follow a stdin header.
            vec![
                format!("FRAMEOS_ENTRYPOINT={entrypoint}"),
                format!("FRAMEOS_EXECUTION_ID={execution_id}"),
                "FRAMEOS_HEADER=1".to_string(),
            ]
        }
        Tenant::Pool { name } => {
            labels.insert("frameos.pool".to_string(), name.to_string());
            // The runner reads the entrypoint, the execution id and the secrets from stdin at
            // hand-off.
            vec!["FRAMEOS_WARM=1".to_string()]
        }
    };
    let memory = i64::try_from(class.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    let tmp = format!("rw,noexec,nosuid,size={}m,mode=1777", class.tmp_size_mb);
    let host_config = HostConfig {
        network_mode: Some("none".to_string()),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([("/tmp".to_string(), tmp)])),
        nano_cpus: Some(class.nano_cpus),
        memory: Some(memory),
        // Equal to `memory`: no swap, so the limit is real and a hog is OOM-killed.
        memory_swap: Some(memory),
        pids_limit: Some(i64::from(class.pids_limit)),
        cap_drop: Some(vec!["ALL".to_string()]),
        security_opt: Some(vec!["no-new-privileges".to_string()]),
        init: Some(true),
        mounts: Some(vec![Mount {
            target: Some("/agent".to_string()),
            source: Some(agent_dir.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        }]),
        // Output is streamed through attach; a log driver would only copy it to the host's disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".to_string()),
            config: None,
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(snapshots.command(class.runtime, class.memory_mb)),
        env: Some(env),
        working_dir: Some("/agent".to_string()),
        user: Some(USER.to_string()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        labels: Some(labels),
        // No network at all: the engine then skips its network set-up for the container (a
        // re-exec of itself per start). `egress::add_to_container` turns it back on: the
        // runner's proxy listener needs the loopback interface.
        network_disabled: Some(true),
        host_config: Some(host_config),
        ..Default::default()
    }
}
