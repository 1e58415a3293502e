//! What a mesh leaves behind when its test fails before `Mesh::shutdown`: its RabbitMQ queues,
//! its database and its nodes' containers. Removed from `Drop`, so on a thread with a runtime
//! of its own (the test's runtime may be unwinding).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::TestDatabase;

/// Each removal gets this long; a service that is down by then is the test's own business.
const WITHIN: Duration = Duration::from_secs(15);

pub(crate) struct Leftovers {
    /// The broker's URL and the mesh's queue topology.
    pub amqp: Option<(String, frameos_queue::Topology)>,
    pub database: Option<TestDatabase>,
    /// Node ids and their Docker host (`None`: the machine's engine).
    pub nodes: Vec<(String, Option<String>)>,
}

impl Leftovers {
    pub(crate) fn remove(self) {
        if self.amqp.is_none() && self.database.is_none() && self.nodes.is_empty() {
            return;
        }
        let cleaner = std::thread::spawn(move || {
            for (node, host) in &self.nodes {
                remove_containers(node, host.as_deref());
            }
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Some((url, topology)) = &self.amqp {
                    let deleted = tokio::time::timeout(
                        WITHIN,
                        frameos_queue::delete_amqp_topology(url, topology),
                    )
                    .await;
                    if !matches!(deleted, Ok(Ok(()))) {
                        eprintln!("[cleanup] queues {} not deleted", topology.name);
                    }
                }
                if let Some(database) = self.database {
                    let _ = tokio::time::timeout(WITHIN, database.drop_database()).await;
                }
            });
        });
        let _ = cleaner.join();
    }
}

/// `docker rm -f` of every container labelled with `node`.
fn remove_containers(node: &str, host: Option<&str>) {
    let docker = || {
        let mut command = Command::new("docker");
        if let Some(host) = host {
            command.args(["-H", host]);
        }
        command.stdin(Stdio::null()).stderr(Stdio::null());
        command
    };
    let Ok(listed) = docker()
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=frameos.node={node}"),
        ])
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        eprintln!(
            "[cleanup] removing {} container(s) of node {node}",
            ids.len()
        );
        let _ = docker()
            .args(["rm", "-f"])
            .args(&ids)
            .stdout(Stdio::null())
            .status();
    }
}
