//! The V8 startup snapshots of the Node runner that the node image carries (ADR 0034).
//!
//! Debian's `node` is a shared-library build, so it has neither Node's built-in startup
//! snapshot nor its code cache: every start compiles Node's own bootstrap and the runner from
//! source. `runtime-images/build.sh` runs the runner once per listed heap limit with
//! `--build-snapshot` and lists those limits in an image label. A blob only loads under the
//! V8 flags it was built with, heap limit included, so a container whose heap limit has no
//! blob starts from `runner.js` as before.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use crate::Runtime;
use crate::drive::{node_heap_limit_mb, runner_command};

/// The node image's label: the heap limits (MiB, space separated) it has a blob for.
pub(crate) const LABEL: &str = "org.frameos.node-snapshot-heaps";

/// Where the runner and its blobs are in the runtime images.
const NODE_RUNNER: &str = "/opt/frameos/runner.js";
const PYTHON_RUNNER: &str = "/opt/frameos/runner.py";

/// The heap limits the node image has a runner snapshot for, learnt from its label when the
/// node checks its images. Until then, and for an image without the label, none: every Node
/// runner starts from `runner.js`. Shared by the cold path and the pool.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshots(Arc<OnceLock<BTreeSet<u64>>>);

impl Snapshots {
    /// Takes the label's value (the first call wins: a node checks its images once, at start).
    /// A word that is not a number is left out, so a damaged label costs speed, not runs.
    pub fn learn(&self, label: Option<&str>) -> usize {
        let heaps = label
            .unwrap_or_default()
            .split_ascii_whitespace()
            .filter_map(|word| word.parse::<u64>().ok())
            .collect::<BTreeSet<_>>();
        let heaps = self.0.get_or_init(|| heaps);
        heaps.len()
    }

    fn has(&self, heap_mb: u64) -> bool {
        self.0.get().is_some_and(|heaps| heaps.contains(&heap_mb))
    }

    /// The container's command: the runner restored from its snapshot when the image has one
    /// for this memory limit's heap, otherwise the runner's script.
    pub fn command(&self, runtime: Runtime, memory_mb: u64) -> Vec<String> {
        let heap = node_heap_limit_mb(memory_mb);
        match runtime {
            Runtime::Node if self.has(heap) => vec![
                crate::interpreter(runtime).to_string(),
                format!("--max-old-space-size={heap}"),
                "--snapshot-blob".to_string(),
                format!("/opt/frameos/runner-heap-{heap}.blob"),
            ],
            Runtime::Node => runner_command(runtime, NODE_RUNNER, memory_mb),
            Runtime::Python => runner_command(runtime, PYTHON_RUNNER, memory_mb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heap_with_a_blob_starts_from_it_and_any_other_from_the_script() {
        let snapshots = Snapshots::default();
        assert_eq!(snapshots.learn(Some("96 192 junk 384")), 3);
        assert_eq!(
            snapshots.command(Runtime::Node, 256),
            [
                "node",
                "--max-old-space-size=192",
                "--snapshot-blob",
                "/opt/frameos/runner-heap-192.blob"
            ]
        );
        assert_eq!(
            snapshots.command(Runtime::Node, 300),
            ["node", "--max-old-space-size=225", NODE_RUNNER]
        );
        assert_eq!(
            snapshots.command(Runtime::Python, 256),
            ["python3", PYTHON_RUNNER]
        );
    }

    #[test]
    fn without_the_label_every_runner_starts_from_its_script() {
        let unlearnt = Snapshots::default();
        assert_eq!(
            unlearnt.command(Runtime::Node, 256),
            ["node", "--max-old-space-size=192", NODE_RUNNER]
        );
        let unlabelled = Snapshots::default();
        assert_eq!(unlabelled.learn(None), 0);
        assert_eq!(
            unlabelled.command(Runtime::Node, 128),
            ["node", "--max-old-space-size=96", NODE_RUNNER]
        );
    }
}
