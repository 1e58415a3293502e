//! How long a log line takes from a node's report to an SSE client (issue 10, P4; ADR 0028):
//! a node speaking the report protocol by hand sends lines stamped with their send time to one
//! control plane replica; a client reads `/events` through a gateway, of the same replica or
//! of another one on the same database, and takes the difference. Needs PostgreSQL
//! (`FRAMEOS_TEST_POSTGRES_URL`, default local). Prints one line per case, `--json` one JSON
//! object per case. Build with `--release` to measure.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use frameos_integration_tests::flows::EventStream;
use frameos_integration_tests::{Backend, Mesh, packages};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Lines measured per case (after 10 unmeasured ones).
    #[arg(long, default_value_t = 200)]
    lines: usize,
    /// Milliseconds between two lines (each its own report).
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Cases to run: other-notify, other-poll, same (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = ["other-notify".to_string(), "other-poll".to_string(), "same".to_string()])]
    cases: Vec<String>,
    /// One JSON object per case instead of a line of text.
    #[arg(long)]
    json: bool,
}

const WARM_UP: usize = 10;

/// Where the client is, and how it hears of the node's lines.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    /// On another replica than the node's.
    other_replica: bool,
    /// `FRAMEOS_WATCH_NOTIFY`.
    notify: bool,
}

const CASES: [Case; 3] = [
    Case {
        name: "other-notify",
        other_replica: true,
        notify: true,
    },
    Case {
        name: "other-poll",
        other_replica: true,
        notify: false,
    },
    Case {
        name: "same",
        other_replica: false,
        notify: true,
    },
];

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for name in &args.cases {
        let case = CASES
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("unknown case {name:?}"))?;
        let mut latencies = measure(*case, &args).await?;
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (p50, p99, max) = (
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(*latencies.last().context("no lines")?),
        );
        if args.json {
            let line = json!({
                "case": case.name, "lines": latencies.len(), "interval_ms": args.interval_ms,
                "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            });
            println!("{line}");
        } else {
            println!(
                "{:<13} lines={} interval={}ms  p50={p50:.1}ms  p99={p99:.1}ms  max={max:.1}ms",
                case.name,
                latencies.len(),
                args.interval_ms
            );
        }
    }
    Ok(())
}

/// The nearest-rank percentile of sorted `values`.
fn percentile(values: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// One execution's lines, each one's latency.
async fn measure(case: Case, args: &Args) -> anyhow::Result<Vec<Duration>> {
    let configure = move |config: &mut frameos_control_plane::Config| {
        config.watch_notify = case.notify;
        // A hand node sends no heartbeats: its claim must outlive the run.
        config.recovery.node_dead_after_secs = 3_600;
    };
    let mesh = Mesh::start_with(Backend::PostgresS3, configure).await?;
    let replica = match case.other_replica {
        true => Some(mesh.replica(configure).await?),
        false => None,
    };
    let dev = mesh.account("dev", "developer").await?;
    let user = mesh.account("uma", "user").await?;
    let package = packages::node_agent("stamps", "1.0.0", "module.exports = async () => 1;\n");
    mesh.publish_approved(&dev, "stamps", package, None).await?;
    let accepted = mesh.execute(&user, "stamps", json!({})).await?;
    let id = accepted["id"].as_str().context("id")?.to_string();
    let mut events = match &replica {
        Some(replica) => replica.events(&user, &id).await?,
        None => {
            let url = mesh.url(&format!("/v1/executions/{id}/events"));
            EventStream::open(reqwest::Client::new().get(url).bearer_auth(&user)).await?
        }
    };
    let run = mesh.run_by_hand("latency-node", &id).await?;

    let epoch = Instant::now();
    let total = WARM_UP + args.lines;
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(total);
        while latencies.len() < total {
            let event = events.next_event().await?.context("the stream ended")?;
            if event.kind != "log" {
                continue;
            }
            let line = event.data["line"].as_str().context("a log line")?;
            let sent: u64 = line.parse().context("a stamped line")?;
            latencies.push(epoch.elapsed() - Duration::from_micros(sent));
        }
        anyhow::Ok(latencies)
    });
    let mut tick = tokio::time::interval(Duration::from_millis(args.interval_ms.max(1)));
    for _ in 0..total {
        tick.tick().await;
        let stamp = epoch.elapsed().as_micros().to_string();
        run.log(&[stamp.as_str()]).await?;
    }
    let latencies = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .context("lines still missing after 60 s")???;
    ensure!(
        run.succeed("{}").await? == frameos_proto::v1::ExecutionStatus::Succeeded,
        "not recorded as succeeded"
    );
    if let Some(replica) = replica {
        replica.stop().await?;
    }
    mesh.shutdown().await?;
    Ok(latencies[WARM_UP..].to_vec())
}
