//! JSON written into a buffer of exactly its size: serialized once to
//! count, then written. A growing buffer would, while it doubles, briefly
//! hold up to three times a large document (a client's metadata may be most
//! of a request body of up to 16 MiB).

use std::io::Write;

use serde::Serialize;

/// `value` as JSON bytes, in a buffer of exactly their length.
pub fn exact(value: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)?;
    let mut json = Vec::with_capacity(count.0);
    serde_json::to_writer(&mut json, value)?;
    Ok(json)
}

/// `value` as a JSON string, in a buffer of exactly its length.
pub fn exact_string(value: &impl Serialize) -> serde_json::Result<String> {
    String::from_utf8(exact(value)?).map_err(serde::ser::Error::custom)
}

/// A writer that only counts.
struct Count(usize);

impl Write for Count {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
