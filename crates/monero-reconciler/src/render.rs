//! `monero-operator render`: the builders run on the custom resources of a
//! YAML file, with no cluster. Secrets, ConfigMaps and MoneroNodeSets in the
//! same file stand in for the cluster's (for logins, ban lists and solo mining).

use std::collections::BTreeMap;

use monero_crd::{MoneroMiningNodeSet, MoneroNetwork, MoneroNodeSet};
use serde_json::Value;

use crate::build::{self, Child, Context};
use crate::controller::{identities, xmrig_api};

/// Why a file could not be rendered. The message names the document and,
/// for an invalid object, the object and the field.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The file is not YAML.
    #[error("not a YAML stream: {0}")]
    Yaml(String),
    /// A document does not fit its kind's schema.
    #[error("document {index} ({kind} {name}): {message}")]
    Decode {
        /// Position in the stream, from 1.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// What serde said, with the field path.
        message: String,
    },
    /// The builders refused an object.
    #[error(transparent)]
    Invalid(#[from] crate::InvalidSpec),
    /// Output could not be written as YAML.
    #[error("writing YAML: {0}")]
    Output(String),
    /// A new Tor or I2P identity, or an access token, could not be made.
    #[error("making keys for {source_name}: {message}")]
    Keygen {
        /// `Kind/namespace/name` of the custom resource.
        source_name: String,
        /// What went wrong.
        message: String,
    },
}

/// What `render` prints besides the applied children.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Also print each set's `<name>-identities` Secret with fresh Tor and I2P
    /// keys, and each mining set's `<name>-xmrig-api` Secret with a fresh
    /// access token, as the operator creates them on the first reconcile,
    /// unless the file already holds them. Without them the rendered pods
    /// cannot start outside a cluster (hack/podrun.py runs them); applying
    /// them to a cluster is safe, since the operator keeps what it finds.
    pub identities: bool,
}

/// One rendered custom resource: its identity and its children.
#[derive(Debug)]
pub struct Rendered {
    /// `Kind/namespace/name` of the custom resource.
    pub source: String,
    /// What the operator would apply for it.
    pub children: Vec<Child>,
}

enum Cr {
    NodeSet(Box<MoneroNodeSet>),
    Network(Box<MoneroNetwork>),
    Mining(Box<MoneroMiningNodeSet>),
}

fn decode<T: serde::de::DeserializeOwned>(index: usize, doc: &Value) -> Result<T, RenderError> {
    let kind = doc["kind"].as_str().unwrap_or("").to_string();
    let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
    let fail = |message: String| RenderError::Decode {
        index,
        kind: kind.clone(),
        name: name.clone(),
        message,
    };
    if let Some(schema) = schema_of(&kind) {
        let mut problems = Vec::new();
        unknown_fields("", doc, &schema, &mut problems);
        if let Ok(v) = jsonschema::draft4::new(&schema) {
            problems.extend(v.iter_errors(doc).map(|e| {
                let path = e
                    .instance_path()
                    .to_string()
                    .trim_start_matches('/')
                    .replace('/', ".");
                format!("{path}: {e}")
            }));
        }
        if !problems.is_empty() {
            return Err(fail(problems.join("; ")));
        }
    }
    serde_path_to_error::deserialize(doc).map_err(|e| fail(format!("{}: {}", e.path(), e.inner())))
}

/// The openAPIV3Schema of one of our kinds.
fn schema_of(kind: &str) -> Option<Value> {
    let crd = monero_crd::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)?;
    let schema = crd
        .spec
        .versions
        .first()?
        .schema
        .as_ref()?
        .open_api_v3_schema
        .as_ref()?;
    serde_json::to_value(schema).ok()
}

/// Fields the schema does not know. The API server would drop them (and
/// kubectl warns), so a typo such as `replica:` would silently do nothing.
fn unknown_fields(path: &str, v: &Value, schema: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = schema.get("x-kubernetes-preserve-unknown-fields").is_some();
            for (k, child) in map {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    unknown_fields(&here, child, s, out);
                } else if let Some(s) = additional.filter(|a| a.is_object()) {
                    unknown_fields(&here, child, s, out);
                } else if props.is_some() && !preserve {
                    out.push(format!("{here}: unknown field"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(&format!("{path}[{i}]"), item, s, out);
                }
            }
        }
        _ => {}
    }
}

/// Renders every custom resource in `yaml`, in file order.
pub fn render(yaml: &str, base: &Context) -> Result<Vec<Rendered>, RenderError> {
    render_with(yaml, base, Options::default())
}

/// [`render`], with [`Options`].
pub fn render_with(
    yaml: &str,
    base: &Context,
    opts: Options,
) -> Result<Vec<Rendered>, RenderError> {
    // YAML 1.2 booleans only: `name: n` is a name, not `false`.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(yaml, options)
        .map_err(|e| RenderError::Yaml(e.to_string()))?;
    let mut crs = Vec::new();
    let mut ctx = base.clone();
    let mut secrets_by_ns: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<u8>>>> =
        BTreeMap::new();
    let mut node_sets_by_ns: BTreeMap<String, BTreeMap<String, monero_crd::Network>> =
        BTreeMap::new();
    let mut config_maps_by_ns: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> =
        BTreeMap::new();
    for (i, doc) in docs.iter().enumerate() {
        let index = i + 1;
        if doc.is_null() {
            continue;
        }
        let ns = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        match doc["kind"].as_str() {
            Some("MoneroNodeSet") => {
                let mut o: MoneroNodeSet = decode(index, doc)?;
                o.metadata.namespace.get_or_insert(ns.clone());
                let owner = build::Owner::of("MoneroNodeSet", &o.metadata);
                let net = build::effective_network(&owner, &o.spec.node, "spec")?;
                node_sets_by_ns
                    .entry(ns)
                    .or_default()
                    .insert(owner.name.clone(), net);
                crs.push(Cr::NodeSet(Box::new(o)));
            }
            Some("MoneroNetwork") => {
                let mut o: MoneroNetwork = decode(index, doc)?;
                o.metadata.namespace.get_or_insert(ns);
                crs.push(Cr::Network(Box::new(o)));
            }
            Some("MoneroMiningNodeSet") => {
                let mut o: MoneroMiningNodeSet = decode(index, doc)?;
                o.metadata.namespace.get_or_insert(ns);
                crs.push(Cr::Mining(Box::new(o)));
            }
            Some("Secret") => {
                let s: k8s_openapi::api::core::v1::Secret = decode(index, doc)?;
                let name = s.metadata.name.clone().unwrap_or_default();
                secrets_by_ns
                    .entry(ns)
                    .or_default()
                    .insert(name, build::secret_data(&s));
            }
            Some("ConfigMap") => {
                let c: k8s_openapi::api::core::v1::ConfigMap = decode(index, doc)?;
                let name = c.metadata.name.clone().unwrap_or_default();
                config_maps_by_ns
                    .entry(ns)
                    .or_default()
                    .insert(name, c.data.unwrap_or_default());
            }
            // Anything else in the file is not ours to render.
            _ => {}
        }
    }
    let mut out = Vec::new();
    for cr in crs {
        let (ns, source) = match &cr {
            Cr::NodeSet(o) => (ns_of(&o.metadata), id("MoneroNodeSet", &o.metadata)),
            Cr::Network(o) => (ns_of(&o.metadata), id("MoneroNetwork", &o.metadata)),
            Cr::Mining(o) => (ns_of(&o.metadata), id("MoneroMiningNodeSet", &o.metadata)),
        };
        ctx.secrets = secrets_by_ns.get(&ns).cloned().unwrap_or_default();
        ctx.node_sets = node_sets_by_ns.get(&ns).cloned().unwrap_or_default();
        ctx.config_maps = config_maps_by_ns.get(&ns).cloned().unwrap_or_default();
        let desired = match &cr {
            Cr::NodeSet(o) => build::node_set(o, &ctx)?,
            Cr::Network(o) => build::network(o, &ctx)?,
            Cr::Mining(o) => build::mining_set(o, &ctx)?,
        };
        let mut children = desired.children;
        let node = match &cr {
            Cr::NodeSet(o) => Some((&o.metadata, &o.spec.node, o.spec.replicas, "MoneroNodeSet")),
            Cr::Network(o) => Some((
                &o.metadata,
                &o.spec.template.spec.node,
                o.spec.replicas,
                "MoneroNetwork",
            )),
            Cr::Mining(_) => None,
        };
        if let Some((meta, node, replicas, kind)) = node.filter(|_| opts.identities) {
            let owner = build::Owner::of(kind, meta);
            let name = build::identity_secret_name(&owner);
            if !ctx.secrets.contains_key(&name) {
                let keys =
                    identities::missing(&owner, node, replicas, &BTreeMap::new()).map_err(|e| {
                        RenderError::Keygen {
                            source_name: source.clone(),
                            message: e.to_string(),
                        }
                    })?;
                if !keys.is_empty() {
                    let data = keys.into_iter().map(|k| (k.key, k.bytes)).collect();
                    children.insert(
                        0,
                        Child::Secret(Box::new(identities::new_secret(&owner, &data))),
                    );
                }
            }
        }
        if let Cr::Mining(o) = &cr
            && opts.identities
            && o.spec.exporter.enabled
        {
            let owner = build::Owner::of("MoneroMiningNodeSet", &o.metadata);
            if !ctx
                .secrets
                .contains_key(&build::xmrig_api_secret_name(&owner))
            {
                let token = xmrig_api::new_token().map_err(|e| RenderError::Keygen {
                    source_name: source.clone(),
                    message: e.to_string(),
                })?;
                children.insert(
                    0,
                    Child::Secret(Box::new(build::xmrig_api_secret(&owner, &token))),
                );
            }
        }
        out.push(Rendered { source, children });
    }
    Ok(out)
}

fn ns_of(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    m.namespace.clone().unwrap_or_else(|| "default".into())
}

fn id(kind: &str, m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!("{kind}/{}/{}", ns_of(m), m.name.as_deref().unwrap_or(""))
}

/// The rendered objects as one YAML stream, each preceded by a comment naming
/// the custom resource it comes from.
pub fn to_yaml(rendered: &[Rendered]) -> Result<String, RenderError> {
    let mut out = String::new();
    for r in rendered {
        for c in &r.children {
            let doc = serde_saphyr::to_string(c).map_err(|e| RenderError::Output(e.to_string()))?;
            out.push_str(&format!("---\n# from {}\n", r.source));
            out.push_str(&doc);
        }
    }
    Ok(out)
}
