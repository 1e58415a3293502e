//! Which sandbox runs executions (`FRAMEOS_SANDBOX`, API.md §4.2): Docker unless the
//! unisolated local runner is asked for by name, and never a silent fallback between them.

use crate::{Images, Outcome, Sandbox};

/// The value of `FRAMEOS_SANDBOX`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SandboxKind {
    #[default]
    Docker,
    /// Agents as plain local processes: no isolation, development only.
    Local,
}

impl SandboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Docker => "docker",
            SandboxKind::Local => "local",
        }
    }
}

impl std::fmt::Display for SandboxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("FRAMEOS_SANDBOX must be \"docker\" or \"local\", not {0:?}")]
pub struct UnknownSandboxKind(String);

impl std::str::FromStr for SandboxKind {
    type Err = UnknownSandboxKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker" => Ok(SandboxKind::Docker),
            "local" => Ok(SandboxKind::Local),
            other => Err(UnknownSandboxKind(other.to_string())),
        }
    }
}

/// Docker was selected but cannot run anything, on a node no other node can stand in for
/// (`frameos dev`): every execution ends `failed` with this reason instead of running
/// unisolated. A production node refuses to start instead (ADR 0011).
#[derive(Clone, Debug)]
pub struct Unavailable {
    reason: String,
}

impl Unavailable {
    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub(crate) fn outcome(&self) -> Outcome {
        Outcome::Failed {
            error: format!("sandbox unavailable: {}", self.reason),
            exit_code: None,
        }
    }
}

impl Sandbox {
    /// What `kind` asks for. `Docker` connects (see [`Sandbox::docker`]), failing with the
    /// engine's address; `Local` warns loudly and never fails.
    pub async fn select(
        kind: SandboxKind,
        docker_host: Option<&str>,
        images: Images,
        node_id: &str,
    ) -> Result<Sandbox, crate::Error> {
        match kind {
            SandboxKind::Docker => Sandbox::docker(docker_host, images, node_id).await,
            SandboxKind::Local => Ok(Sandbox::local_unisolated(node_id)),
        }
    }

    /// A sandbox that runs nothing: each execution fails with `sandbox unavailable: <reason>`.
    pub fn unavailable(reason: impl Into<String>) -> Sandbox {
        let reason = reason.into();
        tracing::error!(%reason, "sandbox unavailable: every execution will fail");
        Sandbox::Unavailable(Unavailable { reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parses_only_the_two_names() {
        assert_eq!(
            "docker".parse::<SandboxKind>().unwrap(),
            SandboxKind::Docker
        );
        assert_eq!("local".parse::<SandboxKind>().unwrap(), SandboxKind::Local);
        assert_eq!(SandboxKind::default(), SandboxKind::Docker);
        for bad in ["", "Docker", "none", "process"] {
            let err = bad.parse::<SandboxKind>().unwrap_err().to_string();
            assert!(err.contains("FRAMEOS_SANDBOX"), "{err}");
        }
    }

    #[tokio::test]
    async fn unavailable_fails_every_run_naming_why() {
        let sandbox = Sandbox::unavailable("docker at /nowhere.sock is unreachable");
        assert!(sandbox.check_images().await.is_ok());
        assert_eq!(sandbox.remove_stale().await.unwrap(), 0);
        let spec = crate::Spec {
            execution_id: "e1".to_string(),
            package_dir: "/nonexistent".into(),
            entrypoint: "index.js".to_string(),
            ..crate::Spec::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let outcome = sandbox.run(spec, tx, Default::default()).await.unwrap();
        assert_eq!(
            outcome,
            Outcome::Failed {
                error: "sandbox unavailable: docker at /nowhere.sock is unreachable".to_string(),
                exit_code: None,
            }
        );
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn selecting_docker_without_an_engine_fails_naming_it() {
        let host = "unix:///nonexistent/frameos-docker.sock";
        for kind in [SandboxKind::Docker, SandboxKind::default()] {
            let err = Sandbox::select(kind, Some(host), Images::default(), "n")
                .await
                .unwrap_err();
            assert!(matches!(err, crate::Error::Unreachable { .. }), "{err:?}");
            assert!(err.to_string().contains(host), "{err}");
        }
        let local = Sandbox::select(SandboxKind::Local, Some(host), Images::default(), "n")
            .await
            .unwrap();
        assert!(!local.is_isolated());
    }
}
