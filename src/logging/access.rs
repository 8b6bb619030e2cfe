//! The access log: one line per request (method, path, status, latency,
//! request id) under the `access` target, in the configured format.
//!
//! The line is formatted here into a reused per-thread buffer and handed to
//! the server's log writer ([`super::batched`]), instead of going through a
//! `tracing` event: on the cached read the event's formatting was a tenth of
//! the request's time. It reads like the `tracing` lines around it (same
//! timestamp, level and target; the same JSON members), and the log filter
//! still decides: `RUST_LOG=warn` or `access=off` silences it.

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    let micros = u64::try_from(line.elapsed.as_micros()).unwrap_or(u64::MAX);
    let _ = match format {
        LogFormat::Pretty => pretty_line(out, line, now, micros),
        LogFormat::Json => json_line(out, line, now, micros),
    };
}

fn pretty_line(
    out: &mut Vec<u8>,
    line: &AccessLine<'_>,
    now: SystemTime,
    micros: u64,
) -> std::io::Result<()> {
    timestamp(out, now);
    out.extend_from_slice(b"  INFO access: method=");
    debug_str(out, line.method)?;
    out.extend_from_slice(b" path=");
    debug_str(out, line.path)?;
    write!(out, " status={} micros={micros} request_id=", line.status)?;
    debug_str(out, line.request_id)?;
    out.push(b'\n');
    Ok(())
}

fn json_line(
    out: &mut Vec<u8>,
    line: &AccessLine<'_>,
    now: SystemTime,
    micros: u64,
) -> std::io::Result<()> {
    out.extend_from_slice(br#"{"timestamp":""#);
    timestamp(out, now);
    out.extend_from_slice(br#"","level":"INFO","method":"#);
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

/// `now` as the `tracing` lines write it (RFC 3339, UTC, microseconds). The
/// part down to the second is formatted once a second per thread.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != second {
        // "YYYY-MM-DDTHH:MM:SSZ": the first 19 bytes are the part kept.
        let formatted = humantime::format_rfc3339_seconds(now).to_string();
        let Some(head) = formatted.as_bytes().get(..19) else {
            return;
        };
        text.copy_from_slice(head);
        SECOND.set((second, text));
    }
    out.extend_from_slice(&text);
    let _ = write!(out, ".{:06}Z", since_epoch.subsec_micros());
}

/// `text` as `{:?}` writes it; plain printable ASCII, what the fields
/// usually hold, is copied between quotes without the formatter.
fn debug_str(out: &mut Vec<u8>, text: &str) -> std::io::Result<()> {
    if text
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        write!(out, "{text:?}")
    }
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

    #[test]
    fn timestamps_match_humantime_across_seconds() {
        for micros in [
            1_764_579_661_000_000_u64,
            1_764_579_661_999_999,
            1_764_579_662_000_001,
            1_764_579_661_123_456,
            4_102_444_799_654_321,
        ] {
            let now = UNIX_EPOCH + Duration::from_micros(micros);
            let mut out = Vec::new();
            timestamp(&mut out, now);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                humantime::format_rfc3339_micros(now).to_string()
            );
        }
    }

    #[test]
    fn fields_are_quoted_as_debug_quotes_them() {
        for text in [
            "GET",
            "/register/abc-_.~",
            "a\"b",
            "back\\slash",
            "tab\t",
            "é",
            "",
        ] {
            let mut out = Vec::new();
            debug_str(&mut out, text).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("{text:?}"));
        }
    }
}
