//! Last use and the idle sweep (issue 31): a policy's `idle_lifetime`
//! removes the clients nobody used for that long (no RFC 7592 call, no
//! `/authorize` or `/token`), here and at the provider; a client used
//! within it stays, whether its read was answered from memory or not.

use std::time::Duration;

use serde_json::json;

use crate::providers::Subject;
use crate::support::hydra::HydraFake;
use crate::support::*;

#[tokio::test]
async fn a_client_used_within_its_idle_lifetime_stays_and_an_unused_one_goes_everywhere() {
    let fake = HydraFake::start().await;
    let app = spawn_app_with(&format!(
        "[provider]\n{}\ntimeout = \"2s\"\nreconcile_interval = \"0s\"\n\
         [policies.default]\nidle_lifetime = \"1h\"\n",
        HydraFake::keys_at(&fake.base)
    ))
    .await;
    let metadata = json!({
        "redirect_uris": ["https://app.example.com/cb"],
        "client_name": "Idle or not",
    });
    let used = app.register(&metadata).await;
    let unused = app.register(&metadata).await;
    assert_eq!(fake.client_ids().len(), 2);

    app.clock.advance(Duration::from_secs(50 * 60));
    // Two reads: the first by the router, the second from memory.
    for _ in 0..2 {
        let read = app.read(&used, Some(token_of(&used))).await;
        assert_eq!(read.status(), reqwest::StatusCode::OK);
    }
    assert!(
        app.reconciler
            .remove_idle_clients()
            .await
            .unwrap()
            .is_empty(),
        "neither is idle for an hour yet"
    );

    app.clock.advance(Duration::from_secs(20 * 60));
    let removed = app.reconciler.remove_idle_clients().await.unwrap();
    let removed: Vec<&str> = removed.iter().map(|id| id.as_str()).collect();
    assert_eq!(removed, [id_of(&unused)]);
    assert!(app.service.show(id_of(&unused)).await.is_err(), "gone here");
    assert!(app.service.show(id_of(&used)).await.is_ok());
    assert_eq!(fake.client_ids().len(), 1, "and at the provider");

    // Unused from now on, the other goes an hour after its last read.
    app.clock.advance(Duration::from_secs(41 * 60));
    let removed = app.reconciler.remove_idle_clients().await.unwrap();
    assert_eq!(removed.len(), 1);
    assert!(fake.client_ids().is_empty());
}
