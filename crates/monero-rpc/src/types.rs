//! Request and response types. Field names mirror monerod's JSON names, so its RPC
//! documentation applies as is.
//!
//! Every response struct is `#[serde(default)]`: monerod leaves empty arrays out
//! (`connections`, `chains`, `backlog`, peer lists) and adds fields across versions, and
//! a missing field must not break a caller. Amounts are in atomic units (piconero,
//! 1 XMR = 10^12), sizes in bytes, times in Unix seconds unless a field says otherwise.

use serde::{Deserialize, Serialize};

use crate::client::RpcResponse;

macro_rules! with_status {
    ($($t:ty),* $(,)?) => {$(
        impl RpcResponse for $t {
            fn status(&self) -> Option<&str> {
                Some(self.status.as_str())
            }
        }
    )*};
}

/// `get_info`: the daemon's view of the chain and the network.
///
/// On a restricted RPC port monerod hides some fields behind placeholders (zero
/// connection and peer-list counts, `start_time` 0, `free_space` = `u64::MAX`, an empty
/// `version`, `database_size` rounded up to 5 GiB): check [`GetInfo::is_restricted`]
/// before trusting them, or use the `*_checked` accessors.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetInfo {
    pub status: String,
    pub untrusted: bool,
    pub height: u64,
    pub target_height: u64,
    pub height_without_bootstrap: u64,
    pub difficulty: u64,
    pub difficulty_top64: u64,
    pub wide_difficulty: String,
    pub cumulative_difficulty: u64,
    pub cumulative_difficulty_top64: u64,
    pub wide_cumulative_difficulty: String,
    /// Target seconds between blocks.
    pub target: u64,
    pub tx_count: u64,
    pub tx_pool_size: u64,
    pub alt_blocks_count: u64,
    pub outgoing_connections_count: u64,
    pub incoming_connections_count: u64,
    pub rpc_connections_count: u64,
    pub white_peerlist_size: u64,
    pub grey_peerlist_size: u64,
    pub mainnet: bool,
    pub testnet: bool,
    pub stagenet: bool,
    /// `mainnet`, `testnet`, `stagenet`, or `fakechain` for regtest.
    pub nettype: String,
    pub top_block_hash: String,
    pub block_size_limit: u64,
    pub block_weight_limit: u64,
    pub block_size_median: u64,
    pub block_weight_median: u64,
    pub adjusted_time: u64,
    pub start_time: u64,
    pub free_space: u64,
    pub offline: bool,
    pub busy_syncing: bool,
    pub synchronized: bool,
    pub version: String,
    pub database_size: u64,
    pub update_available: bool,
    pub bootstrap_daemon_address: String,
    pub was_bootstrap_ever_used: bool,
    /// True when answered by a restricted RPC port, as monerod says it: 0.17.2
    /// and older leave the field out (false here). [`GetInfo::is_restricted`]
    /// tells for every release.
    pub restricted: bool,
}

impl GetInfo {
    /// The network name as users write it: `regtest` for monerod's `fakechain`.
    pub fn network(&self) -> &str {
        match self.nettype.as_str() {
            "fakechain" => "regtest",
            "" if self.mainnet => "mainnet",
            "" if self.testnet => "testnet",
            "" if self.stagenet => "stagenet",
            other => other,
        }
    }

    /// Whether a restricted RPC port answered. monerod 0.17.2 and older do not
    /// say so; their restricted port is known by its placeholders, a free space
    /// of `u64::MAX` with an empty version, which an unrestricted port never
    /// gives (it reports the disk and its version).
    pub fn is_restricted(&self) -> bool {
        self.restricted || (self.free_space == u64::MAX && self.version.is_empty())
    }

    /// Free disk space, unless this is a restricted port's placeholder.
    pub fn free_space_checked(&self) -> Option<u64> {
        (!self.is_restricted() && self.free_space != u64::MAX).then_some(self.free_space)
    }

    /// Database size, unless rounded up by a restricted port.
    pub fn database_size_checked(&self) -> Option<u64> {
        (!self.is_restricted()).then_some(self.database_size)
    }

    /// The daemon's version string, unless hidden by a restricted port.
    pub fn version_checked(&self) -> Option<&str> {
        (!self.is_restricted() && !self.version.is_empty()).then_some(self.version.as_str())
    }

    /// `(incoming, outgoing)` connection counts, unless hidden by a restricted port.
    pub fn connections_checked(&self) -> Option<(u64, u64)> {
        (!self.is_restricted()).then_some((
            self.incoming_connections_count,
            self.outgoing_connections_count,
        ))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetBlockCount {
    pub status: String,
    pub untrusted: bool,
    /// Number of blocks in the chain: the height of the top block plus one.
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct BlockHeader {
    pub major_version: u64,
    pub minor_version: u64,
    pub timestamp: u64,
    pub prev_hash: String,
    pub nonce: u64,
    pub orphan_status: bool,
    pub height: u64,
    pub depth: u64,
    pub hash: String,
    pub difficulty: u64,
    pub difficulty_top64: u64,
    pub wide_difficulty: String,
    pub cumulative_difficulty: u64,
    pub cumulative_difficulty_top64: u64,
    pub wide_cumulative_difficulty: String,
    /// Block reward in atomic units.
    pub reward: u64,
    pub block_size: u64,
    pub block_weight: u64,
    pub num_txes: u64,
    pub pow_hash: String,
    pub long_term_weight: u64,
    pub miner_tx_hash: String,
}

/// `get_last_block_header`, `get_block_header_by_height`, `get_block_header_by_hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct BlockHeaderResponse {
    pub status: String,
    pub untrusted: bool,
    pub block_header: BlockHeader,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct BlockHeadersRange {
    pub status: String,
    pub untrusted: bool,
    pub headers: Vec<BlockHeader>,
}

/// Which block to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockId {
    Height(u64),
    Hash(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetBlock {
    pub status: String,
    pub untrusted: bool,
    /// The block as hex.
    pub blob: String,
    pub block_header: BlockHeader,
    /// The block decoded by monerod, as a JSON document in a string.
    pub json: String,
    pub miner_tx_hash: String,
    pub tx_hashes: Vec<String>,
}

/// One P2P connection, as `get_connections` and `sync_info` describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Connection {
    pub address: String,
    /// 1 IPv4, 2 IPv6, 3 I2P, 4 Tor; see [`Connection::zone`].
    pub address_type: u8,
    pub avg_download: u64,
    pub avg_upload: u64,
    pub connection_id: String,
    pub current_download: u64,
    pub current_upload: u64,
    pub height: u64,
    pub host: String,
    pub incoming: bool,
    pub ip: String,
    pub live_time: u64,
    pub local_ip: bool,
    pub localhost: bool,
    pub peer_id: String,
    pub port: String,
    pub pruning_seed: u32,
    pub recv_count: u64,
    pub recv_idle_time: u64,
    pub rpc_port: u16,
    pub send_count: u64,
    pub send_idle_time: u64,
    /// `before_handshake`, `synchronizing`, `standby`, `normal`.
    pub state: String,
    pub support_flags: u32,
}

impl Connection {
    /// The network zone of the peer's address: `ipv4`, `ipv6`, `i2p`, `tor` or `unknown`.
    pub fn zone(&self) -> &'static str {
        match self.address_type {
            1 => "ipv4",
            2 => "ipv6",
            3 => "i2p",
            4 => "tor",
            _ => "unknown",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetConnections {
    pub status: String,
    pub untrusted: bool,
    pub connections: Vec<Connection>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SyncPeer {
    pub info: Connection,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SyncSpan {
    pub connection_id: String,
    pub nblocks: u64,
    pub rate: u64,
    pub remote_address: String,
    pub size: u64,
    pub speed: u64,
    pub start_block_height: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SyncInfo {
    pub status: String,
    pub untrusted: bool,
    pub height: u64,
    pub target_height: u64,
    pub next_needed_pruning_seed: u32,
    pub overview: String,
    pub peers: Vec<SyncPeer>,
    pub spans: Vec<SyncSpan>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct HardForkInfo {
    pub status: String,
    pub untrusted: bool,
    pub earliest_height: u64,
    pub enabled: bool,
    pub state: u32,
    pub threshold: u32,
    pub version: u8,
    pub votes: u32,
    pub voting: u8,
    pub window: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct FeeEstimate {
    pub status: String,
    pub untrusted: bool,
    /// Fee per byte of weight, in atomic units, for the default priority.
    pub fee: u64,
    /// Fees per byte for the four priorities, lowest first.
    pub fees: Vec<u64>,
    pub quantization_mask: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct HardForkEntry {
    pub height: u64,
    pub hf_version: u8,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetVersion {
    pub status: String,
    pub untrusted: bool,
    /// The RPC interface version, `major << 16 | minor`; see [`GetVersion::rpc_version`].
    pub version: u32,
    pub release: bool,
    pub current_height: u64,
    pub target_height: u64,
    pub hard_forks: Vec<HardForkEntry>,
}

impl GetVersion {
    /// `(major, minor)` of the RPC interface.
    pub fn rpc_version(&self) -> (u16, u16) {
        ((self.version >> 16) as u16, (self.version & 0xffff) as u16)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Ban {
    pub host: String,
    pub ip: u32,
    /// Seconds left on the ban.
    pub seconds: u64,
}

/// One entry of `set_bans`: ban `host` (an IP address) for `seconds`, or lift its ban.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SetBan {
    pub host: String,
    pub ban: bool,
    /// How long the ban lasts; ignored when lifting one.
    pub seconds: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetBans {
    pub status: String,
    pub untrusted: bool,
    pub bans: Vec<Ban>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AlternateChain {
    pub block_hash: String,
    pub block_hashes: Vec<String>,
    pub difficulty: u64,
    pub difficulty_top64: u64,
    pub wide_difficulty: String,
    pub height: u64,
    /// Number of blocks in this alternative chain.
    pub length: u64,
    pub main_chain_parent_block: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AlternateChains {
    pub status: String,
    pub untrusted: bool,
    pub chains: Vec<AlternateChain>,
}

/// One transaction in the pool, as `get_txpool_backlog` summarises it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TxBacklogEntry {
    pub weight: u64,
    /// Fee in atomic units.
    pub fee: u64,
    pub time_in_pool: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TxpoolBacklog {
    pub status: String,
    pub untrusted: bool,
    pub backlog: Vec<TxBacklogEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct BlockTemplate {
    pub status: String,
    pub untrusted: bool,
    pub blocktemplate_blob: String,
    pub blockhashing_blob: String,
    pub difficulty: u64,
    pub difficulty_top64: u64,
    pub wide_difficulty: String,
    pub expected_reward: u64,
    pub height: u64,
    pub next_seed_hash: String,
    pub prev_hash: String,
    pub reserved_offset: u64,
    pub seed_hash: String,
    pub seed_height: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SubmitBlock {
    pub status: String,
    pub untrusted: bool,
    /// Hash of the accepted block (monerod 0.18.1 and later).
    pub block_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GenerateBlocks {
    pub status: String,
    pub untrusted: bool,
    /// Height of the last generated block.
    pub height: u64,
    pub blocks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct CoinbaseTxSum {
    pub status: String,
    pub untrusted: bool,
    pub emission_amount: u64,
    pub emission_amount_top64: u64,
    pub wide_emission_amount: String,
    pub fee_amount: u64,
    pub fee_amount_top64: u64,
    pub wide_fee_amount: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetHeight {
    pub status: String,
    pub untrusted: bool,
    /// Number of blocks in the chain, like `get_block_count`.
    pub height: u64,
    /// Hash of the top block.
    pub hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TxpoolHisto {
    pub txs: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PoolStats {
    pub bytes_max: u32,
    pub bytes_med: u32,
    pub bytes_min: u32,
    pub bytes_total: u64,
    pub fee_total: u64,
    /// Age histogram of the pool, ten buckets; see monerod's `txpool_stats`.
    pub histo: Vec<TxpoolHisto>,
    pub histo_98pc: u64,
    /// Transactions in the pool for more than ten minutes.
    pub num_10m: u32,
    pub num_double_spends: u32,
    pub num_failing: u32,
    pub num_not_relayed: u32,
    /// Receive time of the oldest transaction.
    pub oldest: u64,
    pub txs_total: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TransactionPoolStats {
    pub status: String,
    pub untrusted: bool,
    pub pool_stats: PoolStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PoolTransaction {
    pub id_hash: String,
    pub blob_size: u64,
    pub weight: u64,
    pub fee: u64,
    pub do_not_relay: bool,
    pub double_spend_seen: bool,
    pub kept_by_block: bool,
    pub last_failed_height: u64,
    pub last_failed_id_hash: String,
    pub last_relayed_time: u64,
    pub max_used_block_height: u64,
    pub max_used_block_id_hash: String,
    pub receive_time: u64,
    pub relayed: bool,
    pub tx_blob: String,
    pub tx_json: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SpentKeyImage {
    pub id_hash: String,
    pub txs_hashes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TransactionPool {
    pub status: String,
    pub untrusted: bool,
    pub transactions: Vec<PoolTransaction>,
    pub spent_key_images: Vec<SpentKeyImage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Transaction {
    pub tx_hash: String,
    pub as_hex: String,
    pub as_json: String,
    pub pruned_as_hex: String,
    pub prunable_as_hex: String,
    pub prunable_hash: String,
    pub block_height: u64,
    pub block_timestamp: u64,
    pub confirmations: u64,
    pub double_spend_seen: bool,
    pub in_pool: bool,
    pub output_indices: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GetTransactions {
    pub status: String,
    pub untrusted: bool,
    pub txs: Vec<Transaction>,
    pub txs_as_hex: Vec<String>,
    /// Requested hashes that monerod does not know.
    pub missed_tx: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct NetStats {
    pub status: String,
    pub untrusted: bool,
    pub start_time: u64,
    pub total_packets_in: u64,
    pub total_bytes_in: u64,
    pub total_packets_out: u64,
    pub total_bytes_out: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Peer {
    pub id: u64,
    pub host: String,
    pub ip: u32,
    pub port: u16,
    pub rpc_port: u16,
    pub rpc_credits_per_hash: u32,
    pub last_seen: u64,
    pub pruning_seed: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PeerList {
    pub status: String,
    pub untrusted: bool,
    pub white_list: Vec<Peer>,
    pub gray_list: Vec<Peer>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PublicNode {
    pub host: String,
    pub last_seen: u64,
    pub rpc_port: u16,
    pub rpc_credits_per_hash: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PublicNodes {
    pub status: String,
    pub untrusted: bool,
    pub white: Vec<PublicNode>,
    pub gray: Vec<PublicNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Limit {
    pub status: String,
    pub untrusted: bool,
    /// Download limit in kB/s.
    pub limit_down: u64,
    /// Upload limit in kB/s.
    pub limit_up: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct MiningStatus {
    pub status: String,
    pub untrusted: bool,
    pub active: bool,
    pub address: String,
    pub pow_algorithm: String,
    /// Hashes per second of the built-in miner.
    pub speed: u64,
    pub threads_count: u32,
    pub is_background_mining_enabled: bool,
    pub block_reward: u64,
    pub block_target: u32,
    pub difficulty: u64,
    pub difficulty_top64: u64,
    pub wide_difficulty: String,
}

/// `send_raw_transaction`. A refused transaction is not an error: `status` is `Failed`
/// and the flags say why; see [`SendRawTransaction::accepted`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SendRawTransaction {
    pub status: String,
    pub untrusted: bool,
    pub reason: String,
    pub not_relayed: bool,
    pub double_spend: bool,
    pub fee_too_low: bool,
    pub invalid_input: bool,
    pub invalid_output: bool,
    pub low_mixin: bool,
    pub overspend: bool,
    pub too_big: bool,
    pub too_few_outputs: bool,
    pub sanity_check_failed: bool,
    pub tx_extra_too_big: bool,
    pub nonzero_unlock_time: bool,
    pub not_rct: bool,
}

impl SendRawTransaction {
    pub fn accepted(&self) -> bool {
        self.status == "OK"
    }
}

impl RpcResponse for SendRawTransaction {
    fn status(&self) -> Option<&str> {
        // Only a busy daemon is an error; `Failed` comes with the reasons.
        (self.status == "BUSY").then_some("BUSY")
    }
}

/// Where a key image stands, per `is_key_image_spent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyImageSpentStatus {
    Unspent,
    SpentInBlockchain,
    SpentInPool,
    /// A value this crate does not know yet.
    Other(u32),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct KeyImagesSpent {
    pub status: String,
    pub untrusted: bool,
    /// One entry per key image asked about: 0 unspent, 1 spent in the chain, 2 in the pool.
    pub spent_status: Vec<u32>,
}

impl KeyImagesSpent {
    pub fn statuses(&self) -> impl Iterator<Item = KeyImageSpentStatus> + '_ {
        self.spent_status.iter().map(|s| match s {
            0 => KeyImageSpentStatus::Unspent,
            1 => KeyImageSpentStatus::SpentInBlockchain,
            2 => KeyImageSpentStatus::SpentInPool,
            n => KeyImageSpentStatus::Other(*n),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct StatusOnly {
    pub status: String,
    pub untrusted: bool,
}

with_status!(
    GetInfo,
    GetBlockCount,
    BlockHeaderResponse,
    BlockHeadersRange,
    GetBlock,
    GetConnections,
    SyncInfo,
    HardForkInfo,
    FeeEstimate,
    GetVersion,
    GetBans,
    AlternateChains,
    BlockTemplate,
    SubmitBlock,
    GenerateBlocks,
    CoinbaseTxSum,
    GetHeight,
    TransactionPoolStats,
    TransactionPool,
    GetTransactions,
    NetStats,
    PeerList,
    PublicNodes,
    Limit,
    MiningStatus,
    KeyImagesSpent,
    StatusOnly,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_arrays_and_new_fields_decode() {
        let c: GetConnections =
            serde_json::from_str(r#"{"status":"OK","untrusted":false,"brand_new":1}"#).unwrap();
        assert!(c.connections.is_empty());
        let p: PeerList = serde_json::from_str(r#"{"status":"OK"}"#).unwrap();
        assert!(p.white_list.is_empty() && p.gray_list.is_empty());
    }

    #[test]
    fn restricted_placeholders_are_not_exposed_by_checked_accessors() {
        let i = GetInfo {
            restricted: true,
            free_space: u64::MAX,
            database_size: 5 << 30,
            version: String::new(),
            ..Default::default()
        };
        assert_eq!(i.free_space_checked(), None);
        assert_eq!(i.database_size_checked(), None);
        assert_eq!(i.version_checked(), None);
        assert_eq!(i.connections_checked(), None);
        let i = GetInfo {
            free_space: 10,
            database_size: 20,
            version: "0.18.0.0".into(),
            incoming_connections_count: 2,
            outgoing_connections_count: 3,
            ..Default::default()
        };
        assert_eq!(i.free_space_checked(), Some(10));
        assert_eq!(i.database_size_checked(), Some(20));
        assert_eq!(i.version_checked(), Some("0.18.0.0"));
        assert_eq!(i.connections_checked(), Some((2, 3)));
    }

    #[test]
    fn a_restricted_port_of_0_17_2_is_known_by_its_placeholders() {
        // What monerod 0.17.2.0's restricted port answers (no `restricted` field).
        let old: GetInfo = serde_json::from_str(
            r#"{"status":"OK","height":1,"free_space":18446744073709551615,"version":"","database_size":5368709120}"#,
        )
        .unwrap();
        assert!(!old.restricted && old.is_restricted());
        assert_eq!(old.database_size_checked(), None);
        // Its unrestricted port reports the disk and its version.
        let open: GetInfo = serde_json::from_str(
            r#"{"status":"OK","height":1,"free_space":57780195328,"version":"0.17.2.0-unknown","database_size":81920}"#,
        )
        .unwrap();
        assert!(!open.is_restricted());
        assert_eq!(open.database_size_checked(), Some(81920));
    }

    #[test]
    fn network_names() {
        let n = |t: &str| {
            GetInfo {
                nettype: t.into(),
                ..Default::default()
            }
            .network()
            .to_owned()
        };
        assert_eq!(n("fakechain"), "regtest");
        assert_eq!(n("stagenet"), "stagenet");
        let old = GetInfo {
            testnet: true,
            ..Default::default()
        };
        assert_eq!(old.network(), "testnet");
    }

    #[test]
    fn rpc_version_split() {
        let v = GetVersion {
            version: 196618,
            ..Default::default()
        };
        assert_eq!(v.rpc_version(), (3, 10));
    }
}
