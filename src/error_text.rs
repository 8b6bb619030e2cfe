//! Text of an error together with its chain of causes, which is where
//! network libraries say what really failed.

use std::error::Error;

/// `error: cause: cause …`.
#[must_use]
pub fn with_causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
