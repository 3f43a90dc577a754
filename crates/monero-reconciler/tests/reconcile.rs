//! Reconcile scenarios against a mocked API server (kube's tower-test
//! pattern, with a small in-memory store behind it): create, no-op, spec
//! change, scale up and down, invalid input, API errors with retry, status,
//! the apply decision (applied-hash annotation), refused volume resizes,
//! deletion, and names another object holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fakeapi::{FakeApi, FixedProbe, MovingProbe};
use kube::runtime::controller::Action;
use monero_crd::{MoneroMiningNodeSet, MoneroNetwork, MoneroNodeSet};
use monero_reconciler::Error;
use monero_reconciler::controller::caches::{Caches, Feeds};
use monero_reconciler::controller::{
    Config, Managed, State, backoff, error_policy, metrics::Metrics, reconcile,
};
use serde_json::{Value, json};

const NS: &str = "test";
const GROUP_PATH: &str = "/apis/utxo.com.br/v1alpha1/namespaces/test";

fn state(client: kube::Client) -> Arc<State> {
    State::new(
        client,
        Config::default(),
        Metrics::new().unwrap(),
        Arc::new(FixedProbe),
        "test-0".into(),
    )
}

/// A state that reads from caches, as `controller::run` sets up, and what
/// fills them: `Feeds::resync` lists each kind once, as a watch starts (the
/// fake API server cannot stream watches), so a test decides when the caches
/// catch up and can reconcile against stale ones on purpose.
async fn cached_state(client: kube::Client) -> (Arc<State>, Feeds) {
    let st = state(client.clone());
    let (caches, mut feeds) = Caches::new();
    feeds.resync(&client).await.unwrap();
    caches.wait_until_ready().await.unwrap();
    assert!(st.use_caches(caches));
    (st, feeds)
}

/// The operator's /metrics, as Prometheus would read it.
fn metrics_text(st: &State) -> String {
    let mut buf = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &st.metrics().registry().gather(),
        &mut buf,
    )
    .unwrap();
    String::from_utf8(buf).unwrap()
}

fn cr_path(plural: &str, name: &str) -> String {
    format!("{GROUP_PATH}/{plural}/{name}")
}

/// Stores a custom resource (as `kubectl apply` would) and returns the stored
/// copy. Its uid is `uid-<name>` unless the object names one.
fn create(api: &FakeApi, plural: &str, obj: Value) -> Value {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let mut obj = obj;
    obj["metadata"]["namespace"] = json!(NS);
    if obj["metadata"]["uid"].is_null() {
        obj["metadata"]["uid"] = json!(format!("uid-{name}"));
    }
    obj["metadata"]["generation"] = json!(1);
    api.put(&cr_path(plural, &name), obj);
    api.get(&cr_path(plural, &name)).unwrap()
}

/// The latest copy, as the watcher would hand it to the next reconcile.
fn latest<K: serde::de::DeserializeOwned>(api: &FakeApi, plural: &str, name: &str) -> Arc<K> {
    Arc::new(serde_json::from_value(api.get(&cr_path(plural, name)).unwrap()).unwrap())
}

/// The condition of a type in a stored status.
fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
        .clone()
}

/// Reconciles the MoneroNodeSet "nodes" as the store now holds it; it must succeed.
/// Reconciles the object of kind K named `name`, as the store now holds it.
async fn reconcile_latest<K: Managed>(
    api: &FakeApi,
    st: &Arc<State>,
    name: &str,
) -> Result<Action, Error> {
    reconcile(latest::<K>(api, &K::plural(&()), name), st.clone()).await
}

async fn reconcile_nodes(api: &FakeApi, st: &Arc<State>) {
    reconcile_latest::<MoneroNodeSet>(api, st, "nodes")
        .await
        .unwrap();
}

fn nodeset(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNodeSet", "metadata": {"name": name}, "spec": spec})
}

fn write_paths(api: &FakeApi) -> Vec<String> {
    api.writes()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

fn add_pod(api: &FakeApi, name: &str, set: &str, workload: &str, ready: bool) {
    api.put(
        &format!("/api/v1/namespaces/{NS}/pods/{name}"),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": NS, "labels": {
                   "app.kubernetes.io/name": workload, "app.kubernetes.io/instance": set,
                   "app.kubernetes.io/managed-by": "monero-operator"}},
               "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}),
    );
}

#[tokio::test]
async fn create_applies_every_child_then_an_unchanged_object_causes_no_write() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset(
            "nodes",
            json!({"replicas": 3, "monerod": {"args": ["--public"]}}),
        ),
    );

    let action = reconcile_latest::<MoneroNodeSet>(&api, &st, "nodes")
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    let writes = write_paths(&api);
    let base = format!("/api/v1/namespaces/{NS}");
    for expected in [
        format!("PATCH {base}/secrets/nodes-monerod"),
        format!("PATCH {base}/services/nodes-headless"),
        format!("PATCH {base}/services/nodes"),
        format!("PATCH /apis/apps/v1/namespaces/{NS}/statefulsets/nodes"),
        format!("PATCH /apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/nodes"),
        format!("PATCH {}/status", cr_path("moneronodesets", "nodes")),
    ] {
        assert!(
            writes.contains(&expected),
            "missing {expected} in {writes:#?}"
        );
    }
    assert_eq!(writes.len(), 6, "{writes:#?}");
    // Every apply is server-side apply under one field manager, forced.
    for s in api.seen().iter().filter(|s| s.method == "PATCH") {
        assert!(
            s.query.contains("fieldManager=monero-operator") && s.query.contains("force=true"),
            "{s:?}"
        );
    }
    let sts = api
        .get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/nodes"))
        .unwrap();
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["metadata"]["ownerReferences"][0]["uid"], "uid-nodes");
    assert_eq!(sts["metadata"]["ownerReferences"][0]["controller"], true);
    let events = api.events();
    assert!(
        events.iter().any(|e| e["reason"] == "Applied"),
        "{events:#?}"
    );
    let status = &api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"];
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        status["selector"],
        "app.kubernetes.io/instance=nodes,app.kubernetes.io/name=monerod"
    );

    // Again, with what the cluster now holds: reads only.
    api.clear_seen();
    reconcile_nodes(&api, &st).await;
    assert_eq!(write_paths(&api), Vec::<String>::new());
    assert!(
        api.seen().iter().all(|s| !s.is_event()),
        "no Event for a no-op: {:#?}",
        api.seen()
    );
    // Without caches (only in tests) the rollout gate's reads of the
    // StatefulSet and its pods are requests too.
    let reads = api.seen().len();
    assert!(
        reads <= 12,
        "an unchanged object took {reads} requests: {:#?}",
        api.seen()
    );
}

#[tokio::test]
async fn a_spec_change_rewrites_only_what_it_touches() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset("nodes", json!({"replicas": 2})),
    );
    reconcile_nodes(&api, &st).await;

    let path = cr_path("moneronodesets", "nodes");
    let mut obj = api.get(&path).unwrap();
    obj["spec"]["monerod"] = json!({"image": "example/monerod:v0.18.4.0"});
    obj["metadata"]["generation"] = json!(2);
    api.put(&path, obj);
    api.clear_seen();
    reconcile_nodes(&api, &st).await;
    assert_eq!(
        write_paths(&api),
        vec![
            format!("PATCH /apis/apps/v1/namespaces/{NS}/statefulsets/nodes"),
            format!("PATCH {path}/status")
        ]
    );
    let sts = api
        .get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/nodes"))
        .unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "example/monerod:v0.18.4.0"
    );
    assert_eq!(api.get(&path).unwrap()["status"]["observedGeneration"], 2);
}

#[tokio::test]
async fn scaling_a_set_to_one_removes_its_disruption_budget_and_back_up_restores_it() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset("nodes", json!({"replicas": 3})),
    );
    reconcile_nodes(&api, &st).await;
    let pdb = format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/nodes");
    assert!(api.get(&pdb).is_some());

    let path = cr_path("moneronodesets", "nodes");
    for (replicas, pdb_expected) in [(1, false), (4, true)] {
        let mut obj = api.get(&path).unwrap();
        obj["spec"]["replicas"] = json!(replicas);
        api.put(&path, obj);
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        let sts = api
            .get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/nodes"))
            .unwrap();
        assert_eq!(sts["spec"]["replicas"], replicas);
        assert_eq!(
            api.get(&pdb).is_some(),
            pdb_expected,
            "replicas {replicas}: {:#?}",
            write_paths(&api)
        );
        // Volumes are never deleted by the operator: the StatefulSet's retention policy decides.
        assert!(
            api.seen()
                .iter()
                .all(|s| !s.path.contains("persistentvolumeclaims") || s.method == "GET")
        );
        assert_eq!(
            sts["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
    }
}

#[tokio::test]
async fn scaling_a_network_rewires_peers_and_removes_the_gone_nodes_service() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    let net = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork", "metadata": {"name": "regtest"},
                     "spec": {"replicas": 3, "template": {"spec": {"monerod": {"args": ["--regtest", "--fixed-difficulty=1"]}}}}});
    create(&api, "moneronetworks", net);
    reconcile_latest::<MoneroNetwork>(&api, &st, "regtest")
        .await
        .unwrap();
    let svc = |i: i32| format!("/api/v1/namespaces/{NS}/services/regtest-{i}");
    assert!((0..3).all(|i| api.get(&svc(i)).is_some()));
    let c0 = secret_file(&api, "regtest-monerod", "regtest-0.conf");
    assert!(
        c0.contains("add-exclusive-node=regtest-1.test.svc.cluster.local:18080"),
        "{c0}"
    );
    assert!(
        c0.contains("add-exclusive-node=regtest-2.test.svc.cluster.local:18080"),
        "{c0}"
    );
    assert!(
        !c0.contains("regtest-0.test"),
        "a node is not its own peer: {c0}"
    );
    let hash_before = api
        .get(&format!(
            "/apis/apps/v1/namespaces/{NS}/statefulsets/regtest"
        ))
        .unwrap()["spec"]["template"]["metadata"]["annotations"]["utxo.com.br/config-hash"]
        .clone();

    let path = cr_path("moneronetworks", "regtest");
    let mut obj = api.get(&path).unwrap();
    obj["spec"]["replicas"] = json!(2);
    api.put(&path, obj);
    api.clear_seen();
    reconcile_latest::<MoneroNetwork>(&api, &st, "regtest")
        .await
        .unwrap();
    assert!(api.get(&svc(2)).is_none(), "{:#?}", write_paths(&api));
    assert!(api.get(&svc(1)).is_some());
    let c0 = secret_file(&api, "regtest-monerod", "regtest-0.conf");
    assert!(!c0.contains("regtest-2"), "{c0}");
    let sts = api
        .get(&format!(
            "/apis/apps/v1/namespaces/{NS}/statefulsets/regtest"
        ))
        .unwrap();
    assert_ne!(
        sts["spec"]["template"]["metadata"]["annotations"]["utxo.com.br/config-hash"], hash_before,
        "rewired peers roll the pods"
    );
    assert!(api.events().iter().any(|e| e["reason"] == "Removed"));
}

#[tokio::test]
async fn an_invalid_object_gets_a_condition_and_an_event_and_no_children() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset(
            "locked",
            json!({"monerod": {"rpc": {"login": {"secretName": "missing"}}}}),
        ),
    );
    let action = reconcile_latest::<MoneroNodeSet>(&api, &st, "locked")
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    assert_eq!(
        write_paths(&api),
        vec![format!(
            "PATCH {}/status",
            cr_path("moneronodesets", "locked")
        )]
    );
    let status = api.get(&cr_path("moneronodesets", "locked")).unwrap()["status"].clone();
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidSpec");
    let msg = ready["message"].as_str().unwrap();
    assert!(
        msg.contains("MoneroNodeSet test/locked")
            && msg.contains("spec.monerod.rpc.login.usernameKey")
            && msg.contains("Secret missing not found"),
        "{msg}"
    );
    let warn = api
        .events()
        .into_iter()
        .find(|e| e["reason"] == "InvalidSpec")
        .unwrap();
    assert_eq!(warn["type"], "Warning");

    // Once the Secret exists, the next reconcile applies, and the password reaches
    // only the config Secret, never the StatefulSet.
    api.put(&format!("/api/v1/namespaces/{NS}/secrets/missing"), json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "missing", "namespace": NS}, "stringData": {"username": "rpcuser", "password": "hunter2"}}));
    reconcile_latest::<MoneroNodeSet>(&api, &st, "locked")
        .await
        .unwrap();
    let sts = api
        .get(&format!(
            "/apis/apps/v1/namespaces/{NS}/statefulsets/locked"
        ))
        .unwrap();
    assert!(!sts.to_string().contains("hunter2"));
    let conf = secret_file(&api, "locked-monerod", "monerod.conf");
    assert!(conf.contains("rpc-login=rpcuser:hunter2"), "{conf}");
    // The user's Secret is read, never written.
    assert!(
        api.seen()
            .iter()
            .all(|s| !(s.path.ends_with("/secrets/missing") && s.is_write()))
    );
}

#[tokio::test]
async fn api_errors_fail_the_reconcile_back_off_and_the_retry_succeeds() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(&api, "moneronodesets", nodeset("nodes", json!({})));
    api.fail_next("PATCH", "/statefulsets/nodes", 500);
    let obj = latest::<MoneroNodeSet>(&api, "moneronodesets", "nodes");
    let err = reconcile(obj.clone(), st.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Kube { .. }), "{err}");
    assert!(
        err.to_string().contains("applying StatefulSet test/nodes"),
        "{err}"
    );
    assert_eq!(
        error_policy(obj.clone(), &err, st.clone()),
        Action::requeue(backoff(1))
    );
    assert_eq!(
        error_policy(obj.clone(), &err, st.clone()),
        Action::requeue(backoff(2))
    );
    assert!(
        api.events()
            .iter()
            .any(|e| e["reason"] == "ReconcileFailed" && e["type"] == "Warning")
    );

    reconcile_nodes(&api, &st).await;
    assert!(
        api.get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/nodes"))
            .is_some()
    );
    // Success resets the backoff.
    assert_eq!(
        error_policy(obj, &err, st.clone()),
        Action::requeue(backoff(1))
    );
    let text = metrics_text(&st);
    assert!(
        text.contains(
            "monero_operator_reconciles_total{kind=\"MoneroNodeSet\",result=\"error\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "monero_operator_reconcile_errors_total{kind=\"MoneroNodeSet\",reason=\"kube_api\"} 1"
        ),
        "{text}"
    );
}

#[test]
fn backoff_doubles_to_five_minutes() {
    let s: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(s, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
}

#[tokio::test]
async fn status_reports_each_replica_and_is_written_only_when_it_changes() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset("nodes", json!({"replicas": 2})),
    );
    add_pod(&api, "nodes-0", "nodes", "monerod", true);
    add_pod(&api, "nodes-1", "nodes", "monerod", false);
    add_pod(&api, "other-0", "other", "monerod", true);
    reconcile_nodes(&api, &st).await;
    let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
    assert_eq!(status["replicas"], 2);
    assert_eq!(status["readyReplicas"], 1);
    assert_eq!(status["height"], 42);
    assert_eq!(status["synchronized"], "2/2");
    assert_eq!(status["nodes"][0]["name"], "nodes-0");
    assert_eq!(status["nodes"][1]["ready"], false);
    assert_eq!(
        status["nodes"][0]["version"], "0.18.0.0-release@10.0.0.7:18089",
        "polled on the restricted port"
    );
    let ready = condition(&status, "Ready");
    assert_eq!(ready["message"], "1/2 replicas ready");

    api.clear_seen();
    reconcile_nodes(&api, &st).await;
    assert_eq!(
        write_paths(&api),
        Vec::<String>::new(),
        "same status, no write"
    );

    add_pod(&api, "nodes-1", "nodes", "monerod", true);
    api.clear_seen();
    reconcile_nodes(&api, &st).await;
    assert_eq!(
        write_paths(&api),
        vec![format!(
            "PATCH {}/status",
            cr_path("moneronodesets", "nodes")
        )]
    );
    let after = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
    let cond = |s: &Value, t: &str| {
        s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(cond(&after, "Ready")["status"], "True");
    assert_eq!(
        cond(&after, "Synced")["lastTransitionTime"],
        cond(&status, "Synced")["lastTransitionTime"]
    );
}

#[tokio::test]
async fn a_networks_wallets_are_read_from_their_pod_into_status_and_the_miners_files() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronetworks",
        json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
               "metadata": {"name": "ci", "namespace": NS},
               "spec": {"replicas": 1, "blocks": {"interval": "2s"},
                        "wallets": {"count": 2, "login": {"secretName": "wl"}},
                        "template": {"spec": {"network": "regtest"}}}}),
    );
    api.put(
        &format!("/api/v1/namespaces/{NS}/secrets/wl"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wl", "namespace": NS},
               "data": {"username": "ZGV2", "password": "cHc="}}),
    );
    add_pod(&api, "ci-0", "ci", "monerod", true);
    let reconcile_ci = async || {
        reconcile_latest::<MoneroNetwork>(&api, &st, "ci")
            .await
            .unwrap();
    };
    // No wallets pod yet: the condition says so, and Ready waits.
    reconcile_ci().await;
    let status = api.get(&cr_path("moneronetworks", "ci")).unwrap()["status"].clone();
    let funded = condition(&status, "WalletsFunded");
    assert_eq!(funded["reason"], "WalletsUnreadable");
    assert_eq!(funded["message"], "pod ci-wallets-0 does not exist yet");
    assert_eq!(condition(&status, "Ready")["reason"], "WalletsNotFunded");
    assert!(
        api.get(&sts_path("ci-wallets")).is_some(),
        "the wallets' StatefulSet is made"
    );
    // The wallets' login is read from its Secret, into their config file.
    assert_eq!(secret_file(&api, "ci-wallets", "rpc-login"), "dev:pw\n");
    // The pod runs: its sidecar's report is the status, and the addresses
    // reach the miner's file.
    add_pod(&api, "ci-wallets-0", "ci", "monero-wallet-rpc", true);
    reconcile_ci().await;
    let status = api.get(&cr_path("moneronetworks", "ci")).unwrap()["status"].clone();
    assert_eq!(status["wallets"][0]["address"], "4wallet0@10.0.0.7");
    assert_eq!(status["wallets"][1]["unlockedBalance"], 0);
    assert_eq!(status["replicas"], 1, "the wallets pod is no node");
    assert_eq!(condition(&status, "WalletsFunded")["reason"], "Unfunded");
    // The pod gone for a moment: the addresses stay, the condition says why
    // nothing was read, and Ready waits.
    api.remove(&format!("/api/v1/namespaces/{NS}/pods/ci-wallets-0"));
    reconcile_ci().await;
    let status = api.get(&cr_path("moneronetworks", "ci")).unwrap()["status"].clone();
    assert_eq!(status["wallets"][0]["address"], "4wallet0@10.0.0.7");
    assert_eq!(
        condition(&status, "WalletsFunded")["reason"],
        "WalletsUnreadable"
    );
    assert_eq!(condition(&status, "Ready")["status"], "False");
    reconcile_ci().await;
    let lab: Value =
        serde_json::from_str(&secret_file(&api, "ci-monerod", "ci-0.lab.json")).unwrap();
    assert_eq!(
        lab["mine"]["addresses"],
        json!(["4wallet0@10.0.0.7", "4wallet1@10.0.0.7"])
    );
    // Wallets removed: their StatefulSet, Service and Secret go, the nodes stay.
    edit(&api, &cr_path("moneronetworks", "ci"), |o| {
        o["spec"].as_object_mut().unwrap().remove("wallets");
    });
    reconcile_ci().await;
    for path in [
        sts_path("ci-wallets"),
        format!("/api/v1/namespaces/{NS}/services/ci-wallets"),
        format!("/api/v1/namespaces/{NS}/secrets/ci-wallets"),
    ] {
        assert!(api.get(&path).is_none(), "{path} is gone");
    }
    assert!(api.get(&sts_path("ci")).is_some());
}

#[tokio::test]
async fn miners_are_read_through_their_exporter_and_solo_mining_finds_the_node_set() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset("nodes", json!({"network": "stagenet"})),
    );
    let m = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet", "metadata": {"name": "solo"},
                   "spec": {"replicas": 2, "xmrig": {"config": {"pools": [{"nodeSet": "nodes", "userSecretRef": {"name": "wallet", "key": "address"}}]}}}});
    create(&api, "monerominingnodesets", m);
    api.put(
        &format!("/api/v1/namespaces/{NS}/secrets/wallet"),
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "wallet", "namespace": NS}, "stringData": {"address": "5Wallet"}}),
    );
    add_pod(&api, "solo-0", "solo", "xmrig", true);
    reconcile_latest::<MoneroMiningNodeSet>(&api, &st, "solo")
        .await
        .unwrap();
    let config: Value =
        serde_json::from_str(&secret_file(&api, "solo-xmrig", "config-1.json")).unwrap();
    assert_eq!(
        config["pools"][0]["url"],
        "nodes.test.svc.cluster.local:38089"
    );
    assert_eq!(config["pools"][0]["daemon"], true);
    assert_eq!(config["pools"][0]["user"], "5Wallet");
    let status = api.get(&cr_path("monerominingnodesets", "solo")).unwrap()["status"].clone();
    assert_eq!(status["readyReplicas"], 1);
    assert!(status.get("height").is_none() && status["nodes"][0].get("height").is_none());
    assert!(status.get("synchronized").is_none());
    // Read through the exporter sidecar: hashrate and shares.
    assert_eq!(status["hashrate"], 250);
    assert_eq!(status["nodes"][0]["hashrate"], 250);
    assert_eq!(status["nodes"][0]["sharesAccepted"], 3);
    assert_eq!(status["nodes"][0]["sharesRejected"], 1);
    assert_eq!(status["nodes"][0]["version"], "6.22.2@10.0.0.7");
}

#[tokio::test]
async fn the_xmrig_api_token_is_made_once_and_never_rewritten() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    let m = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet", "metadata": {"name": "rig"},
                   "spec": {"replicas": 1, "xmrig": {"args": ["-o", "pool:1"]}}});
    create(&api, "monerominingnodesets", m);
    let run = || reconcile_latest::<MoneroMiningNodeSet>(&api, &st, "rig");
    run().await.unwrap();
    let token = secret_file(&api, "rig-xmrig-api", "token");
    assert_eq!(token.len(), 64);
    let http: Value =
        serde_json::from_str(&secret_file(&api, "rig-xmrig-api", "http.json")).unwrap();
    assert_eq!(http["http"]["access-token"], token.as_str());
    let stored = api
        .get(&format!("/api/v1/namespaces/{NS}/secrets/rig-xmrig-api"))
        .unwrap();
    assert_eq!(stored["metadata"]["ownerReferences"][0]["uid"], "uid-rig");
    assert!(
        api.events()
            .iter()
            .any(|e| e["reason"] == "AccessTokenCreated"),
        "an Event says the token was made"
    );

    // Later reconciles keep it: no write to it at all.
    api.clear_seen();
    run().await.unwrap();
    run().await.unwrap();
    assert_eq!(secret_file(&api, "rig-xmrig-api", "token"), token);
    assert!(
        !write_paths(&api)
            .iter()
            .any(|w| w.contains("rig-xmrig-api")),
        "{:?}",
        write_paths(&api)
    );
}

/// Two ready miners of the set "rig" whose probe answers differently at every
/// call, under `config`.
fn moving_miners(config: Config) -> (FakeApi, Arc<State>, Arc<MovingProbe>) {
    let (client, api) = FakeApi::start();
    let probe = Arc::new(MovingProbe::default());
    let st = State::new(
        client,
        config,
        Metrics::new().unwrap(),
        probe.clone(),
        "test-0".into(),
    );
    let m = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet", "metadata": {"name": "rig"},
                   "spec": {"replicas": 2, "xmrig": {"args": ["-o", "pool:1"]}}});
    create(&api, "monerominingnodesets", m);
    add_pod(&api, "rig-0", "rig", "xmrig", true);
    add_pod(&api, "rig-1", "rig", "xmrig", true);
    (api, st, probe)
}

async fn reconcile_rig(api: &FakeApi, st: &Arc<State>) {
    reconcile_latest::<MoneroMiningNodeSet>(api, st, "rig")
        .await
        .unwrap();
}

/// A status write triggers the next reconcile (the controller watches the
/// object, status included). With values that move at every poll, that
/// reconcile must reuse what the last poll found, or write, trigger and poll
/// would chase each other for ever.
#[tokio::test]
async fn a_status_write_does_not_start_a_poll_and_write_loop() {
    let (api, st, probe) = moving_miners(Config::default());
    reconcile_rig(&api, &st).await;
    let status =
        |api: &FakeApi| api.get(&cr_path("monerominingnodesets", "rig")).unwrap()["status"].clone();
    assert_eq!(
        status(&api)["hashrate"],
        201,
        "100 + 101 from the first poll"
    );
    assert_eq!(probe.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // The reconcile the status write triggers: nothing polled, nothing written.
    api.clear_seen();
    reconcile_rig(&api, &st).await;
    assert_eq!(probe.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(write_paths(&api).is_empty(), "{:?}", write_paths(&api));
    assert_eq!(status(&api)["hashrate"], 201);
}

#[tokio::test]
async fn without_the_reuse_window_every_reconcile_polls_and_writes() {
    let (api, st, probe) = moving_miners(Config {
        status_interval: Duration::ZERO,
        ..Config::default()
    });
    reconcile_rig(&api, &st).await;
    api.clear_seen();
    reconcile_rig(&api, &st).await;
    assert_eq!(probe.calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert!(
        write_paths(&api)
            .iter()
            .any(|w| w.ends_with("/monerominingnodesets/rig/status")),
        "{:?}",
        write_paths(&api)
    );
}

/// The mining set "rig", reconciled once where a Secret `rig-xmrig-api` with
/// `data` already exists.
async fn miners_beside_an_api_secret(data: Value) -> FakeApi {
    let (client, api) = FakeApi::start();
    let st = state(client);
    api.put(
        &format!("/api/v1/namespaces/{NS}/secrets/rig-xmrig-api"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rig-xmrig-api", "namespace": NS},
               "data": data}),
    );
    let m = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet", "metadata": {"name": "rig"},
                   "spec": {"xmrig": {"args": ["-o", "pool:1"]}}});
    create(&api, "monerominingnodesets", m);
    reconcile_rig(&api, &st).await;
    api
}

#[tokio::test]
async fn a_secret_already_named_like_the_api_secret_is_used_not_replaced() {
    let api = miners_beside_an_api_secret(json!({"token": "bWluZQ==", "http.json": "e30="})).await;
    assert_eq!(secret_file(&api, "rig-xmrig-api", "token"), "mine");
}

#[tokio::test]
async fn an_api_secret_without_its_keys_is_refused_naming_it_and_left_alone() {
    let api = miners_beside_an_api_secret(json!({"token": "bWluZQ=="})).await;
    let status = api.get(&cr_path("monerominingnodesets", "rig")).unwrap()["status"].clone();
    let ready = condition(&status, "Ready");
    assert_eq!(ready["reason"], "InvalidSpec");
    let msg = ready["message"].as_str().unwrap();
    assert!(
        msg.contains("rig-xmrig-api") && msg.contains("http.json") && msg.contains("spec.exporter"),
        "{msg}"
    );
    assert!(
        !write_paths(&api)
            .iter()
            .any(|w| w.contains("secrets/rig-xmrig-api"))
    );
    assert!(
        !write_paths(&api).iter().any(|w| w.contains("statefulsets")),
        "no pods that could not start"
    );
}

/// A file of a Secret in the store, decoded as the API's base64 `data` is.
fn secret_file(api: &FakeApi, name: &str, key: &str) -> String {
    let v = api
        .get(&format!("/api/v1/namespaces/{NS}/secrets/{name}"))
        .unwrap();
    let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(v).unwrap();
    String::from_utf8(s.data.unwrap()[key].0.clone()).unwrap()
}

mod leader {
    use super::*;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::jiff::Timestamp;
    use kube::Api;
    use monero_reconciler::controller::leader::{LeaseConfig, Outcome, release, try_acquire};

    fn cfg(identity: &str) -> LeaseConfig {
        LeaseConfig {
            name: "monero-operator".into(),
            namespace: "monero-system".into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew: Duration::from_secs(5),
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    const PATH: &str =
        "/apis/coordination.k8s.io/v1/namespaces/monero-system/leases/monero-operator";

    #[tokio::test]
    async fn one_replica_leads_the_other_waits_and_takes_over_when_the_lease_expires() {
        let (client, api) = FakeApi::start();
        let leases: Api<Lease> = Api::namespaced(client, "monero-system");
        assert_eq!(
            try_acquire(&leases, &cfg("a"), at(0)).await.unwrap(),
            Outcome::Leader
        );
        assert_eq!(api.get(PATH).unwrap()["spec"]["holderIdentity"], "a");
        assert_eq!(
            try_acquire(&leases, &cfg("b"), at(5)).await.unwrap(),
            Outcome::Follower
        );
        // a renews; b still waits.
        assert_eq!(
            try_acquire(&leases, &cfg("a"), at(10)).await.unwrap(),
            Outcome::Leader
        );
        assert_eq!(
            try_acquire(&leases, &cfg("b"), at(20)).await.unwrap(),
            Outcome::Follower
        );
        // a stops renewing: after 15 s b takes over, and a is then a follower.
        assert_eq!(
            try_acquire(&leases, &cfg("b"), at(26)).await.unwrap(),
            Outcome::Leader
        );
        let lease = api.get(PATH).unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], "b");
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
        assert_eq!(
            try_acquire(&leases, &cfg("a"), at(27)).await.unwrap(),
            Outcome::Follower
        );
        // b gives it up on shutdown; a takes it at once.
        release(&leases, &cfg("b")).await.unwrap();
        assert_eq!(
            try_acquire(&leases, &cfg("a"), at(28)).await.unwrap(),
            Outcome::Leader
        );
    }

    #[tokio::test]
    async fn a_lost_race_is_a_follower_not_an_error() {
        let (client, api) = FakeApi::start();
        let leases: Api<Lease> = Api::namespaced(client, "monero-system");
        assert_eq!(
            try_acquire(&leases, &cfg("a"), at(0)).await.unwrap(),
            Outcome::Leader
        );
        // Another writer updates the lease between b's read and b's write.
        api.fail_next("PUT", "/leases/monero-operator", 409);
        assert_eq!(
            try_acquire(&leases, &cfg("b"), at(100)).await.unwrap(),
            Outcome::Follower
        );
        api.fail_next("GET", "/leases/monero-operator", 500);
        assert!(try_acquire(&leases, &cfg("b"), at(100)).await.is_err());
    }
}

#[tokio::test]
async fn growing_storage_patches_each_claim_and_keeps_the_immutable_templates() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset("nodes", json!({"replicas": 2, "storage": {"size": "10Gi"}})),
    );
    reconcile_nodes(&api, &st).await;
    for i in 0..2 {
        api.put(
            &format!("/api/v1/namespaces/{NS}/persistentvolumeclaims/data-nodes-{i}"),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": format!("data-nodes-{i}"), "namespace": NS},
                   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}),
        );
    }
    let path = cr_path("moneronodesets", "nodes");
    let mut obj = api.get(&path).unwrap();
    obj["spec"]["storage"]["size"] = json!("20Gi");
    api.put(&path, obj);
    api.clear_seen();
    reconcile_nodes(&api, &st).await;
    for i in 0..2 {
        let pvc = api
            .get(&format!(
                "/api/v1/namespaces/{NS}/persistentvolumeclaims/data-nodes-{i}"
            ))
            .unwrap();
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "20Gi");
    }
    let sts = api
        .get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/nodes"))
        .unwrap();
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "10Gi",
        "templates cannot change"
    );
    assert!(
        write_paths(&api)
            .iter()
            .all(|w| !w.contains("statefulsets")),
        "nothing else changed: {:#?}",
        write_paths(&api)
    );
    assert!(api.events().iter().any(|e| e["reason"] == "VolumeResized"));
    // Done once: the next reconcile writes nothing.
    api.clear_seen();
    reconcile_nodes(&api, &st).await;
    assert_eq!(write_paths(&api), Vec::<String>::new());
}

mod identities {
    use super::*;
    use monero_anon::i2p::Destination;
    use monero_anon::tor::OnionKey;

    fn ids_path() -> String {
        format!("/api/v1/namespaces/{NS}/secrets/nodes-identities")
    }

    fn keys(api: &FakeApi) -> std::collections::BTreeMap<String, Vec<u8>> {
        let v = api.get(&ids_path()).unwrap();
        let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(v).unwrap();
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    }

    fn set_replicas(api: &FakeApi, n: i32) {
        let path = cr_path("moneronodesets", "nodes");
        let mut obj = api.get(&path).unwrap();
        obj["spec"]["replicas"] = json!(n);
        api.put(&path, obj);
    }

    #[tokio::test]
    async fn identities_are_made_once_reused_kept_on_scale_down_and_shown_in_status() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"replicas": 2, "tor": {"enabled": true}, "i2p": {"enabled": true}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        let first = keys(&api);
        assert_eq!(
            first.keys().cloned().collect::<Vec<_>>(),
            vec![
                "nodes-0.i2p",
                "nodes-0.tor",
                "nodes-1.i2p",
                "nodes-1.tor",
                "rpc.tor"
            ]
        );
        let secret = api.get(&ids_path()).unwrap();
        assert!(
            secret["metadata"].get("ownerReferences").is_none(),
            "kept when the set is deleted (Retain)"
        );
        assert!(
            secret["metadata"]["labels"]
                .get("app.kubernetes.io/instance")
                .is_none(),
            "out of reach of pruning"
        );
        let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        for i in 0..2 {
            let onion = OnionKey::from_secret_file(&first[&format!("nodes-{i}.tor")])
                .unwrap()
                .address();
            let b32 = Destination::from_keys_file(&first[&format!("nodes-{i}.i2p")])
                .unwrap()
                .address();
            assert_eq!(status["nodes"][i]["onionAddress"], onion);
            assert_eq!(status["nodes"][i]["i2pAddress"], b32);
        }
        assert_eq!(
            status["rpcOnionAddress"],
            OnionKey::from_secret_file(&first["rpc.tor"])
                .unwrap()
                .address()
        );
        let made = api
            .events()
            .into_iter()
            .find(|e| e["reason"] == "IdentityCreated")
            .unwrap();
        assert!(
            made["note"]
                .as_str()
                .unwrap()
                .contains(status["nodes"][0]["onionAddress"].as_str().unwrap())
        );

        // Unchanged: no write, same keys.
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        assert_eq!(write_paths(&api), Vec::<String>::new());
        assert_eq!(keys(&api), first);

        // Scale up: only the new replica's keys are added.
        set_replicas(&api, 3);
        reconcile_nodes(&api, &st).await;
        let grown = keys(&api);
        assert_eq!(grown.len(), 7);
        for (k, v) in &first {
            assert_eq!(&grown[k], v, "{k} was replaced");
        }
        // Scale down: kept.
        set_replicas(&api, 1);
        reconcile_nodes(&api, &st).await;
        assert_eq!(keys(&api), grown);
    }

    #[tokio::test]
    async fn adding_identities_is_conditional_so_a_concurrent_writer_is_never_overwritten() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset("nodes", json!({"replicas": 1, "tor": {"enabled": true}})),
        );
        reconcile_nodes(&api, &st).await;
        let first = keys(&api);
        set_replicas(&api, 2);
        // Another writer changes the Secret between our read and our write.
        api.fail_next("PATCH", "/secrets/nodes-identities", 409);
        let err = reconcile_latest::<MoneroNodeSet>(&api, &st, "nodes")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("adding identities"), "{err}");
        assert_eq!(keys(&api), first, "nothing written on a conflict");
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        let patch = api
            .seen()
            .into_iter()
            .find(|s| s.method == "PATCH" && s.path.ends_with("/secrets/nodes-identities"))
            .unwrap();
        assert!(
            patch.body.contains("\"resourceVersion\""),
            "the patch is conditional: {}",
            patch.body
        );
        let after = keys(&api);
        assert_eq!(after["nodes-0.tor"], first["nodes-0.tor"]);
        assert!(after.contains_key("nodes-1.tor"));
    }

    #[tokio::test]
    async fn a_set_with_private_rpc_gets_no_rpc_onion() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"tor": {"enabled": true}, "monerod": {"rpc": {"public": false}}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        assert!(!keys(&api).contains_key("rpc.tor"));
        let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        assert!(status.get("rpcOnionAddress").is_none());
    }

    #[tokio::test]
    async fn retention_delete_drops_removed_replicas_keys_and_ties_the_secret_to_the_set() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"replicas": 3, "tor": {"enabled": true},
            "storage": {"retention": {"whenScaled": "Delete", "whenDeleted": "Delete"}}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        let secret = api.get(&ids_path()).unwrap();
        assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "uid-nodes");
        let before = keys(&api);
        set_replicas(&api, 1);
        reconcile_nodes(&api, &st).await;
        let after = keys(&api);
        assert_eq!(
            after.keys().cloned().collect::<Vec<_>>(),
            vec!["nodes-0.tor", "rpc.tor"]
        );
        assert_eq!(after["nodes-0.tor"], before["nodes-0.tor"]);
    }

    #[tokio::test]
    async fn a_malformed_brought_key_is_refused_and_never_written() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        let good = OnionKey::generate().unwrap();
        let b64 = |b: &[u8]| serde_json::to_value(k8s_openapi::ByteString(b.to_vec())).unwrap();
        api.put(&format!("/api/v1/namespaces/{NS}/secrets/mine"), json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "mine", "namespace": NS}, "data": {"nodes-0.tor": b64(&good.secret_file()), "nodes-1.tor": b64(b"garbage")}}));
        let before = api
            .get(&format!("/api/v1/namespaces/{NS}/secrets/mine"))
            .unwrap();
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"replicas": 2, "tor": {"enabled": true, "keysSecret": "mine"}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        let ready = condition(&status, "Ready");
        assert_eq!(ready["reason"], "InvalidSpec");
        let msg = ready["message"].as_str().unwrap();
        assert!(
            msg.contains("spec.tor.keysSecret") && msg.contains("nodes-1.tor"),
            "{msg}"
        );
        assert!(api.events().iter().any(|e| e["reason"] == "InvalidSpec"));
        assert_eq!(
            api.get(&format!("/api/v1/namespaces/{NS}/secrets/mine"))
                .unwrap(),
            before,
            "never written"
        );
        assert!(
            api.get(&ids_path()).is_none(),
            "no keys of our own when the user brings them"
        );
        assert!(
            api.get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/nodes"))
                .is_none()
        );

        // Fixed by the user: applied, with the user's addresses in status.
        let other = OnionKey::generate().unwrap();
        let mut fixed = before.clone();
        fixed["data"]["nodes-1.tor"] = b64(&other.secret_file());
        api.put(&format!("/api/v1/namespaces/{NS}/secrets/mine"), fixed);
        reconcile_nodes(&api, &st).await;
        let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        assert_eq!(status["nodes"][0]["onionAddress"], good.address());
        assert_eq!(status["nodes"][1]["onionAddress"], other.address());
        assert!(
            api.get(&format!("/apis/apps/v1/namespaces/{NS}/statefulsets/nodes"))
                .is_some()
        );
        let ready = condition(&status, "Ready");
        assert_ne!(ready["reason"], "InvalidSpec");
    }

    #[tokio::test]
    async fn a_networks_missing_key_names_the_field_under_its_template() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        let net = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork", "metadata": {"name": "regtest"},
            "spec": {"replicas": 2, "template": {"spec": {"network": "regtest", "tor": {"enabled": true, "keysSecret": "absent"}}}}});
        create(&api, "moneronetworks", net);
        reconcile_latest::<MoneroNetwork>(&api, &st, "regtest")
            .await
            .unwrap();
        let status = api.get(&cr_path("moneronetworks", "regtest")).unwrap()["status"].clone();
        let msg = condition(&status, "Ready")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("spec.template.spec.tor.keysSecret") && msg.contains("absent"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn a_pod_monitor_is_made_only_where_its_crd_exists_and_removed_when_unwanted() {
    let (client, api) = FakeApi::start();
    // Discovery is asked at every reconcile, so that the CRD's arrival is seen
    // at once (by default an answer is reused for a minute).
    let st = State::new(
        client,
        Config {
            crd_recheck: Duration::ZERO,
            ..Config::default()
        },
        Metrics::new().unwrap(),
        Arc::new(FixedProbe),
        "test-0".into(),
    );
    create(
        &api,
        "moneronodesets",
        nodeset(
            "nodes",
            json!({"exporter": {"podMonitor": {"enabled": true}}}),
        ),
    );
    let pm_path = format!("/apis/monitoring.coreos.com/v1/namespaces/{NS}/podmonitors/nodes");
    reconcile_nodes(&api, &st).await;
    assert!(api.get(&pm_path).is_none());
    let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
    let c = condition(&status, "PodMonitor");
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("CRDMissing"))
    );
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("prometheus.io annotations")
    );

    // The Prometheus Operator arrives.
    api.put("/apis/monitoring.coreos.com/v1", json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "monitoring.coreos.com/v1",
        "resources": [{"name": "podmonitors", "singularName": "podmonitor", "namespaced": true, "kind": "PodMonitor", "verbs": ["get", "list", "create", "patch", "delete"]}]}));
    reconcile_nodes(&api, &st).await;
    let pm = api.get(&pm_path).unwrap();
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
    assert_eq!(condition(&status, "PodMonitor")["status"], "True");
    api.clear_seen();
    reconcile_nodes(&api, &st).await;
    assert_eq!(
        write_paths(&api),
        Vec::<String>::new(),
        "an unchanged PodMonitor is not rewritten"
    );

    // Not wanted any more: removed, and the condition goes.
    let path = cr_path("moneronodesets", "nodes");
    let mut obj = api.get(&path).unwrap();
    obj["spec"]["exporter"]["podMonitor"]["enabled"] = json!(false);
    api.put(&path, obj);
    reconcile_nodes(&api, &st).await;
    assert!(api.get(&pm_path).is_none());
    let status = api.get(&path).unwrap()["status"].clone();
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "PodMonitor")
    );
}

fn sts_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NS}/statefulsets/{name}")
}

/// Changes a stored object in place, as another writer (or the API server
/// itself) would.
fn edit(api: &FakeApi, path: &str, change: impl FnOnce(&mut Value)) {
    let mut obj = api.get(path).unwrap();
    change(&mut obj);
    api.put(path, obj);
}

/// The body of the last apply to `path` since the last clear.
fn applied_body(api: &FakeApi, path: &str) -> Option<Value> {
    api.seen()
        .into_iter()
        .rev()
        .find(|s| s.method == "PATCH" && s.path == path)
        .map(|s| serde_json::from_str(&s.body).unwrap())
}

mod apply_decision {
    use super::*;

    #[tokio::test]
    async fn a_field_removed_from_the_spec_is_removed_from_the_child() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"replicas": 1,
                       "monerod": {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "4Gi"}}},
                       "pod": {"nodeSelector": {"disk": "ssd"},
                               "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                               "annotations": {"team": "infra"}}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        let sts = api.get(&sts_path("nodes")).unwrap();
        let pod = &sts["spec"]["template"];
        assert_eq!(pod["spec"]["nodeSelector"]["disk"], "ssd");
        assert_eq!(pod["metadata"]["annotations"]["team"], "infra");

        edit(&api, &cr_path("moneronodesets", "nodes"), |o| {
            o["spec"]["pod"] = json!({});
            o["spec"]["monerod"]["resources"] = json!({"requests": {"cpu": "1"}});
            o["metadata"]["generation"] = json!(2);
        });
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        let body = applied_body(&api, &sts_path("nodes")).expect("the StatefulSet is applied");
        let pod = &body["spec"]["template"];
        assert!(pod["spec"].get("nodeSelector").is_none(), "{pod:#}");
        assert!(pod["spec"].get("tolerations").is_none(), "{pod:#}");
        assert!(
            pod["metadata"]["annotations"].get("team").is_none(),
            "{pod:#}"
        );
        let monerod = &pod["spec"]["containers"][0];
        assert_eq!(monerod["name"], "monerod");
        assert!(monerod["resources"].get("limits").is_none(), "{monerod:#}");
        // Server-side apply removes what we stopped sending.
        let sts = api.get(&sts_path("nodes")).unwrap();
        assert!(
            sts["spec"]["template"]["spec"]
                .get("nodeSelector")
                .is_none()
        );
        assert!(sts["spec"]["template"]["spec"].get("tolerations").is_none());
    }

    #[tokio::test]
    async fn an_unchanged_network_is_not_rewritten_over_many_reconciles() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        let net = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork", "metadata": {"name": "regtest"},
                         "spec": {"replicas": 3, "template": {"spec": {"monerod": {"args": ["--regtest"]}}}}});
        create(&api, "moneronetworks", net);
        let run = || reconcile_latest::<MoneroNetwork>(&api, &st, "regtest");
        run().await.unwrap();
        // Every child carries the hash it was applied from.
        let children: Vec<String> = api
            .paths()
            .into_iter()
            .filter(|p| {
                [
                    "/secrets/",
                    "/services/",
                    "/statefulsets/",
                    "/poddisruptionbudgets/",
                ]
                .iter()
                .any(|k| p.contains(k))
            })
            .collect();
        assert!(children.len() >= 6, "{children:?}");
        for p in &children {
            let hash =
                api.get(p).unwrap()["metadata"]["annotations"]["utxo.com.br/applied-hash"].clone();
            assert_eq!(hash.as_str().map(str::len), Some(64), "{p}: {hash}");
        }
        api.clear_seen();
        for _ in 0..5 {
            run().await.unwrap();
        }
        assert_eq!(write_paths(&api), Vec::<String>::new());
        assert!(api.seen().iter().all(|s| !s.is_event()));
    }

    #[tokio::test]
    async fn quantities_the_server_rewrote_in_canonical_form_are_not_a_change() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"monerod": {"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}}}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        // What a real API server stores and returns: canonical quantities and
        // defaults, under the same applied-hash annotation.
        edit(&api, &sts_path("nodes"), |sts| {
            let c = &mut sts["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(c["resources"]["requests"]["cpu"], "0.5");
            c["resources"]["requests"] = json!({"cpu": "500m", "memory": "1Gi"});
            c["terminationMessagePath"] = json!("/dev/termination-log");
            sts["spec"]["revisionHistoryLimit"] = json!(10);
        });
        api.clear_seen();
        for _ in 0..3 {
            reconcile_nodes(&api, &st).await;
        }
        assert_eq!(write_paths(&api), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_refused_volume_resize_is_a_condition_and_the_other_changes_are_applied() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset("nodes", json!({"replicas": 2, "storage": {"size": "10Gi"}})),
    );
    reconcile_nodes(&api, &st).await;
    let pvc = |i: i32| format!("/api/v1/namespaces/{NS}/persistentvolumeclaims/data-nodes-{i}");
    for i in 0..2 {
        api.put(
            &pvc(i),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": format!("data-nodes-{i}"), "namespace": NS},
                   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}),
        );
    }
    let path = cr_path("moneronodesets", "nodes");
    edit(&api, &path, |o| {
        o["spec"]["storage"]["size"] = json!("20Gi");
        o["spec"]["monerod"] = json!({"image": "example/monerod:v0.18.4.0"});
        o["metadata"]["generation"] = json!(2);
    });
    let refusal = "persistentvolumeclaims \"data-nodes-0\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize";
    api.fail_next_with(
        "PATCH",
        "/persistentvolumeclaims/data-nodes-0",
        403,
        refusal,
    );
    api.clear_seen();
    reconcile_nodes(&api, &st).await;

    let sts = api.get(&sts_path("nodes")).unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "example/monerod:v0.18.4.0",
        "the image change is applied: {:#?}",
        write_paths(&api)
    );
    assert_eq!(
        api.get(&pvc(1)).unwrap()["spec"]["resources"]["requests"]["storage"],
        "20Gi",
        "the other claim still grows"
    );
    assert_eq!(
        api.get(&pvc(0)).unwrap()["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );
    let status = api.get(&path).unwrap()["status"].clone();
    assert_eq!(status["observedGeneration"], 2, "status is not stale");
    let c = condition(&status, "VolumesResized");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "ResizeRefused");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains("data-nodes-0") && msg.contains(refusal) && !msg.contains("data-nodes-1"),
        "{msg}"
    );
    let warnings: Vec<Value> = api
        .events()
        .into_iter()
        .filter(|e| e["reason"] == "ResizeRefused")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["type"], "Warning");
    // Fixed (the class now allows expansion): the claim grows and the condition goes.
    reconcile_nodes(&api, &st).await;
    assert_eq!(
        api.get(&pvc(0)).unwrap()["spec"]["resources"]["requests"]["storage"],
        "20Gi"
    );
    let status = api.get(&path).unwrap()["status"].clone();
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "VolumesResized"),
        "{status:#}"
    );
}

#[tokio::test]
async fn a_child_the_api_server_refuses_shows_in_status_and_the_error_backs_off() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(&api, "moneronodesets", nodeset("nodes", json!({})));
    let refusal = "Service \"nodes\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range";
    api.fail_next_with("PATCH", "/services/nodes", 422, refusal);
    let obj = latest::<MoneroNodeSet>(&api, "moneronodesets", "nodes");
    let err = reconcile(obj.clone(), st.clone()).await.unwrap_err();
    assert!(
        err.to_string().contains("applying Service test/nodes"),
        "{err}"
    );
    assert_eq!(
        error_policy(obj, &err, st.clone()),
        Action::requeue(backoff(1))
    );
    let path = cr_path("moneronodesets", "nodes");
    let status = api.get(&path).unwrap()["status"].clone();
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "ApplyFailed");
    let msg = ready["message"].as_str().unwrap();
    assert!(
        msg.contains("Service test/nodes") && msg.contains(refusal) && msg.contains("422"),
        "{msg}"
    );
    assert_eq!(condition(&status, "Degraded")["reason"], "ApplyFailed");

    // The retry applies it, and the condition clears.
    reconcile_nodes(&api, &st).await;
    assert!(
        api.get(&format!("/api/v1/namespaces/{NS}/services/nodes"))
            .is_some()
    );
    let status = api.get(&path).unwrap()["status"].clone();
    assert_ne!(condition(&status, "Ready")["reason"], "ApplyFailed");
}

#[tokio::test]
async fn an_object_being_deleted_is_left_alone() {
    let (client, api) = FakeApi::start();
    let st = state(client);
    create(
        &api,
        "moneronodesets",
        nodeset("nodes", json!({"replicas": 2, "tor": {"enabled": true}})),
    );
    reconcile_nodes(&api, &st).await;
    // Foreground deletion: the garbage collector has removed the StatefulSet
    // and a Service; the owner waits for the rest.
    api.remove(&sts_path("nodes"));
    api.remove(&format!("/api/v1/namespaces/{NS}/services/nodes"));
    edit(&api, &cr_path("moneronodesets", "nodes"), |o| {
        o["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
        o["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        o["spec"]["replicas"] = json!(3);
    });
    api.clear_seen();
    let action = reconcile_latest::<MoneroNodeSet>(&api, &st, "nodes")
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(api.seen(), Vec::new(), "no request at all");
    assert!(api.get(&sts_path("nodes")).is_none());
}

mod name_conflicts {
    use super::*;

    #[tokio::test]
    async fn kinds_sharing_a_name_do_not_fight_over_one_statefulset() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(&api, "moneronodesets", nodeset("nodes", json!({})));
        reconcile_nodes(&api, &st).await;
        let before = api.get(&sts_path("nodes")).unwrap();
        let net = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
                         "metadata": {"name": "nodes", "uid": "uid-network"},
                         "spec": {"replicas": 2, "template": {"spec": {"tor": {"enabled": true}}}}});
        create(&api, "moneronetworks", net);
        api.clear_seen();
        let run = || reconcile_latest::<MoneroNetwork>(&api, &st, "nodes");
        let action = run().await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(60)));
        let status_path = format!("{}/status", cr_path("moneronetworks", "nodes"));
        assert_eq!(write_paths(&api), vec![format!("PATCH {status_path}")]);
        assert_eq!(
            api.get(&sts_path("nodes")).unwrap(),
            before,
            "not taken over"
        );
        assert!(
            api.get(&format!("/api/v1/namespaces/{NS}/secrets/nodes-identities"))
                .is_none(),
            "no identities made for an object that applies nothing"
        );
        let status = api.get(&cr_path("moneronetworks", "nodes")).unwrap()["status"].clone();
        let ready = condition(&status, "Ready");
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "NameConflict");
        let msg = ready["message"].as_str().unwrap();
        assert!(
            msg.contains("StatefulSet test/nodes belongs to MoneroNodeSet/nodes"),
            "{msg}"
        );
        let warnings = |api: &FakeApi| {
            api.events()
                .into_iter()
                .filter(|e| e["reason"] == "NameConflict" && e["type"] == "Warning")
                .count()
        };
        assert_eq!(warnings(&api), 1);

        // Again: the same status, so no write and no second Event.
        api.clear_seen();
        run().await.unwrap();
        assert_eq!(write_paths(&api), Vec::<String>::new());
        assert!(
            api.seen().iter().all(|s| !s.is_event()),
            "{:#?}",
            api.seen()
        );
        // The node set is still fine.
        reconcile_nodes(&api, &st).await;
        let ours = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        assert_ne!(condition(&ours, "Ready")["reason"], "NameConflict");
    }

    #[tokio::test]
    async fn a_networks_node_service_never_takes_a_service_made_by_hand() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        let svc = format!("/api/v1/namespaces/{NS}/services/regtest-1");
        api.put(
            &svc,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "regtest-1", "namespace": NS},
                   "spec": {"ports": [{"port": 80}]}}),
        );
        let before = api.get(&svc).unwrap();
        let net = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork", "metadata": {"name": "regtest"},
                         "spec": {"replicas": 2}});
        create(&api, "moneronetworks", net);
        reconcile_latest::<MoneroNetwork>(&api, &st, "regtest")
            .await
            .unwrap();
        assert_eq!(api.get(&svc).unwrap(), before);
        assert!(
            api.get(&sts_path("regtest")).is_none(),
            "nothing else applied"
        );
        assert!(
            api.get(&format!("/api/v1/namespaces/{NS}/services/regtest-0"))
                .is_none()
        );
        let status = api.get(&cr_path("moneronetworks", "regtest")).unwrap()["status"].clone();
        let ready = condition(&status, "Ready");
        assert_eq!(ready["reason"], "NameConflict");
        let msg = ready["message"].as_str().unwrap();
        assert!(
            msg.contains("Service test/regtest-1") && msg.contains("no controller"),
            "{msg}"
        );
        assert!(
            api.events()
                .iter()
                .any(|e| e["reason"] == "NameConflict" && e["type"] == "Warning")
        );
    }

    #[tokio::test]
    async fn an_orphaned_child_with_the_objects_labels_is_adopted() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(&api, "moneronodesets", nodeset("nodes", json!({})));
        reconcile_nodes(&api, &st).await;
        // `kubectl delete --cascade=orphan` and the same object again: the
        // children keep their labels and lose their owner.
        edit(&api, &sts_path("nodes"), |s| {
            s["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("ownerReferences");
            s["metadata"]["annotations"]["utxo.com.br/applied-hash"] = json!("old");
        });
        reconcile_nodes(&api, &st).await;
        let sts = api.get(&sts_path("nodes")).unwrap();
        assert_eq!(sts["metadata"]["ownerReferences"][0]["uid"], "uid-nodes");
        let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        assert_ne!(condition(&status, "Ready")["reason"], "NameConflict");
    }
}

mod cached {
    use super::*;

    #[tokio::test]
    async fn with_caches_caught_up_an_unchanged_object_makes_no_request_at_all() {
        let (client, api) = FakeApi::start();
        let (st, mut feeds) = cached_state(client.clone()).await;
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"replicas": 2, "tor": {"enabled": true}, "i2p": {"enabled": true}}),
            ),
        );
        for i in 0..2 {
            add_pod(&api, &format!("nodes-{i}"), "nodes", "monerod", true);
        }
        create(
            &api,
            "monerominingnodesets",
            json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet", "metadata": {"name": "rig"},
                   "spec": {"replicas": 1, "xmrig": {"args": ["-o", "pool:1"]}}}),
        );
        feeds.resync(&client).await.unwrap();
        reconcile_nodes(&api, &st).await;
        reconcile_rig(&api, &st).await;
        assert!(
            api.get(&format!("/api/v1/namespaces/{NS}/secrets/rig-xmrig-api"))
                .is_some()
        );
        feeds.resync(&client).await.unwrap();

        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        reconcile_rig(&api, &st).await;
        assert_eq!(api.seen(), Vec::new(), "no request at all");
        let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        assert_eq!(
            status["readyReplicas"], 2,
            "pods read from the cache: {status:#}"
        );
    }

    #[tokio::test]
    async fn a_stale_cache_costs_reads_never_a_second_write_or_event() {
        let (client, api) = FakeApi::start();
        // Filled before anything exists, and never again: every child we make
        // is missing from it.
        let (st, _feeds) = cached_state(client).await;
        create(
            &api,
            "moneronodesets",
            nodeset("nodes", json!({"replicas": 2, "tor": {"enabled": true}})),
        );
        reconcile_nodes(&api, &st).await;
        let events = api.events().len();
        let ids = api
            .get(&format!("/api/v1/namespaces/{NS}/secrets/nodes-identities"))
            .unwrap();

        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        assert_eq!(write_paths(&api), Vec::<String>::new());
        assert_eq!(
            api.events().len(),
            events,
            "no second Applied or IdentityCreated"
        );
        assert_eq!(
            api.get(&format!("/api/v1/namespaces/{NS}/secrets/nodes-identities"))
                .unwrap()["data"],
            ids["data"]
        );
        assert!(
            api.seen().iter().all(|s| s.method == "GET"),
            "the cache's gaps are read with GETs: {:#?}",
            api.seen()
        );
    }

    #[tokio::test]
    async fn identities_added_over_a_stale_cache_patch_the_fresh_resource_version() {
        let (client, api) = FakeApi::start();
        let (st, mut feeds) = cached_state(client.clone()).await;
        create(
            &api,
            "moneronodesets",
            nodeset("nodes", json!({"replicas": 1, "tor": {"enabled": true}})),
        );
        reconcile_nodes(&api, &st).await;
        feeds.resync(&client).await.unwrap();
        // Someone else writes the Secret after the cache saw it.
        let path = format!("/api/v1/namespaces/{NS}/secrets/nodes-identities");
        let mut secret = api.get(&path).unwrap();
        secret["metadata"]["annotations"] = json!({"touched": "yes"});
        api.put(&path, secret);
        let fresh = api.get(&path).unwrap()["metadata"]["resourceVersion"].clone();

        set_nodes_replicas(&api, 2);
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        let patch = api
            .seen()
            .into_iter()
            .find(|s| s.method == "PATCH" && s.path == path)
            .unwrap();
        let body: Value = serde_json::from_str(&patch.body).unwrap();
        assert_eq!(body["metadata"]["resourceVersion"], fresh);
        assert!(api.get(&path).unwrap()["data"].get("nodes-1.tor").is_some());
    }

    #[tokio::test]
    async fn pruning_from_a_stale_cache_takes_an_already_gone_child_as_done() {
        let (client, api) = FakeApi::start();
        let (st, mut feeds) = cached_state(client.clone()).await;
        create(
            &api,
            "moneronodesets",
            nodeset("nodes", json!({"replicas": 3})),
        );
        reconcile_nodes(&api, &st).await;
        feeds.resync(&client).await.unwrap();
        let pdb = format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/nodes");
        assert!(api.get(&pdb).is_some());
        // Gone from the cluster, still in the cache.
        api.remove(&pdb);
        set_nodes_replicas(&api, 1);
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        assert!(
            api.seen()
                .iter()
                .any(|s| s.method == "DELETE" && s.path == pdb),
            "{:#?}",
            api.seen()
        );
        assert!(api.events().iter().all(|e| e["reason"] != "Removed"));
    }

    fn set_nodes_replicas(api: &FakeApi, n: i32) {
        let path = cr_path("moneronodesets", "nodes");
        let mut obj = api.get(&path).unwrap();
        obj["spec"]["replicas"] = json!(n);
        api.put(&path, obj);
    }
}

mod rollouts {
    //! The sync gate against the mocked server, which plays the StatefulSet
    //! controller's part by hand: revisions in the StatefulSet's status and
    //! on its pods.
    use super::*;

    fn sts(api: &FakeApi) -> Value {
        api.get(&sts_path("nodes")).unwrap()
    }

    fn partition(api: &FakeApi) -> Value {
        sts(api)["spec"]["updateStrategy"]["rollingUpdate"]["partition"].clone()
    }

    fn status(api: &FakeApi) -> Value {
        api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone()
    }

    /// The StatefulSet controller having seen the latest spec, with pods
    /// `(revision, ready)` by ordinal.
    fn statefulset_controller(api: &FakeApi, update: &str, current: &str, pods: &[(&str, bool)]) {
        edit(api, &sts_path("nodes"), |s| {
            let generation = s["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            s["metadata"]["generation"] = json!(generation);
            s["status"] = json!({"observedGeneration": generation, "replicas": pods.len(),
                "currentRevision": current, "updateRevision": update});
        });
        for (i, (rev, ready)) in pods.iter().enumerate() {
            let name = format!("nodes-{i}");
            add_pod(api, &name, "nodes", "monerod", *ready);
            edit(api, &format!("/api/v1/namespaces/{NS}/pods/{name}"), |p| {
                p["metadata"]["labels"]["controller-revision-hash"] = json!(rev);
                p["spec"] =
                    json!({"containers": [{"name": "monerod", "image": format!("monerod:{rev}")}]});
            });
        }
    }

    fn edit_spec(api: &FakeApi, change: impl FnOnce(&mut Value)) {
        edit(api, &cr_path("moneronodesets", "nodes"), |o| {
            change(&mut o["spec"]);
            let g = o["metadata"]["generation"].as_i64().unwrap() + 1;
            o["metadata"]["generation"] = json!(g);
        });
    }

    fn event_notes(api: &FakeApi, reason: &str) -> Vec<String> {
        api.events()
            .iter()
            .filter(|e| e["reason"] == reason)
            .map(|e| e["note"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_new_image_moves_one_replica_at_a_time_halts_on_one_that_fails_and_a_revert_resumes()
    {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset("nodes", json!({"replicas": 3})),
        );
        reconcile_nodes(&api, &st).await;
        assert_eq!(partition(&api), 3, "a gated set is applied held");
        assert!(sts(&api)["metadata"]["annotations"]["utxo.com.br/template-hash"].is_string());

        let all_old = [("r1", true), ("r1", true), ("r1", true)];
        statefulset_controller(&api, "r1", "r1", &all_old);
        reconcile_nodes(&api, &st).await;
        assert_eq!(partition(&api), 3);
        assert_eq!(status(&api)["updatedReplicas"], 3);
        assert_eq!(status(&api)["nodes"][0]["image"], "monerod:r1");
        assert_eq!(status(&api)["nodes"][0]["updated"], true);
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            write_paths(&api),
            Vec::<String>::new(),
            "at rest nothing is written"
        );

        edit_spec(&api, |s| {
            s["monerod"] = json!({"image": "example/monerod:new"})
        });
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            sts(&api)["spec"]["template"]["spec"]["containers"][0]["image"],
            "example/monerod:new"
        );
        assert_eq!(
            partition(&api),
            3,
            "the new template is applied with every replica held"
        );

        statefulset_controller(&api, "r2", "r1", &all_old);
        reconcile_nodes(&api, &st).await;
        assert_eq!(partition(&api), 2);
        assert_eq!(
            event_notes(&api, "RollingOut"),
            vec!["moving nodes-2 to revision r2"]
        );
        let progressing = condition(&status(&api), "Progressing");
        assert_eq!(progressing["reason"], "RollingOut");
        assert!(
            progressing["message"]
                .as_str()
                .unwrap()
                .contains("waiting for nodes-2"),
            "{progressing}"
        );
        assert_eq!(status(&api)["rollout"]["waitingFor"], "nodes-2");

        statefulset_controller(
            &api,
            "r2",
            "r1",
            &[("r1", true), ("r1", true), ("r2", true)],
        );
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            partition(&api),
            1,
            "nodes-2 is Ready and synchronized: nodes-1 moves"
        );
        assert_eq!(status(&api)["updatedReplicas"], 1);

        // nodes-1 never gets Ready; with no time to spare the rollout halts.
        edit_spec(&api, |s| {
            s["updateStrategy"] = json!({"progressDeadline": "0s"})
        });
        statefulset_controller(
            &api,
            "r2",
            "r1",
            &[("r1", true), ("r2", false), ("r2", true)],
        );
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            partition(&api),
            1,
            "halted: nodes-0 stays on the old template"
        );
        let progressing = condition(&status(&api), "Progressing");
        assert_eq!(
            (
                progressing["status"].as_str(),
                progressing["reason"].as_str()
            ),
            (Some("False"), Some("RolloutHalted"))
        );
        assert!(
            progressing["message"]
                .as_str()
                .unwrap()
                .contains("nodes-1 is not Ready"),
            "{progressing}"
        );
        reconcile_nodes(&api, &st).await;
        let halted = event_notes(&api, "RolloutHalted");
        assert_eq!(halted.len(), 1, "{halted:?}");
        assert!(
            halted[0].contains("halted at nodes-1: nodes-1 is not Ready"),
            "{halted:?}"
        );

        // Reverting: held, then the replicas that moved come back first.
        edit_spec(&api, |s| {
            s["monerod"] = json!({});
            s["updateStrategy"] = json!({});
        });
        reconcile_nodes(&api, &st).await;
        assert_eq!(partition(&api), 3);
        statefulset_controller(
            &api,
            "r1",
            "r1",
            &[("r1", true), ("r2", false), ("r2", true)],
        );
        reconcile_nodes(&api, &st).await;
        assert_eq!(partition(&api), 2, "nodes-2 goes back to r1 first");
        assert_eq!(status(&api)["rollout"]["halted"], false);
    }

    #[tokio::test]
    async fn rolling_update_and_on_delete_leave_the_statefulset_to_roll() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"replicas": 3, "updateStrategy": {"type": "OnDelete"}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            sts(&api)["spec"]["updateStrategy"],
            json!({"type": "OnDelete"})
        );
        edit_spec(&api, |s| {
            s["updateStrategy"] = json!({"type": "RollingUpdate"})
        });
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            sts(&api)["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
        statefulset_controller(
            &api,
            "r2",
            "r1",
            &[("r1", true), ("r2", true), ("r2", false)],
        );
        reconcile_nodes(&api, &st).await;
        assert_eq!(status(&api)["updatedReplicas"], 2);
        assert!(status(&api)["rollout"]["waitingFor"].is_null());
    }

    #[tokio::test]
    async fn a_paused_object_gets_no_writes_but_its_status_and_resumes_when_unpaused() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset("nodes", json!({"replicas": 1})),
        );
        reconcile_nodes(&api, &st).await;
        add_pod(&api, "nodes-0", "nodes", "monerod", true);
        let path = cr_path("moneronodesets", "nodes");
        edit(&api, &path, |o| {
            o["metadata"]["annotations"] = json!({"utxo.com.br/reconcile": "paused"});
        });
        edit_spec(&api, |s| {
            s["monerod"] = json!({"image": "example/monerod:new"})
        });
        api.clear_seen();
        reconcile_nodes(&api, &st).await;
        reconcile_nodes(&api, &st).await;
        let writes: Vec<String> = write_paths(&api)
            .into_iter()
            .filter(|w| !w.contains("/events"))
            .collect();
        assert_eq!(
            writes,
            vec![format!("PATCH {path}/status")],
            "only the status"
        );
        let paused = condition(&status(&api), "ReconciliationPaused");
        assert_eq!(paused["status"], "True");
        assert_eq!(
            status(&api)["nodes"][0]["height"],
            42,
            "status is still read"
        );
        assert_ne!(
            sts(&api)["spec"]["template"]["spec"]["containers"][0]["image"],
            "example/monerod:new"
        );
        assert_eq!(event_notes(&api, "Paused").len(), 1);

        edit(&api, &path, |o| o["metadata"]["annotations"] = json!({}));
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            sts(&api)["spec"]["template"]["spec"]["containers"][0]["image"],
            "example/monerod:new"
        );
        assert!(
            status(&api)["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["type"] != "ReconciliationPaused")
        );
    }
}

mod networks {
    //! A research network's status on the mocked server: each node's
    //! connections, reported by its lab sidecar as IPs, named after the pods
    //! and node Services they belong to and compared with the topology.
    use super::*;
    use common::fakeapi::PeersProbe;

    #[tokio::test]
    async fn reported_connections_become_node_names_and_are_compared_with_the_topology() {
        let (client, api) = FakeApi::start();
        let probe = Arc::new(PeersProbe::default());
        // Every reconcile polls: no reuse window.
        let config = Config {
            status_interval: Duration::ZERO,
            ..Config::default()
        };
        let st = State::new(
            client,
            config,
            Metrics::new().unwrap(),
            probe.clone(),
            "test-0".into(),
        );
        create(
            &api,
            "moneronetworks",
            json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork", "metadata": {"name": "ring"},
                   "spec": {"replicas": 4, "topology": {"type": "Ring"}, "template": {"spec": {"network": "regtest"}}}}),
        );
        reconcile_latest::<MoneroNetwork>(&api, &st, "ring")
            .await
            .unwrap();
        let pod_ip = |i: usize| format!("10.1.0.{}", i + 1);
        let svc_ip = |i: usize| format!("10.96.0.{}", i + 1);
        for i in 0..4 {
            let name = format!("ring-{i}");
            add_pod(&api, &name, "ring", "monerod", true);
            edit(&api, &format!("/api/v1/namespaces/{NS}/pods/{name}"), |p| {
                p["status"]["podIP"] = json!(pod_ip(i));
            });
            edit(
                &api,
                &format!("/api/v1/namespaces/{NS}/services/{name}"),
                |s| {
                    s["spec"]["clusterIP"] = json!(svc_ip(i));
                },
            );
            // Its left neighbour connected in (from its pod), it reached its right one's Service.
            let (left, right) = ((i + 3) % 4, (i + 1) % 4);
            probe
                .peers
                .lock()
                .unwrap()
                .insert(pod_ip(i), vec![pod_ip(left), svc_ip(right)]);
        }
        reconcile_latest::<MoneroNetwork>(&api, &st, "ring")
            .await
            .unwrap();
        let status = || api.get(&cr_path("moneronetworks", "ring")).unwrap()["status"].clone();
        let s = status();
        assert_eq!(s["nodes"][0]["peers"], "1,3");
        assert_eq!(s["nodes"][2]["peers"], "1,3");
        assert_eq!(condition(&s, "TopologyMatches")["status"], "True");
        assert_eq!(condition(&s, "Connected")["status"], "True");

        // ring-0 now also reaches ring-2, and someone outside the network.
        probe.peers.lock().unwrap().insert(
            pod_ip(0),
            vec![pod_ip(3), svc_ip(1), svc_ip(2), "198.51.100.4".into()],
        );
        reconcile_latest::<MoneroNetwork>(&api, &st, "ring")
            .await
            .unwrap();
        let s = status();
        assert_eq!(s["nodes"][0]["peers"], "1-3,198.51.100.4");
        let t = condition(&s, "TopologyMatches");
        assert_eq!(
            (t["status"].as_str(), t["reason"].as_str()),
            (Some("False"), Some("Differs"))
        );
        assert_eq!(
            t["message"],
            "ring-0 also has 198.51.100.4; ring-0 also has ring-2"
        );
    }
}

mod fleet {
    //! Fleet operations against the mocked server: stalled replicas
    //! restarted, a ban list read from a ConfigMap, each replica's public
    //! P2P address and the monerod release in status.
    use super::*;
    use common::fakeapi::HeightProbe;
    use std::time::Instant;

    fn pod_path(name: &str) -> String {
        format!("/api/v1/namespaces/{NS}/pods/{name}")
    }

    /// A pod of `set` with its own IP and UID (and node address).
    fn pod_at(api: &FakeApi, set: &str, i: usize, uid: &str) {
        let name = format!("{set}-{i}");
        add_pod(api, &name, set, "monerod", true);
        edit(api, &pod_path(&name), |p| {
            p["metadata"]["uid"] = json!(uid);
            p["status"]["podIP"] = json!(ip(set, i));
            p["status"]["hostIP"] = json!(format!("203.0.113.{}", 10 + i));
        });
    }

    fn ip(set: &str, i: usize) -> String {
        format!("10.{}.0.{}", set.len(), i + 1)
    }

    /// Every reconcile polls (no reuse window), so moved heights are seen at once.
    fn polling_state(client: kube::Client, probe: Arc<HeightProbe>) -> Arc<State> {
        let config = Config {
            status_interval: Duration::ZERO,
            ..Config::default()
        };
        State::new(
            client,
            config,
            Metrics::new().unwrap(),
            probe,
            "test-0".into(),
        )
    }

    fn deleted(api: &FakeApi, pod: &str) -> usize {
        api.seen()
            .iter()
            .filter(|s| s.method == "DELETE" && s.path == pod_path(pod))
            .count()
    }

    #[tokio::test]
    async fn a_replica_left_behind_for_stall_timeout_is_restarted_once_and_only_where_it_applies() {
        let (client, api) = FakeApi::start();
        let probe = Arc::new(HeightProbe::default());
        let st = polling_state(client, probe.clone());
        // Three sets stalled alike: only the mainnet one with a timeout acts. A
        // regtest MoneroNodeSet's replicas keep separate chains; 0s turns it off.
        for (name, spec) in [
            ("main", json!({"replicas": 2, "stallTimeout": "1s"})),
            (
                "solo",
                json!({"replicas": 2, "stallTimeout": "1s", "network": "regtest"}),
            ),
            ("off", json!({"replicas": 2, "stallTimeout": "0s"})),
        ] {
            create(&api, "moneronodesets", nodeset(name, spec));
            for i in 0..2 {
                pod_at(&api, name, i, &format!("{name}-uid-{i}"));
                probe.set(&ip(name, i), 100);
            }
        }
        let all = |api: &FakeApi, st: &Arc<State>| {
            let (api, st) = (api.clone(), st.clone());
            async move {
                for name in ["main", "solo", "off"] {
                    reconcile_latest::<MoneroNodeSet>(&api, &st, name)
                        .await
                        .unwrap();
                }
            }
        };
        // Replica 0's clock starts at its first height seen, here.
        let start = Instant::now();
        all(&api, &st).await;
        // Replica 1 of each moves on; replica 0 stays at 100.
        for name in ["main", "solo", "off"] {
            probe.set(&ip(name, 1), 110);
        }
        while deleted(&api, "main-0") == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "main-0 was never restarted"
            );
            all(&api, &st).await;
            tokio::task::yield_now().await;
        }
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "restarted before stallTimeout"
        );
        assert_eq!(
            deleted(&api, "main-1"),
            0,
            "the replica that moves is left alone"
        );
        assert_eq!(deleted(&api, "solo-0") + deleted(&api, "off-0"), 0);
        let delete = api
            .seen()
            .into_iter()
            .find(|s| s.method == "DELETE" && s.path == pod_path("main-0"))
            .unwrap();
        assert!(
            delete.body.contains("main-uid-0"),
            "the UID is a precondition: {}",
            delete.body
        );
        let notes: Vec<String> = api
            .events()
            .iter()
            .filter(|e| e["reason"] == "StalledReplicaRestarted")
            .map(|e| e["note"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("main-0") && notes[0].contains("100") && notes[0].contains("110"),
            "{notes:?}"
        );
        let text = metrics_text(&st);
        assert!(
            text.lines()
                .any(|l| l == "monero_operator_stalled_restarts_total{kind=\"MoneroNodeSet\"} 1"),
            "{text}"
        );
        // The StatefulSet makes the pod again (new UID), still behind: its clock starts anew.
        pod_at(&api, "main", 0, "main-uid-0b");
        all(&api, &st).await;
        assert_eq!(
            deleted(&api, "main-0"),
            1,
            "not again before another stallTimeout"
        );
    }

    #[tokio::test]
    async fn a_ban_list_is_read_from_its_config_map_and_a_change_rolls_the_pods() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"monerod": {"banList": {"name": "bans", "key": "list"}}}),
            ),
        );
        reconcile_nodes(&api, &st).await;
        let status = api.get(&cr_path("moneronodesets", "nodes")).unwrap()["status"].clone();
        let ready = condition(&status, "Ready");
        assert_eq!(ready["reason"], "InvalidSpec");
        assert!(
            ready["message"]
                .as_str()
                .unwrap()
                .contains("spec.monerod.banList.key")
                && ready["message"]
                    .as_str()
                    .unwrap()
                    .contains("ConfigMap bans not found"),
            "{ready}"
        );
        assert!(api.get(&sts_path("nodes")).is_none());
        let cm = |list: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "bans", "namespace": NS}, "data": {"list": list}})
        };
        let cm_path = format!("/api/v1/namespaces/{NS}/configmaps/bans");
        api.put(&cm_path, cm("# spy nodes\n1.2.3.4\n"));
        reconcile_nodes(&api, &st).await;
        assert_eq!(
            secret_file(&api, "nodes-monerod", "ban-list.txt"),
            "1.2.3.4\n"
        );
        let hash = |api: &FakeApi| {
            api.get(&sts_path("nodes")).unwrap()["spec"]["template"]["metadata"]["annotations"]
                ["utxo.com.br/config-hash"]
                .clone()
        };
        let before = hash(&api);
        api.put(&cm_path, cm("1.2.3.4\n5.6.7.0/24\n"));
        reconcile_nodes(&api, &st).await;
        assert_ne!(hash(&api), before, "a new ban list rolls the pods");
        // The user's ConfigMap is read, never written.
        assert!(!write_paths(&api).iter().any(|w| w.contains("/configmaps/")));
    }

    #[tokio::test]
    async fn status_shows_each_replicas_public_address_and_the_monerod_release() {
        let (client, api) = FakeApi::start();
        let st = state(client);
        create(
            &api,
            "moneronodesets",
            nodeset(
                "nodes",
                json!({"replicas": 2, "service": {"perReplica": {"type": "NodePort", "nodePortBase": 30080}}}),
            ),
        );
        create(
            &api,
            "moneronodesets",
            nodeset(
                "lb",
                json!({"replicas": 1, "monerod": {"image": "utxobr/monerod:v0.17.2.0"},
                "service": {"perReplica": {"type": "LoadBalancer"}}}),
            ),
        );
        for i in 0..2 {
            pod_at(&api, "nodes", i, &format!("u{i}"));
        }
        pod_at(&api, "lb", 0, "l0");
        reconcile_nodes(&api, &st).await;
        reconcile_latest::<MoneroNodeSet>(&api, &st, "lb")
            .await
            .unwrap();
        let status =
            |name: &str| api.get(&cr_path("moneronodesets", name)).unwrap()["status"].clone();
        let s = status("nodes");
        assert_eq!(s["nodes"][0]["p2pAddress"], "203.0.113.10:30080");
        assert_eq!(s["nodes"][1]["p2pAddress"], "203.0.113.11:30081");
        assert_eq!(
            s["monerodVersion"],
            "0.18.4.0 of the operator's default image"
        );
        // A load balancer's address shows once the cloud gives one.
        let s = status("lb");
        assert!(s["nodes"][0].get("p2pAddress").is_none(), "{s}");
        assert_eq!(s["monerodVersion"], "0.17.2.0 from the image tag");
        let svc = format!("/api/v1/namespaces/{NS}/services/lb-p2p-0");
        edit(&api, &svc, |s| {
            s["status"] = json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.20"}]}});
        });
        reconcile_latest::<MoneroNodeSet>(&api, &st, "lb")
            .await
            .unwrap();
        assert_eq!(
            status("lb")["nodes"][0]["p2pAddress"],
            "198.51.100.20:18080"
        );
    }
}
