//! A trivial Node agent, run side by side in one process (ADR 0026):
//!
//! - `docker run --rm -i` with the sandbox's lockdown flags (the reference),
//! - `Sandbox::run` on the cold path (create → attach → start → … → remove),
//! - `Sandbox::run` on the warm path (hand-off to a pool container; the pool is refilled
//!   between runs, outside the timed region, so each run meets a waiting container),
//!
//! then the same three at parallelism P for throughput (T executions in all; the warm pool is
//! sized P and refills while it serves, so some of those runs may go cold: the hits are shown).
//! Prints p50/p99 per path and the ratios. Needs Docker and the runtime images.
//!
//! `cargo run -p frameos-sandbox --example warm_vs_cold --release [-- N [P [T]]]`
//! (defaults 30, 8, 40).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use frameos_sandbox::{Images, Outcome, PoolConfig, Runtime, Sandbox, Spec};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let runs = args.next().transpose()?.unwrap_or(30);
    let parallel = args.next().transpose()?.unwrap_or(8);
    let total = args.next().transpose()?.unwrap_or(40);
    let node_id = format!("warm-vs-cold-{}", std::process::id());
    let cold = Sandbox::docker(None, Images::default(), &node_id).await?;
    cold.check_images().await?;
    cold.remove_stale().await?;
    let dir = tempfile::tempdir()?;
    let agent = dir.path().join("agent");
    std::fs::create_dir(&agent)?;
    std::fs::write(
        agent.join("index.js"),
        "module.exports = async (inputs) => inputs.n + 1;",
    )?;
    std::fs::set_permissions(agent.join("index.js"), PermissionsExt::from_mode(0o644))?;
    std::fs::set_permissions(&agent, PermissionsExt::from_mode(0o755))?;
    let pool = |max| PoolConfig {
        max_per_class: max,
        initial: max,
        slot_dir: dir.path().join("slots"),
        ..PoolConfig::default()
    };

    println!("{runs} sequential runs of a trivial node agent (ms):");
    let reference = sequential(runs, |_| docker_run(&agent)).await?;
    report("docker run --rm -i", &reference, None);
    let cold_times = sequential(runs, |i| once(&cold, &agent, i)).await?;
    report("sandbox, cold path", &cold_times, Some(&reference));
    let warm = cold.clone().with_pool(pool(1));
    let mut warm_times = Vec::with_capacity(runs);
    for i in 0..runs {
        warm.prewarm(&spec(&agent, i)).await?;
        let started = Instant::now();
        once(&warm, &agent, i).await?;
        warm_times.push(started.elapsed());
    }
    report("sandbox, warm path", &warm_times, Some(&reference));
    let stats = warm.pool_stats().unwrap_or_default();
    println!("  warm pool: {} hits, {} misses", stats.hits, stats.misses);
    warm.shutdown().await;

    println!("{total} runs, {parallel} at a time (executions per second):");
    let reference = concurrent(total, parallel, |_| docker_run(&agent)).await?;
    println!("  {:<22} {reference:>6.1}/s", "docker run --rm -i");
    let rate = concurrent(total, parallel, |i| once(&cold, &agent, i)).await?;
    println!(
        "  {:<22} {rate:>6.1}/s  {:.2}x",
        "sandbox, cold path",
        rate / reference
    );
    let warm = cold.clone().with_pool(pool(parallel));
    warm.warm_pool();
    warm.prewarm(&spec(&agent, 0)).await?;
    let rate = concurrent(total, parallel, |i| once(&warm, &agent, i)).await?;
    let stats = warm.pool_stats().unwrap_or_default();
    println!(
        "  {:<22} {rate:>6.1}/s  {:.2}x  ({} hits, {} misses)",
        "sandbox, warm pool",
        rate / reference,
        stats.hits,
        stats.misses
    );
    warm.shutdown().await;
    Ok(())
}

fn spec(agent: &Path, i: usize) -> Spec {
    Spec {
        execution_id: format!("bench-{}-{i}-{}", std::process::id(), nanos()),
        runtime: Runtime::Node,
        package_dir: agent.to_path_buf(),
        entrypoint: "index.js".to_string(),
        inputs: format!(r#"{{"n":{i}}}"#).into_bytes(),
        ..Spec::default()
    }
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
}

async fn once(sandbox: &Sandbox, agent: &Path, i: usize) -> Result<(), Failure> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let outcome = sandbox
        .run(spec(agent, i), tx, CancellationToken::new())
        .await?;
    drain.await?;
    match outcome {
        Outcome::Succeeded { output } if output == (i + 1) => Ok(()),
        other => Err(format!("run {i}: unexpected {other:?}").into()),
    }
}

/// The reference: the same image, runner, limits and lockdown as `Sandbox::run`.
async fn docker_run(agent: &Path) -> Result<(), Failure> {
    let mount = format!("{}:/agent:ro", agent.display());
    let mut child = tokio::process::Command::new("docker")
        .args(["run", "--rm", "-i", "--network=none", "--read-only"])
        .args(["--tmpfs", "/tmp:rw,noexec,nosuid,size=64m,mode=1777"])
        .args([
            "--cpus=1",
            "--memory=256m",
            "--memory-swap=256m",
            "--pids-limit=64",
        ])
        .args(["--cap-drop=ALL", "--security-opt=no-new-privileges"])
        .args([
            "--user",
            "10001:10001",
            "--init",
            "--log-driver=none",
            "-w",
            "/agent",
        ])
        .args(["-v", &mount, "-e", "FRAMEOS_ENTRYPOINT=index.js"])
        .args(["frameos/runtime-node:1", "node", "--max-old-space-size=192"])
        .arg("/opt/frameos/runner.js")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin.write_all(br#"{"n":1}"#).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains(r#""output":2"#) {
        return Err(format!("docker run: {:?} {text}", out.status).into());
    }
    Ok(())
}

async fn sequential<F, Fut>(runs: usize, mut one: F) -> Result<Vec<Duration>, Failure>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let started = Instant::now();
        one(i).await?;
        times.push(started.elapsed());
    }
    Ok(times)
}

/// Executions per second for `total` runs, `parallel` at a time.
async fn concurrent<F, Fut>(total: usize, parallel: usize, one: F) -> Result<f64, Failure>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    use futures::StreamExt;
    let started = Instant::now();
    let results: Vec<Result<(), Failure>> = futures::stream::iter(0..total)
        .map(one)
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn report(what: &str, times: &[Duration], reference: Option<&[Duration]>) {
    let (p50, p99) = percentiles(times);
    let ratio = reference.map_or(String::new(), |r| {
        let (r50, r99) = percentiles(r);
        format!("  p50 {:.2}x, p99 {:.2}x", p50 / r50, p99 / r99)
    });
    println!("  {what:<22} p50 {p50:>6.1}  p99 {p99:>6.1}{ratio}");
}

fn percentiles(times: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.5), at(0.99))
}
