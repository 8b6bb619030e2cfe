//! The loader, end to end: TOML and environment into [`Config`].

use super::*;
use crate::provider::ProviderKind;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn embedded_defaults() {
    let config = Config::from_sources("", env(&[])).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.public_url, "http://127.0.0.1:8080");
    assert_eq!(config.server.max_body_bytes, 65_536);
    assert_eq!(config.store.url, "sqlite://data/dcr-gateway.db");
    assert!(matches!(config.provider.kind, ProviderKind::Local(_)));
    assert_eq!(
        config.server.endpoint("/register"),
        "http://127.0.0.1:8080/register"
    );
}

#[test]
fn environment_overrides_nest_with_double_underscores() {
    let config = Config::from_sources(
        "[server]\nlisten = \"0.0.0.0:1\"\n",
        env(&[
            ("DCR_GATEWAY__SERVER__LISTEN", "127.0.0.1:9999"),
            ("DCR_GATEWAY__SERVER__MAX_BODY_BYTES", "2048"),
            (
                "DCR_GATEWAY__SERVER__PUBLIC_URL",
                "https://dcr.example.com/",
            ),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(config.server.max_body_bytes, 2048);
    assert_eq!(config.server.public_url, "https://dcr.example.com");
}

#[test]
fn every_error_is_reported_at_once() {
    let errors = Config::from_sources(
        "[server]\nlisten = \"nowhere\"\nlisen = 1\nmax_body_bytes = \"big\"\n\
         [provider]\nkind = \"acme\"\n[bogus]\nx = 1\n",
        env(&[("DCR_GATEWAY__LOG__FORMAT", "xml")]),
    )
    .unwrap_err()
    .0;
    let all = errors.join("\n");
    assert!(all.contains("unknown key `server.lisen`"), "{all}");
    assert!(all.contains("server.max_body_bytes"), "{all}");
    assert!(all.contains("provider.kind `acme`"), "{all}");
    assert!(all.contains("unknown section `bogus`"), "{all}");
    assert!(all.contains("log.format `xml`"), "{all}");
    assert!(all.contains("server.listen `nowhere`"), "{all}");
    assert_eq!(errors.len(), 6, "{all}");
}

#[test]
fn an_environment_value_is_one_toml_value_and_nothing_after_it() {
    let errors = Config::from_sources(
        "",
        env(&[(
            "DCR_GATEWAY__OUTBOUND__ALLOW_PRIVATE_NETWORKS",
            "true # comment",
        )]),
    )
    .unwrap_err()
    .0
    .join("\n");
    assert!(
        errors.contains("outbound.allow_private_networks"),
        "{errors}"
    );
    let config = Config::from_sources(
        "",
        env(&[
            ("DCR_GATEWAY__OUTBOUND__ALLOW_PRIVATE_NETWORKS", " true "),
            ("DCR_GATEWAY__SERVER__MAX_BODY_BYTES", "2048"),
        ]),
    )
    .unwrap();
    assert!(config.outbound.allow_private_networks);
    assert_eq!(config.server.max_body_bytes, 2048);
}

fn provider_errors(toml: &str) -> String {
    Config::from_sources(toml, env(&[]))
        .unwrap_err()
        .0
        .join("\n")
}

#[test]
fn okta_zendesk_and_billforward_keys_are_checked() {
    let all = provider_errors(
        "[provider]\nkind = \"okta\"\norg_url = \"ftp://x\"\napi_token = \"a\"\n\
         access_token = \"b\"\nuser_id = 3\n",
    );
    assert!(all.contains("provider.org_url `ftp://x`"), "{all}");
    assert!(
        all.contains("exactly one of provider.api_token and provider.access_token"),
        "{all}"
    );
    assert!(all.contains("provider.user_id does not apply"), "{all}");

    let all =
        provider_errors("[provider]\nkind = \"zendesk\"\nsubdomain = \"a.b\"\nemail = \"e\"\n");
    assert!(all.contains("provider.subdomain `a.b`"), "{all}");
    assert!(all.contains("provider.user_id is required"), "{all}");
    assert!(
        all.contains("provider.email with provider.api_token"),
        "{all}"
    );

    let all = provider_errors(
        "[provider]\nkind = \"billforward\"\nbase_url = \"https://bf.example.com/v1\"\n\
         api_token = \"t\"\norganization_id = \"O\"\nresource_ids = [\"a,b\"]\n\
         list_separator = \",\"\n",
    );
    assert!(all.contains("provider.authorities is required"), "{all}");
    assert!(all.contains("must not contain the list separator"), "{all}");
}

#[test]
fn a_zendesk_subdomain_names_its_host() {
    let config = Config::from_sources(
        "[store]\nencryption_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"\n\
         [provider]\nkind = \"zendesk\"\nsubdomain = \"acme\"\naccess_token = \"t\"\n\
         user_id = 7\n",
        env(&[]),
    )
    .unwrap();
    let ProviderKind::Zendesk(settings) = config.provider.kind else {
        panic!("expected the zendesk backend");
    };
    assert_eq!(settings.base_url.as_str(), "https://acme.zendesk.com/");
    assert_eq!(settings.user_id, 7);
}

#[test]
fn a_string_key_takes_an_environment_value_that_looks_like_a_number() {
    let config = Config::from_sources(
        "[store]\nencryption_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"\n\
         [provider]\nkind = \"zendesk\"\nsubdomain = \"acme\"\nemail = \"e@example.com\"\n",
        env(&[
            ("DCR_GATEWAY__PROVIDER__API_TOKEN", "12345"),
            ("DCR_GATEWAY__PROVIDER__USER_ID", "7"),
            ("DCR_GATEWAY__PROVIDER__RETRIES", "0"),
        ]),
    )
    .unwrap();
    let ProviderKind::Zendesk(settings) = config.provider.kind else {
        panic!("expected the zendesk backend");
    };
    assert_eq!(settings.user_id, 7);
    assert_eq!(settings.resilience.retries, 0);
    let crate::provider::rest::ProviderAuth::Basic { password, .. } = settings.auth else {
        panic!("expected Basic credentials");
    };
    assert_eq!(password.expose(), "12345");
}

#[test]
fn misspelt_provider_keys_are_named() {
    let all = provider_errors(
        "[provider]\nkind = \"hydra\"\nadmin_url = \"http://hydra:4445\"\n\
         issuer = \"https://auth.example.com\"\nadmin_ulr = \"x\"\nretires = 3\n",
    );
    assert!(all.contains("unknown key `provider.admin_ulr`"), "{all}");
    assert!(all.contains("unknown key `provider.retires`"), "{all}");
    assert_eq!(all.lines().count(), 2, "{all}");

    let all = provider_errors("[provider]\nkind = \"acme\"\napi_token = \"t\"\ntoken = \"t\"\n");
    assert!(
        all.contains("provider.kind `acme` is not supported"),
        "{all}"
    );
    assert!(all.contains("unknown key `provider.token`"), "{all}");
    assert_eq!(all.lines().count(), 2, "{all}");
}

#[test]
fn enumerated_values_name_the_key_and_the_allowed_values() {
    let all = provider_errors(
        "[registration]\nmode = \"closed\"\nrotate_registration_access_token = \"always\"\n\
         [limits]\nregister_per_ip = \"5/day\"\nclient_ip_header = \"x-real-ip\"\n",
    );
    for needle in [
        "registration.mode `closed`",
        "expected `open` or `initial_access_token`",
        "registration.rotate_registration_access_token `always`",
        "limits.register_per_ip `5/day`: must be `N/second`",
        "limits.client_ip_header `x-real-ip`",
    ] {
        assert!(all.contains(needle), "{needle} missing from:\n{all}");
    }
}

#[test]
fn a_request_timeout_must_outlast_the_provider_operation_deadline() {
    let config = Config::from_sources("", env(&[])).unwrap();
    assert!(config.server.request_timeout > config.provider.operation_deadline);
    let errors = Config::from_sources(
        "[server]\nrequest_timeout = \"1m\"\n[provider]\ntimeout = \"30s\"\n",
        env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        errors.contains("server.request_timeout (1m) must be longer"),
        "{errors}"
    );
}

#[test]
fn the_otlp_endpoint_is_an_http_url_off_when_unset_or_empty() {
    assert_eq!(
        Config::from_sources("", env(&[]))
            .unwrap()
            .log
            .otlp_endpoint,
        None
    );
    let set = "[log]\notlp_endpoint = \"http://collector:4318\"\n";
    let config = Config::from_sources(set, env(&[])).unwrap();
    assert_eq!(
        config.log.otlp_endpoint.as_deref(),
        Some("http://collector:4318")
    );
    let unset = env(&[("DCR_GATEWAY__LOG__OTLP_ENDPOINT", "")]);
    let config = Config::from_sources(set, unset).unwrap();
    assert_eq!(config.log.otlp_endpoint, None);
    let from_env = env(&[(
        "DCR_GATEWAY__LOG__OTLP_ENDPOINT",
        "https://otel.example.com",
    )]);
    let config = Config::from_sources("", from_env).unwrap();
    assert_eq!(
        config.log.otlp_endpoint.as_deref(),
        Some("https://otel.example.com")
    );
    for bad in ["collector:4318", "grpc://collector:4317"] {
        let errors = Config::from_sources(&format!("[log]\notlp_endpoint = \"{bad}\"\n"), env(&[]))
            .unwrap_err()
            .0
            .join("\n");
        assert!(
            errors.contains(&format!("log.otlp_endpoint `{bad}` must be an http(s) URL")),
            "{errors}"
        );
    }
}
