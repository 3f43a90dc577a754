//! The CRD schemas refuse bad objects the way the API server would: first the
//! structural schema (types, enums, ranges, required), checked with a JSON
//! Schema validator, then the CEL rules, evaluated by kube's CEL validator
//! (with the apiserver's defaulting applied first). The proposal's examples
//! and the samples must pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use kube::core::cel::{Validator, apply_defaults, compile_schema};
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema(kind: &str) -> Value {
    let crd = monero_crd::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    let v = &crd.spec.versions[0];
    serde_json::to_value(
        v.schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

/// Every reason the API server would give for refusing `obj` (an update when
/// `old` is given). Empty means accepted.
fn refusals(obj: &Value, old: Option<&Value>) -> Vec<String> {
    let kind = obj["kind"].as_str().unwrap();
    let schema = schema(kind);
    let obj = apply_defaults(&schema, obj);
    let old = old.map(|o| apply_defaults(&schema, o));
    let structural = jsonschema::draft4::new(&schema).unwrap();
    let mut out: Vec<String> = structural
        .iter_errors(&obj)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    if out.is_empty()
        && let Err(errors) = Validator::new().validate(&schema, &obj, old.as_ref())
    {
        out.extend(errors.as_slice().iter().map(|e| e.to_string()));
    }
    out
}

fn assert_refused(obj: &Value, old: Option<&Value>, needles: &[&str]) {
    let why = refusals(obj, old);
    assert!(!why.is_empty(), "accepted but should be refused: {obj}");
    let all = why.join("\n");
    for n in needles {
        assert!(all.contains(n), "refusal does not mention {n:?}:\n{all}");
    }
}

fn nodeset(spec: Value) -> Value {
    json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNodeSet",
           "metadata": {"name": "n"}, "spec": spec})
}

fn network(spec: Value) -> Value {
    json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
           "metadata": {"name": "n"}, "spec": spec})
}

fn miners(spec: Value) -> Value {
    json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet",
           "metadata": {"name": "m"}, "spec": spec})
}

fn samples() -> Vec<(String, Value)> {
    let dir = repo_root().join("config/samples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("utxo_") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((name, serde_saphyr::from_str::<Value>(&text).unwrap()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_samples_are_accepted_and_deserialize() {
    let samples = samples();
    assert_eq!(samples.len(), 7, "{samples:?}");
    for (name, obj) in samples {
        assert_eq!(refusals(&obj, None), Vec::<String>::new(), "{name}");
        match obj["kind"].as_str().unwrap() {
            "MoneroNodeSet" => {
                drop(serde_json::from_value::<monero_crd::MoneroNodeSet>(obj).unwrap())
            }
            "MoneroNetwork" => {
                drop(serde_json::from_value::<monero_crd::MoneroNetwork>(obj).unwrap())
            }
            "MoneroMiningNodeSet" => {
                drop(serde_json::from_value::<monero_crd::MoneroMiningNodeSet>(obj).unwrap())
            }
            other => panic!("unexpected kind {other} in {name}"),
        }
    }
}

#[test]
fn the_proposals_examples_are_the_samples() {
    // The samples are the proposal's YAML; a reformatting of the samples that
    // changed what they say would show here.
    let samples = samples();
    let by_name = |n: &str| {
        samples
            .iter()
            .find(|(name, _)| name == n)
            .unwrap()
            .1
            .clone()
    };
    let ns = by_name("utxo_v1alpha1_moneronodeset.yaml");
    assert_eq!(ns["spec"]["replicas"], 3);
    assert_eq!(ns["spec"]["hardAntiAffinity"], true);
    assert_eq!(ns["spec"]["monerod"]["image"], "utxobr/monerod:v0.17.2.0");
    assert_eq!(ns["spec"]["monerod"]["args"].as_array().unwrap().len(), 6);
    let net = by_name("utxo_v1alpha1_moneronetwork.yaml");
    assert_eq!(
        net["spec"]["template"]["spec"]["monerod"]["args"],
        json!(["--regtest", "--fixed-difficulty=1"])
    );
    let m = by_name("utxo_v1alpha1_monerominingnodeset.yaml");
    assert!(
        m["spec"]["xmrig"]["args"][3]
            .as_str()
            .unwrap()
            .ends_with(".node-$(id)")
    );
    let tor = by_name("utxo_v1alpha1_moneronodeset_tor.yaml");
    assert_eq!(tor["spec"], json!({"tor": {"enabled": true}}));
}

#[test]
fn defaults_are_applied_as_the_api_server_would() {
    let obj = apply_defaults(&schema("MoneroNodeSet"), &nodeset(json!({})));
    assert_eq!(obj["spec"]["replicas"], 1);
    assert_eq!(obj["spec"]["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(obj["spec"]["exporter"]["enabled"], true);
    assert_eq!(obj["spec"]["readiness"], "Synchronized");
    let obj = apply_defaults(&schema("MoneroNetwork"), &network(json!({})));
    assert_eq!(obj["spec"]["replicas"], 2);
}

#[test]
fn args_pool_strings_and_miners_are_bounded_so_every_child_fits() {
    // Without bounds the largest object the schema allows would be whatever
    // fits in etcd, and the StatefulSet carrying it (or a config file per
    // replica repeating it) would not.
    let many: Vec<String> = (0..129).map(|i| format!("--f{i}")).collect();
    let long = "x".repeat(1025);
    assert_refused(
        &nodeset(json!({"monerod": {"args": many}})),
        None,
        &["/spec/monerod/args"],
    );
    assert_refused(
        &nodeset(json!({"monerod": {"args": [long]}})),
        None,
        &["/spec/monerod/args/0"],
    );
    assert_refused(
        &network(json!({"template": {"spec": {"monerod": {"args": many}}}})),
        None,
        &["/spec/template/spec/monerod/args"],
    );
    assert_refused(
        &miners(json!({"xmrig": {"args": [long]}})),
        None,
        &["/spec/xmrig/args/0"],
    );
    for (field, n) in [("user", 513), ("pass", 257), ("rigId", 129)] {
        let mut pool = json!({"url": "p:1"});
        pool[field] = json!("x".repeat(n));
        assert_refused(
            &miners(json!({"xmrig": {"config": {"pools": [pool]}}})),
            None,
            &[&format!("/spec/xmrig/config/pools/0/{field}")],
        );
        pool[field] = json!("x".repeat(n - 1));
        assert_eq!(
            refusals(
                &miners(json!({"xmrig": {"config": {"pools": [pool]}}})),
                None
            ),
            Vec::<String>::new()
        );
    }
    // The status lists every miner in the same object as the spec.
    assert_refused(
        &miners(json!({"replicas": 1001})),
        None,
        &["/spec/replicas", "maximum"],
    );
    let at_most: Vec<String> = (0..128).map(|_| "y".repeat(1024)).collect();
    assert_eq!(
        refusals(
            &miners(json!({"replicas": 1000, "xmrig": {"args": at_most}})),
            None
        ),
        Vec::<String>::new()
    );
}

#[test]
fn a_solo_pool_with_a_wallet_is_accepted() {
    let pool = |p: Value| miners(json!({"xmrig": {"config": {"pools": [p]}}}));
    assert_eq!(
        refusals(&pool(json!({"nodeSet": "nodes", "user": "4abc"})), None),
        Vec::<String>::new()
    );
}

#[test]
fn clearnet_through_tor_with_tor_is_accepted() {
    assert_eq!(
        refusals(
            &nodeset(json!({"clearnet": "ThroughTor", "tor": {"enabled": true}})),
            None
        ),
        Vec::<String>::new()
    );
}

#[test]
fn an_unchanged_or_newly_set_network_is_accepted() {
    let old = nodeset(json!({"network": "stagenet"}));
    assert_eq!(refusals(&old, Some(&old)), Vec::<String>::new());
    // Setting it when it was unset is allowed (the args decided before).
    assert_eq!(
        refusals(&old, Some(&nodeset(json!({})))),
        Vec::<String>::new()
    );
    let net = network(json!({"template": {"spec": {"network": "regtest"}}}));
    assert_eq!(refusals(&net, Some(&net)), Vec::<String>::new());
}

#[test]
fn storage_may_grow() {
    let with = |s: Value| nodeset(json!({"storage": s}));
    let old = with(json!({"size": "100Gi", "storageClassName": "fast"}));
    assert_eq!(
        refusals(
            &with(json!({"size": "200Gi", "storageClassName": "fast"})),
            Some(&old)
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        refusals(
            &with(json!({"size": "0.5Ti", "storageClassName": "fast"})),
            Some(&old)
        ),
        Vec::<String>::new()
    );
}

#[test]
fn every_cel_rule_compiles_within_the_cost_budget() {
    for crd in monero_crd::crds() {
        let kind = crd.spec.names.kind.clone();
        let compiled = compile_schema(&schema(&kind));
        let errors: Vec<String> = compiled
            .compilation_errors()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:?}");
    }
}

#[test]
fn every_field_has_a_description() {
    fn walk(path: &str, s: &Value, missing: &mut Vec<String>) {
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                let here = format!("{path}.{name}");
                let skip = matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                if !skip
                    && p.get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                {
                    missing.push(here.clone());
                }
                walk(&here, p, missing);
            }
        }
        if let Some(items) = s.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
        if let Some(ap) = s.get("additionalProperties").filter(|v| v.is_object()) {
            walk(&format!("{path}{{}}"), ap, missing);
        }
    }
    for crd in monero_crd::crds() {
        let kind = crd.spec.names.kind.clone();
        let mut missing = Vec::new();
        walk(&kind, &schema(&kind), &mut missing);
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:#?}"
        );
    }
}

/// The API server validates every `default` in a CRD against the schema it
/// defaults (with the defaults below it applied) and refuses the CRD if one
/// does not fit, as an empty `topologyKey` once did.
#[test]
fn every_default_fits_its_own_schema() {
    fn walk(path: &str, s: &Value, bad: &mut Vec<String>) {
        if let Some(d) = s.get("default") {
            let d = apply_defaults(s, d);
            let v = jsonschema::draft4::new(s).unwrap();
            bad.extend(
                v.iter_errors(&d)
                    .map(|e| format!("{path}{}: {e}", e.instance_path())),
            );
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                walk(&format!("{path}.{name}"), p, bad);
            }
        }
        if let Some(items) = s.get("items") {
            walk(&format!("{path}[]"), items, bad);
        }
        if let Some(ap) = s.get("additionalProperties").filter(|v| v.is_object()) {
            walk(&format!("{path}{{}}"), ap, bad);
        }
    }
    for crd in monero_crd::crds() {
        let kind = crd.spec.names.kind.clone();
        let mut bad = Vec::new();
        walk(&kind, &schema(&kind), &mut bad);
        assert!(
            bad.is_empty(),
            "defaults the API server would refuse: {bad:#?}"
        );
    }
}

#[test]
fn every_kind_has_status_scale_and_printer_columns() {
    for crd in monero_crd::crds() {
        assert_eq!(crd.spec.group, "utxo.com.br");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        let sub = v.subresources.as_ref().unwrap();
        assert!(sub.status.is_some());
        let scale = sub.scale.as_ref().unwrap();
        assert_eq!(scale.spec_replicas_path, ".spec.replicas");
        assert_eq!(scale.status_replicas_path, ".status.replicas");
        assert_eq!(
            scale.label_selector_path.as_deref(),
            Some(".status.selector")
        );
        let cols: Vec<&str> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for c in ["Replicas", "Ready", "Age"] {
            assert!(cols.contains(&c), "{}: {cols:?}", crd.spec.names.kind);
        }
        if crd.spec.names.kind != "MoneroMiningNodeSet" {
            assert!(
                cols.contains(&"Height") && cols.contains(&"Synced"),
                "{cols:?}"
            );
        }
    }
}

#[test]
fn the_checked_in_crds_are_current() {
    let path = repo_root().join("config/crd/monero-operator.crds.yaml");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = monero_crd::crds_yaml().unwrap();
    assert!(
        checked_in == generated,
        "{} is stale: run `make crds` (monero-operator crd > that file) and commit it",
        path.display()
    );
}

/// The API server warns at every `kubectl apply` about a format it does not know
/// (schemars says `uint8`, `uint64`): only the formats Kubernetes lists may appear.
#[test]
fn every_format_is_one_the_api_server_knows() {
    const KNOWN: &[&str] = &[
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "binary",
        "date",
        "date-time",
        "datetime",
        "duration",
        "password",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
    ];
    fn walk(path: &str, s: &Value, bad: &mut Vec<String>) {
        match s {
            Value::Object(m) => {
                if let Some(Value::String(f)) = m.get("format")
                    && !KNOWN.contains(&f.as_str())
                {
                    bad.push(format!("{path}: {f}"));
                }
                for (k, v) in m {
                    walk(&format!("{path}.{k}"), v, bad);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(path, v, bad)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for crd in monero_crd::crds() {
        walk(
            &crd.spec.names.kind.clone(),
            &serde_json::to_value(&crd.spec).unwrap(),
            &mut bad,
        );
    }
    assert!(
        bad.is_empty(),
        "formats the API server does not know: {bad:#?}"
    );
}

/// One refusal case of `refusals.yaml`, the list the cluster tier also sends to a
/// real API server.
#[derive(serde::Deserialize)]
struct Refusal {
    name: String,
    kind: String,
    spec: Value,
    old: Option<Value>,
    field: String,
    message: Option<String>,
}

/// `spec.a.b[0]` as jsonschema's instance path: `/spec/a/b/0`.
fn pointer(field: &str) -> String {
    format!("/{}", field.replace(['.', '['], "/").replace(']', ""))
}

/// Whether jsonschema's errors point at `field`, or (a missing required field) at its
/// parent naming it, where the API server says `FIELD: Required value`.
fn names_field(why: &str, field: &str) -> bool {
    let (parent, leaf) = field.rsplit_once('.').unwrap_or(("", field));
    why.contains(&pointer(field))
        || why.contains(&format!(
            "{}: \"{leaf}\" is a required property",
            pointer(parent)
        ))
}

#[test]
fn every_shared_refusal_case_is_refused_offline_as_the_api_server_does() {
    let text =
        std::fs::read_to_string(repo_root().join("crates/monero-crd/tests/refusals.yaml")).unwrap();
    let cases: Vec<Refusal> = serde_saphyr::from_str(&text).unwrap();
    assert!(cases.len() > 20);
    let mut wrong = Vec::new();
    for c in &cases {
        let obj = |spec: &Value| {
            json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": c.kind,
                   "metadata": {"name": "r"}, "spec": spec})
        };
        let why = refusals(&obj(&c.spec), c.old.as_ref().map(obj).as_ref()).join("\n");
        match &c.message {
            _ if why.is_empty() => wrong.push(format!("{}: accepted", c.name)),
            // CEL refusals carry the rule's message; structural ones the field's path.
            Some(m) if !why.contains(m.as_str()) => {
                wrong.push(format!("{}: no {m:?} in {why}", c.name))
            }
            None if !names_field(&why, &c.field) => {
                wrong.push(format!("{}: no {} in {why}", c.name, pointer(&c.field)))
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
