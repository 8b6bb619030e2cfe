//! Client metadata parsing and validation on arbitrary bytes: never a panic;
//! whatever is accepted serializes back to the same value; a policy applied
//! to accepted metadata never panics either.
#![no_main]

use dcr_gateway::domain::policy::{HostPattern, Policy};
use dcr_gateway::domain::{ClientMetadata, MetadataDocument, RedirectRules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(document) = serde_path_to_error::deserialize::<_, MetadataDocument>(value) else {
        return;
    };
    let https_only = RedirectRules {
        web_http_on_loopback: false,
        ..RedirectRules::default()
    };
    for rules in [RedirectRules::default(), https_only] {
        let Ok(metadata) = ClientMetadata::validate(document.clone(), rules.clone()) else {
            continue;
        };
        let again = ClientMetadata::validate(metadata.to_document(), rules);
        assert_eq!(again.as_ref(), Ok(&metadata), "accepted metadata must round-trip");
        let mut strict = Policy::permissive("fuzz");
        strict.https_only = true;
        strict.scopes = Some(vec!["openid".into()]);
        strict.default_scope = Some("openid".into());
        strict.redirect_hosts = vec![HostPattern::parse("*.example.com").unwrap()];
        strict.native_loopback_http = false;
        strict.native_custom_schemes = false;
        let mut constrained = metadata.clone();
        let _ = strict.apply(&mut constrained);
    }
});
