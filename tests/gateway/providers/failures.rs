//! How each failure of the provider reaches the app, and what reconcile
//! makes of what it leaves behind: a refused credential, a rate limit, no
//! provider at all, creates whose answer is lost or whose outcome is
//! unknown, and listings that come in many pages.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{LostCreate, Subject, gateway, texts};
use crate::support::faults::Fault;
use crate::support::*;

/// A credential the provider refuses is the operator's outage, not
/// something the app could mend.
pub async fn a_refused_credential_is_an_outage_not_the_apps_fault<S: Subject>() {
    let fake = S::start().await;
    let app = spawn_app_for_provider(&fake.refused_credential()).await;
    let response = app.post_register(&web_client()).await;
    let (error, description) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    let unavailable = format!("{} provider is unavailable", S::KIND);
    assert!(description.contains(&unavailable), "{description}");
    assert!(app.rows().await.is_empty());
    assert_eq!(
        fake.ledger().violations().len(),
        1,
        "the fake saw the wrong credential"
    );
}

/// The provider's wait is passed on, and nothing was made, so nothing is
/// kept.
pub async fn a_rate_limit_is_passed_on_and_leaves_nothing<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    let wait = fake.rate_limit();
    let response = app.post_register(&web_client()).await;
    let seconds = retry_after(&response);
    assert!(wait.contains(&seconds), "{seconds} s, not {wait:?}");
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(app.rows().await.is_empty(), "nothing is kept");
    assert!(fake.ids().is_empty());
    fake.ledger().assert_clean(S::VENDOR);
}

pub async fn a_provider_that_does_not_answer_is_503_with_retry_after<S: Subject>() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_app_for_provider(&S::keys_at(&closed)).await;
    let response = app.post_register(&web_client()).await;
    assert!(response.headers().contains_key("retry-after"));
    let (code, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(code, "temporarily_unavailable");
    assert!(
        app.rows().await.is_empty(),
        "nothing was created: no row is kept"
    );
}

/// The provider makes the client and the answer is lost: the back end finds
/// it again, or leaves the registration pending for reconcile to remove.
/// Never two clients.
pub async fn a_lost_create_is_found_again_or_left_pending<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    fake.ledger().queue_faults(&[Fault::CommitAndDrop]);
    let response = app
        .post_register(&json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "Lost answer",
        }))
        .await;
    match S::LOST_CREATE {
        LostCreate::FoundAgain => {
            assert_eq!(response.status(), StatusCode::CREATED);
            let client: Value = response.json().await.unwrap();
            let id = id_of(&client);
            assert_eq!(fake.ids(), [id], "one client at {}", S::VENDOR);
            assert_eq!(
                fake.secret_of(id).as_deref(),
                client["client_secret"].as_str(),
                "the app holds the secret {} holds",
                S::VENDOR
            );
            assert_eq!(app.rows().await, [(id.to_owned(), "active")]);
        }
        LostCreate::LeftPending => {
            assert!(response.headers().contains_key("retry-after"));
            let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
            assert_eq!(error, "temporarily_unavailable");
            assert_eq!(fake.ids().len(), 1, "{} made the client", S::VENDOR);
            assert_eq!(app.rows().await[0].1, "pending");
        }
    }
    let report = app.reconcile().await;
    assert!(!report.has_drift(), "{report:?}");
    assert_same_clients(&app, S::VENDOR, fake.ids()).await;
    fake.ledger().assert_clean(S::VENDOR);
}

/// A create whose answer is lost and whose client cannot be found (yet)
/// stays pending until reconcile removes what the provider made.
pub async fn a_lost_create_not_found_is_removed_by_reconcile<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    fake.ledger()
        .queue_faults(S::LOST_CREATE.lost_and_not_found());
    let response = app.post_register(&web_client()).await;
    let (error, _) = error_of(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error, "temporarily_unavailable");
    assert_eq!(fake.ids().len(), 1, "{} made the client", S::VENDOR);
    assert_eq!(app.rows().await[0].1, "pending");

    let report = app.reconcile().await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 1, "{report:?}");
    assert!(fake.ids().is_empty(), "the orphan was removed");
    assert!(app.rows().await.is_empty());
    fake.ledger().assert_clean(S::VENDOR);
}

/// Creates meet a 500, a hang, garbage after the work, and a dropped
/// connection after the work. Each is answered 201 (the back end found out
/// what happened) or 503 with a wait, leaving the row pending; a back end
/// that cannot look answers 503 to all. Reconcile then removes what the
/// pending ones left at the provider, and gateway and provider agree.
pub async fn unknown_outcomes_of_creates_are_settled_by_reconcile<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    let mut created = Vec::new();
    let (mut committed_pending, mut never_created) = (0, 0);
    for fault in [
        Fault::ServerError,
        Fault::Hang,
        Fault::Garbage,
        Fault::CommitAndDrop,
    ] {
        fake.ledger().queue_faults(&[fault]);
        let response = app.post_register(&web_client()).await;
        let committed = matches!(fault, Fault::Garbage | Fault::CommitAndDrop);
        if response.status() == StatusCode::CREATED {
            assert_eq!(S::LOST_CREATE, LostCreate::FoundAgain, "{fault:?}");
            created.push(response.json::<Value>().await.unwrap());
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{fault:?}"
        );
        assert!(response.headers().contains_key("retry-after"));
        if committed {
            committed_pending += 1;
        } else {
            never_created += 1;
        }
    }
    let rows = app.rows().await;
    assert_eq!(rows.len(), 4);
    let pending = rows.iter().filter(|(_, state)| *state == "pending").count();
    assert_eq!(pending, committed_pending + never_created, "{rows:?}");
    assert_eq!(
        fake.ids().len(),
        created.len() + committed_pending,
        "one client at {} for each create that made one",
        S::VENDOR
    );

    let report = app.reconcile().await;
    assert_eq!(
        report.abandoned_removed_at_provider.len(),
        committed_pending
    );
    assert_eq!(report.abandoned_never_created.len(), never_created);
    assert!(!report.has_drift(), "{report:?}");
    let kept = assert_same_clients(&app, S::VENDOR, fake.ids()).await;
    assert!(created.iter().all(|c| kept.contains(id_of(c))));
    assert_eq!(kept.len(), created.len());
    for client in &created {
        let read = app.read(client, Some(token_of(client))).await;
        assert_eq!(read.status(), StatusCode::OK);
    }
    fake.ledger().assert_clean(S::VENDOR);
}

/// Reconcile and the search for a lost create follow the provider's
/// listing across pages shorter than asked for, and a client lost on the
/// last page is found missing.
pub async fn reconcile_follows_capped_pages<S: Subject>() {
    let fake = S::start().await;
    let app = gateway(&fake).await;
    fake.limit_page_size(2);
    for _ in 0..5 {
        app.register(&web_client()).await;
    }
    fake.ledger()
        .queue_faults(S::LOST_CREATE.lost_and_not_found());
    let response = app.post_register(&web_client()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fake.ids().len(), 6);

    let report = app.reconcile().await;
    assert_eq!(report.abandoned_removed_at_provider.len(), 1, "{report:?}");
    assert!(
        !report.has_drift(),
        "all five are on three pages: {report:?}"
    );
    let held = assert_same_clients(&app, S::VENDOR, fake.ids()).await;
    assert_eq!(held.len(), 5);

    let last = held.last().unwrap();
    fake.forget(last).await;
    let report = app.reconcile().await;
    assert_eq!(texts(&report.missing_at_provider), [last.as_str()]);
    fake.ledger().assert_clean(S::VENDOR);
}
