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

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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
    vec![
        MoneroNodeSet::crd(),
        MoneroNetwork::crd(),
        MoneroMiningNodeSet::crd(),
    ]
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
