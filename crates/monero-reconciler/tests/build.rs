//! Pure builder tests: small custom resources in, objects out, asserted field
//! by field. No cluster, no processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, PodSpec, Secret, Service};
use monero_crd::{MoneroMiningNodeSet, MoneroNetwork, MoneroNodeSet};
use monero_reconciler::build::{Child, Context, Desired, Images, mining_set, network, node_set};
use serde_json::{Value, json};

fn ctx() -> Context {
    let mut c = Context::new(Images {
        monerod: "img/monerod:1".into(),
        exporter: "img/exporter:1".into(),
        xmrig: "img/xmrig:1".into(),
        podconfig: "img/podconfig:1".into(),
        tor: "img/tor:1".into(),
        i2pd: "img/i2pd:1".into(),
        monerod_version: Some("0.18.4.0".into()),
    });
    c.secrets.insert(
        "login".into(),
        BTreeMap::from([
            ("username".to_string(), b"alice".to_vec()),
            ("password".to_string(), b"s3cret:with:colons\n".to_vec()),
        ]),
    );
    c
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "ns", "uid": "u-1"})
}

fn nodeset(spec: Value) -> MoneroNodeSet {
    serde_json::from_value(json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNodeSet", "metadata": meta("nodes"), "spec": spec})).unwrap()
}

fn net(spec: Value) -> MoneroNetwork {
    serde_json::from_value(json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork", "metadata": meta("regtest"), "spec": spec})).unwrap()
}

fn miners(spec: Value) -> MoneroMiningNodeSet {
    serde_json::from_value(json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet", "metadata": meta("miners"), "spec": spec})).unwrap()
}

fn sts(d: &Desired) -> &StatefulSet {
    d.stateful_set().unwrap()
}

fn pod(d: &Desired) -> &PodSpec {
    sts(d)
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn container<'a>(d: &'a Desired, name: &str) -> &'a Container {
    pod(d).containers.iter().find(|c| c.name == name).unwrap()
}

fn args(d: &Desired, name: &str) -> Vec<String> {
    container(d, name).args.clone().unwrap()
}

fn secret<'a>(d: &'a Desired, name: &str) -> &'a Secret {
    d.children
        .iter()
        .find_map(|c| match c {
            Child::Secret(s) if s.metadata.name.as_deref() == Some(name) => Some(s.as_ref()),
            _ => None,
        })
        .unwrap()
}

fn file(d: &Desired, secret_name: &str, key: &str) -> String {
    String::from_utf8(secret(d, secret_name).data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn service<'a>(d: &'a Desired, name: &str) -> Option<&'a Service> {
    d.children.iter().find_map(|c| match c {
        Child::Service(s) if s.metadata.name.as_deref() == Some(name) => Some(s.as_ref()),
        _ => None,
    })
}

fn hash(d: &Desired) -> String {
    template_hash(sts(d))
}

fn template_hash(s: &StatefulSet) -> String {
    s.spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()["utxo.com.br/config-hash"]
        .clone()
}

#[test]
fn the_proposals_node_set_keeps_its_args_in_order_after_the_operators() {
    let d = node_set(
        &nodeset(json!({"replicas": 3, "hardAntiAffinity": true, "monerod": {"image": "utxobr/monerod:v0.17.2.0",
            "args": ["--public", "--enable-dns-blocklist", "--enforce-dns-checkpointing", "--out-peers=1024", "--in-peers=1024", "--limit-rate=128000"]}})),
        &ctx(),
    )
    .unwrap();
    let a = args(&d, "monerod");
    assert_eq!(
        &a[a.len() - 6..],
        [
            "--public",
            "--enable-dns-blocklist",
            "--enforce-dns-checkpointing",
            "--out-peers=1024",
            "--in-peers=1024",
            "--limit-rate=128000"
        ]
    );
    for f in [
        "--data-dir=/data",
        "--config-file=/etc/monerod/monerod.conf",
        "--non-interactive",
        "--p2p-bind-port=18080",
        "--rpc-bind-ip=127.0.0.1",
        "--rpc-bind-port=18081",
        "--rpc-restricted-bind-ip=0.0.0.0",
        "--rpc-restricted-bind-port=18089",
        "--no-igd",
        "--no-zmq",
    ] {
        assert!(a.contains(&f.to_string()), "{f} missing from {a:?}");
    }
    assert!(
        !a.iter()
            .any(|x| x == "--testnet" || x == "--regtest" || x == "--stagenet")
    );
    assert_eq!(
        container(&d, "monerod").image.as_deref(),
        Some("utxobr/monerod:v0.17.2.0")
    );
    let s = sts(&d).spec.as_ref().unwrap();
    assert_eq!(s.replicas, Some(3));
    assert_eq!(s.service_name.as_deref(), Some("nodes-headless"));
    assert_eq!(s.pod_management_policy.as_deref(), Some("Parallel"));
    let anti = pod(&d)
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    let term = &anti
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()[0];
    assert_eq!(term.topology_key, "kubernetes.io/hostname");
    assert_eq!(
        term.label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["app.kubernetes.io/instance"],
        "nodes"
    );
    assert!(
        anti.preferred_during_scheduling_ignored_during_execution
            .is_none()
    );
    // Three replicas get a budget allowing one disruption at a time.
    let pdb = d
        .children
        .iter()
        .find_map(|c| match c {
            Child::PodDisruptionBudget(p) => Some(p),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        serde_json::to_value(&pdb.spec.as_ref().unwrap().max_unavailable).unwrap(),
        json!(1)
    );
}

#[test]
fn a_user_flag_replaces_the_default_of_the_same_name() {
    let d = node_set(&nodeset(json!({"monerod": {"args": ["--log-file", "/data/monerod.log", "--p2p-bind-port=18090"]}})), &ctx()).unwrap();
    let a = args(&d, "monerod");
    assert_eq!(a.iter().filter(|x| x.starts_with("--log-file")).count(), 1);
    assert_eq!(
        a.iter()
            .filter(|x| x.starts_with("--p2p-bind-port"))
            .count(),
        1
    );
    assert_eq!(
        &a[a.len() - 3..],
        ["--log-file", "/data/monerod.log", "--p2p-bind-port=18090"]
    );
}

#[test]
fn ports_storage_and_resources_follow_the_network() {
    for (network, p2p, rpc, size) in [
        ("mainnet", 18080, 18089, "350Gi"),
        ("testnet", 28080, 28089, "100Gi"),
        ("stagenet", 38080, 38089, "60Gi"),
        ("regtest", 18080, 18089, "2Gi"),
    ] {
        let d = node_set(&nodeset(json!({"network": network})), &ctx()).unwrap();
        let a = args(&d, "monerod");
        assert!(
            a.contains(&format!("--p2p-bind-port={p2p}")),
            "{network}: {a:?}"
        );
        assert!(
            a.contains(&format!("--rpc-restricted-bind-port={rpc}")),
            "{network}"
        );
        let ports: Vec<i32> = container(&d, "monerod")
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(ports, vec![p2p, rpc]);
        let vct = &sts(&d)
            .spec
            .as_ref()
            .unwrap()
            .volume_claim_templates
            .as_ref()
            .unwrap()[0];
        let req = vct
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(req["storage"].0, size, "{network}");
        let res = container(&d, "monerod").resources.as_ref().unwrap();
        assert!(
            res.limits.is_none(),
            "no memory limit by default ({network})"
        );
        assert!(
            pod(&d).containers[0]
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()
                .keys()
                .all(|k| !k.starts_with("hugepages"))
        );
        let svc = service(&d, "nodes").unwrap();
        let sp: Vec<i32> = svc
            .spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.port)
            .collect();
        assert_eq!(sp, vec![p2p, rpc]);
    }
    let pruned = node_set(&nodeset(json!({"monerod": {"pruning": true}})), &ctx()).unwrap();
    assert!(args(&pruned, "monerod").contains(&"--prune-blockchain".to_string()));
    let vct = &sts(&pruned)
        .spec
        .as_ref()
        .unwrap()
        .volume_claim_templates
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        vct.spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "150Gi"
    );
    let regtest = node_set(&nodeset(json!({"network": "regtest"})), &ctx()).unwrap();
    assert!(
        args(&regtest, "monerod").contains(&"--keep-fakechain".to_string()),
        "regtest data must survive restarts"
    );
}

#[test]
fn a_network_flag_in_args_sets_the_network_and_a_contradiction_is_refused() {
    let d = node_set(
        &nodeset(json!({"monerod": {"args": ["--stagenet"]}})),
        &ctx(),
    )
    .unwrap();
    assert!(args(&d, "monerod").contains(&"--p2p-bind-port=38080".to_string()));
    assert_eq!(
        args(&d, "monerod")
            .iter()
            .filter(|a| *a == "--stagenet")
            .count(),
        1
    );
    let err = node_set(
        &nodeset(json!({"network": "mainnet", "monerod": {"args": ["--testnet"]}})),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.monerod.args");
    assert_eq!(
        err.to_string(),
        "MoneroNodeSet ns/nodes: spec.monerod.args: --testnet contradicts spec.network: mainnet"
    );
}

#[test]
fn the_login_reaches_monerod_through_a_secret_file_never_args() {
    let d = node_set(
        &nodeset(json!({"monerod": {"rpc": {"login": {"secretName": "login"}}}})),
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        file(&d, "nodes-monerod", "monerod.conf")
            .lines()
            .last()
            .unwrap(),
        "rpc-login=alice:s3cret:with:colons"
    );
    assert_eq!(
        file(&d, "nodes-monerod", "rpc-login"),
        "alice:s3cret:with:colons\n"
    );
    let everything_but_secrets: String = d
        .children
        .iter()
        .filter(|c| !matches!(c, Child::Secret(_)))
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    assert!(!everything_but_secrets.contains("s3cret"));
    assert!(args(&d, "exporter").contains(&"--rpc-login-file=/etc/monerod/rpc-login".to_string()));
    let vol = pod(&d)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "config")
        .unwrap();
    let sv = vol.secret.as_ref().unwrap();
    assert_eq!(sv.secret_name.as_deref(), Some("nodes-monerod"));
    assert_eq!(sv.default_mode, Some(0o440));

    // Changing the password changes the hash, so the pods roll.
    let mut c2 = ctx();
    c2.secrets
        .get_mut("login")
        .unwrap()
        .insert("password".into(), b"other".to_vec());
    let d2 = node_set(
        &nodeset(json!({"monerod": {"rpc": {"login": {"secretName": "login"}}}})),
        &c2,
    )
    .unwrap();
    assert_ne!(hash(&d), hash(&d2));
    // The same input gives the same hash.
    assert_eq!(
        hash(&d),
        hash(
            &node_set(
                &nodeset(json!({"monerod": {"rpc": {"login": {"secretName": "login"}}}})),
                &ctx()
            )
            .unwrap()
        )
    );

    let err = node_set(
        &nodeset(
            json!({"monerod": {"rpc": {"login": {"secretName": "login", "passwordKey": "pw"}}}}),
        ),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.monerod.rpc.login.passwordKey");
    assert!(err.message.contains("Secret login has no key pw"), "{err}");
}

#[test]
fn pods_meet_the_restricted_pod_security_level() {
    for d in [
        node_set(&nodeset(json!({})), &ctx()).unwrap(),
        network(&net(json!({"replicas": 2})), &ctx()).unwrap(),
        mining_set(&miners(json!({})), &ctx()).unwrap(),
    ] {
        let p = pod(&d);
        let psc = p.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            psc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        assert_eq!(p.automount_service_account_token, Some(false));
        assert!(p.host_network.is_none() && p.host_pid.is_none());
        for c in &p.containers {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop.as_deref(),
                Some(&["ALL".to_string()][..])
            );
            assert!(sc.privileged.is_none() && sc.capabilities.as_ref().unwrap().add.is_none());
        }
    }
}

#[test]
fn probes_tolerate_a_long_start_and_readiness_comes_from_the_exporter() {
    let d = node_set(&nodeset(json!({})), &ctx()).unwrap();
    let m = container(&d, "monerod");
    let startup = m.startup_probe.as_ref().unwrap();
    assert!(startup.period_seconds.unwrap() * startup.failure_threshold.unwrap() >= 3600);
    let live = m.liveness_probe.as_ref().unwrap();
    assert!(live.period_seconds.unwrap() * live.failure_threshold.unwrap() >= 300);
    let ready = m
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(
        (
            ready.path.as_deref(),
            serde_json::to_value(&ready.port).unwrap()
        ),
        (Some("/ready"), json!(18090))
    );
    assert!(!args(&d, "exporter").contains(&"--ready-allow-unsynced".to_string()));
    assert_eq!(pod(&d).termination_grace_period_seconds, Some(300));

    let d = node_set(&nodeset(json!({"readiness": "RpcAnswers"})), &ctx()).unwrap();
    assert!(args(&d, "exporter").contains(&"--ready-allow-unsynced".to_string()));
    // Regtest has nothing to sync from: RPC answering is readiness there.
    let d = node_set(&nodeset(json!({"network": "regtest"})), &ctx()).unwrap();
    assert!(args(&d, "exporter").contains(&"--ready-allow-unsynced".to_string()));
    let d = node_set(&nodeset(json!({"exporter": {"enabled": false}})), &ctx()).unwrap();
    assert_eq!(pod(&d).containers.len(), 1);
    assert!(
        container(&d, "monerod")
            .readiness_probe
            .as_ref()
            .unwrap()
            .tcp_socket
            .is_some()
    );
}

#[test]
fn retention_service_type_and_pod_overrides_pass_through() {
    let d = node_set(
        &nodeset(json!({"replicas": 1, "storage": {"size": "500Gi", "storageClassName": "fast", "retention": {"whenScaled": "Delete"}},
            "service": {"type": "LoadBalancer", "annotations": {"lb": "x"}},
            "pod": {"nodeSelector": {"disk": "ssd"}, "priorityClassName": "high", "labels": {"team": "a", "app.kubernetes.io/name": "mine"},
                    "terminationGracePeriodSeconds": 600, "tolerations": [{"key": "k", "operator": "Exists"}]}})),
        &ctx(),
    )
    .unwrap();
    let s = sts(&d).spec.as_ref().unwrap();
    let r = s.persistent_volume_claim_retention_policy.as_ref().unwrap();
    assert_eq!(
        (r.when_scaled.as_deref(), r.when_deleted.as_deref()),
        (Some("Delete"), Some("Retain"))
    );
    let vct = &s.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(
        vct.spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("fast")
    );
    assert_eq!(
        vct.spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "500Gi"
    );
    let svc = service(&d, "nodes").unwrap();
    assert_eq!(
        svc.spec.as_ref().unwrap().type_.as_deref(),
        Some("LoadBalancer")
    );
    assert_eq!(svc.metadata.annotations.as_ref().unwrap()["lb"], "x");
    let p = pod(&d);
    assert_eq!(p.node_selector.as_ref().unwrap()["disk"], "ssd");
    assert_eq!(p.priority_class_name.as_deref(), Some("high"));
    assert_eq!(p.termination_grace_period_seconds, Some(600));
    assert_eq!(p.tolerations.as_ref().unwrap().len(), 1);
    let labels = s
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(labels["team"], "a");
    assert_eq!(
        labels["app.kubernetes.io/name"], "monerod",
        "the operator's selector labels win"
    );
    // One replica: no budget, and spreading is only preferred.
    assert!(
        !d.children
            .iter()
            .any(|c| matches!(c, Child::PodDisruptionBudget(_)))
    );
    assert!(
        p.affinity
            .as_ref()
            .unwrap()
            .pod_anti_affinity
            .as_ref()
            .unwrap()
            .preferred_during_scheduling_ignored_during_execution
            .is_some()
    );
}

#[test]
fn every_child_is_owned_by_the_resource_and_labelled() {
    for d in [
        node_set(&nodeset(json!({"replicas": 2})), &ctx()).unwrap(),
        network(&net(json!({"replicas": 3})), &ctx()).unwrap(),
        mining_set(
            &miners(json!({"xmrig": {"config": {"pools": [{"url": "p:1"}]}}})),
            &ctx(),
        )
        .unwrap(),
    ] {
        for c in &d.children {
            let v = serde_json::to_value(c).unwrap();
            let o = &v["metadata"]["ownerReferences"][0];
            assert_eq!(o["uid"], "u-1", "{}", c.describe());
            assert_eq!(o["controller"], true);
            assert_eq!(o["blockOwnerDeletion"], true);
            assert_eq!(v["metadata"]["namespace"], "ns");
            assert_eq!(
                v["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "monero-operator"
            );
        }
    }
}

#[test]
fn a_network_is_a_closed_mesh_addressed_by_stable_names() {
    let d = network(&net(json!({"replicas": 3, "template": {"spec": {"monerod": {"args": ["--regtest", "--fixed-difficulty=1"]}}}})), &ctx()).unwrap();
    let a = args(&d, "monerod");
    assert!(a.contains(&"--config-file=/etc/monerod/$(POD_NAME).conf".to_string()));
    assert!(
        a.contains(&"--allow-local-ip".to_string())
            && a.contains(&"--disable-dns-checkpoints".to_string())
    );
    assert_eq!(&a[a.len() - 2..], ["--regtest", "--fixed-difficulty=1"]);
    assert_eq!(a.iter().filter(|x| *x == "--regtest").count(), 1);
    let env = container(&d, "monerod").env.as_ref().unwrap();
    assert_eq!(env[0].name, "POD_NAME");
    assert_eq!(
        env[0]
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.name"
    );
    for i in 0..3 {
        let conf = file(&d, "regtest-monerod", &format!("regtest-{i}.conf"));
        let peers: Vec<&str> = conf
            .lines()
            .filter_map(|l| l.strip_prefix("add-exclusive-node="))
            .collect();
        let want: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("regtest-{j}.ns.svc.cluster.local:18080"))
            .collect();
        assert_eq!(peers, want, "node {i}");
        let svc = service(&d, &format!("regtest-{i}"))
            .unwrap()
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(
            svc.selector.as_ref().unwrap()["statefulset.kubernetes.io/pod-name"],
            format!("regtest-{i}")
        );
        assert_eq!(svc.publish_not_ready_addresses, Some(true));
        assert_eq!(svc.type_.as_deref(), Some("ClusterIP"));
    }
    assert!(service(&d, "regtest-3").is_none());
    // Small default resources for a 20-node laptop network.
    let req = container(&d, "monerod")
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(req["memory"].0, "256Mi");
    // More nodes: every file changes, and so does the hash (the pods must restart to learn peers).
    let d4 = network(
        &net(json!({"replicas": 4, "template": {"spec": {"monerod": {"args": ["--regtest"]}}}})),
        &ctx(),
    )
    .unwrap();
    assert!(
        file(&d4, "regtest-monerod", "regtest-0.conf")
            .contains("regtest-3.ns.svc.cluster.local:18080")
    );
    assert_ne!(hash(&d), hash(&d4));
}

#[test]
fn miners_resolve_id_per_replica_and_keep_secrets_out_of_the_pod() {
    let mut c = ctx();
    c.secrets.insert(
        "pool".into(),
        BTreeMap::from([("pass".to_string(), b"poolpw".to_vec())]),
    );
    let m = miners(
        json!({"replicas": 2, "hardAntiAffinity": true, "topologyKey": "topology.kubernetes.io/zone",
        "xmrig": {"args": ["--print-time=60"], "config": {"pools": [{"url": "pool:443", "user": "4Wallet.node-$(id)", "passSecretRef": {"name": "pool", "key": "pass"}, "tls": true, "rigId": "rig-$(id)"}],
        "cpu": {"maxThreadsHint": 50}, "randomx": {"mode": "light"}, "donateLevel": 0}}}),
    );
    let d = mining_set(&m, &c).unwrap();
    let a = args(&d, "xmrig");
    assert_eq!(
        a,
        vec![
            "--no-color",
            "--config=/etc/xmrig/config-$(id).json",
            "--print-time=60",
            "-c/etc/xmrig-api/http.json"
        ]
    );
    let env = &container(&d, "xmrig").env.as_ref().unwrap()[0];
    assert_eq!(env.name, "id");
    assert_eq!(
        env.value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    for i in 0..2 {
        let cfg: Value =
            serde_json::from_str(&file(&d, "miners-xmrig", &format!("config-{i}.json"))).unwrap();
        let p = &cfg["pools"][0];
        assert_eq!(p["user"], format!("4Wallet.node-{i}"));
        assert_eq!(p["rig-id"], format!("rig-{i}"));
        assert_eq!(p["pass"], "poolpw");
        assert_eq!(p["tls"], true);
        assert_eq!(cfg["autosave"], false);
        assert_eq!(cfg["cpu"]["max-threads-hint"], 50);
        assert_eq!(cfg["randomx"]["mode"], "light");
        assert_eq!(cfg["donate-level"], 0);
    }
    let pod_json = serde_json::to_string(pod(&d)).unwrap();
    assert!(!pod_json.contains("poolpw"));
    let term = &pod(&d)
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()[0];
    assert_eq!(term.topology_key, "topology.kubernetes.io/zone");
    // Scaling up adds a file but changes neither the others nor the hash: running miners keep going.
    let mut m3 = m.clone();
    m3.spec.replicas = 3;
    let d3 = mining_set(&m3, &c).unwrap();
    assert_eq!(
        file(&d3, "miners-xmrig", "config-1.json"),
        file(&d, "miners-xmrig", "config-1.json")
    );
    assert!(
        secret(&d3, "miners-xmrig")
            .data
            .as_ref()
            .unwrap()
            .contains_key("config-2.json")
    );
    assert_eq!(hash(&d3), hash(&d));
}

#[test]
fn the_proposals_miners_need_no_config_file() {
    let d = mining_set(&miners(json!({"replicas": 10, "hardAntiAffinity": true, "xmrig": {"args": ["-o", "cryptonote.social:5556", "-u", "891B.node-$(id)", "--tls"]}})), &ctx()).unwrap();
    assert_eq!(
        args(&d, "xmrig"),
        vec![
            "--no-color",
            "-o",
            "cryptonote.social:5556",
            "-u",
            "891B.node-$(id)",
            "--tls",
            "-c/etc/xmrig-api/http.json"
        ]
    );
    assert!(!d.children.iter().any(|c| matches!(c, Child::Secret(_))));
    assert_eq!(container(&d, "xmrig").image.as_deref(), Some("img/xmrig:1"));
    assert_eq!(sts(&d).spec.as_ref().unwrap().replicas, Some(10));
}

#[test]
fn miners_get_an_exporter_that_reads_xmrigs_api_with_the_token() {
    let d = mining_set(
        &miners(json!({"replicas": 2, "xmrig": {"args": ["-o", "pool:1"]}, "exporter": {"podMonitor": {"enabled": true, "interval": "15s"}}})),
        &ctx(),
    )
    .unwrap();
    let e = container(&d, "exporter");
    assert_eq!(e.image.as_deref(), Some("img/exporter:1"));
    assert_eq!(
        e.args.clone().unwrap(),
        vec![
            "--xmrig-address=http://127.0.0.1:18092",
            "--xmrig-access-token-file=/etc/xmrig-api/token",
            "--listen=0.0.0.0:18090",
        ]
    );
    assert_eq!(e.ports.as_ref().unwrap()[0].container_port, 18090);
    // Each container sees only its own key of the API Secret: xmrig the config
    // section, the exporter the bare token.
    let vols = pod(&d).volumes.as_ref().unwrap();
    let key_of = |name: &str| {
        let v = vols.iter().find(|v| v.name == name).unwrap();
        let s = v.secret.as_ref().unwrap();
        assert_eq!(s.secret_name.as_deref(), Some("miners-xmrig-api"));
        s.items.as_ref().unwrap()[0].key.clone()
    };
    assert_eq!(key_of("xmrig-api"), "http.json");
    assert_eq!(key_of("xmrig-api-token"), "token");
    let mounts = |c: &Container| -> Vec<String> {
        c.volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.name.clone())
            .collect()
    };
    assert!(mounts(container(&d, "xmrig")).contains(&"xmrig-api".to_string()));
    assert!(!mounts(container(&d, "xmrig")).contains(&"xmrig-api-token".to_string()));
    assert_eq!(mounts(e), vec!["xmrig-api-token"]);
    let ready = container(&d, "xmrig").readiness_probe.clone().unwrap();
    assert_eq!(ready.http_get.unwrap().path.as_deref(), Some("/ready"));
    let annotations = sts(&d)
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .clone()
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(annotations["prometheus.io/port"], "18090");
    let pm = d
        .children
        .iter()
        .find_map(|c| match c {
            Child::PodMonitor(p) => Some(p.data.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        "xmrig"
    );
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["interval"], "15s");
    // The builder never returns the API Secret: its token is made once by the controller.
    assert!(!d.children.iter().any(|c| matches!(c, Child::Secret(_))));
}

#[test]
fn the_xmrig_api_secret_binds_the_api_to_loopback_read_only() {
    let owner =
        monero_reconciler::build::Owner::of("MoneroMiningNodeSet", &miners(json!({})).metadata);
    let s = monero_reconciler::build::xmrig_api_secret(&owner, "abc123");
    assert_eq!(s.metadata.name.as_deref(), Some("miners-xmrig-api"));
    let data = s.data.unwrap();
    assert_eq!(data["token"].0, b"abc123");
    let http: Value = serde_json::from_slice(&data["http.json"].0).unwrap();
    assert_eq!(
        http,
        json!({"autosave": false, "http": {"enabled": true, "host": "127.0.0.1", "port": 18092, "access-token": "abc123", "restricted": true}})
    );
    // Not the children's labels, so pruning never selects it.
    let labels = s.metadata.labels.unwrap();
    assert!(!labels.contains_key("app.kubernetes.io/managed-by"));
    assert_eq!(labels["utxo.com.br/xmrig-api-of"], "miners");
}

#[test]
fn a_users_http_flag_is_refused_while_the_operator_runs_the_api() {
    let m = miners(json!({"xmrig": {"args": ["-o", "pool:1", "--http-port=8080"]}}));
    let err = mining_set(&m, &ctx()).unwrap_err();
    assert_eq!(err.field, "spec.xmrig.args");
    assert!(err.message.contains("--http-port=8080"), "{err}");
    // Without the exporter the API is the user's to configure.
    let m =
        miners(json!({"xmrig": {"args": ["--http-port=8080"]}, "exporter": {"enabled": false}}));
    assert!(mining_set(&m, &ctx()).is_ok());
}

#[test]
fn miners_without_the_exporter_have_no_api() {
    let d = mining_set(
        &miners(json!({"xmrig": {"args": ["-o", "pool:1"]}, "exporter": {"enabled": false}})),
        &ctx(),
    )
    .unwrap();
    assert_eq!(args(&d, "xmrig"), vec!["--no-color", "-o", "pool:1"]);
    assert_eq!(pod(&d).containers.len(), 1);
    assert!(
        pod(&d)
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .all(|v| v.secret.is_none())
    );
}

#[test]
fn names_too_long_for_their_children_are_refused() {
    let long = "n".repeat(60);
    let obj: MoneroNodeSet = serde_json::from_value(
        json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNodeSet",
        "metadata": {"name": long, "namespace": "ns"}, "spec": {}}),
    )
    .unwrap();
    let err = node_set(&obj, &ctx()).unwrap_err();
    assert_eq!(err.field, "metadata.name");
    assert!(err.message.contains("at most"), "{err}");
}

#[test]
fn solo_mining_against_a_missing_node_set_is_refused() {
    let m = miners(json!({"xmrig": {"config": {"pools": [{"nodeSet": "nowhere", "user": "4W"}]}}}));
    let err = mining_set(&m, &ctx()).unwrap_err();
    assert_eq!(err.field, "spec.xmrig.config.pools[0].nodeSet");
    assert!(
        err.message
            .contains("MoneroNodeSet nowhere not found in namespace ns")
    );
}

/// The Secrets projected into the identities volume, in order.
fn identity_sources(d: &Desired) -> Vec<String> {
    let vols = pod(d).volumes.as_ref().unwrap();
    let ids = vols
        .iter()
        .find(|v| v.name == "identities")
        .unwrap()
        .projected
        .as_ref()
        .unwrap();
    ids.sources
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| s.secret.as_ref().unwrap().name.clone())
        .collect()
}

fn init<'a>(d: &'a Desired, name: &str) -> &'a Container {
    pod(d)
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == name)
        .unwrap()
}

#[test]
fn the_pod_shape_with_tor_i2p_both_and_neither() {
    for (tor, i2p) in [(false, false), (true, false), (false, true), (true, true)] {
        let d = node_set(
            &nodeset(json!({"replicas": 2, "tor": {"enabled": tor}, "i2p": {"enabled": i2p}})),
            &ctx(),
        )
        .unwrap();
        let names: Vec<&str> = pod(&d).containers.iter().map(|c| c.name.as_str()).collect();
        let mut want = vec!["monerod", "exporter"];
        if tor {
            want.push("tor");
        }
        if i2p {
            want.push("i2pd");
        }
        assert_eq!(names, want, "tor {tor} i2p {i2p}");
        let a = args(&d, "monerod");
        if !tor && !i2p {
            assert!(pod(&d).init_containers.is_none());
            assert!(a.contains(&"--config-file=/etc/monerod/monerod.conf".to_string()));
            continue;
        }
        // monerod reads the config file podconfig wrote (base config + Tor/I2P lines).
        assert!(
            a.contains(&"--config-file=/run/monero-anon/monerod/monerod.conf".to_string()),
            "{a:?}"
        );
        assert_eq!(
            a.iter().filter(|x| x.starts_with("--config-file")).count(),
            1
        );
        let pc = init(&d, "podconfig");
        assert_eq!(pc.image.as_deref(), Some("img/podconfig:1"));
        let pa = pc.args.clone().unwrap();
        assert_eq!(pa[0], "podconfig");
        assert!(pa.contains(&"--base-config=/etc/monerod/monerod.conf".to_string()));
        assert!(
            pa.contains(&"--rpc-port=18089".to_string())
                && pa.contains(&"--tor-inbound-port=18083".to_string())
                && pa.contains(&"--i2p-inbound-port=18085".to_string())
        );
        assert_eq!(pa.contains(&"--tor".to_string()), tor);
        assert_eq!(pa.contains(&"--i2p".to_string()), i2p);
        assert_eq!(pc.env.as_ref().unwrap()[0].name, "POD_NAME");
        assert_eq!(
            pc.command.as_deref(),
            Some(&["monero-anon".to_string()][..])
        );
        assert_eq!(
            pa.contains(&"--rpc-onion".to_string()),
            tor,
            "RPC over Tor when public"
        );
        let mounts: Vec<(&str, bool)> = pc
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| (m.mount_path.as_str(), m.read_only == Some(true)))
            .collect();
        let mut want_mounts = vec![
            ("/etc/monero-anon/identities", true),
            ("/etc/monerod", true),
            ("/run/monero-anon/monerod", false),
        ];
        if tor {
            want_mounts.push(("/run/monero-anon/tor", false));
        }
        if i2p {
            want_mounts.push(("/run/monero-anon/i2pd", false));
        }
        assert_eq!(mounts, want_mounts);
        let sources = identity_sources(&d);
        assert_eq!(sources, vec!["nodes-identities"]);
        // Keys stay in memory, and each container sees only its own directory.
        let vols = pod(&d).volumes.as_ref().unwrap();
        for (vol, on) in [
            ("anon-monerod", true),
            ("anon-tor", tor),
            ("anon-i2pd", i2p),
        ] {
            let v = vols.iter().find(|v| v.name == vol);
            assert_eq!(v.is_some(), on, "{vol}");
            if let Some(v) = v {
                assert_eq!(
                    v.empty_dir.as_ref().unwrap().medium.as_deref(),
                    Some("Memory"),
                    "{vol}"
                );
            }
        }
        let mounts_of = |name: &str| -> Vec<String> {
            container(&d, name)
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .map(|m| m.name.clone())
                .collect()
        };
        assert!(mounts_of("monerod").contains(&"anon-monerod".to_string()));
        assert!(
            !mounts_of("monerod")
                .iter()
                .any(|m| m == "anon-tor" || m == "anon-i2pd" || m == "identities")
        );
        if tor {
            assert_eq!(mounts_of("tor"), vec!["anon-tor"]);
            assert_eq!(
                container(&d, "tor").command.as_deref(),
                Some(&["tor".to_string()][..])
            );
        }
        if i2p {
            assert_eq!(mounts_of("i2pd"), vec!["anon-i2pd"]);
        }
        if tor {
            assert_eq!(args(&d, "tor"), vec!["-f", "/run/monero-anon/tor/torrc"]);
            assert_eq!(container(&d, "tor").image.as_deref(), Some("img/tor:1"));
        }
        if i2p {
            assert!(args(&d, "i2pd").contains(&"--datadir=/run/monero-anon/i2pd/data".to_string()));
        }
        // Sidecars and the init container meet the restricted level too; nothing runs as root.
        for c in pod(&d)
            .containers
            .iter()
            .chain(pod(&d).init_containers.iter().flatten())
        {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(
                (
                    sc.run_as_non_root,
                    sc.read_only_root_filesystem,
                    sc.allow_privilege_escalation
                ),
                (Some(true), Some(true), Some(false)),
                "{}",
                c.name
            );
        }
    }
}

#[test]
fn a_network_served_over_tor_gives_podconfig_each_pods_own_base_config() {
    let d = network(&net(json!({"replicas": 2, "template": {"spec": {"network": "stagenet", "tor": {"enabled": true}, "i2p": {"enabled": true, "keysSecret": "mine"}}}})), &ctx()).unwrap();
    let pa = init(&d, "podconfig").args.clone().unwrap();
    assert!(
        pa.contains(&"--base-config=/etc/monerod/$(POD_NAME).conf".to_string()),
        "{pa:?}"
    );
    assert!(
        pa.contains(&"--tor-inbound-port=38083".to_string())
            && pa.contains(&"--rpc-port=38089".to_string())
    );
    let sources = identity_sources(&d);
    assert_eq!(
        sources,
        vec!["regtest-identities", "mine"],
        "generated tor keys, the user's i2p keys"
    );
}

#[test]
fn clearnet_through_tor_proxies_everything_and_exposes_no_p2p() {
    let d = node_set(
        &nodeset(json!({"clearnet": "ThroughTor", "tor": {"enabled": true}})),
        &ctx(),
    )
    .unwrap();
    let a = args(&d, "monerod");
    for f in [
        "--proxy=127.0.0.1:9050",
        "--hide-my-port",
        "--p2p-bind-ip=127.0.0.1",
    ] {
        assert!(a.contains(&f.to_string()), "{f} missing: {a:?}");
    }
    assert!(!a.contains(&"--p2p-bind-ip=0.0.0.0".to_string()));
    let svc = service(&d, "nodes").unwrap();
    let names: Vec<&str> = svc
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, vec!["rpc"], "no clearnet P2P is offered");
    let private = node_set(&nodeset(json!({"clearnet": "ThroughTor", "tor": {"enabled": true}, "monerod": {"rpc": {"public": false}}})), &ctx()).unwrap();
    assert!(
        service(&private, "nodes").is_none(),
        "nothing left to serve: no empty Service"
    );

    let err = node_set(&nodeset(json!({"clearnet": "ThroughTor"})), &ctx()).unwrap_err();
    assert_eq!(err.field, "spec.clearnet");
    let err = network(
        &net(json!({"template": {"spec": {"clearnet": "ThroughTor", "tor": {"enabled": true}}}})),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.template.spec.clearnet");
}

#[test]
fn a_pod_monitor_selects_the_sets_pods_when_asked() {
    let plain = node_set(&nodeset(json!({})), &ctx()).unwrap();
    assert!(
        !plain
            .children
            .iter()
            .any(|c| matches!(c, Child::PodMonitor(_)))
    );
    let d = node_set(&nodeset(json!({"exporter": {"podMonitor": {"enabled": true, "labels": {"release": "kps"}, "interval": "30s"}}})), &ctx()).unwrap();
    let pm = d
        .children
        .iter()
        .find_map(|c| match c {
            Child::PodMonitor(p) => Some(serde_json::to_value(p).unwrap()),
            _ => None,
        })
        .unwrap();
    assert_eq!(pm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(pm["kind"], "PodMonitor");
    assert_eq!(pm["metadata"]["name"], "nodes");
    assert_eq!(pm["metadata"]["labels"]["release"], "kps");
    assert_eq!(pm["metadata"]["ownerReferences"][0]["uid"], "u-1");
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/instance": "nodes", "app.kubernetes.io/name": "monerod"})
    );
    assert_eq!(
        pm["spec"]["podMetricsEndpoints"],
        json!([{"port": "metrics", "path": "/metrics", "interval": "30s"}])
    );
    // No exporter, nothing to scrape.
    let off = node_set(
        &nodeset(json!({"exporter": {"enabled": false, "podMonitor": {"enabled": true}}})),
        &ctx(),
    )
    .unwrap();
    assert!(
        !off.children
            .iter()
            .any(|c| matches!(c, Child::PodMonitor(_)))
    );
}

#[test]
fn the_disruption_budget_lets_unready_replicas_be_evicted() {
    // During a days-long initial sync every replica is unready; the default
    // policy would then refuse every eviction and block drains and the autoscaler.
    for d in [
        node_set(&nodeset(json!({"replicas": 3})), &ctx()).unwrap(),
        network(&net(json!({"replicas": 3})), &ctx()).unwrap(),
    ] {
        let pdb = d
            .children
            .iter()
            .find_map(|c| match c {
                Child::PodDisruptionBudget(p) => Some(p.spec.clone().unwrap()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            pdb.unhealthy_pod_eviction_policy.as_deref(),
            Some("AlwaysAllow")
        );
        assert_eq!(
            pdb.max_unavailable,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
    }
}

fn named(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": kind,
           "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
}

/// Builds `obj` with the builder of its kind.
fn build_any(obj: Value, c: &Context) -> Result<Desired, monero_reconciler::error::InvalidSpec> {
    match obj["kind"].as_str().unwrap() {
        "MoneroNodeSet" => node_set(&serde_json::from_value(obj).unwrap(), c),
        "MoneroNetwork" => network(&serde_json::from_value(obj).unwrap(), c),
        "MoneroMiningNodeSet" => mining_set(&serde_json::from_value(obj).unwrap(), c),
        other => panic!("{other}"),
    }
}

#[test]
fn names_that_are_not_service_names_are_refused() {
    // The API server takes these as custom resource names (DNS subdomains),
    // but not as the names of the Services made from them (DNS-1035 labels).
    let cases = [
        ("1nodes", "starts with '1'"),
        ("my.nodes", "contains '.'"),
        ("nodes-", "ends with '-'"),
        ("Nodes", "contains 'N'"),
    ];
    for kind in ["MoneroNodeSet", "MoneroNetwork", "MoneroMiningNodeSet"] {
        for (name, why) in cases {
            let err = build_any(named(kind, name, json!({"replicas": 2})), &ctx()).unwrap_err();
            assert_eq!(err.field, "metadata.name", "{kind} {name}");
            assert!(err.message.contains(why), "{kind} {name}: {err}");
            assert!(err.message.contains("DNS-1035"), "{err}");
        }
        for name in ["nodes", "a", "n0-des-2", &"n".repeat(52)] {
            build_any(named(kind, name, json!({"replicas": 2})), &ctx())
                .unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
        }
    }
}

#[test]
fn labels_annotations_and_keys_the_api_server_refuses_are_refused() {
    let long = "v".repeat(64);
    let big = "a".repeat(monero_reconciler::build::MAX_ANNOTATION_BYTES);
    let cases = [
        (
            json!({"pod": {"labels": {"team": long}}}),
            "spec.pod.labels",
            "at most 63",
        ),
        (
            json!({"pod": {"labels": {"Bad.Prefix/x": "y"}}}),
            "spec.pod.labels",
            "prefix",
        ),
        (
            json!({"pod": {"labels": {"x": "ends-"}}}),
            "spec.pod.labels",
            "ending alphanumeric",
        ),
        (
            json!({"pod": {"annotations": {"has space": "y"}}}),
            "spec.pod.annotations",
            "has space",
        ),
        (
            json!({"pod": {"annotations": {"big": big}}}),
            "spec.pod.annotations",
            "at most 262144",
        ),
        (
            json!({"pod": {"nodeSelector": {"disk": "fast ssd"}}}),
            "spec.pod.nodeSelector",
            "fast ssd",
        ),
        (
            json!({"topologyKey": "not a key"}),
            "spec.topologyKey",
            "not a key",
        ),
        (
            json!({"exporter": {"podMonitor": {"labels": {"release": long}}}}),
            "spec.exporter.podMonitor.labels",
            "at most 63",
        ),
    ];
    for kind in ["MoneroNodeSet", "MoneroMiningNodeSet"] {
        for (spec, field, why) in &cases {
            let err = build_any(named(kind, "set", spec.clone()), &ctx()).unwrap_err();
            assert_eq!(err.field, *field, "{kind} {spec}");
            assert!(err.message.contains(why), "{kind} {spec}: {err}");
        }
    }
    // A network: the template's metadata, and its node settings under spec.template.spec.
    let err = network(
        &net(json!({"template": {"metadata": {"labels": {"x/y/z": "1"}}}})),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.template.metadata.labels");
    let err = network(
        &net(json!({"template": {"spec": {"pod": {"labels": {"x": long}}}}})),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.template.spec.pod.labels");
    // The pod's annotations are the template's, the pod overrides' and the
    // operator's together: two halves that fit alone do not fit together.
    let half = "a".repeat(monero_reconciler::build::MAX_ANNOTATION_BYTES / 2);
    let err = network(
        &net(
            json!({"template": {"metadata": {"annotations": {"a": half}},
                    "spec": {"pod": {"annotations": {"b": half}}}}}),
        ),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.template.metadata.annotations");
    let err = node_set(
        &nodeset(json!({"service": {"annotations": {"big": "a".repeat(300_000)}}})),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.service.annotations");
    // What the API server takes still passes.
    node_set(
        &nodeset(json!({
            "topologyKey": "topology.kubernetes.io/zone",
            "service": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
            "pod": {"labels": {"team": "", "app.example.com/tier": "v1.2_x-y"},
                    "annotations": {"Example.COM/Note": "any text at all"},
                    "nodeSelector": {"kubernetes.io/arch": "amd64"}}})),
        &ctx(),
    )
    .unwrap();
}

#[test]
fn an_rpc_login_too_long_to_repeat_in_every_file_is_refused() {
    let mut c = ctx();
    c.secrets.insert(
        "login".into(),
        BTreeMap::from([
            ("username".to_string(), b"alice".to_vec()),
            ("password".to_string(), vec![b'p'; 1025]),
        ]),
    );
    let err = network(
        &net(
            json!({"template": {"spec": {"monerod": {"rpc": {"login": {"secretName": "login"}}}}}}),
        ),
        &c,
    )
    .unwrap_err();
    assert_eq!(
        err.field,
        "spec.template.spec.monerod.rpc.login.passwordKey"
    );
    assert!(err.message.contains("at most 1024"), "{err}");
}

/// The config Secrets of a build, in order, and the volume the pods mount them by.
fn config_secrets<'a>(d: &'a Desired, base: &str) -> Vec<&'a Secret> {
    d.children
        .iter()
        .filter_map(|c| match c {
            Child::Secret(s) => Some(s.as_ref()),
            _ => None,
        })
        .filter(|s| {
            let n = s.metadata.name.as_deref().unwrap();
            n == base
                || n.strip_prefix(base)
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|i| i.parse::<u32>().is_ok())
        })
        .collect()
}

fn config_volume(d: &Desired) -> &k8s_openapi::api::core::v1::Volume {
    pod(d)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "config")
        .unwrap()
}

fn data_bytes(s: &Secret) -> usize {
    s.data.iter().flatten().map(|(_, v)| v.0.len()).sum()
}

#[test]
fn a_large_network_spreads_its_peer_files_over_several_secrets() {
    let n = 120;
    let name = "n".repeat(48);
    let obj = named("MoneroNetwork", &name, json!({"replicas": n}));
    let d = build_any(obj, &ctx()).unwrap();
    let base = format!("{name}-monerod");
    let secrets = config_secrets(&d, &base);
    assert!(secrets.len() > 1, "{}", secrets.len());
    let names: Vec<String> = secrets
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names[0], base);
    assert_eq!(names[1], format!("{base}-1"));
    // One volume shows every Secret's files in /etc/monerod, as one Secret did.
    let projected = config_volume(&d).projected.as_ref().unwrap();
    let sources: Vec<String> = projected
        .sources
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| s.secret.as_ref().unwrap().name.clone())
        .collect();
    assert_eq!(sources, names);
    assert_eq!(projected.default_mode, Some(0o440));
    // Every node still has its own file naming exactly the others, once.
    let mut files = BTreeMap::new();
    for s in &secrets {
        assert!(
            data_bytes(s) <= monero_reconciler::build::CONFIG_SECRET_BYTES,
            "{}",
            data_bytes(s)
        );
        assert!(s.metadata.labels.as_ref().unwrap()["app.kubernetes.io/instance"] == name);
        for (k, v) in s.data.as_ref().unwrap() {
            assert!(files.insert(k.clone(), v.0.clone()).is_none(), "{k} twice");
        }
    }
    // A config file and a lab file per node.
    assert_eq!(files.keys().filter(|k| k.ends_with(".conf")).count(), n);
    assert_eq!(files.keys().filter(|k| k.ends_with(".lab.json")).count(), n);
    let conf = String::from_utf8(files[&format!("{name}-7.conf")].clone()).unwrap();
    let peers = conf
        .lines()
        .filter(|l| l.starts_with("add-exclusive-node="))
        .count();
    assert_eq!(peers, n - 1);
    assert!(!conf.contains(&format!("{name}-7.ns.")));
    // A small network keeps its one Secret volume.
    let small = network(&net(json!({"replicas": 3})), &ctx()).unwrap();
    assert_eq!(config_secrets(&small, "regtest-monerod").len(), 1);
    assert_eq!(
        config_volume(&small)
            .secret
            .as_ref()
            .unwrap()
            .secret_name
            .as_deref(),
        Some("regtest-monerod")
    );
}

#[test]
fn a_large_mining_set_without_id_shares_one_config_file() {
    // An integrated address is 106 characters; two pools with one make a
    // file of about 900 bytes, a thousand of them more than a Secret's share.
    let wallet = filler("4", 106);
    let pool = json!({"url": "pool.example.com:443", "user": wallet, "tls": true});
    let m = miners(json!({"replicas": 1000, "xmrig": {"config": {"pools": [pool, pool]}}}));
    let d = mining_set(&m, &ctx()).unwrap();
    let secrets = config_secrets(&d, "miners-xmrig");
    assert_eq!(secrets.len(), 1);
    let keys: Vec<&String> = secrets[0].data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["config.json"]);
    assert!(args(&d, "xmrig").contains(&"--config=/etc/xmrig/config.json".to_string()));
    // With $(id), each replica needs its own file: spread over Secrets in
    // replica order, so that scaling up appends to the last one.
    let pool = json!({"url": "pool.example.com:443", "user": wallet, "rigId": "rig-$(id)"});
    let m = miners(json!({"replicas": 1000, "xmrig": {"config": {"pools": [pool, pool]}}}));
    let d = mining_set(&m, &ctx()).unwrap();
    let secrets = config_secrets(&d, "miners-xmrig");
    assert!(secrets.len() > 1, "{}", secrets.len());
    assert!(args(&d, "xmrig").contains(&"--config=/etc/xmrig/config-$(id).json".to_string()));
    assert!(
        secrets[0]
            .data
            .as_ref()
            .unwrap()
            .contains_key("config-1.json")
            && secrets[1].data.as_ref().unwrap().keys().all(|k| k
                .trim_start_matches("config-")
                .trim_end_matches(".json")
                .parse::<usize>()
                .unwrap()
                > 1)
    );
    let total: usize = secrets.iter().map(|s| s.data.as_ref().unwrap().len()).sum();
    assert_eq!(total, 1000);
    let sources = config_volume(&d)
        .projected
        .as_ref()
        .unwrap()
        .sources
        .as_ref()
        .unwrap();
    assert_eq!(sources.len(), secrets.len());
    // A small set keeps one file per replica in one Secret volume.
    let pool = json!({"url": "pool.example.com:443", "user": "4Wallet"});
    let d = mining_set(
        &miners(json!({"replicas": 3, "xmrig": {"config": {"pools": [pool]}}})),
        &ctx(),
    )
    .unwrap();
    assert!(
        secret(&d, "miners-xmrig")
            .data
            .as_ref()
            .unwrap()
            .contains_key("config-2.json")
    );
    assert!(config_volume(&d).secret.is_some());
}

/// A bound of the CRD schema of `kind`: `key` (maximum, maxItems, maxLength)
/// of the property at `path` below `spec` ("[]" steps into array items).
fn schema_max(kind: &str, path: &str, key: &str) -> usize {
    let crd = monero_crd::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    let mut s = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()["properties"]["spec"]
        .clone();
    for step in path.split('.') {
        s = if step == "[]" {
            s["items"].clone()
        } else {
            s["properties"][step].clone()
        };
    }
    // Schemars writes `maximum` as a float (256.0), the lengths as integers.
    s[key]
        .as_u64()
        .or_else(|| s[key].as_f64().map(|f| f as u64))
        .unwrap_or_else(|| panic!("{kind} {path} has no {key}: {s}")) as usize
}

/// The size of every child as the API server would receive it, checked
/// against its limits, and printed (`cargo test -- --nocapture`).
fn assert_every_child_fits(what: &str, d: &Desired) -> usize {
    use monero_reconciler::build::{MAX_OBJECT_BYTES, MAX_SECRET_BYTES};
    let mut secrets = 0;
    let mut largest_secret = (0, 0, String::new());
    for c in &d.children {
        let json = serde_json::to_vec(c).unwrap().len();
        assert!(
            json < MAX_OBJECT_BYTES,
            "{what}: {} is {json} bytes",
            c.describe()
        );
        if let Child::Secret(s) = c {
            let data = data_bytes(s);
            assert!(
                data < MAX_SECRET_BYTES,
                "{what}: {} holds {data} bytes",
                c.describe()
            );
            secrets += data;
            if data > largest_secret.0 {
                largest_secret = (data, json, c.describe());
            }
        } else if !c
            .describe()
            .rsplit_once('-')
            .is_some_and(|(_, i)| i != "0" && i.parse::<u32>().is_ok())
        {
            eprintln!("{what}: {} is {json} bytes of JSON", c.describe());
        }
    }
    let n_secrets = d
        .children
        .iter()
        .filter(|c| matches!(c, Child::Secret(_)))
        .count();
    eprintln!(
        "{what}: {n_secrets} Secrets, {secrets} bytes of data; the largest, {}, {} bytes of data, {} of JSON",
        largest_secret.2, largest_secret.0, largest_secret.1
    );
    let template = serde_json::to_vec(&sts(d).spec.as_ref().unwrap().template)
        .unwrap()
        .len();
    eprintln!("{what}: pod template {template} bytes");
    template
}

/// A string of `n` characters that survives every check: a flag, a wallet.
fn filler(prefix: &str, n: usize) -> String {
    let mut s = prefix.to_string();
    while s.len() < n {
        s.push('x');
    }
    s
}

#[test]
fn every_object_fits_the_api_server_at_the_crds_maximum() {
    use monero_reconciler::build::{MAX_ANNOTATION_BYTES, MAX_CONFIG_SECRETS, MAX_OBJECT_BYTES};
    let ns = "s".repeat(63);
    let mut c = ctx();
    c.secrets.insert(
        "login".into(),
        BTreeMap::from([
            ("username".to_string(), vec![b'u'; 1024]),
            ("password".to_string(), vec![b'p'; 1024]),
        ]),
    );
    // The user's unbounded maps at what one object may carry: annotations
    // just under the limit (with the operator's), a hundred of the longest labels.
    let annotations = json!({"note": "a".repeat(MAX_ANNOTATION_BYTES - 1024)});
    let labels: serde_json::Map<String, Value> = (0..100)
        .map(|i| {
            let key = format!("{}{i:03}/{}", "p".repeat(250), "k".repeat(63));
            (key, json!("v".repeat(63)))
        })
        .collect();
    let tolerations: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("example.com/taint-{i}"), "operator": "Exists", "effect": "NoSchedule"}))
        .collect();
    let node_spec = |kind: &str, args_path: &str| {
        let at = |p: &str| {
            [args_path, p]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(".")
        };
        let max_args = schema_max(kind, &at("monerod.args"), "maxItems");
        let arg_len = schema_max(kind, &at("monerod.args.[]"), "maxLength");
        let mut args: Vec<String> = (1..max_args)
            .map(|i| filler(&format!("--flag-{i}="), arg_len))
            .collect();
        args.insert(0, "--regtest".into());
        json!({
            "monerod": {"args": args, "zmq": true,
                        "rpc": {"login": {"secretName": "login"}}},
            "tor": {"enabled": true}, "i2p": {"enabled": true},
            "exporter": {"podMonitor": {"enabled": true, "labels": {"release": "prometheus"}}},
            "service": {"annotations": annotations},
            "pod": {"labels": labels, "tolerations": tolerations},
        })
    };

    // A MoneroNetwork: every node's file names every other node, O(n²).
    let n = schema_max("MoneroNetwork", "replicas", "maximum");
    // The longest name that leaves room for the children's suffixes.
    let name = "n".repeat(63 - 11);
    let mut obj = named(
        "MoneroNetwork",
        &name,
        json!({"replicas": n,
        "template": {"metadata": {"annotations": annotations},
                     "spec": node_spec("MoneroNetwork", "template.spec")}}),
    );
    obj["metadata"]["namespace"] = json!(ns);
    let d = build_any(obj, &c).unwrap();
    let template = assert_every_child_fits(&format!("MoneroNetwork of {n}"), &d);
    assert!(template < MAX_OBJECT_BYTES / 3, "{template}");
    let config = config_secrets(&d, &format!("{name}-monerod"));
    assert!(config.len() <= MAX_CONFIG_SECRETS);
    let files: usize = config.iter().map(|s| s.data.as_ref().unwrap().len()).sum();
    assert_eq!(
        files,
        2 * n + 1,
        "a config and a lab file per node, and rpc-login"
    );

    // A MoneroNodeSet at its maximum.
    let n = schema_max("MoneroNodeSet", "replicas", "maximum");
    let mut obj = named("MoneroNodeSet", &name, json!({"replicas": n}));
    obj["spec"] = json!({"replicas": n});
    if let Value::Object(extra) = node_spec("MoneroNodeSet", "") {
        obj["spec"].as_object_mut().unwrap().extend(extra);
    }
    obj["spec"]["pod"]["annotations"] = annotations.clone();
    obj["metadata"]["namespace"] = json!(ns);
    let d = build_any(obj, &c).unwrap();
    let template = assert_every_child_fits(&format!("MoneroNodeSet of {n}"), &d);
    assert!(template < MAX_OBJECT_BYTES / 3, "{template}");
    // The identity Secret the controller makes for it: a Tor and an I2P key per replica.
    let tor = monero_anon::tor::OnionKey::generate()
        .unwrap()
        .secret_file();
    let i2p = monero_anon::i2p::Destination::generate()
        .unwrap()
        .keys_file()
        .to_vec();
    let mut ids: BTreeMap<String, k8s_openapi::ByteString> = (0..n)
        .flat_map(|i| {
            [
                (format!("{name}-{i}.tor"), tor.clone()),
                (format!("{name}-{i}.i2p"), i2p.clone()),
            ]
        })
        .map(|(k, v)| (k, k8s_openapi::ByteString(v)))
        .collect();
    ids.insert("rpc.tor".into(), k8s_openapi::ByteString(tor.clone()));
    let ids = Secret {
        data: Some(ids),
        ..Secret::default()
    };
    let json = serde_json::to_vec(&ids).unwrap().len();
    eprintln!(
        "MoneroNodeSet of {n}: identities Secret {} bytes of data, {json} of JSON",
        data_bytes(&ids)
    );
    assert!(data_bytes(&ids) < monero_reconciler::build::MAX_SECRET_BYTES);
    assert!(json < MAX_OBJECT_BYTES);

    // A MoneroMiningNodeSet: max replicas, max pools, every pool string at its longest.
    let n = schema_max("MoneroMiningNodeSet", "replicas", "maximum");
    let pools_path = "xmrig.config.pools";
    let max_pools = schema_max("MoneroMiningNodeSet", pools_path, "maxItems");
    let len = |f: &str| {
        schema_max(
            "MoneroMiningNodeSet",
            &format!("{pools_path}.[].{f}"),
            "maxLength",
        )
    };
    let pools = |id: &str| -> Vec<Value> {
        (0..max_pools)
            .map(|i| {
                json!({"url": filler(&format!("pool{i}.example.com:443/"), len("url")),
                       "user": filler(&format!("4{id}"), len("user")),
                       "pass": filler(id, len("pass")),
                       "rigId": filler(id, len("rigId")),
                       "tls": true, "keepalive": true})
            })
            .collect()
    };
    let max_args = schema_max("MoneroMiningNodeSet", "xmrig.args", "maxItems");
    let arg_len = schema_max("MoneroMiningNodeSet", "xmrig.args.[]", "maxLength");
    let xargs: Vec<String> = (0..max_args)
        .map(|i| filler(&format!("--flag-{i}="), arg_len))
        .collect();
    let mining = |pools: Vec<Value>| {
        let mut obj = named(
            "MoneroMiningNodeSet",
            &name,
            json!({"replicas": n,
            "xmrig": {"args": xargs, "config": {"pools": pools, "donateLevel": 1,
                      "cpu": {"maxThreadsHint": 50, "priority": 2}}},
            "exporter": {"podMonitor": {"enabled": true}},
            "pod": {"labels": labels, "annotations": annotations, "tolerations": tolerations}}),
        );
        obj["metadata"]["namespace"] = json!(ns);
        obj
    };
    // Without $(id): every replica's file would be the same, so they share one.
    let d = build_any(mining(pools("")), &c).unwrap();
    let template = assert_every_child_fits(&format!("MoneroMiningNodeSet of {n}"), &d);
    assert!(template < MAX_OBJECT_BYTES / 3, "{template}");
    // With $(id) in every pool, each replica needs its own copy of the longest
    // config: more than the Secrets a set may have, refused with the reason.
    let err = build_any(mining(pools("$(id)")), &c).unwrap_err();
    assert_eq!(err.field, "spec.xmrig.config");
    assert!(err.message.contains("Secrets"), "{err}");
    eprintln!("MoneroMiningNodeSet of {n}, {max_pools} longest pools with $(id): {err}");
    // The usual $(id), in a rig id, fits at the maximum.
    let usual = vec![
        json!({"url": "pool.example.com:443", "user": filler("4", 106), "rigId": "rig-$(id)", "tls": true}),
    ];
    let d = build_any(mining(usual), &c).unwrap();
    assert_every_child_fits(
        &format!("MoneroMiningNodeSet of {n}, one pool with $(id)"),
        &d,
    );

    // The status lists every replica, in the same object as the spec: at the
    // maxima it too stays under the limit, with room for the spec.
    for (kind, replicas, miner) in [
        (
            "MoneroNodeSet",
            schema_max("MoneroNodeSet", "replicas", "maximum"),
            false,
        ),
        ("MoneroMiningNodeSet", n, true),
    ] {
        let row = |i: usize| monero_crd::ReplicaStatus {
            name: format!("{name}-{i}"),
            ready: true,
            height: (!miner).then_some(3_000_000),
            target_height: (!miner).then_some(3_000_000),
            synchronized: (!miner).then_some(true),
            incoming_connections: (!miner).then_some(100),
            outgoing_connections: (!miner).then_some(12),
            version: Some("0.18.4.0-release".into()),
            p2p_address: (!miner).then(|| format!("[2001:db8:{i:x}::1234:5678:9abc]:65535")),
            // A full mesh's peers: every index but the node's own.
            peers: (!miner).then(|| format!("0-{},{}-{}", i.saturating_sub(1), i + 1, n - 1)),
            reorganizations: (!miner).then_some(u64::MAX),
            last_reorganization_depth: (!miner).then_some(u64::MAX),
            image: Some(format!(
                "registry.example.com/monero/{}:v0.18.4.0",
                "m".repeat(20)
            )),
            updated: Some(true),
            onion_address: (!miner).then(|| format!("{}.onion", "o".repeat(56))),
            i2p_address: (!miner).then(|| format!("{}.b32.i2p", "i".repeat(52))),
            hashrate: miner.then_some(12_345),
            shares_accepted: miner.then_some(123_456),
            shares_rejected: miner.then_some(1_234),
            message: Some("x".repeat(120)),
        };
        let status = monero_crd::SetStatus {
            nodes: (0..replicas).map(row).collect(),
            ..monero_crd::SetStatus::default()
        };
        let json = serde_json::to_vec(&status).unwrap().len();
        eprintln!("{kind} of {replicas}: status {json} bytes");
        assert!(json < MAX_OBJECT_BYTES / 2, "{kind}: {json}");
    }
}

// ---------------------------------------------------------------------------
// Fleet operations: flags by monerod release, RPC limits and bans, ZMQ pub, a
// ban list, per-replica P2P Services.
// ---------------------------------------------------------------------------

fn refused(obj: Value, c: &Context) -> (String, String) {
    let e = build_any(obj, c).unwrap_err();
    (e.field.clone(), e.to_string())
}

#[test]
fn the_flags_follow_the_monerod_release() {
    for (version, limits, confirm) in [
        ("0.17.2.0", false, false),
        ("0.18.0.0", false, false),
        ("0.18.4.0", true, false),
        ("0.18.5.3", true, true),
    ] {
        let d = node_set(
            &nodeset(json!({"monerod": {"version": version, "zmq": true}})),
            &ctx(),
        )
        .unwrap();
        let a = args(&d, "monerod");
        assert!(
            a.contains(&"--disable-rpc-ban".to_string()),
            "{version}: {a:?}"
        );
        assert_eq!(
            a.contains(&"--rpc-max-connections-per-private-ip=100".to_string()),
            limits,
            "{version}: {a:?}"
        );
        assert_eq!(
            a.contains(&"--confirm-zmq-rpc-external-bind".to_string()),
            confirm,
            "{version}: {a:?}"
        );
        assert!(a.contains(&"--zmq-rpc-bind-ip=0.0.0.0".to_string()));
    }
}

#[test]
fn the_proposals_image_gets_only_flags_its_release_knows() {
    let d = node_set(
        &nodeset(json!({"replicas": 3, "monerod": {"image": "utxobr/monerod:v0.17.2.0", "args": ["--public"]}})),
        &ctx(),
    )
    .unwrap();
    let a = args(&d, "monerod");
    assert!(
        !a.iter().any(|f| f.starts_with("--rpc-max-connections")
            || f.starts_with("--confirm-zmq")
            || f.starts_with("--proxy")),
        "{a:?}"
    );
}

#[test]
fn the_operators_default_image_runs_the_release_the_operator_knows() {
    // The default image's tag is the operator's version, not monerod's.
    let d = node_set(&nodeset(json!({})), &ctx()).unwrap();
    assert!(args(&d, "monerod").contains(&"--rpc-max-connections-per-private-ip=100".to_string()));
    let mut c = ctx();
    c.images.monerod_version = None;
    let d = node_set(&nodeset(json!({})), &c).unwrap();
    assert!(
        !args(&d, "monerod")
            .iter()
            .any(|f| f.starts_with("--rpc-max-connections"))
    );
}

#[test]
fn an_unknown_release_is_refused_what_depends_on_the_release() {
    let latest = |extra: Value| {
        let mut spec = json!({"monerod": {"image": "example.org/monerod:latest"}});
        for (k, v) in extra.as_object().unwrap() {
            if k == "monerod" {
                for (mk, mv) in v.as_object().unwrap() {
                    spec["monerod"][mk] = mv.clone();
                }
            } else {
                spec[k] = v.clone();
            }
        }
        named("MoneroNodeSet", "nodes", spec)
    };
    // Plain: only the flags every release since 0.17.2 takes.
    let d = build_any(latest(json!({})), &ctx()).unwrap();
    assert!(
        !args(&d, "monerod")
            .iter()
            .any(|f| f.starts_with("--rpc-max-connections"))
    );
    let (field, msg) = refused(latest(json!({"monerod": {"zmq": true}})), &ctx());
    assert_eq!(field, "spec.monerod.zmq");
    assert!(
        msg.contains("example.org/monerod:latest") && msg.contains("spec.monerod.version"),
        "{msg}"
    );
    let (field, msg) = refused(
        latest(json!({"monerod": {"rpc": {"limits": {"perPublicIp": 5}}}})),
        &ctx(),
    );
    assert_eq!(field, "spec.monerod.rpc.limits");
    assert!(msg.contains("set monerod.version"), "{msg}");
    let (field, msg) = refused(
        latest(json!({"tor": {"enabled": true}, "clearnet": "ThroughTor"})),
        &ctx(),
    );
    assert_eq!(field, "spec.clearnet");
    assert!(msg.contains("0.18.0.0"), "{msg}");
    // Saying the release is enough.
    build_any(
        latest(json!({"monerod": {"zmq": true, "version": "0.18.5.3"}})),
        &ctx(),
    )
    .unwrap();
    // A known release too old for a feature names it.
    let (field, msg) = refused(
        named(
            "MoneroNodeSet",
            "nodes",
            json!({"tor": {"enabled": true}, "clearnet": "ThroughTor", "monerod": {"image": "utxobr/monerod:v0.17.2.0"}}),
        ),
        &ctx(),
    );
    assert_eq!(field, "spec.clearnet");
    assert!(
        msg.contains("this set runs 0.17.2.0 (from the image tag)"),
        "{msg}"
    );
}

#[test]
fn rpc_limits_and_bans_render_as_asked() {
    let d = node_set(
        &nodeset(json!({"monerod": {"rpc": {"banOnErrors": true, "limits": {"maxConnections": 500, "perPublicIp": 8}}}})),
        &ctx(),
    )
    .unwrap();
    let a = args(&d, "monerod");
    assert!(!a.contains(&"--disable-rpc-ban".to_string()), "{a:?}");
    for f in [
        "--rpc-max-connections=500",
        "--rpc-max-connections-per-public-ip=8",
        // Private addresses stand for many clients: as many as in all.
        "--rpc-max-connections-per-private-ip=500",
    ] {
        assert!(a.contains(&f.to_string()), "{f} missing from {a:?}");
    }
    let d = node_set(
        &nodeset(json!({"monerod": {"rpc": {"limits": {"perPrivateIp": 40}}}})),
        &ctx(),
    )
    .unwrap();
    let a = args(&d, "monerod");
    assert!(a.contains(&"--rpc-max-connections-per-private-ip=40".to_string()));
    assert!(!a.iter().any(|f| f.starts_with("--rpc-max-connections=")));
    // A user flag still wins over the operator's.
    let d = node_set(
        &nodeset(json!({"monerod": {"args": ["--rpc-max-connections-per-private-ip=7"]}})),
        &ctx(),
    )
    .unwrap();
    let a = args(&d, "monerod");
    assert_eq!(
        a.iter()
            .filter(|f| f.starts_with("--rpc-max-connections-per-private-ip"))
            .collect::<Vec<_>>(),
        ["--rpc-max-connections-per-private-ip=7"]
    );
}

fn port_names(ports: Option<Vec<String>>) -> Vec<String> {
    ports.unwrap_or_default()
}

fn service_ports(d: &Desired, name: &str) -> Vec<String> {
    port_names(
        service(d, name)
            .and_then(|s| s.spec.as_ref()?.ports.as_ref())
            .map(|p| p.iter().filter_map(|p| p.name.clone()).collect()),
    )
}

#[test]
fn zmq_pub_stays_on_loopback_or_in_the_cluster() {
    let d = node_set(&nodeset(json!({"monerod": {"zmqPub": "Loopback"}})), &ctx()).unwrap();
    let a = args(&d, "monerod");
    assert!(
        a.contains(&"--zmq-pub=tcp://127.0.0.1:18084".to_string()),
        "{a:?}"
    );
    // The publisher needs the ZMQ server, kept on the pod's loopback.
    assert!(
        a.contains(&"--zmq-rpc-bind-ip=127.0.0.1".to_string()),
        "{a:?}"
    );
    assert!(!a.contains(&"--no-zmq".to_string()));
    assert!(!a.contains(&"--confirm-zmq-rpc-external-bind".to_string()));
    let cport = |d: &Desired| {
        container(d, "monerod")
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .filter_map(|p| p.name)
            .collect::<Vec<_>>()
    };
    assert!(!cport(&d).contains(&"zmq-pub".to_string()));
    let d = node_set(
        &nodeset(json!({"network": "stagenet", "service": {"type": "LoadBalancer"}, "monerod": {"zmqPub": "Cluster"}})),
        &ctx(),
    )
    .unwrap();
    let a = args(&d, "monerod");
    assert!(
        a.contains(&"--zmq-pub=tcp://0.0.0.0:38084".to_string()),
        "{a:?}"
    );
    assert!(cport(&d).contains(&"zmq-pub".to_string()));
    assert!(service_ports(&d, "nodes-headless").contains(&"zmq-pub".to_string()));
    // Never on the client Service, which may be a load balancer.
    assert_eq!(service_ports(&d, "nodes"), ["p2p", "rpc"]);
    // Off: no ZMQ at all.
    let d = node_set(&nodeset(json!({})), &ctx()).unwrap();
    let a = args(&d, "monerod");
    assert!(a.contains(&"--no-zmq".to_string()));
    assert!(!a.iter().any(|f| f.starts_with("--zmq")));
}

fn with_ban_list(list: &str) -> Context {
    let mut c = ctx();
    c.config_maps.insert(
        "bans".into(),
        BTreeMap::from([("ban_list.txt".to_string(), list.to_string())]),
    );
    c
}

#[test]
fn a_ban_list_from_a_config_map_reaches_monerod_cleaned_and_rolls_the_pods() {
    let spec = json!({"monerod": {"banList": {"name": "bans", "key": "ban_list.txt"}}});
    let d = node_set(
        &nodeset(spec.clone()),
        &with_ban_list("# v2\n1.2.3.4\n5.6.0.0/16 # spies\n"),
    )
    .unwrap();
    assert!(args(&d, "monerod").contains(&"--ban-list=/etc/monerod/ban-list.txt".to_string()));
    assert_eq!(
        file(&d, "nodes-monerod", "ban-list.txt"),
        "1.2.3.4\n5.6.0.0/16\n"
    );
    let changed = node_set(&nodeset(spec.clone()), &with_ban_list("1.2.3.4\n")).unwrap();
    assert_ne!(hash(&d), hash(&changed), "a new list rolls the pods");
    let comment_only = node_set(
        &nodeset(spec.clone()),
        &with_ban_list("1.2.3.4\n5.6.0.0/16\n# new comment\n"),
    )
    .unwrap();
    assert_eq!(
        hash(&d),
        hash(&comment_only),
        "a comment alone rolls nothing"
    );
    let (field, msg) = refused(named("MoneroNodeSet", "nodes", spec.clone()), &ctx());
    assert_eq!(field, "spec.monerod.banList.key");
    assert!(msg.contains("ConfigMap bans not found"), "{msg}");
    let (field, msg) = refused(
        named("MoneroNodeSet", "nodes", spec.clone()),
        &with_ban_list("1.2.3.4\n999.1.1.1\n"),
    );
    assert_eq!(field, "spec.monerod.banList.key");
    assert!(msg.contains("line 2") && msg.contains("999.1.1.1"), "{msg}");
    let mut c = with_ban_list("");
    c.config_maps.get_mut("bans").unwrap().clear();
    let (_, msg) = refused(named("MoneroNodeSet", "nodes", spec), &c);
    assert!(
        msg.contains("ConfigMap bans has no key ban_list.txt"),
        "{msg}"
    );
}

#[test]
fn per_replica_node_ports_give_each_replica_its_own_advertised_port() {
    let spec = |replicas: i32, base: i32| json!({"replicas": replicas, "service": {"perReplica": {"type": "NodePort", "nodePortBase": base, "annotations": {"a.example.org/x": "y"}}}});
    let d = node_set(&nodeset(spec(3, 30080)), &ctx()).unwrap();
    for i in 0..3 {
        let s = service(&d, &format!("nodes-p2p-{i}")).unwrap();
        let ss = s.spec.as_ref().unwrap();
        assert_eq!(ss.type_.as_deref(), Some("NodePort"));
        assert_eq!(ss.external_traffic_policy.as_deref(), Some("Local"));
        assert_eq!(ss.publish_not_ready_addresses, Some(true));
        assert_eq!(
            ss.selector.as_ref().unwrap()["statefulset.kubernetes.io/pod-name"],
            format!("nodes-{i}")
        );
        let p = &ss.ports.as_ref().unwrap()[0];
        assert_eq!((p.port, p.node_port), (18080, Some(30080 + i)));
        assert_eq!(
            s.metadata.annotations.as_ref().unwrap()["a.example.org/x"],
            "y"
        );
        assert_eq!(
            file(&d, "nodes-monerod", &format!("nodes-{i}.conf"))
                .lines()
                .last(),
            Some(format!("p2p-external-port={}", 30080 + i).as_str())
        );
    }
    assert!(service(&d, "nodes-p2p-3").is_none());
    assert!(
        args(&d, "monerod").contains(&"--config-file=/etc/monerod/$(POD_NAME).conf".to_string())
    );
    // Scaling adds a file and a Service and rolls nobody; a new base rolls all.
    let more = node_set(&nodeset(spec(4, 30080)), &ctx()).unwrap();
    assert_eq!(hash(&d), hash(&more));
    assert!(service(&more, "nodes-p2p-3").is_some());
    let moved = node_set(&nodeset(spec(3, 31000)), &ctx()).unwrap();
    assert_ne!(hash(&d), hash(&moved));
    // With Tor, podconfig reads each pod's own file too.
    let mut tor = spec(2, 30080);
    tor["tor"] = json!({"enabled": true});
    let d = node_set(&nodeset(tor), &ctx()).unwrap();
    assert!(
        init(&d, "podconfig")
            .args
            .as_ref()
            .unwrap()
            .contains(&"--base-config=/etc/monerod/$(POD_NAME).conf".to_string())
    );
}

#[test]
fn per_replica_load_balancers_need_no_external_port() {
    let d = node_set(
        &nodeset(json!({"replicas": 2, "service": {"perReplica": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster"}}})),
        &ctx(),
    )
    .unwrap();
    let ss = service(&d, "nodes-p2p-1").unwrap().spec.as_ref().unwrap();
    assert_eq!(ss.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(ss.external_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(ss.ports.as_ref().unwrap()[0].node_port, None);
    assert!(args(&d, "monerod").contains(&"--config-file=/etc/monerod/monerod.conf".to_string()));
}

#[test]
fn per_replica_services_are_refused_where_they_cannot_work() {
    let (field, _) = refused(
        named(
            "MoneroNodeSet",
            "nodes",
            json!({"service": {"perReplica": {"type": "NodePort"}}}),
        ),
        &ctx(),
    );
    assert_eq!(field, "spec.service.perReplica.nodePortBase");
    let (field, msg) = refused(
        named(
            "MoneroNodeSet",
            "nodes",
            json!({"replicas": 3, "service": {"perReplica": {"type": "NodePort", "nodePortBase": 65534}}}),
        ),
        &ctx(),
    );
    assert_eq!(field, "spec.service.perReplica.nodePortBase");
    assert!(msg.contains("65535"), "{msg}");
    let (field, _) = refused(
        named(
            "MoneroNodeSet",
            "nodes",
            json!({"tor": {"enabled": true}, "clearnet": "ThroughTor", "service": {"perReplica": {"type": "LoadBalancer"}}}),
        ),
        &ctx(),
    );
    assert_eq!(field, "spec.service.perReplica");
    let (field, _) = refused(
        named(
            "MoneroNetwork",
            "net",
            json!({"template": {"spec": {"service": {"perReplica": {"type": "LoadBalancer"}}}}}),
        ),
        &ctx(),
    );
    assert_eq!(field, "spec.template.spec.service.perReplica");
}

// ---------------------------------------------------------------------------
// Research networks: topologies, blocks on a schedule.
// ---------------------------------------------------------------------------

/// Each node's exclusive peers, by index, from its config file.
fn peer_indices(d: &Desired, replicas: usize) -> Vec<Vec<usize>> {
    (0..replicas)
        .map(|i| {
            file(d, "net-monerod", &format!("net-{i}.conf"))
                .lines()
                .filter_map(|l| l.strip_prefix("add-exclusive-node=net-"))
                .map(|rest| rest.split('.').next().unwrap().parse().unwrap())
                .collect()
        })
        .collect()
}

fn net_named(spec: Value) -> Value {
    named("MoneroNetwork", "net", spec)
}

#[test]
fn each_topology_gives_each_node_its_neighbours() {
    let peers = |topology: Value, n: usize| {
        let d = build_any(
            net_named(json!({"replicas": n, "topology": topology})),
            &ctx(),
        )
        .unwrap();
        peer_indices(&d, n)
    };
    assert_eq!(peers(json!({}), 3), [vec![1, 2], vec![0, 2], vec![0, 1]]);
    assert_eq!(
        peers(json!({"type": "Ring"}), 5),
        [vec![1, 4], vec![0, 2], vec![1, 3], vec![2, 4], vec![0, 3]]
    );
    assert_eq!(
        peers(json!({"type": "Star", "hub": 2}), 4),
        [vec![2], vec![2], vec![0, 1, 3], vec![2]]
    );
    assert_eq!(
        peers(
            json!({"type": "Edges", "edges": [[0, 1], [1, 2], [3, 2]]}),
            4
        ),
        [vec![1], vec![0, 2], vec![1, 3], vec![2]]
    );
    let random = peers(
        json!({"type": "RandomRegular", "degree": 3, "seed": 11}),
        10,
    );
    assert!(random.iter().all(|p| p.len() == 3), "{random:?}");
    assert_eq!(
        random,
        peers(
            json!({"type": "RandomRegular", "degree": 3, "seed": 11}),
            10
        ),
        "the same seed, the same graph"
    );
    // Status compares the reported peers with these.
    let d = build_any(
        net_named(json!({"replicas": 3, "topology": {"type": "Ring"}})),
        &ctx(),
    )
    .unwrap();
    assert_eq!(d.peers["net-0"], ["net-1", "net-2"]);
}

#[test]
fn a_topology_that_cannot_be_is_refused_naming_its_field() {
    for (topology, replicas, field, words) in [
        (
            json!({"type": "Star", "hub": 5}),
            3,
            "spec.topology.hub",
            "hub 5",
        ),
        (
            json!({"type": "RandomRegular", "degree": 3}),
            5,
            "spec.topology.degree",
            "must be even",
        ),
        (
            json!({"type": "RandomRegular", "degree": 1}),
            4,
            "spec.topology.degree",
            "cannot connect",
        ),
        (
            json!({"type": "Edges", "edges": [[0, 7]]}),
            3,
            "spec.topology.edges",
            "edge 0 [0, 7]",
        ),
    ] {
        let (f, msg) = refused(
            net_named(json!({"replicas": replicas, "topology": topology})),
            &ctx(),
        );
        assert_eq!(f, field, "{msg}");
        assert!(msg.contains(words), "{msg}");
    }
}

fn lab_file(d: &Desired, i: usize) -> Value {
    serde_json::from_str(&file(d, "net-monerod", &format!("net-{i}.lab.json"))).unwrap()
}

#[test]
fn blocks_are_made_by_the_miners_exporters_and_a_new_schedule_restarts_nobody() {
    let spec = |blocks: Value| json!({"replicas": 3, "template": {"spec": {"network": "regtest"}}, "blocks": blocks});
    let d = build_any(
        net_named(spec(
            json!({"interval": "2m", "miners": [0, 2], "blocksPerRound": 3}),
        )),
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        lab_file(&d, 0)["mine"],
        json!({"everySeconds": 120, "blocks": 3, "address": monero_crd::PUBLIC_TEST_ADDRESS})
    );
    assert_eq!(lab_file(&d, 1).get("mine"), None);
    assert_eq!(lab_file(&d, 2)["mine"]["everySeconds"], 120);
    let exporter = container(&d, "exporter");
    assert!(
        exporter
            .args
            .as_ref()
            .unwrap()
            .contains(&"--lab-config=/etc/monerod/$(POD_NAME).lab.json".to_string())
    );
    assert_eq!(exporter.env.as_ref().unwrap()[0].name, "POD_NAME");
    // Another schedule: the files change, the pods do not roll.
    let other = build_any(net_named(spec(json!({"interval": "10s"}))), &ctx()).unwrap();
    assert_eq!(lab_file(&other, 2).get("mine"), None);
    assert_eq!(hash(&d), hash(&other));
    // No schedule: every node's file says nothing to do.
    let none = build_any(net_named(json!({"replicas": 2})), &ctx()).unwrap();
    assert_eq!(lab_file(&none, 0).get("mine"), None);
    assert_eq!(
        hash(&none),
        hash(&build_any(net_named(json!({"replicas": 2, "blocks": {}})), &ctx()).unwrap())
    );
}

#[test]
fn blocks_need_the_exporter_and_miners_that_exist() {
    let (f, _) = refused(
        net_named(json!({"replicas": 2, "blocks": {"miners": [2]}})),
        &ctx(),
    );
    assert_eq!(f, "spec.blocks.miners");
    let (f, msg) = refused(
        net_named(
            json!({"replicas": 2, "blocks": {}, "template": {"spec": {"exporter": {"enabled": false}}}}),
        ),
        &ctx(),
    );
    assert_eq!(f, "spec.blocks");
    assert!(msg.contains("exporter"), "{msg}");
}

#[test]
fn partitions_tell_each_node_whom_to_ban_and_restart_nobody() {
    let spec = |partitions: Value| json!({"replicas": 5, "partitions": partitions, "template": {"spec": {"network": "regtest"}}});
    let d = build_any(net_named(spec(json!([[0, 1], [2, 3]]))), &ctx()).unwrap();
    let p = |i: usize| lab_file(&d, i)["partition"].clone();
    assert_eq!(
        p(0),
        json!({"names": ["net-{}.ns.svc.cluster.local", "net-{}.net-headless.ns.svc.cluster.local"],
               "nodes": 5, "me": 0, "ban": [2, 3, 4]})
    );
    assert_eq!(p(3)["ban"], json!([0, 1, 4]));
    // Node 4 is in no group: the rest, a group of its own here.
    assert_eq!(p(4)["ban"], json!([0, 1, 2, 3]));
    // Healed: nobody banned, and the pods were never restarted for it.
    let healed = build_any(net_named(spec(json!([]))), &ctx()).unwrap();
    assert_eq!(lab_file(&healed, 0)["partition"]["ban"], json!([]));
    assert_eq!(hash(&d), hash(&healed));
    for (partitions, field, words) in [
        (json!([[0, 9]]), "spec.partitions[0]", "9 is not a node"),
        (
            json!([[0, 1], [1, 2]]),
            "spec.partitions[1]",
            "node 1 is in more than one group",
        ),
    ] {
        let (f, msg) = refused(net_named(spec(partitions)), &ctx());
        assert_eq!(f, field);
        assert!(msg.contains(words), "{msg}");
    }
}

fn wallets_sts(d: &Desired) -> &StatefulSet {
    d.children
        .iter()
        .find_map(|c| match c {
            Child::StatefulSet(s) if s.metadata.name.as_deref() == Some("net-wallets") => {
                Some(s.as_ref())
            }
            _ => None,
        })
        .unwrap()
}

fn wallets_pod(d: &Desired) -> &PodSpec {
    wallets_sts(d)
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

#[test]
fn wallets_are_one_pod_of_wallet_rpcs_beside_the_nodes_with_logins_in_a_file() {
    let mut c = ctx();
    c.secrets.insert(
        "wl".into(),
        BTreeMap::from([
            ("username".to_string(), b"dev".to_vec()),
            ("password".to_string(), b"wallet-pass".to_vec()),
        ]),
    );
    let spec = json!({"replicas": 2, "template": {"spec": {"network": "regtest",
                        "monerod": {"rpc": {"login": {"secretName": "login"}}}}},
                      "wallets": {"count": 3, "transactionsPerMinute": 4, "login": {"secretName": "wl"}}});
    let d = build_any(net_named(spec), &c).unwrap();
    // The nodes' StatefulSet stays the first (the rollout gate's), the
    // wallets' comes after, with a selector of their own.
    assert_eq!(sts(&d).metadata.name.as_deref(), Some("net"));
    let w = wallets_sts(&d).spec.as_ref().unwrap();
    assert_eq!(w.replicas, Some(1));
    assert_eq!(
        w.selector.match_labels.as_ref().unwrap()["app.kubernetes.io/name"],
        "monero-wallet-rpc"
    );
    let p = wallets_pod(&d);
    let names: Vec<&str> = p.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["wallet-0", "wallet-1", "wallet-2", "exporter"]);
    let a = |i: usize| p.containers[i].args.clone().unwrap();
    // Wallet i talks to node i modulo the nodes, through its Service.
    assert!(a(0).contains(&"--daemon-address=net-0.ns.svc.cluster.local:18089".to_string()));
    assert!(a(2).contains(&"--daemon-address=net-0.ns.svc.cluster.local:18089".to_string()));
    assert!(a(1).contains(&"--rpc-bind-port=18084".to_string()));
    assert!(a(1).contains(&"--allow-mismatched-daemon-version".to_string()));
    assert!(!a(1).contains(&"--disable-rpc-login".to_string()));
    for c in &p.containers {
        let all = format!("{:?}", c.args);
        assert!(
            !all.contains("wallet-pass") && !all.contains("s3cret"),
            "{all}"
        );
        assert_eq!(
            c.security_context.as_ref().unwrap().run_as_non_root,
            Some(true)
        );
    }
    let conf = file(&d, "net-wallets", "wallet-rpc.conf");
    assert_eq!(
        conf,
        "rpc-login=dev:wallet-pass\ndaemon-login=alice:s3cret:with:colons\n"
    );
    assert_eq!(file(&d, "net-wallets", "rpc-login"), "dev:wallet-pass\n");
    assert_eq!(
        serde_json::from_str::<Value>(&file(&d, "net-wallets", "wallets.lab.json")).unwrap(),
        json!({"wallets": 3, "firstPort": 18083, "transactionsPerMinute": 4, "amount": 1000000000u64})
    );
    let ports: Vec<i32> = service(&d, "net-wallets")
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [18083, 18084, 18085]);
    // A new rate reaches the sidecar's file without restarting the wallets.
    let rate = |tpm: u32| {
        let d = build_any(
            net_named(
                json!({"replicas": 2, "template": {"spec": {"network": "regtest"}},
                             "wallets": {"count": 1, "transactionsPerMinute": tpm}}),
            ),
            &c,
        )
        .unwrap();
        let hash = template_hash(wallets_sts(&d));
        (hash, wallets_pod(&d).containers[0].args.clone().unwrap())
    };
    let (h1, args1) = rate(0);
    let (h2, _) = rate(60);
    assert_eq!(h1, h2);
    assert!(args1.contains(&"--disable-rpc-login".to_string()));
    // No wallets, no wallet objects.
    let none = build_any(net_named(json!({"replicas": 2})), &c).unwrap();
    assert!(
        none.names_of(|_| true)
            .iter()
            .all(|n| !n.contains("wallets"))
    );
}

#[test]
fn the_miners_mine_to_the_wallets_the_status_knows() {
    let mut n = net_named(
        json!({"replicas": 2, "template": {"spec": {"network": "regtest"}},
                                  "blocks": {"interval": "5s"}, "wallets": {"count": 2}}),
    );
    let d = build_any(n.clone(), &ctx()).unwrap();
    assert_eq!(lab_file(&d, 0)["mine"].get("addresses"), None);
    n["status"] = json!({"wallets": [{"index": 1, "address": "4b"}, {"index": 0, "address": "4a"},
                                     {"index": 7, "address": "4gone"}]});
    let known = build_any(n.clone(), &ctx()).unwrap();
    assert_eq!(
        lab_file(&known, 0)["mine"]["addresses"],
        json!(["4a", "4b"])
    );
    // Learning the addresses restarts no node.
    assert_eq!(hash(&d), hash(&known));
    // Wallets removed: the status's addresses are no longer mined to.
    n["spec"].as_object_mut().unwrap().remove("wallets");
    let gone = build_any(n, &ctx()).unwrap();
    assert_eq!(lab_file(&gone, 0)["mine"].get("addresses"), None);
}

#[test]
fn wallets_need_the_exporter_and_a_name_with_room() {
    let (f, msg) = refused(
        net_named(json!({"replicas": 1, "wallets": {},
                         "template": {"spec": {"exporter": {"enabled": false}}}})),
        &ctx(),
    );
    assert_eq!(f, "spec.wallets");
    assert!(msg.contains("exporter"), "{msg}");
    let (f, _) = refused(net_named(json!({"replicas": 0, "wallets": {}})), &ctx());
    assert_eq!(f, "spec.wallets");
    let long = "n".repeat(45);
    let (f, msg) = refused(
        named(
            "MoneroNetwork",
            &long,
            json!({"replicas": 1, "wallets": {}}),
        ),
        &ctx(),
    );
    assert_eq!(f, "metadata.name");
    assert!(msg.contains("at most 44"), "{msg}");
    // Without wallets the same name is fine.
    build_any(
        named("MoneroNetwork", &long, json!({"replicas": 1})),
        &ctx(),
    )
    .unwrap();
}

#[test]
fn a_network_of_one_node_runs_offline_so_it_can_make_blocks() {
    let one = build_any(net_named(json!({"replicas": 1, "blocks": {}})), &ctx()).unwrap();
    assert!(args(&one, "monerod").contains(&"--offline".to_string()));
    let two = build_any(net_named(json!({"replicas": 2, "blocks": {}})), &ctx()).unwrap();
    assert!(!args(&two, "monerod").contains(&"--offline".to_string()));
    // A node set's lone replica is left as the user wrote it.
    let set = build_any(
        named(
            "MoneroNodeSet",
            "nodes",
            json!({"replicas": 1, "network": "regtest"}),
        ),
        &ctx(),
    )
    .unwrap();
    assert!(!args(&set, "monerod").contains(&"--offline".to_string()));
}
