//! Audit events: one structured line per register, replace, delete, failed
//! read, refusal, expiry and limit hit, on the `audit` tracing target, at
//! `info`. Never a secret. A successful read changes nothing and is already
//! in the access log, so it is audited at `debug` (`log.filter =
//! "info,audit=debug"` shows it).

use std::net::IpAddr;

/// One audited action.
#[derive(Debug, Default)]
pub struct AuditEvent<'a> {
    /// What was attempted: `register`, `read`, `replace`, `delete`,
    /// `operator_delete`, `expire`, `reconcile_delete` (an abandoned
    /// registration, an interrupted delete or an orphan of the gateway's),
    /// `rotate_secret`, or a rate limit's name (`register`, `manage`,
    /// `auth_failures`).
    pub action: &'a str,
    /// `success`, or the RFC error code it ended in.
    pub outcome: &'a str,
    /// The client concerned, when known.
    pub client_id: Option<&'a str>,
    /// The client's software_id, when known.
    pub software_id: Option<&'a str>,
    /// The caller's address, when the action came over HTTP.
    pub ip: Option<IpAddr>,
    /// The initial access token used, by id.
    pub initial_access_token_id: Option<&'a str>,
    /// Who acted, when an operator did (`operator:alice`, `cli`).
    pub actor: Option<&'a str>,
}

/// Writes an [`AuditEvent`] at a level.
macro_rules! audit_event {
    ($level:expr, $event:expr) => {
        tracing::event!(
            target: "audit",
            $level,
            action = $event.action,
            outcome = $event.outcome,
            client_id = $event.client_id,
            software_id = $event.software_id,
            ip = $event.ip.map(|ip| ip.to_string()),
            initial_access_token_id = $event.initial_access_token_id,
            actor = $event.actor,
            "audit"
        )
    };
}

/// Writes the event.
pub fn record(event: &AuditEvent<'_>) {
    audit_event!(tracing::Level::INFO, event);
}

/// Writes a routine event (a successful read) at `debug`.
pub fn record_routine(event: &AuditEvent<'_>) {
    audit_event!(tracing::Level::DEBUG, event);
}

/// Whether [`record_routine`] may write anything: at the levels enabled,
/// or under a filter that decides by span (which a check made outside the
/// request's span cannot answer).
#[must_use]
pub fn routine_recorded() -> bool {
    crate::logging::filters_by_span() || tracing::enabled!(target: "audit", tracing::Level::DEBUG)
}
