//! Who wrote a log line (API.md §4.1). Agents write `stdout` and `stderr`; only the platform
//! writes `system` (egress decisions, the log-limit marker, retries, node hand-over).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    System,
}

impl LogStream {
    pub const ALL: &'static [LogStream] =
        &[LogStream::Stdout, LogStream::Stderr, LogStream::System];

    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }
}

impl fmt::Display for LogStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogStream {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogStream::ALL
            .iter()
            .copied()
            .find(|stream| stream.as_str() == s)
            .ok_or_else(|| {
                crate::Error::new(
                    crate::ErrorCode::InvalidRequest,
                    format!("unknown log stream {s:?}; expected one of stdout, stderr, system"),
                )
            })
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
