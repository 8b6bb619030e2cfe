//! The Grafana dashboard shipped in `deploy/grafana/`: well formed, and
//! every metric its queries name is one the gateway exports (and every
//! metric the gateway exports has a panel), so that a renamed metric
//! cannot leave a panel showing "no data".

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::support::*;

/// The dashboard, as checked in.
fn dashboard() -> Value {
    let path = format!(
        "{}/deploy/grafana/dcr-gateway.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The panels that query something (rows only group them).
fn query_panels(dashboard: &Value) -> Vec<&Value> {
    dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels")
        .iter()
        .filter(|panel| panel["type"] != "row")
        .collect()
}

/// Every `expr` of every panel's targets.
fn expressions(dashboard: &Value) -> Vec<&str> {
    query_panels(dashboard)
        .into_iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .filter_map(|target| target["expr"].as_str())
        .collect()
}

/// The metric names an expression reads (`dcr_…` outside label values),
/// histogram series (`_bucket`, `_sum`, `_count`) named by their histogram.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    // Outside quotes: every other piece between double quotes.
    for piece in expr.split('"').step_by(2) {
        names.extend(names_in(piece));
    }
    names
}

/// The `dcr_` names in `piece`, a part of an expression outside quotes.
fn names_in(piece: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = piece;
    while let Some(start) = rest.find("dcr_") {
        let preceded_by_word = rest[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !preceded_by_word {
            let name = &tail[..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(family.to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The `dcr_` metric families in a Prometheus text exposition (its
/// `# TYPE` lines).
fn exported_families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with("dcr_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn metric_names_are_read_from_expressions() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.95, sum by (le) (rate(dcr_http_request_duration_seconds_bucket{route="/token"}[5m]))) / clamp_min(sum(rate(dcr_cache_hits_total[5m])), 1)"#
        ),
        BTreeSet::from([
            "dcr_cache_hits_total".to_owned(),
            "dcr_http_request_duration_seconds".to_owned(),
        ])
    );
    assert!(metric_names(r#"sum(rate(not_dcr_thing[5m])) + up{job="dcr_gateway"}"#).is_empty());
}

#[test]
fn the_dashboard_is_grafana_json_on_a_prometheus_datasource_variable() {
    let dashboard = dashboard();
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let schema = dashboard["schemaVersion"].as_u64().unwrap();
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|variable| variable["name"] == "DS_PROMETHEUS"
                && variable["type"] == "datasource"
                && variable["query"] == "prometheus"),
        "no datasource variable DS_PROMETHEUS: {variables:?}"
    );
    let datasource = serde_json::json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    let mut ids = HashSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "id of {title} reused"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && grid["h"].as_u64().unwrap() > 0,
            "{title}: {grid}"
        );
    }
    let panels = query_panels(&dashboard);
    assert!(!panels.is_empty());
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ["timeseries", "stat"].contains(&panel["type"].as_str().unwrap()),
            "{title}"
        );
        assert_eq!(panel["datasource"], datasource, "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no targets");
        let mut ref_ids = HashSet::new();
        for target in targets {
            assert_eq!(target["datasource"], datasource, "{title}");
            assert!(ref_ids.insert(target["refId"].as_str().unwrap()), "{title}");
            let expr = target["expr"].as_str().unwrap();
            assert!(
                !metric_names(expr).is_empty(),
                "{title}: {expr} reads no metric of the gateway"
            );
        }
    }
}

/// Runs the binary (its own recorder: no other test's metrics), behind
/// Hydra so that provider calls are made (the reconcile at start lists
/// the clients, a registration creates one), and compares what `/metrics`
/// exports with what the dashboard reads.
#[tokio::test]
async fn every_metric_on_the_dashboard_is_exported_and_every_exported_one_is_shown() {
    let dashboard = dashboard();
    let shown: BTreeSet<String> = expressions(&dashboard)
        .into_iter()
        .flat_map(metric_names)
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let (server, _hydra) = server_behind_hydra(dir.path()).await;
    server.register(&web_client()).await;

    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The reconcile at start runs in the background.
    eventually(|| async { exported_families(&scrape().await).contains("dcr_reconcile_drift") })
        .await;
    let exported = exported_families(&scrape().await);

    let missing: Vec<_> = shown.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard reads metrics the gateway does not export: {missing:?}\nexported: {exported:?}"
    );
    let not_shown: Vec<_> = exported.difference(&shown).collect();
    assert!(
        not_shown.is_empty(),
        "exported metrics without a panel: {not_shown:?}"
    );
}
