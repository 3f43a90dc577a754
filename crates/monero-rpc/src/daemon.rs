//! One typed method per monerod RPC, named after the RPC in snake_case.

use serde::Serialize;
use serde_json::json;

use crate::client::{DaemonClient, check_status, decode};
use crate::error::{Error, Result, snippet};
use crate::types::*;

/// JSON-RPC methods (`/json_rpc`).
impl DaemonClient {
    pub async fn get_info(&self) -> Result<GetInfo> {
        self.json_rpc("get_info", ()).await
    }

    pub async fn get_block_count(&self) -> Result<GetBlockCount> {
        self.json_rpc("get_block_count", ()).await
    }

    pub async fn get_last_block_header(&self) -> Result<BlockHeaderResponse> {
        self.json_rpc("get_last_block_header", ()).await
    }

    pub async fn get_block_header_by_height(&self, height: u64) -> Result<BlockHeaderResponse> {
        self.json_rpc("get_block_header_by_height", json!({ "height": height }))
            .await
    }

    pub async fn get_block_header_by_hash(&self, hash: &str) -> Result<BlockHeaderResponse> {
        self.json_rpc("get_block_header_by_hash", json!({ "hash": hash }))
            .await
    }

    /// Headers from `start_height` to `end_height`, both included.
    pub async fn get_block_headers_range(
        &self,
        start_height: u64,
        end_height: u64,
    ) -> Result<BlockHeadersRange> {
        self.json_rpc(
            "get_block_headers_range",
            json!({ "start_height": start_height, "end_height": end_height }),
        )
        .await
    }

    pub async fn get_block(&self, block: BlockId) -> Result<GetBlock> {
        let params = match block {
            BlockId::Height(height) => json!({ "height": height }),
            BlockId::Hash(hash) => json!({ "hash": hash }),
        };
        self.json_rpc("get_block", params).await
    }

    /// Not served by a restricted RPC.
    pub async fn sync_info(&self) -> Result<SyncInfo> {
        self.json_rpc("sync_info", ()).await
    }

    /// Not served by a restricted RPC.
    pub async fn get_connections(&self) -> Result<GetConnections> {
        self.json_rpc("get_connections", ()).await
    }

    pub async fn hard_fork_info(&self) -> Result<HardForkInfo> {
        self.json_rpc("hard_fork_info", ()).await
    }

    /// The fee per byte to use now; `grace_blocks` looks that many blocks ahead.
    pub async fn get_fee_estimate(&self, grace_blocks: Option<u64>) -> Result<FeeEstimate> {
        match grace_blocks {
            Some(g) => {
                self.json_rpc("get_fee_estimate", json!({ "grace_blocks": g }))
                    .await
            }
            None => self.json_rpc("get_fee_estimate", ()).await,
        }
    }

    pub async fn get_version(&self) -> Result<GetVersion> {
        self.json_rpc("get_version", ()).await
    }

    /// Not served by a restricted RPC.
    pub async fn get_bans(&self) -> Result<GetBans> {
        self.json_rpc("get_bans", ()).await
    }

    /// Bans hosts or lifts their bans; a banned host's connections are dropped
    /// and it is refused until its ban ends. Not served by a restricted RPC.
    pub async fn set_bans(&self, bans: &[SetBan]) -> Result<()> {
        let _: StatusOnly = self.json_rpc("set_bans", json!({ "bans": bans })).await?;
        Ok(())
    }

    /// Not served by a restricted RPC.
    pub async fn get_alternate_chains(&self) -> Result<AlternateChains> {
        self.json_rpc("get_alternate_chains", ()).await
    }

    /// The pool as compact entries. monerod packs them as a binary blob inside the JSON
    /// string (with escapes that are not valid JSON), so this method decodes that blob
    /// itself rather than through serde.
    pub async fn get_txpool_backlog(&self) -> Result<TxpoolBacklog> {
        let method = "get_txpool_backlog";
        let body = self.json_rpc_raw(method).await?;
        decode_backlog(method, &body, self)
    }

    pub async fn get_block_template(
        &self,
        wallet_address: &str,
        reserve_size: u64,
    ) -> Result<BlockTemplate> {
        self.json_rpc(
            "get_block_template",
            json!({ "wallet_address": wallet_address, "reserve_size": reserve_size }),
        )
        .await
    }

    /// Submits mined blocks as hex blobs; a refused block is [`Error::Rpc`] with monerod's
    /// reason.
    pub async fn submit_block<S: AsRef<str>>(&self, blobs: &[S]) -> Result<SubmitBlock> {
        let blobs: Vec<&str> = blobs.iter().map(AsRef::as_ref).collect();
        self.json_rpc("submit_block", blobs).await
    }

    /// Mines `amount_of_blocks` blocks at once to `wallet_address` (regtest only; monerod
    /// calls this `generateblocks`).
    pub async fn generate_blocks(
        &self,
        amount_of_blocks: u64,
        wallet_address: &str,
    ) -> Result<GenerateBlocks> {
        self.json_rpc(
            "generateblocks",
            json!({ "amount_of_blocks": amount_of_blocks, "wallet_address": wallet_address }),
        )
        .await
    }

    /// The hash of the block at `height`.
    pub async fn on_get_block_hash(&self, height: u64) -> Result<String> {
        self.json_rpc("on_get_block_hash", [height]).await
    }

    /// Coins emitted and fees paid in `count` blocks from `height`. Not served by a
    /// restricted RPC.
    pub async fn get_coinbase_tx_sum(&self, height: u64, count: u64) -> Result<CoinbaseTxSum> {
        self.json_rpc(
            "get_coinbase_tx_sum",
            json!({ "height": height, "count": count }),
        )
        .await
    }
}

/// "Other" endpoints, each at its own path.
impl DaemonClient {
    pub async fn get_height(&self) -> Result<GetHeight> {
        self.other("/get_height", &json!({})).await
    }

    pub async fn get_transaction_pool_stats(&self) -> Result<TransactionPoolStats> {
        self.other("/get_transaction_pool_stats", &json!({})).await
    }

    pub async fn get_transaction_pool(&self) -> Result<TransactionPool> {
        self.other("/get_transaction_pool", &json!({})).await
    }

    /// The transactions with these hashes; unknown ones are listed in `missed_tx`.
    pub async fn get_transactions<S: AsRef<str>>(
        &self,
        txs_hashes: &[S],
        decode_as_json: bool,
    ) -> Result<GetTransactions> {
        #[derive(Serialize)]
        struct Req<'a> {
            txs_hashes: Vec<&'a str>,
            decode_as_json: bool,
        }
        self.other(
            "/get_transactions",
            &Req {
                txs_hashes: txs_hashes.iter().map(AsRef::as_ref).collect(),
                decode_as_json,
            },
        )
        .await
    }

    /// Not served by a restricted RPC.
    pub async fn get_net_stats(&self) -> Result<NetStats> {
        self.other("/get_net_stats", &json!({})).await
    }

    /// Not served by a restricted RPC.
    pub async fn get_peer_list(&self) -> Result<PeerList> {
        self.other("/get_peer_list", &json!({})).await
    }

    /// Nodes that advertise a public RPC port.
    pub async fn get_public_nodes(&self, gray: bool, white: bool) -> Result<PublicNodes> {
        self.other(
            "/get_public_nodes",
            &json!({ "gray": gray, "white": white }),
        )
        .await
    }

    pub async fn get_limit(&self) -> Result<Limit> {
        self.other("/get_limit", &json!({})).await
    }

    /// Not served by a restricted RPC.
    pub async fn mining_status(&self) -> Result<MiningStatus> {
        self.other("/mining_status", &json!({})).await
    }

    /// Submits a signed transaction. A refusal is `Ok` with `accepted() == false` and
    /// the reason flags set; only a busy daemon or a transport failure is `Err`.
    pub async fn send_raw_transaction(
        &self,
        tx_as_hex: &str,
        do_not_relay: bool,
    ) -> Result<SendRawTransaction> {
        self.other(
            "/send_raw_transaction",
            &json!({ "tx_as_hex": tx_as_hex, "do_not_relay": do_not_relay }),
        )
        .await
    }

    pub async fn is_key_image_spent<S: AsRef<str>>(
        &self,
        key_images: &[S],
    ) -> Result<KeyImagesSpent> {
        let key_images: Vec<&str> = key_images.iter().map(AsRef::as_ref).collect();
        self.other("/is_key_image_spent", &json!({ "key_images": key_images }))
            .await
    }

    /// Asks monerod to shut down cleanly. Not served by a restricted RPC.
    pub async fn stop_daemon(&self) -> Result<()> {
        let _: StatusOnly = self.other("/stop_daemon", &json!({})).await?;
        Ok(())
    }
}

/// Size of one `tx_backlog_entry`: weight, fee and time in pool, each a little-endian u64.
const BACKLOG_ENTRY_LEN: usize = 24;

fn decode_backlog(method: &str, body: &[u8], client: &DaemonClient) -> Result<TxpoolBacklog> {
    let bad = |why: &str| Error::Decode {
        method: method.to_owned(),
        source: serde::de::Error::custom(why),
        snippet: snippet(body),
    };
    // Take the blob out, then let serde read the rest of the (now valid) JSON.
    let (blob, rest) = match extract_epee_string(body, b"\"backlog\"") {
        Some((blob, range)) => {
            let mut rest = Vec::with_capacity(body.len() - range.len() + 2);
            rest.extend_from_slice(&body[..range.start]);
            rest.extend_from_slice(b"\"\"");
            rest.extend_from_slice(&body[range.end..]);
            (blob, rest)
        }
        None => (Vec::new(), body.to_vec()),
    };
    #[derive(serde::Deserialize)]
    struct Envelope {
        result: Option<StatusOnly>,
        error: Option<serde_json::Value>,
    }
    let envelope: Envelope = decode(method, &rest)?;
    if let Some(error) = envelope.error {
        let code = error
            .get("code")
            .and_then(|c| c.as_i64())
            .unwrap_or_default();
        if code == -32601 {
            return Err(client.unavailable(method));
        }
        return Err(Error::Rpc {
            method: method.to_owned(),
            code,
            message: error
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_owned(),
        });
    }
    let result = envelope
        .result
        .ok_or_else(|| bad("no result in the JSON-RPC answer"))?;
    check_status(method, &result)?;
    if blob.len() % BACKLOG_ENTRY_LEN != 0 {
        return Err(bad("backlog blob is not a whole number of entries"));
    }
    let word = |chunk: &[u8], i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&chunk[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let backlog = blob
        .chunks_exact(BACKLOG_ENTRY_LEN)
        .map(|c| TxBacklogEntry {
            weight: word(c, 0),
            fee: word(c, 1),
            time_in_pool: word(c, 2),
        })
        .collect();
    Ok(TxpoolBacklog {
        status: result.status,
        untrusted: result.untrusted,
        backlog,
    })
}

/// Finds `key: "..."` in an epee JSON body and returns the string's raw bytes and the
/// byte range of the quoted value.
///
/// epee writes binary strings byte for byte, escaping only `\b \f \n \r \t \v " \ /`
/// (and `\u00XX` for a few others), which is why serde cannot read them.
fn extract_epee_string(body: &[u8], key: &[u8]) -> Option<(Vec<u8>, std::ops::Range<usize>)> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let mut i = at;
    while i < body.len() && (body[i].is_ascii_whitespace() || body[i] == b':') {
        i += 1;
    }
    if body.get(i) != Some(&b'"') {
        return None;
    }
    let start = i;
    i += 1;
    let mut out = Vec::new();
    while i < body.len() {
        match body[i] {
            b'"' => return Some((out, start..i + 1)),
            b'\\' => {
                let e = *body.get(i + 1)?;
                i += 2;
                match e {
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(0x0b),
                    b'u' => {
                        let hex = std::str::from_utf8(body.get(i..i + 4)?).ok()?;
                        out.push(u8::try_from(u32::from_str_radix(hex, 16).ok()?).ok()?);
                        i += 4;
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> DaemonClient {
        DaemonClient::new("http://127.0.0.1:1").unwrap()
    }

    fn entry(weight: u64, fee: u64, t: u64) -> Vec<u8> {
        [weight, fee, t]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    /// Escapes bytes the way epee's `transform_to_escape_sequence` does.
    fn epee_escape(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x0b => out.extend_from_slice(b"\\v"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'/' => out.extend_from_slice(b"\\/"),
                b => out.push(b),
            }
        }
        out
    }

    #[test]
    fn backlog_blob_with_every_escape_decodes() {
        // Values chosen so the blob holds quotes, backslashes, slashes, \v and NULs.
        let mut blob = entry(0x2f22_5c0b_0a09, 1_200_000, 7);
        blob.extend(entry(1500, 0x0c08_0d00, 0));
        let mut body = br#"{"id":"0","jsonrpc":"2.0","result":{"backlog":""#.to_vec();
        body.extend(epee_escape(&blob));
        body.extend_from_slice(br#"","credits":0,"status":"OK","untrusted":false}}"#);
        let b = decode_backlog("get_txpool_backlog", &body, &client()).unwrap();
        assert_eq!(b.status, "OK");
        assert_eq!(
            b.backlog,
            vec![
                TxBacklogEntry {
                    weight: 0x2f22_5c0b_0a09,
                    fee: 1_200_000,
                    time_in_pool: 7
                },
                TxBacklogEntry {
                    weight: 1500,
                    fee: 0x0c08_0d00,
                    time_in_pool: 0
                },
            ]
        );
    }

    #[test]
    fn empty_backlog_is_left_out_by_monerod() {
        let body = br#"{"id":"0","jsonrpc":"2.0","result":{"credits":0,"status":"OK","top_hash":"","untrusted":false}}"#;
        let b = decode_backlog("get_txpool_backlog", body, &client()).unwrap();
        assert!(b.backlog.is_empty());
    }

    #[test]
    fn truncated_backlog_is_a_decode_error() {
        let mut body = br#"{"result":{"backlog":""#.to_vec();
        body.extend_from_slice(b"abc");
        body.extend_from_slice(br#"","status":"OK"}}"#);
        let e = decode_backlog("get_txpool_backlog", &body, &client()).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        assert!(e.to_string().contains("get_txpool_backlog"));
    }
}
