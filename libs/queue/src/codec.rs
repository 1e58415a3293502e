//! A job as an AMQP message: the execution id is the body, the attempt and trace context are
//! headers, the priority is the priority property.

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};

use crate::{ATTEMPT_HEADER, DEATH_REASON_HEADER, Error, Job};

const PERSISTENT: u8 = 2;

/// Headers the broker or this crate set; never part of [`Job::headers`].
fn reserved(name: &str) -> bool {
    name.starts_with("x-frameos-")
        || name == "x-death"
        || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
}

pub(crate) fn properties(job: &Job, death_reason: Option<&str>) -> Result<BasicProperties, Error> {
    let mut headers = FieldTable::default();
    for (name, value) in job.headers.iter().filter(|(name, _)| !reserved(name)) {
        let name = ShortString::try_new(name.as_str())
            .map_err(|e| Error::Invalid(format!("job: header {name:?}: {e}")))?;
        headers.insert(name, AMQPValue::LongString(value.as_str().into()));
    }
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(job.attempt)),
    );
    if let Some(reason) = death_reason {
        headers.insert(
            DEATH_REASON_HEADER.into(),
            AMQPValue::LongString(reason.into()),
        );
    }
    Ok(BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_priority(job.priority)
        .with_content_type("text/plain".into())
        .with_headers(headers))
}

pub(crate) struct Decoded {
    pub(crate) job: Job,
    pub(crate) death_reason: Option<String>,
}

/// Reads a delivered message back into a job. Only the body can be unusable; `lenient` accepts it
/// lossily (for dead letters, which have nowhere further to go).
pub(crate) fn decode(
    data: &[u8],
    properties: &BasicProperties,
    lenient: bool,
) -> Result<Decoded, String> {
    let execution_id = match std::str::from_utf8(data) {
        Ok(id) if !id.is_empty() => id.to_string(),
        _ if lenient => String::from_utf8_lossy(data).into_owned(),
        Ok(_) => return Err("empty body".to_string()),
        Err(_) => return Err("body is not utf-8".to_string()),
    };
    let empty = FieldTable::default();
    let table = properties.headers().as_ref().unwrap_or(&empty).inner();
    let text = |name: &str| table.get(name).and_then(as_string);
    let headers: BTreeMap<String, String> = table
        .iter()
        .filter(|(name, _)| !reserved(name.as_str()))
        .filter_map(|(name, value)| Some((name.to_string(), as_string(value)?)))
        .collect();
    let attempt = table
        .get(ATTEMPT_HEADER)
        .and_then(as_u32)
        .unwrap_or(1)
        .max(1);
    // A message the broker dead-lettered itself (rejected, say) carries only the broker's reason.
    let death_reason = text(DEATH_REASON_HEADER).or_else(|| {
        text("x-first-death-reason").map(|why| format!("dead-lettered by the broker: {why}"))
    });
    Ok(Decoded {
        job: Job {
            execution_id,
            priority: properties.priority().unwrap_or(0),
            attempt,
            headers,
        },
        death_reason,
    })
}

fn as_string(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => String::from_utf8(s.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn as_u32(value: &AMQPValue) -> Option<u32> {
    match *value {
        AMQPValue::ShortShortUInt(v) => Some(v.into()),
        AMQPValue::ShortUInt(v) => Some(v.into()),
        AMQPValue::LongUInt(v) => Some(v),
        AMQPValue::ShortShortInt(v) => u32::try_from(v).ok(),
        AMQPValue::ShortInt(v) => u32::try_from(v).ok(),
        AMQPValue::LongInt(v) => u32::try_from(v).ok(),
        AMQPValue::LongLongInt(v) => u32::try_from(v).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_hides_reserved_headers() {
        let mut job = Job::new("exec-1", 7);
        job.attempt = 3;
        job.headers
            .insert("traceparent".into(), "00-abc-def-01".into());
        job.headers.insert(ATTEMPT_HEADER.into(), "99".into());
        let props = properties(&job, Some("boom")).unwrap();
        assert_eq!(props.delivery_mode(), &Some(2));
        let decoded = decode(b"exec-1", &props, false).unwrap();
        job.headers.remove(ATTEMPT_HEADER);
        assert_eq!(decoded.job, job);
        assert_eq!(decoded.death_reason.as_deref(), Some("boom"));
    }

    #[test]
    fn tolerates_broker_headers_and_refuses_bad_bodies() {
        let mut table = FieldTable::default();
        table.insert("x-death".into(), AMQPValue::FieldArray(Vec::new().into()));
        table.insert(
            "x-first-death-reason".into(),
            AMQPValue::LongString("rejected".into()),
        );
        table.insert(ATTEMPT_HEADER.into(), AMQPValue::LongInt(2));
        let props = BasicProperties::default().with_headers(table);
        let decoded = decode(b"e", &props, false).unwrap();
        assert_eq!(decoded.job.attempt, 2);
        assert_eq!(decoded.job.priority, 0);
        assert!(decoded.job.headers.is_empty());
        assert_eq!(
            decoded.death_reason.as_deref(),
            Some("dead-lettered by the broker: rejected")
        );
        assert!(decode(b"", &props, false).is_err());
        assert!(decode(&[0xff], &props, false).is_err());
        assert_eq!(
            decode(&[0xff], &props, true).unwrap().job.execution_id,
            "\u{fffd}"
        );
    }
}
