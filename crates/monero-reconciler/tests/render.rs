//! `render --identities`: the identities Secret a set's pods need to run outside a
//! cluster (hack/podrun.py), made the way the reconciler makes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use monero_anon::i2p::Destination;
use monero_anon::tor::OnionKey;
use monero_reconciler::build::{Child, Context};
use monero_reconciler::render::{Options, render_with};

const SET: &str = "kind: MoneroNodeSet\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: anon, namespace: ns}\n\
                   spec: {replicas: 2, tor: {enabled: true}, i2p: {enabled: true}, monerod: {rpc: {public: true}}}\n";

fn identities(yaml: &str, on: bool) -> Option<BTreeMap<String, Vec<u8>>> {
    let out = render_with(yaml, &Context::default(), Options { identities: on }).unwrap();
    out.iter().flat_map(|r| &r.children).find_map(|c| match c {
        Child::Secret(s) if s.metadata.name.as_deref() == Some("anon-identities") => Some(
            s.data
                .clone()
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        ),
        _ => None,
    })
}

#[test]
fn identities_are_printed_only_when_asked() {
    assert!(identities(SET, false).is_none());
    let keys = identities(SET, true).unwrap();
    assert_eq!(
        keys.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "anon-0.i2p",
            "anon-0.tor",
            "anon-1.i2p",
            "anon-1.tor",
            "rpc.tor"
        ]
    );
    // Real keys: tor's and i2pd's files, each its own.
    let onions: Vec<String> = ["anon-0.tor", "anon-1.tor", "rpc.tor"]
        .iter()
        .map(|k| OnionKey::from_secret_file(&keys[*k]).unwrap().address())
        .collect();
    assert_eq!(
        onions
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    for k in ["anon-0.i2p", "anon-1.i2p"] {
        assert!(
            Destination::from_keys_file(&keys[k])
                .unwrap()
                .address()
                .ends_with(".b32.i2p")
        );
    }
}

#[test]
fn identities_in_the_file_are_used_not_replaced() {
    let with_secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: anon-identities, namespace: ns}}\ndata: {{}}\n---\n{SET}"
    );
    assert!(identities(&with_secret, true).is_none());
}

#[test]
fn a_network_gets_identities_for_each_node_and_miners_none() {
    let net = "kind: MoneroNetwork\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: anon}\n\
               spec: {replicas: 3, template: {spec: {network: regtest, tor: {enabled: true}}}}\n";
    let keys = identities(net, true).unwrap();
    assert_eq!(
        keys.keys().map(String::as_str).collect::<Vec<_>>(),
        ["anon-0.tor", "anon-1.tor", "anon-2.tor", "rpc.tor"]
    );
    let plain =
        "kind: MoneroNodeSet\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: anon}\nspec: {}\n";
    assert!(identities(plain, true).is_none());
}

const MINERS: &str = "kind: MoneroMiningNodeSet\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: rig, namespace: ns}\n\
                      spec: {xmrig: {args: [-o, 'pool:1']}}\n";

fn api_token(yaml: &str, on: bool) -> Option<String> {
    let out = render_with(yaml, &Context::default(), Options { identities: on }).unwrap();
    out.iter().flat_map(|r| &r.children).find_map(|c| match c {
        Child::Secret(s) if s.metadata.name.as_deref() == Some("rig-xmrig-api") => {
            Some(String::from_utf8(s.data.clone().unwrap()["token"].0.clone()).unwrap())
        }
        _ => None,
    })
}

#[test]
fn a_mining_sets_api_token_is_printed_with_the_identities_fresh_each_time() {
    assert!(api_token(MINERS, false).is_none());
    let a = api_token(MINERS, true).unwrap();
    assert_eq!(a.len(), 64);
    assert_ne!(a, api_token(MINERS, true).unwrap());
    // Not without the exporter, and not when the file already holds the Secret.
    let off = MINERS.replace("xmrig:", "exporter: {enabled: false}, xmrig:");
    assert!(api_token(&off, true).is_none());
    let with_secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: rig-xmrig-api, namespace: ns}}\ndata: {{}}\n---\n{MINERS}"
    );
    assert!(api_token(&with_secret, true).is_none());
}

#[test]
fn a_config_map_in_the_file_stands_in_for_the_clusters_ban_list() {
    let set = "kind: MoneroNodeSet\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: pub, namespace: ns}\n\
               spec: {monerod: {banList: {name: bans, key: list}}}\n";
    let cm = "---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: bans, namespace: ns}\n\
              data: {list: \"# v2\\n198.51.100.7\\n\"}\n";
    let ban_list = |yaml: &str| {
        render_with(yaml, &Context::default(), Options { identities: false }).map(|out| {
            out.iter()
                .flat_map(|r| &r.children)
                .find_map(|c| match c {
                    Child::Secret(s) if s.metadata.name.as_deref() == Some("pub-monerod") => {
                        Some(s.data.clone().unwrap()["ban-list.txt"].0.clone())
                    }
                    _ => None,
                })
                .unwrap()
        })
    };
    assert_eq!(ban_list(&format!("{set}{cm}")).unwrap(), b"198.51.100.7\n");
    // Another namespace's ConfigMap is not this set's.
    let elsewhere = cm.replace("namespace: ns", "namespace: other");
    let e = ban_list(&format!("{set}{elsewhere}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ConfigMap bans not found"), "{e}");
}
