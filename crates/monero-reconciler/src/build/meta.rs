//! Names, labels and owner references shared by every builder.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Field manager of every server-side apply, and the `app.kubernetes.io/managed-by` value.
pub const MANAGER: &str = "monero-operator";
/// Label naming the custom resource a child belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label naming the kind of workload (monerod or xmrig).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Label naming the custom resource's kind, lower case.
pub const PART_OF_LABEL: &str = "utxo.com.br/kind";
/// Pod template annotation carrying the hash of the config the pods read, so
/// a config or Secret change rolls them.
pub const CONFIG_HASH_ANNOTATION: &str = "utxo.com.br/config-hash";

/// The identity of the custom resource the children are built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Kind, such as MoneroNodeSet.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// UID; empty when rendering with no cluster (then no owner reference is set).
    pub uid: String,
}

impl Owner {
    /// Reads the identity from an object's metadata.
    pub fn of(kind: &str, meta: &ObjectMeta) -> Owner {
        Owner {
            kind: kind.into(),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            uid: meta.uid.clone().unwrap_or_default(),
        }
    }

    /// Labels that select this resource's pods (stable: never change them, a
    /// StatefulSet's selector is immutable).
    pub fn selector_labels(&self, workload: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NAME_LABEL.to_string(), workload.to_string()),
            (INSTANCE_LABEL.to_string(), self.name.clone()),
        ])
    }

    /// The selector as a label selector string, for the scale subresource.
    pub fn selector_string(&self, workload: &str) -> String {
        self.selector_labels(workload)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Labels on every child.
    pub fn labels(&self, workload: &str) -> BTreeMap<String, String> {
        let mut l = self.selector_labels(workload);
        l.insert(
            "app.kubernetes.io/managed-by".to_string(),
            MANAGER.to_string(),
        );
        l.insert(PART_OF_LABEL.to_string(), self.kind.to_lowercase());
        l
    }

    /// Metadata of a child named `name`, owned by this resource so that
    /// deleting the resource garbage-collects it.
    pub fn child_meta(&self, name: impl Into<String>, workload: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(workload)),
            owner_references: self.owner_reference().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    /// The controller owner reference, or none without a UID (rendering).
    pub fn owner_reference(&self) -> Option<OwnerReference> {
        (!self.uid.is_empty()).then(|| OwnerReference {
            api_version: format!("{}/{}", monero_crd::GROUP, monero_crd::VERSION),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
    }
}
