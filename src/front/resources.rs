//! `[front] allowed_resources`: the RFC 8707 resources apps may ask tokens
//! for. A pattern is a resource URI, exact, in which `*` may stand for a
//! port or one path segment: any run of characters without `/`
//! (`http://127.0.0.1:*/mcp`, `https://*.example.com/mcp` is not allowed:
//! hosts are named). An empty list allows any resource.

/// The operator's allowed resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedResources(Vec<String>);

impl AllowedResources {
    /// The patterns, checked: each an `http(s)` URI whose host has no `*`.
    pub fn new(patterns: Vec<String>) -> Result<Self, String> {
        for pattern in &patterns {
            let rest = pattern
                .strip_prefix("https://")
                .or_else(|| pattern.strip_prefix("http://"))
                .ok_or_else(|| format!("`{pattern}` is not an http(s) URI"))?;
            let host = rest.split([':', '/']).next().unwrap_or_default();
            if host.is_empty() || host.contains('*') {
                return Err(format!("`{pattern}` must name its host (no `*` there)"));
            }
        }
        Ok(Self(patterns))
    }

    /// Whether the operator listed no resource (any is allowed).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `resource` may be asked for.
    #[must_use]
    pub fn allows(&self, resource: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|pattern| matches(pattern, resource))
    }
}

/// Whether `text` matches `pattern`, `*` standing for any run without `/`.
fn matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            // The star takes 0..n characters up to the next `/`.
            let run = rest.find('/').unwrap_or(rest.len());
            (0..=run).any(|taken| matches(tail, &rest[taken..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stands_for_a_port_or_one_path_segment() {
        let allowed = AllowedResources::new(vec![
            "https://mcp.example.com".into(),
            "http://127.0.0.1:*/mcp".into(),
            "https://api.example.com/*/mcp".into(),
        ])
        .unwrap();
        assert!(allowed.allows("https://mcp.example.com"));
        assert!(!allowed.allows("https://mcp.example.com/other"));
        assert!(allowed.allows("http://127.0.0.1:5173/mcp"));
        assert!(!allowed.allows("http://127.0.0.1:5173/x/mcp"));
        assert!(allowed.allows("https://api.example.com/team/mcp"));
        assert!(!allowed.allows("https://api.example.com/a/b/mcp"));
        assert!(!allowed.allows("https://graph.microsoft.com"));
        assert!(AllowedResources::default().allows("https://anything.example"));
        assert!(AllowedResources::new(vec!["https://*.example.com".into()]).is_err());
        assert!(AllowedResources::new(vec!["mcp.example.com".into()]).is_err());
    }
}
