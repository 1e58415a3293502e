//! Who wrote a log line (API.md §4.1). Agents write `stdout` and `stderr`; only the platform
//! writes `system` (egress decisions, the log-limit marker, retries, node hand-over).

crate::vocab::vocabulary! {
    /// The stream of a log line.
    LogStream, "log stream", InvalidRequest {
        Stdout => "stdout",
        Stderr => "stderr",
        System => "system",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_round_trip_and_nothing_else_parses() {
        for stream in LogStream::ALL {
            assert_eq!(stream.as_str().parse::<LogStream>(), Ok(*stream));
            let json = serde_json::to_string(stream).unwrap_or_default();
            assert_eq!(json, format!("\"{stream}\""));
        }
        for bad in ["", "SYSTEM", "System", "stdin", "stdout ", "platform"] {
            let err = bad.parse::<LogStream>().unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidRequest, "{bad:?}");
        }
    }
}
