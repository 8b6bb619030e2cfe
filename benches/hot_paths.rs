//! Criterion benches of the pure hot paths: metadata validation and
//! serialization, secret generation, hashing and comparison.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use dcr_gateway::domain::{ClientMetadata, ClientSecret, MetadataDocument, RedirectRules};
use serde_json::json;

fn full_document() -> serde_json::Value {
    json!({
        "redirect_uris": ["https://app.example.com/cb", "https://app.example.com/cb2?x=1"],
        "client_name": "Benchmark client",
        "client_name#ja-Jpan-JP": "ベンチマーク",
        "client_uri": "https://app.example.com",
        "logo_uri": "https://app.example.com/logo.png",
        "scope": "openid profile email",
        "contacts": ["ops@example.com"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "application_type": "web",
        "id_token_signed_response_alg": "RS256",
        "default_max_age": 3600,
        "require_auth_time": true,
    })
}

fn metadata(c: &mut Criterion) {
    let json = full_document().to_string();
    c.bench_function("metadata/parse_and_validate", |b| {
        b.iter(|| {
            let document: MetadataDocument = serde_json::from_str(black_box(&json)).unwrap();
            ClientMetadata::validate(document, RedirectRules::default()).unwrap()
        });
    });
    let document: MetadataDocument = serde_json::from_str(&json).unwrap();
    let validated = ClientMetadata::validate(document, RedirectRules::default()).unwrap();
    c.bench_function("metadata/serialize", |b| {
        b.iter(|| serde_json::to_string(&black_box(&validated).to_document()).unwrap());
    });
}

fn secrets(c: &mut Criterion) {
    c.bench_function("secret/generate_and_hash", |b| {
        b.iter(|| ClientSecret::generate().hash());
    });
    let secret = ClientSecret::generate();
    let hash = secret.hash();
    c.bench_function("secret/constant_time_match", |b| {
        b.iter(|| black_box(&hash).matches(black_box(secret.expose())));
    });
}

criterion_group!(benches, metadata, secrets);
criterion_main!(benches);
