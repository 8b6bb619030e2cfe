//! The software statement path on arbitrary input: header and claims
//! parsing, issuer lookup, algorithm checks and signature verification must
//! refuse garbage with an RFC error, never panic.
#![no_main]

use std::sync::OnceLock;

use dcr_gateway::clock::SystemClock;
use dcr_gateway::config::Config;
use dcr_gateway::outbound::GuardedClient;
use dcr_gateway::registration::StatementVerifier;
use dcr_gateway::software_statement::SoftwareStatements;
use libfuzzer_sys::fuzz_target;

/// A trusted issuer with one P-256 key, as in a real configuration.
const CONFIG: &str = r#"
[software_statement]
[[software_statement.issuers]]
issuer = "https://directory.example.com"
allowed_algs = ["ES256", "RS256"]
jwks = '{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}'
"#;

struct Harness {
    runtime: tokio::runtime::Runtime,
    verifier: SoftwareStatements,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let config = Config::from_sources(CONFIG, Vec::new()).expect("fuzz config");
        let fetcher = GuardedClient::new(config.outbound.clone()).expect("client");
        Harness {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            verifier: SoftwareStatements::new(
                config.software_statement.issuers,
                fetcher,
                std::sync::Arc::new(SystemClock),
            ),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(statement) = std::str::from_utf8(data) else {
        return;
    };
    let harness = harness();
    let _ = harness.runtime.block_on(harness.verifier.verify(statement));
});
