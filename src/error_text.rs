//! Text of an error together with its chain of causes, which is where
//! network libraries say what really failed.

use std::error::Error;

/// `error: cause: cause …`; a cause whose text its error already ends
/// with (`"database error: {0}"` over its source) is not told twice.
#[must_use]
pub fn with_causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let told = cause.to_string();
        if !text.ends_with(&told) {
            text.push_str(": ");
            text.push_str(&told);
        }
        source = cause.source();
    }
    text
}

/// Runs shorter than this are left alone: ids and words, not secrets.
const SECRET_MIN_LEN: usize = 24;

/// `text` with every run that looks like a secret (at least 24 characters
/// of the token alphabets: letters, digits, `-._~+/=`, mixing letters and
/// digits) replaced by `[redacted]`. For provider messages that may quote
/// a secret or a token back.
#[must_use]
pub fn redact_secrets(text: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let secret = run.len() >= SECRET_MIN_LEN
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic());
        out.push_str(if secret { "[redacted]" } else { run });
        run.clear();
    };
    for c in text.chars() {
        if token(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read: {0}")]
    struct Wrapping(#[from] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("internal error")]
    struct Hiding(#[source] Wrapping);

    #[test]
    fn causes_are_told_once_each() {
        let io = std::io::Error::other("disk on fire");
        assert_eq!(
            with_causes(&Hiding(Wrapping(io))),
            "internal error: cannot read: disk on fire"
        );
    }

    #[test]
    fn secrets_are_redacted_and_words_kept() {
        let text = "client_secret 'x7Kq_9pLmN3vB8cR2tY6wZ1aS4dF0gHj' is too weak for client 0oa1b2c3d4e5f6g7h8i9";
        let redacted = redact_secrets(text);
        assert_eq!(
            redacted,
            "client_secret '[redacted]' is too weak for client 0oa1b2c3d4e5f6g7h8i9"
        );
        assert_eq!(
            redact_secrets("https://app.example.com/callback is not allowed"),
            "https://app.example.com/callback is not allowed"
        );
    }
}
