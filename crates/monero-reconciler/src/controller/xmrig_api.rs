//! The access token of a mining set's xmrig HTTP API: made once, at random,
//! into `<name>-xmrig-api`, and never rewritten while it exists.
//!
//! It is not one of the builder's children because a pure builder cannot make
//! a random token, and applying it each reconcile would replace the token the
//! running pods hold. Its owner reference collects it with the set.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::Store;

use super::caches;

use crate::build::{
    Owner, XMRIG_API_CONFIG_KEY, XMRIG_API_TOKEN_KEY, invalid, secret_data, xmrig_api_secret,
    xmrig_api_secret_name,
};
use crate::error::{Error, InvalidSpec};

/// A new token: 32 random bytes, hex.
pub fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Serialize {
        what: "a new xmrig API token".into(),
        message: e.to_string(),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates the set's API Secret when it does not exist. Returns whether it
/// did; an existing Secret without the keys the pods mount is an
/// [`InvalidSpec`] (the inner error), since the pods could not start.
///
/// A complete copy in `cached` (the cache of the Secrets the operator made)
/// is enough: the token is never rewritten. A missing or incomplete one is
/// read again with a GET before it is made or refused, since the cache may
/// lag behind the create of a moment ago.
pub async fn ensure(
    client: &kube::Client,
    cached: Option<&Store<Secret>>,
    owner: &Owner,
) -> Result<Result<bool, InvalidSpec>, Error> {
    let name = xmrig_api_secret_name(owner);
    if cached
        .and_then(|store| caches::get(store, &owner.namespace, &name))
        .is_some_and(|s| missing_keys(&s).is_empty())
    {
        return Ok(Ok(false));
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), &owner.namespace);
    let where_ = format!("Secret {}/{name}", owner.namespace);
    if let Some(live) = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading {where_}"), e))?
    {
        let missing = missing_keys(&live);
        if !missing.is_empty() {
            return Ok(Err(invalid(
                owner,
                "spec.exporter",
                format!(
                    "{where_} has no key {}: the miners mount it for xmrig's HTTP API; delete it and the operator makes a new one",
                    missing.join(" or ")
                ),
            )));
        }
        return Ok(Ok(false));
    }
    // Create, never apply: a concurrent reconcile that made it first wins,
    // and its token is the one every pod reads.
    match api
        .create(
            &PostParams::default(),
            &xmrig_api_secret(owner, &new_token()?),
        )
        .await
    {
        Ok(_) => Ok(Ok(true)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Ok(false)),
        Err(e) => Err(Error::kube(format!("creating {where_}"), e)),
    }
}

/// The keys the pods mount that `secret` lacks.
fn missing_keys(secret: &Secret) -> Vec<&'static str> {
    let data = secret_data(secret);
    [XMRIG_API_TOKEN_KEY, XMRIG_API_CONFIG_KEY]
        .into_iter()
        .filter(|k| !data.contains_key(*k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_digits_and_differ() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
