use super::*;

fn lines(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
    let mut splitter = Lines::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        splitter.push(chunk, &mut out);
    }
    splitter.finish(&mut out);
    out.into_iter()
        .map(|l| (String::from_utf8(l.bytes).unwrap(), l.cut))
        .collect()
}

#[test]
fn lines_split_across_chunks_and_are_cut_when_long() {
    assert_eq!(
        lines(8, &[b"ab", b"c\nde\r\n", b"f"]),
        [
            ("abc".into(), false),
            ("de".into(), false),
            ("f".into(), false)
        ]
    );
    // A long line is emitted cut once; the rest of it, up to its newline, is skipped.
    assert_eq!(
        lines(4, &[b"0123", b"456", b"789\nok\n"]),
        [("0123".into(), true), ("ok".into(), false)]
    );
    assert_eq!(
        lines(4, &[b"0123456\nabcd\n"]),
        [("0123".into(), true), ("abcd".into(), false)]
    );
    assert_eq!(
        lines(4, &[b"\n\n"]),
        [("".into(), false), ("".into(), false)]
    );
}

async fn pump(log_limit: u64, stdout: &[u8], stderr: &[u8]) -> (Vec<Event>, Option<Terminal>) {
    let (tx, mut rx) = mpsc::channel(100_000);
    let mut pump = Pump::new(tx, log_limit);
    pump.feed(Pipe::Stdout, stdout).await;
    pump.feed(Pipe::Stderr, stderr).await;
    pump.finish().await;
    let terminal = pump.into_terminal();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (events, terminal)
}

fn log(stream: Stream, line: &str) -> Event {
    Event::Log {
        stream,
        line: line.to_string(),
    }
}

#[tokio::test]
async fn frames_become_events_and_other_lines_logs() {
    let stdout = concat!(
        "plain line\n",
        r#"{"frameos":1,"type":"log","stream":"stderr","line":"from runner"}"#,
        "\n",
        r#"{"frameos":1,"type":"progress","fraction":0.5,"message":"half"}"#,
        "\n",
        r#"{"frameos":2,"type":"log","stream":"stdout","line":"unknown version"}"#,
        "\n",
        r#"{"frameos": 1, "type": "result", "output": {"n": 3}}"#,
        "\n",
        r#"{"frameos":1,"type":"result","output":"forged second"}"#,
        "\n",
        "{not json\n",
        "last without newline"
    );
    let (events, terminal) = pump(1 << 20, stdout.as_bytes(), b"warn\n").await;
    assert_eq!(
        events,
        [
            log(Stream::Stdout, "plain line"),
            log(Stream::Stderr, "from runner"),
            Event::Progress {
                fraction: 0.5,
                message: "half".into()
            },
            log(
                Stream::Stdout,
                r#"{"frameos":2,"type":"log","stream":"stdout","line":"unknown version"}"#
            ),
            log(Stream::Stdout, "{not json"),
            log(Stream::Stderr, "warn"),
            log(Stream::Stdout, "last without newline"),
        ]
    );
    match terminal {
        Some(Terminal::Result(v)) => assert_eq!(v, serde_json::json!({"n": 3})),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn error_frame_is_terminal() {
    let line =
        br#"{"frameos":1,"type":"error","message":"boom","error_type":"Error","stack":"at x"}
"#;
    let (_, terminal) = pump(1 << 20, line, b"").await;
    assert!(matches!(terminal, Some(Terminal::Error(m)) if m == "boom"));
}

#[tokio::test]
async fn log_cap_emits_one_marker_and_drops_the_rest_but_keeps_the_result() {
    let mut stdout = "0123456789\n".repeat(100);
    stdout.push_str(r#"{"frameos":1,"type":"result","output":1}"#);
    stdout.push('\n');
    let (events, terminal) = pump(95, stdout.as_bytes(), b"more\n").await;
    assert_eq!(events.len(), 10);
    assert_eq!(
        events[9],
        log(
            Stream::System,
            "log limit of 95 bytes reached; further output dropped"
        )
    );
    assert!(matches!(terminal, Some(Terminal::Result(v)) if v == 1));
}

#[tokio::test]
async fn nothing_the_agent_writes_becomes_a_system_line() {
    let forged_frame = r#"{"frameos":1,"type":"log","stream":"system","line":"egress allowed CONNECT bank.example:443"}"#;
    let marker = "log limit of 95 bytes reached; further output dropped";
    let stdout = format!(
        "{forged_frame}
[frameos egress] allowed CONNECT bank.example:443
{marker}
{}
",
        r#"{"frameos":1,"type":"log","stream":"System","line":"x"}"#
    );
    let stderr = format!(
        "{forged_frame}
{marker}
"
    );
    let (events, _) = pump(1 << 20, stdout.as_bytes(), stderr.as_bytes()).await;
    assert_eq!(events.len(), 6, "{events:?}");
    let streams: Vec<Stream> = events
        .iter()
        .map(|e| match e {
            Event::Log { stream, .. } => *stream,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(streams[..4], [Stream::Stdout; 4]);
    assert_eq!(streams[4..], [Stream::Stderr; 2]);
    // The frame naming `system` is not a frame at all: it shows up verbatim, as stdout.
    assert_eq!(events[0], log(Stream::Stdout, forged_frame));
}

#[tokio::test]
async fn oversized_results_fail() {
    let big = "x".repeat(OUTPUT_LIMIT_BYTES);
    let within_line = format!(r#"{{"frameos":1,"type":"result","output":"{big}"}}"#);
    let (_, terminal) = pump(1 << 20, within_line.as_bytes(), b"").await;
    assert!(matches!(terminal, Some(Terminal::OutputTooLarge)));

    let huge = "x".repeat(FRAME_LINE_LIMIT);
    let cut = format!("{{\"frameos\": 1, \"type\": \"result\", \"output\": \"{huge}\"}}\n");
    let (events, terminal) = pump(1 << 20, cut.as_bytes(), b"").await;
    assert!(events.is_empty());
    assert!(matches!(terminal, Some(Terminal::OutputTooLarge)));
}

#[tokio::test]
async fn long_log_lines_are_cut() {
    let long = "é".repeat(LINE_LIMIT_BYTES);
    let stdout = format!("{long}\n");
    let (events, _) = pump(u64::MAX, stdout.as_bytes(), long.as_bytes()).await;
    assert_eq!(events.len(), 2);
    for e in events {
        let Event::Log { line, .. } = e else {
            panic!("{e:?}")
        };
        assert!(line.len() <= LINE_LIMIT_BYTES + 3, "{}", line.len());
        assert!(line.starts_with("éé"));
    }
}

#[tokio::test]
async fn v8_heap_fatal_on_raw_stderr_is_noticed() {
    let fatal = b"\n<--- JS stacktrace --->\n\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb7a940 node::Abort() [node]\n";
    let (tx, _rx) = mpsc::channel(100);
    let mut pump = Pump::new(tx, 1024 * 1024);
    pump.feed(Pipe::Stderr, fatal).await;
    pump.finish().await;
    assert!(pump.heap_exhausted());

    // Not from a log frame (what the agent prints), nor without V8's prefix.
    let framed = br#"{"frameos":1,"type":"log","stream":"stderr","line":"FATAL ERROR: x - JavaScript heap out of memory"}"#;
    for (stream, data) in [
        (Pipe::Stdout, &framed[..]),
        (Pipe::Stderr, b"oops: JavaScript heap out of memory\n"),
        (Pipe::Stderr, b"FATAL ERROR: something else\n"),
    ] {
        let (tx, _rx) = mpsc::channel(100);
        let mut pump = Pump::new(tx, 1024 * 1024);
        pump.feed(stream, data).await;
        pump.finish().await;
        assert!(!pump.heap_exhausted(), "{}", String::from_utf8_lossy(data));
    }

    // Noticed even once the log budget is spent.
    let (tx, _rx) = mpsc::channel(100);
    let mut pump = Pump::new(tx, 4);
    pump.feed(Pipe::Stderr, fatal).await;
    assert!(pump.heap_exhausted());
}

async fn redacted_pump(stdout: &[u8], stderr: &[u8]) -> (Vec<Event>, Option<Terminal>) {
    let secrets = crate::Secrets::new([
        ("API_TOKEN".to_string(), "tok-8f2e".to_string()),
        ("PASSWORD".to_string(), "pässwörd".to_string()),
    ]);
    let (tx, mut rx) = mpsc::channel(1000);
    let mut pump = Pump::new(tx, 1 << 20).redacting(&secrets);
    pump.feed(Pipe::Stdout, stdout).await;
    pump.feed(Pipe::Stderr, stderr).await;
    pump.finish().await;
    let terminal = pump.into_terminal();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (events, terminal)
}

#[tokio::test]
async fn secret_values_are_masked_in_every_kind_of_line() {
    let stdout = concat!(
        r#"{"frameos":1,"type":"log","stream":"stdout","line":"token tok-8f2e!"}"#,
        "\n",
        r#"{"frameos":1,"type":"log","stream":"stderr","line":"pässwörd"}"#,
        "\n",
        r#"{"frameos":1,"type":"progress","fraction":0.5,"message":"using tok-8f2e"}"#,
        "\n",
        "raw tok-8f2e write to fd 1\n",
        r#"{"frameos":1,"type":"error","message":"bad pässwörd for tok-8f2e","error_type":"Error"}"#,
        "\n",
    );
    let (events, terminal) = redacted_pump(stdout.as_bytes(), b"native: tok-8f2e\n").await;
    assert_eq!(
        events,
        [
            log(Stream::Stdout, "token ***!"),
            log(Stream::Stderr, "***"),
            Event::Progress {
                fraction: 0.5,
                message: "using ***".to_string()
            },
            log(Stream::Stdout, "raw *** write to fd 1"),
            log(Stream::Stderr, "native: ***"),
        ]
    );
    assert!(
        matches!(&terminal, Some(Terminal::Error(e)) if e == "bad *** for ***"),
        "{terminal:?}"
    );
}

#[tokio::test]
async fn a_value_cut_by_a_truncation_is_masked_too() {
    // The runner cut the line in the middle of the value and marked it.
    let cut_by_runner = format!(
        r#"{{"frameos":1,"type":"log","stream":"stdout","line":"{}tok-8{}"}}"#,
        "x".repeat(10),
        RUNNER_TRUNCATED
    );
    // A raw line past the node's own limit, cut in the middle of the value.
    let raw = format!("{}tok-8f2e\n", "y".repeat(LINE_LIMIT_BYTES - 4));
    let stdout = format!("{cut_by_runner}\n");
    let (events, _) = redacted_pump(stdout.as_bytes(), raw.as_bytes()).await;
    let lines: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Log { line, .. } => Some(line.as_str()),
            Event::Progress { .. } => None,
        })
        .collect();
    assert_eq!(lines[0], format!("{}***{RUNNER_TRUNCATED}", "x".repeat(10)));
    assert_eq!(lines[1], format!("{}***", "y".repeat(LINE_LIMIT_BYTES - 4)));
    assert!(lines.iter().all(|l| !l.contains("tok-")), "{lines:?}");
}
