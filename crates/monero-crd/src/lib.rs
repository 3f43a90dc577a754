//! Custom resource types of monero-operator, group `utxo.com.br`, version `v1alpha1`.
//!
//! The types carry their own OpenAPI schema (descriptions, enums, ranges and CEL
//! rules), so `kubectl apply` refuses a bad object before the operator sees it.
//! [`crds`] returns the CustomResourceDefinitions and [`crds_yaml`] the YAML
//! checked in under `config/crd/`.

// kube's printcolumn(...) attributes repeat `type_ = ...`, which clippy takes for
// a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

mod common;
mod mining;
mod network;
mod nodeset;

pub use common::*;
pub use mining::*;
pub use network::*;
pub use nodeset::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

/// The API group of every kind.
pub const GROUP: &str = "utxo.com.br";
/// The API version of every kind.
pub const VERSION: &str = "v1alpha1";

/// Why the CRD YAML could not be produced.
#[derive(Debug, thiserror::Error)]
#[error("serializing CustomResourceDefinition {name}: {source}")]
pub struct CrdError {
    name: String,
    #[source]
    source: serde_saphyr::ser_error::Error,
}

/// The three CustomResourceDefinitions, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut out = vec![
        MoneroNodeSet::crd(),
        MoneroNetwork::crd(),
        MoneroMiningNodeSet::crd(),
    ];
    for crd in &mut out {
        for v in &mut crd.spec.versions {
            if let Some(s) = v
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                kubernetes_formats(s);
            }
        }
    }
    out
}

/// schemars names Rust's unsigned integers `uint8` ... `uint64`, formats the API
/// server does not know: it accepts the CRD but warns at every `kubectl apply`. The
/// ranges stay in `minimum`/`maximum`; the format becomes the signed one that holds them.
fn kubernetes_formats(s: &mut JSONSchemaProps) {
    s.format = match s.format.take().as_deref() {
        Some("uint8" | "uint16") => Some("int32".into()),
        Some("uint32" | "uint64") => Some("int64".into()),
        other => other.map(str::to_string),
    };
    let nested = s
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(s.items.iter_mut().flat_map(|i| match i {
            JSONSchemaPropsOrArray::Schema(one) => std::slice::from_mut(one.as_mut()),
            JSONSchemaPropsOrArray::Schemas(many) => many.as_mut_slice(),
        }))
        .chain(s.additional_properties.iter_mut().filter_map(|a| match a {
            JSONSchemaPropsOrBool::Schema(one) => Some(one.as_mut()),
            JSONSchemaPropsOrBool::Bool(_) => None,
        }))
        .chain(s.any_of.iter_mut().flatten())
        .chain(s.all_of.iter_mut().flatten())
        .chain(s.one_of.iter_mut().flatten());
    for n in nested {
        kubernetes_formats(n);
    }
}

/// The CRDs as one YAML stream (documents separated by `---`), as checked in.
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in crds() {
        let doc = serde_saphyr::to_string(&crd).map_err(|source| CrdError {
            name: crd.metadata.name.clone().unwrap_or_default(),
            source,
        })?;
        out.push_str("---\n");
        out.push_str(&doc);
    }
    Ok(out)
}
