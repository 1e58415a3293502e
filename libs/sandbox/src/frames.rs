//! The in-container protocol. Each stdout line that is a frame
//! (`{"frameos":1,"type":"log"|"progress"|"result"|"error",…}`) is decoded; any other stdout
//! line is a plain stdout log line and every stderr line a stderr log line. Whatever the agent
//! writes becomes one of its own two streams, never a platform (`system`) line.

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::redact::Redactor;
use crate::{Event, LINE_LIMIT_BYTES, OUTPUT_LIMIT_BYTES, Secrets, Stream};

/// A stdout line may carry a whole result frame, so it may grow past the log line limit.
const FRAME_LINE_LIMIT: usize = OUTPUT_LIMIT_BYTES + LINE_LIMIT_BYTES;
const RESULT_PREFIX: &[u8] = br#"{"frameos":1,"type":"result""#;
/// What V8 writes to the process's own stderr when the heap reaches its limit, just before it
/// aborts. The runner frames everything the agent prints, so a raw stderr line is V8's.
const V8_FATAL: &[u8] = b"FATAL ERROR:";
const V8_HEAP_OUT_OF_MEMORY: &[u8] = b"JavaScript heap out of memory";
/// What both runners append to a log line or progress message they cut.
const RUNNER_TRUNCATED: &str = " \u{2026}[truncated]";

/// The agent's two output pipes, and the only streams a log frame may name: a frame naming
/// `system` does not parse and stays a plain stdout line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Pipe {
    Stdout,
    Stderr,
}

impl From<Pipe> for Stream {
    fn from(pipe: Pipe) -> Stream {
        match pipe {
            Pipe::Stdout => Stream::Stdout,
            Pipe::Stderr => Stream::Stderr,
        }
    }
}

/// How the agent said it ended: the first terminal frame wins.
#[derive(Debug)]
pub(crate) enum Terminal {
    Result(serde_json::Value),
    Error(String),
    OutputTooLarge,
}

#[derive(Deserialize)]
struct Envelope {
    frameos: u32,
    #[serde(flatten)]
    frame: Frame,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Frame {
    Log {
        stream: Pipe,
        line: String,
    },
    Progress {
        fraction: f64,
        #[serde(default)]
        message: String,
    },
    Result {
        output: serde_json::Value,
    },
    Error {
        #[serde(default)]
        message: String,
        #[serde(default)]
        error_type: String,
    },
    Call(crate::Call),
}

/// Splits a byte stream into lines, holding at most `max` bytes of an unfinished line.
struct Lines {
    buf: Vec<u8>,
    max: usize,
    /// The current line was already emitted cut; skip to its end.
    skipping: bool,
}

struct Line {
    bytes: Vec<u8>,
    cut: bool,
}

impl Lines {
    fn new(max: usize) -> Self {
        Lines {
            buf: Vec::new(),
            max,
            skipping: false,
        }
    }

    fn push(&mut self, mut data: &[u8], out: &mut Vec<Line>) {
        while !data.is_empty() {
            let (part, ends) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], Some(i + 1)),
                None => (data, None),
            };
            if !self.skipping {
                let room = self.max - self.buf.len();
                self.buf.extend_from_slice(&part[..part.len().min(room)]);
                if part.len() > room {
                    out.push(self.take(true));
                    self.skipping = ends.is_none();
                } else if ends.is_some() {
                    out.push(self.take(false));
                }
            } else if ends.is_some() {
                self.skipping = false;
            }
            match ends {
                Some(next) => data = &data[next..],
                None => break,
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Line>) {
        if !self.buf.is_empty() {
            out.push(self.take(false));
        }
        self.skipping = false;
    }

    fn take(&mut self, cut: bool) -> Line {
        let mut bytes = std::mem::take(&mut self.buf);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Line { bytes, cut }
    }
}

/// Turns output chunks into events (with back-pressure and the log cap) and the terminal frame.
pub(crate) struct Pump {
    events: mpsc::Sender<Event>,
    receiver_gone: bool,
    log_limit: u64,
    log_bytes: u64,
    capped: bool,
    stdout: Lines,
    stderr: Lines,
    terminal: Option<Terminal>,
    heap_exhausted: bool,
    settle_on_result: bool,
    /// `ctx.call`s read and not yet taken by the driver.
    calls: Vec<crate::Call>,
    /// Masks the run's secret values; `None` when it has none.
    redactor: Option<Redactor>,
}

impl Pump {
    pub(crate) fn new(events: mpsc::Sender<Event>, log_limit: u64) -> Self {
        Pump {
            events,
            receiver_gone: false,
            log_limit,
            log_bytes: 0,
            capped: false,
            stdout: Lines::new(FRAME_LINE_LIMIT),
            stderr: Lines::new(LINE_LIMIT_BYTES),
            terminal: None,
            heap_exhausted: false,
            settle_on_result: false,
            calls: Vec::new(),
            redactor: None,
        }
    }

    /// Masks every value of `secrets` in each log line, progress message and error message.
    pub(crate) fn redacting(mut self, secrets: &Secrets) -> Self {
        if !secrets.is_empty() {
            self.redactor = Some(secrets.redactor().clone());
        }
        self
    }

    /// A raw output line as text within the line limit, secrets masked. `cut`: bytes past
    /// the line limit were dropped already.
    fn raw_text(&self, bytes: &[u8], cut: bool) -> String {
        match &self.redactor {
            None => lossy_cut(bytes),
            Some(r) => scrub(r, &String::from_utf8_lossy(bytes), cut),
        }
    }

    /// Text from a frame within the line limit, secrets masked.
    fn frame_text(&self, text: String) -> String {
        match &self.redactor {
            None => cut_str(text),
            Some(r) => scrub(r, &text, false),
        }
    }

    /// The run may end at its result frame, without waiting for the process to exit: a
    /// result is `succeeded` whatever the exit (see `drive::decide`). For containers that are
    /// removed off the critical path anyway (the warm path).
    pub(crate) fn settle_on_result(mut self) -> Self {
        self.settle_on_result = true;
        self
    }

    /// A result frame arrived and the run may end at it.
    pub(crate) fn settled(&self) -> bool {
        self.settle_on_result && matches!(self.terminal, Some(Terminal::Result(_)))
    }

    /// Whether V8 reported its heap limit reached (Node's `--max-old-space-size`).
    pub(crate) fn heap_exhausted(&self) -> bool {
        self.heap_exhausted
    }

    pub(crate) fn has_terminal(&self) -> bool {
        self.terminal.is_some()
    }

    /// The calls the agent made since the last time.
    pub(crate) fn take_calls(&mut self) -> Vec<crate::Call> {
        std::mem::take(&mut self.calls)
    }

    pub(crate) fn into_terminal(self) -> Option<Terminal> {
        self.terminal
    }

    pub(crate) async fn feed(&mut self, pipe: Pipe, data: &[u8]) {
        let mut lines = Vec::new();
        match pipe {
            Pipe::Stdout => self.stdout.push(data, &mut lines),
            Pipe::Stderr => self.stderr.push(data, &mut lines),
        }
        self.handle(pipe, lines).await;
    }

    /// Flushes unfinished last lines once the output has ended.
    pub(crate) async fn finish(&mut self) {
        let mut lines = Vec::new();
        self.stdout.finish(&mut lines);
        self.handle(Pipe::Stdout, lines).await;
        let mut lines = Vec::new();
        self.stderr.finish(&mut lines);
        self.handle(Pipe::Stderr, lines).await;
    }

    async fn handle(&mut self, pipe: Pipe, lines: Vec<Line>) {
        for line in lines {
            match pipe {
                Pipe::Stdout => self.stdout_line(line).await,
                Pipe::Stderr => {
                    if is_v8_heap_fatal(&line.bytes) {
                        self.heap_exhausted = true;
                    }
                    let text = self.raw_text(&line.bytes, line.cut);
                    self.log(Pipe::Stderr, text).await
                }
            }
        }
    }

    async fn stdout_line(&mut self, line: Line) {
        if line.cut {
            // Too long even for a frame; a result this long is over the output limit.
            if self.terminal.is_none() && is_result_prefix(&line.bytes) {
                self.terminal = Some(Terminal::OutputTooLarge);
            } else {
                let text = self.raw_text(&line.bytes, true);
                self.log(Pipe::Stdout, text).await;
            }
            return;
        }
        let frame = match parse(&line.bytes) {
            Some(frame) => frame,
            None => {
                let text = self.raw_text(&line.bytes, false);
                return self.log(Pipe::Stdout, text).await;
            }
        };
        match frame {
            Frame::Log { stream, line } => {
                let text = self.frame_text(line);
                self.log(stream, text).await
            }
            Frame::Progress { fraction, message } => {
                if fraction.is_finite() {
                    let fraction = fraction.clamp(0.0, 1.0);
                    let message = self.frame_text(message);
                    // Progress counts against the log budget too, so it cannot flood the node.
                    if self.spend(message.len() as u64 + 16).await {
                        self.send(Event::Progress { fraction, message }).await;
                    }
                }
            }
            Frame::Result { output } if self.terminal.is_none() => {
                let size = serde_json::to_vec(&output).map_or(usize::MAX, |v| v.len());
                self.terminal = Some(if size > OUTPUT_LIMIT_BYTES {
                    Terminal::OutputTooLarge
                } else {
                    Terminal::Result(output)
                });
            }
            Frame::Error {
                message,
                error_type,
            } if self.terminal.is_none() => {
                let message = match (message.is_empty(), error_type.is_empty()) {
                    (false, _) => self.frame_text(message),
                    (true, false) => self.frame_text(error_type),
                    (true, true) => "the agent failed without a message".to_string(),
                };
                self.terminal = Some(Terminal::Error(message));
            }
            Frame::Result { .. } | Frame::Error { .. } => {
                tracing::debug!("second terminal frame ignored");
            }
            // After its terminal frame nothing the agent asks for runs.
            Frame::Call(call) if self.terminal.is_none() => self.calls.push(call),
            Frame::Call(_) => tracing::debug!("call after the terminal frame ignored"),
        }
    }

    async fn log(&mut self, pipe: Pipe, line: String) {
        if self.spend(line.len() as u64).await {
            let stream = pipe.into();
            self.send(Event::Log { stream, line }).await;
        }
    }

    /// Whether `bytes` more fit the log budget; the first time they do not, says so once.
    async fn spend(&mut self, bytes: u64) -> bool {
        if self.capped {
            return false;
        }
        if self.log_bytes.saturating_add(bytes) > self.log_limit {
            self.capped = true;
            let line = format!(
                "log limit of {} bytes reached; further output dropped",
                self.log_limit
            );
            self.send(Event::Log {
                stream: Stream::System,
                line,
            })
            .await;
            return false;
        }
        self.log_bytes += bytes;
        true
    }

    async fn send(&mut self, event: Event) {
        // A receiver that went away is not the agent's failure: keep draining its output.
        if !self.receiver_gone && self.events.send(event).await.is_err() {
            self.receiver_gone = true;
            tracing::debug!("event receiver dropped; discarding further events");
        }
    }
}

fn parse(line: &[u8]) -> Option<Frame> {
    // Cheap test first: most log lines are not JSON at all.
    if line.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    match serde_json::from_slice::<Envelope>(line) {
        Ok(env) if env.frameos == 1 => Some(env.frame),
        _ => None,
    }
}

fn is_v8_heap_fatal(line: &[u8]) -> bool {
    line.starts_with(V8_FATAL)
        && line
            .windows(V8_HEAP_OUT_OF_MEMORY.len())
            .any(|w| w == V8_HEAP_OUT_OF_MEMORY)
}

/// Tolerates whitespace after separators, as Python's `json.dumps` writes by default.
fn is_result_prefix(line: &[u8]) -> bool {
    let mut compact = line.iter().filter(|b| !b.is_ascii_whitespace());
    RESULT_PREFIX.iter().all(|b| compact.next() == Some(b))
}

fn lossy_cut(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(LINE_LIMIT_BYTES)]).into_owned()
}

/// Masks secrets, then cuts to the line limit. A cut (by the runner, which marks it, by the
/// line reader, `cut`, or here) may leave the start of a value at the end: masked too.
fn scrub(redactor: &Redactor, text: &str, cut: bool) -> String {
    let (body, marked) = match text.strip_suffix(RUNNER_TRUNCATED) {
        Some(body) => (body, true),
        None => (text, false),
    };
    let mut out = redactor.redact(body).into_owned();
    if cut || marked {
        redactor.mask_cut_tail(&mut out);
    }
    if marked {
        out.push_str(RUNNER_TRUNCATED);
    }
    if out.len() > LINE_LIMIT_BYTES {
        out = cut_str(out);
        redactor.mask_cut_tail(&mut out);
    }
    out
}

fn cut_str(mut s: String) -> String {
    if s.len() > LINE_LIMIT_BYTES {
        let mut end = LINE_LIMIT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests;
