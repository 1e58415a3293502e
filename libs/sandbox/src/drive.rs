//! The part of a run both backends share: feed stdin, pump output into events, and stop at the
//! deadline or on cancel.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream as FuturesStream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::calls::{Calls, MAX_CONCURRENT_CALLS, Reply};
use crate::frames::{Pipe, Pump, Terminal};
use crate::{Outcome, Runtime, Spec};

/// After the terminal frame the process should exit at once; give it this long.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The exit code of a process killed by SIGABRT, as V8 aborts when its heap is exhausted.
const ABORTED: i64 = 128 + 6;

/// The runner's command line: the interpreter and its arguments. Node gets V8's heap limit at
/// three quarters of the memory limit, so a heap that grows without bound meets V8's limit
/// (reported as out of memory) before the kernel's OOM killer (measured in ADR 0011: at 64 MB
/// and above V8 aborts first every time; below, the cgroup kills first, also out of memory).
pub(crate) fn runner_command(runtime: Runtime, runner: &str, memory_mb: u64) -> Vec<String> {
    let program = crate::interpreter(runtime).to_string();
    match runtime {
        Runtime::Node => vec![
            program,
            format!("--max-old-space-size={}", node_heap_limit_mb(memory_mb)),
            runner.to_string(),
        ],
        Runtime::Python => vec![program, runner.to_string()],
    }
}

/// What the runner reads first on stdin (runtime-images/README.md, "Stdin"): one header line,
/// then the inputs as one line. The header carries the secrets, which never enter the
/// environment or the command line; a warm runner also learns its entrypoint and execution.
pub(crate) fn first_lines(spec: &Spec, warm: bool) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if warm {
        header.insert("entrypoint".into(), spec.entrypoint.clone().into());
        header.insert("execution_id".into(), spec.execution_id.clone().into());
    }
    header.insert("secrets".into(), spec.secrets.to_json());
    // Compact JSON escapes every newline inside a string: the header is one line.
    let mut message = serde_json::Value::Object(header).to_string().into_bytes();
    message.push(b'\n');
    message.extend_from_slice(&crate::calls::one_line(&spec.inputs));
    message
}

pub(crate) fn node_heap_limit_mb(memory_mb: u64) -> u64 {
    (memory_mb.saturating_mul(3) / 4).max(1)
}

/// The kernel killed it for memory, or V8 aborted on its heap limit.
pub(crate) fn out_of_memory(oom_killed: bool, pump: &Pump, exit_code: Option<i64>) -> bool {
    oom_killed || (pump.heap_exhausted() && exit_code == Some(ABORTED))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Output ended and the process exited on its own.
    Exited,
    /// It sent its terminal frame but did not exit within the grace period: kill it.
    Lingered,
    /// It sent its result and the pump settles on results (`Pump::settle_on_result`): the
    /// outcome is known; stopping the process is left to the container's removal.
    Settled,
    TimedOut,
    Canceled,
}

/// Runs until the process has exited (`exited` is polled only once its output has ended), the
/// timeout passes, or `cancel` fires. Stopping the process is the caller's job. `message` is
/// what the runner reads first ([`first_lines`]); the agent's calls are answered by `calls` on
/// the same stdin afterwards.
#[allow(clippy::too_many_arguments)] // the run's parts, each from a different owner
pub(crate) async fn drive<C, W, X>(
    mut chunks: C,
    mut stdin: W,
    message: &[u8],
    calls: Option<&Calls>,
    exited: X,
    pump: &mut Pump,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Ended
where
    C: FuturesStream<Item = (Pipe, Bytes)> + Unpin,
    W: AsyncWrite + Unpin,
    X: Future<Output = ()>,
{
    // Called right after `Spec::started` is marked: the timeout covers the run phase only
    // (API.md §4.4), never the image, container or package work before it.
    let deadline = Instant::now() + timeout;
    let mut terminal_at: Option<Instant> = None;
    // Replies are written in the order calls end; stdin stays open for them until the run ends.
    let (replies, mut to_write) = mpsc::unbounded_channel::<Vec<u8>>();
    let write = async move {
        stdin.write_all(message).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        while let Some(line) = to_write.recv().await {
            stdin.write_all(&line).await?;
            stdin.flush().await?;
        }
        stdin.shutdown().await
    };
    tokio::pin!(write);
    let mut waiting: FuturesUnordered<BoxFuture<'static, (u64, Reply)>> = FuturesUnordered::new();
    tokio::pin!(exited);
    let mut written = false;
    let mut output_ended = false;
    loop {
        let limit = terminal_at.map_or(deadline, |t| deadline.min(t + EXIT_GRACE));
        let chunk = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ended::Canceled,
            _ = sleep_until(limit) => return expired(terminal_at),
            result = &mut write, if !written => {
                written = true;
                if let Err(e) = result {
                    // The agent may exit without reading its inputs; that is its business.
                    tracing::debug!(error = %e, "writing inputs failed");
                }
                continue;
            }
            Some((call_id, reply)) = waiting.next(), if !waiting.is_empty() => {
                // A runner that stopped reading is not the driver's failure: its run goes on.
                let _ = replies.send(reply.line(call_id));
                continue;
            }
            chunk = chunks.next(), if !output_ended => chunk,
            _ = &mut exited, if output_ended => return Ended::Exited,
        };
        let end_of_output = chunk.is_none();
        // Feeding waits on a slow event receiver (back-pressure), still bounded by both stops.
        let feeding = async {
            match chunk {
                Some((stream, data)) => pump.feed(stream, &data).await,
                None => pump.finish().await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ended::Canceled,
            _ = sleep_until(limit) => return expired(terminal_at),
            () = feeding => {}
        }
        output_ended |= end_of_output;
        for call in pump.take_calls() {
            let call_id = call.call_id;
            let reply = match calls {
                _ if waiting.len() >= MAX_CONCURRENT_CALLS => Reply::error(
                    "too_many_calls",
                    format!("at most {MAX_CONCURRENT_CALLS} calls may wait at once"),
                ),
                None => Reply::error("calls_unavailable", "this run cannot call other agents"),
                Some(calls) => {
                    tracing::debug!(call_id, agent = %call.agent, "agent calls an agent");
                    waiting.push(calls.start(call).map(move |reply| (call_id, reply)).boxed());
                    continue;
                }
            };
            let _ = replies.send(reply.line(call_id));
        }
        if terminal_at.is_none() && pump.has_terminal() {
            terminal_at = Some(Instant::now());
            if pump.settled() {
                return Ended::Settled;
            }
        }
    }
}

fn expired(terminal_at: Option<Instant>) -> Ended {
    if terminal_at.is_some() {
        Ended::Lingered
    } else {
        Ended::TimedOut
    }
}

/// What a run that ended on its own (not timed out, not canceled) amounts to.
pub(crate) fn decide(terminal: Option<Terminal>, exit_code: Option<i64>, oom: bool) -> Outcome {
    match terminal {
        // The work is done; how the process went down afterwards does not matter.
        Some(Terminal::Result(output)) => Outcome::Succeeded { output },
        Some(Terminal::OutputTooLarge) => Outcome::Failed {
            error: "output exceeds 1 MiB".to_string(),
            exit_code,
        },
        _ if oom => Outcome::OutOfMemory,
        Some(Terminal::Error(error)) => Outcome::Failed { error, exit_code },
        None => Outcome::Failed {
            error: match exit_code {
                Some(code) => format!("exited with code {code}"),
                None => "exited without a result".to_string(),
            },
            exit_code,
        },
    }
}
