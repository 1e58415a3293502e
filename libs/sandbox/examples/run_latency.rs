//! Median wall time of `Sandbox::run` for a trivial node agent (create → attach → start →
//! result → inspect → remove). Needs Docker and the runtime images.
//!
//! `cargo run -p frameos-sandbox --example run_latency --release [-- RUNS]`

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use frameos_sandbox::{Images, Outcome, Runtime, Sandbox, Spec};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let sandbox = Sandbox::docker(None, Images::default(), "latency-probe").await?;
    sandbox.check_images().await?;
    // As a node does at start: sweep what an earlier, interrupted probe left behind.
    sandbox.remove_stale().await?;

    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("index.js"),
        "module.exports = async (inputs) => inputs.n + 1;",
    )?;
    std::fs::set_permissions(
        dir.path().join("index.js"),
        PermissionsExt::from_mode(0o644),
    )?;
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755))?;

    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let spec = Spec {
            execution_id: format!("latency-{}-{i}", std::process::id()),
            runtime: Runtime::Node,
            package_dir: dir.path().to_path_buf(),
            entrypoint: "index.js".to_string(),
            inputs: format!(r#"{{"n":{i}}}"#).into_bytes(),
            ..Spec::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let started = Instant::now();
        let outcome = sandbox.run(spec, tx, CancellationToken::new()).await?;
        times.push(started.elapsed());
        drain.await?;
        if outcome
            != (Outcome::Succeeded {
                output: (i + 1).into(),
            })
        {
            return Err(format!("run {i}: unexpected {outcome:?}").into());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{runs} runs of a trivial node agent: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1]),
    );
    Ok(())
}
