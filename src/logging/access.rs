//! The access log: one line per request (method, path, status, latency,
//! request id) under the `access` target, in the configured format.
//!
//! The line is formatted here into a reused per-thread buffer and handed to
//! the server's log writer ([`super::batched`]), instead of going through a
//! `tracing` event: on the cached read the event's formatting was a tenth of
//! the request's time. It reads like the `tracing` lines around it (same
//! timestamp, level and target; the same JSON members), and the log filter
//! still decides: `RUST_LOG=warn` or `access=off` silences it.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use super::LogFormat;

/// One request, as the access log records it.
#[derive(Debug, Clone, Copy)]
pub struct AccessLine<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request path, without the query.
    pub path: &'a str,
    /// The answer's status code.
    pub status: u16,
    /// From the request's arrival to its answer.
    pub elapsed: Duration,
    /// The request id (`x-request-id`).
    pub request_id: &'a str,
}

/// Writes the line, unless the log filter leaves `access` out or no log
/// writer runs (operator commands, tests in process).
pub fn write(line: &AccessLine<'_>) {
    let Some(installed) = super::WRITER.get() else {
        return;
    };
    if !tracing::enabled!(target: "access", tracing::Level::INFO) {
        return;
    }
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        // The log's own timestamp, like the tracing lines beside it: the
        // wall clock to the microsecond, not the gateway's protocol clock.
        #[allow(clippy::disallowed_methods)]
        let now = SystemTime::now();
        format_line(buffer, line, installed.format, now);
        // The writer counts what it cannot take; nothing to do here.
        let _ = (&installed.writer).write(buffer);
    });
}

/// Formats `line` as the `tracing` formatter would: the pretty line
/// (`<timestamp>  INFO access: method="GET" ...`) or the flattened JSON
/// object.
fn format_line(out: &mut Vec<u8>, line: &AccessLine<'_>, format: LogFormat, now: SystemTime) {
    let timestamp = humantime::format_rfc3339_micros(now);
    let micros = u64::try_from(line.elapsed.as_micros()).unwrap_or(u64::MAX);
    // Writing to a Vec cannot fail.
    let _ = match format {
        LogFormat::Pretty => writeln!(
            out,
            "{timestamp}  INFO access: method={:?} path={:?} status={} micros={micros} request_id={:?}",
            line.method, line.path, line.status, line.request_id,
        ),
        LogFormat::Json => json_line(out, line, timestamp, micros),
    };
}

fn json_line(
    out: &mut Vec<u8>,
    line: &AccessLine<'_>,
    timestamp: humantime::Rfc3339Timestamp,
    micros: u64,
) -> std::io::Result<()> {
    write!(
        out,
        r#"{{"timestamp":"{timestamp}","level":"INFO","method":"#
    )?;
    serde_json::to_writer(&mut *out, line.method)?;
    out.extend_from_slice(br#","path":"#);
    serde_json::to_writer(&mut *out, line.path)?;
    write!(
        out,
        r#","status":{},"micros":{micros},"request_id":"#,
        line.status
    )?;
    serde_json::to_writer(&mut *out, line.request_id)?;
    out.extend_from_slice(b",\"target\":\"access\"}\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> AccessLine<'static> {
        AccessLine {
            method: "GET",
            path: "/register/a\"b",
            status: 200,
            elapsed: Duration::from_micros(123),
            request_id: "id-1",
        }
    }

    #[test]
    fn the_json_line_has_the_members_of_the_tracing_json_lines() {
        let mut out = Vec::new();
        format_line(&mut out, &line(), LogFormat::Json, SystemTime::UNIX_EPOCH);
        let out = String::from_utf8(out).unwrap();
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["target"], "access");
        assert_eq!(value["method"], "GET");
        assert_eq!(value["path"], "/register/a\"b");
        assert_eq!(value["status"], 200);
        assert_eq!(value["micros"], 123);
        assert_eq!(value["request_id"], "id-1");
        assert!(out.ends_with('\n') && out.matches('\n').count() == 1);
    }

    #[test]
    fn the_pretty_line_reads_like_the_tracing_lines() {
        let mut out = Vec::new();
        format_line(&mut out, &line(), LogFormat::Pretty, SystemTime::UNIX_EPOCH);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:00.000000Z  INFO access: method=\"GET\" path=\"/register/a\\\"b\" \
             status=200 micros=123 request_id=\"id-1\"\n"
        );
    }
}
