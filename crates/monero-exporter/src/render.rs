//! Turns a [`Snapshot`] into Prometheus metric families. Pure: no I/O, no clock.
//!
//! Naming: `monero_` prefix, base units (seconds, bytes, XMR), `_total` only on
//! counters. A value monerod hides behind a placeholder on a restricted port is left out,
//! never published.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use crate::collect::Snapshot;

/// Atomic units (piconero) per XMR.
const ATOMIC_PER_XMR: f64 = 1e12;

fn xmr(atomic: u64) -> f64 {
    atomic as f64 / ATOMIC_PER_XMR
}

/// Collects metric families, keeping one family per name.
#[derive(Default)]
pub(crate) struct Families {
    families: Vec<MetricFamily>,
}

impl Families {
    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        if let Some(i) = self.families.iter().position(|f| f.name() == name) {
            return &mut self.families[i];
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_owned());
        f.set_help(help.to_owned());
        f.set_field_type(kind);
        self.families.push(f);
        let last = self.families.len() - 1;
        &mut self.families[last]
    }

    fn push(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        labels: &[(&str, &str)],
        mut metric: Metric,
    ) {
        // Sorted by name, as every Prometheus client library writes them.
        let mut labels = labels.to_vec();
        labels.sort_unstable_by_key(|(k, _)| *k);
        metric.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name((*k).to_owned());
                    l.set_value((*v).to_owned());
                    l
                })
                .collect(),
        );
        self.family(name, help, kind).mut_metric().push(metric);
    }

    pub(crate) fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = Metric::default();
        m.set_gauge(g);
        self.push(name, help, MetricType::GAUGE, labels, m);
    }

    pub(crate) fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut c = Counter::default();
        c.set_value(value);
        let mut m = Metric::default();
        m.set_counter(c);
        self.push(name, help, MetricType::COUNTER, labels, m);
    }

    /// A histogram from raw observations, with the given upper bounds.
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        bounds: &[f64],
        values: impl Iterator<Item = f64>,
    ) {
        let mut counts = vec![0u64; bounds.len()];
        let (mut sum, mut count) = (0.0, 0u64);
        for v in values {
            sum += v;
            count += 1;
            for (i, b) in bounds.iter().enumerate() {
                if v <= *b {
                    counts[i] += 1;
                }
            }
        }
        let mut h = Histogram::default();
        h.set_sample_count(count);
        h.set_sample_sum(sum);
        h.set_bucket(
            bounds
                .iter()
                .zip(counts)
                .map(|(b, c)| {
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(*b);
                    bucket.set_cumulative_count(c);
                    bucket
                })
                .collect(),
        );
        let mut m = Metric::default();
        m.set_histogram(h);
        self.push(name, help, MetricType::HISTOGRAM, &[], m);
    }

    pub(crate) fn into_vec(self) -> Vec<MetricFamily> {
        self.families
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Upper bounds for transaction weights in the pool, in bytes.
const WEIGHT_BUCKETS: [f64; 8] = [
    1_000.0, 1_500.0, 2_000.0, 3_000.0, 5_000.0, 10_000.0, 30_000.0, 100_000.0,
];
/// Upper bounds for fee per byte of weight, in XMR.
const FEE_PER_BYTE_BUCKETS: [f64; 8] = [2e-8, 5e-8, 1e-7, 2e-7, 5e-7, 1e-6, 5e-6, 2e-5];
/// Upper bounds for the time a transaction has waited in the pool, in seconds.
const AGE_BUCKETS: [f64; 9] = [
    60.0, 120.0, 300.0, 600.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 86_400.0,
];

/// Every monerod metric one snapshot yields.
pub(crate) fn render(s: &Snapshot, out: &mut Families) {
    let up = s.info.outcome.ok().is_some();
    out.gauge(
        "monero_up",
        "1 if monerod answered get_info in this scrape, else 0.",
        &[],
        flag(up),
    );

    if let Some(i) = s.info.outcome.ok() {
        let restricted = i.is_restricted();
        out.gauge(
            "monero_rpc_restricted",
            "1 if the scraped RPC port is restricted: some metrics are then not available.",
            &[],
            flag(restricted),
        );
        out.gauge(
            "monero_blockchain_height",
            "Blocks in the local chain (get_block_count).",
            &[],
            i.height as f64,
        );
        out.gauge(
            "monero_blockchain_target_height",
            "Height of the best chain known from peers; equals the local height when nothing is ahead.",
            &[],
            i.target_height.max(i.height) as f64,
        );
        out.gauge(
            "monero_synchronized",
            "1 if monerod considers itself synchronized with the network.",
            &[],
            flag(i.synchronized),
        );
        out.gauge(
            "monero_busy_syncing",
            "1 while monerod is busy adding blocks from peers.",
            &[],
            flag(i.busy_syncing),
        );
        out.gauge(
            "monero_difficulty",
            "Difficulty of the next block.",
            &[],
            wide(&i.wide_difficulty, i.difficulty, i.difficulty_top64),
        );
        out.gauge(
            "monero_txpool_transactions",
            "Transactions in the pool.",
            &[],
            i.tx_pool_size as f64,
        );
        out.gauge(
            "monero_blockchain_transactions",
            "Transactions in the chain, coinbase excluded.",
            &[],
            i.tx_count as f64,
        );
        out.gauge(
            "monero_alternative_blocks",
            "Blocks known on alternative chains.",
            &[],
            i.alt_blocks_count as f64,
        );
        out.gauge(
            "monero_block_weight_limit_bytes",
            "Current block weight limit.",
            &[],
            i.block_weight_limit as f64,
        );
        out.gauge(
            "monero_block_weight_median_bytes",
            "Median weight of recent blocks.",
            &[],
            i.block_weight_median as f64,
        );
        out.gauge(
            "monero_target_block_time_seconds",
            "Target time between blocks.",
            &[],
            i.target as f64,
        );
        let version = i.version_checked().unwrap_or("unknown");
        out.gauge("monero_build_info", "Always 1; the labels carry monerod's version (unknown on a restricted port) and network.", &[("version", version), ("network", i.network())], 1.0);
        if !restricted {
            out.gauge(
                "monero_connections",
                "P2P connections by direction.",
                &[("direction", "in")],
                i.incoming_connections_count as f64,
            );
            out.gauge(
                "monero_connections",
                "P2P connections by direction.",
                &[("direction", "out")],
                i.outgoing_connections_count as f64,
            );
            out.gauge(
                "monero_peerlist_size",
                "Peers in the white (recently seen) and gray lists.",
                &[("list", "white")],
                i.white_peerlist_size as f64,
            );
            out.gauge(
                "monero_peerlist_size",
                "Peers in the white (recently seen) and gray lists.",
                &[("list", "gray")],
                i.grey_peerlist_size as f64,
            );
            out.gauge(
                "monero_rpc_connections",
                "Open RPC connections.",
                &[],
                i.rpc_connections_count as f64,
            );
            out.gauge(
                "monero_start_time_seconds",
                "Unix time monerod started.",
                &[],
                i.start_time as f64,
            );
            out.gauge(
                "monero_offline",
                "1 if monerod runs with --offline.",
                &[],
                flag(i.offline),
            );
            out.gauge(
                "monero_update_available",
                "1 if monerod knows of a newer release.",
                &[],
                flag(i.update_available),
            );
            if let Some(size) = i.database_size_checked() {
                out.gauge(
                    "monero_database_size_bytes",
                    "Size of the blockchain database.",
                    &[],
                    size as f64,
                );
            }
            if let Some(free) = i.free_space_checked() {
                out.gauge(
                    "monero_free_space_bytes",
                    "Free space on the disk holding the database.",
                    &[],
                    free as f64,
                );
            }
        }
    }

    if let Some(h) = s.last_block.outcome.ok().map(|r| &r.block_header) {
        out.gauge(
            "monero_last_block_timestamp_seconds",
            "Timestamp of the top block.",
            &[],
            h.timestamp as f64,
        );
        out.gauge(
            "monero_last_block_size_bytes",
            "Size of the top block.",
            &[],
            h.block_size as f64,
        );
        out.gauge(
            "monero_last_block_weight_bytes",
            "Weight of the top block.",
            &[],
            h.block_weight as f64,
        );
        out.gauge(
            "monero_last_block_reward_xmr",
            "Reward of the top block: emission plus fees.",
            &[],
            xmr(h.reward),
        );
        out.gauge(
            "monero_last_block_transactions",
            "Transactions in the top block, coinbase excluded.",
            &[],
            h.num_txes as f64,
        );
        out.gauge(
            "monero_last_block_major_version",
            "Major (hard fork) version of the top block.",
            &[],
            h.major_version as f64,
        );
    }

    if let Some(p) = s.txpool.outcome.ok().map(|t| &t.pool_stats) {
        out.gauge(
            "monero_txpool_bytes",
            "Total size of the transactions in the pool.",
            &[],
            p.bytes_total as f64,
        );
        out.gauge(
            "monero_txpool_fees_xmr",
            "Sum of the fees of the transactions in the pool.",
            &[],
            xmr(p.fee_total),
        );
        out.gauge(
            "monero_txpool_transaction_max_bytes",
            "Size of the largest transaction in the pool.",
            &[],
            p.bytes_max as f64,
        );
        out.gauge(
            "monero_txpool_transaction_median_bytes",
            "Median size of the transactions in the pool.",
            &[],
            p.bytes_med as f64,
        );
        out.gauge(
            "monero_txpool_transaction_min_bytes",
            "Size of the smallest transaction in the pool.",
            &[],
            p.bytes_min as f64,
        );
        out.gauge(
            "monero_txpool_transactions_older_than_10m",
            "Transactions in the pool for more than ten minutes.",
            &[],
            p.num_10m as f64,
        );
        out.gauge(
            "monero_txpool_double_spends",
            "Transactions in the pool seen double spending.",
            &[],
            p.num_double_spends as f64,
        );
        out.gauge(
            "monero_txpool_failing_transactions",
            "Transactions in the pool that failed verification.",
            &[],
            p.num_failing as f64,
        );
        out.gauge(
            "monero_txpool_not_relayed_transactions",
            "Transactions in the pool not relayed to peers.",
            &[],
            p.num_not_relayed as f64,
        );
        if p.txs_total > 0 {
            out.gauge(
                "monero_txpool_oldest_transaction_timestamp_seconds",
                "Receive time of the oldest transaction in the pool.",
                &[],
                p.oldest as f64,
            );
        }
    }

    if let Some(b) = s.backlog.outcome.ok().map(|b| &b.backlog) {
        out.histogram(
            "monero_txpool_transaction_weight_bytes",
            "Weight of the transactions in the pool.",
            &WEIGHT_BUCKETS,
            b.iter().map(|e| e.weight as f64),
        );
        out.histogram(
            "monero_txpool_transaction_fee_per_byte_xmr",
            "Fee per byte of weight of the transactions in the pool.",
            &FEE_PER_BYTE_BUCKETS,
            b.iter()
                .filter(|e| e.weight > 0)
                .map(|e| xmr(e.fee) / e.weight as f64),
        );
        out.histogram(
            "monero_txpool_transaction_age_seconds",
            "Time the transactions in the pool have waited.",
            &AGE_BUCKETS,
            b.iter().map(|e| e.time_in_pool as f64),
        );
    }

    if let Some(c) = s.connections.outcome.ok().map(|c| &c.connections) {
        let mut by: std::collections::BTreeMap<(&str, &str, &str), u64> = Default::default();
        for p in c {
            let dir = if p.incoming { "in" } else { "out" };
            *by.entry((dir, p.zone(), p.state.as_str())).or_default() += 1;
        }
        for ((dir, zone, state), n) in by {
            out.gauge(
                "monero_peers",
                "P2P connections by direction, network zone (ipv4, ipv6, tor, i2p) and state.",
                &[("direction", dir), ("zone", zone), ("state", state)],
                n as f64,
            );
        }
        for zone in ["ipv4", "ipv6", "tor", "i2p"] {
            let n = c.iter().filter(|p| p.zone() == zone).count();
            out.gauge("monero_peers_by_zone", "P2P connections per network zone, zero included, for alerting on a zone without peers.", &[("zone", zone)], n as f64);
        }
        let max_peer = c.iter().map(|p| p.height).max().unwrap_or_default();
        out.gauge(
            "monero_peers_max_height",
            "Highest chain height reported by a connected peer.",
            &[],
            max_peer as f64,
        );
        if let Some(i) = s.info.outcome.ok() {
            out.gauge(
                "monero_peer_height_lag_blocks",
                "How far the local chain is behind the highest peer (0 if ahead).",
                &[],
                max_peer.saturating_sub(i.height) as f64,
            );
        }
        let down: u64 = c.iter().map(|p| p.current_download).sum();
        let up: u64 = c.iter().map(|p| p.current_upload).sum();
        out.gauge(
            "monero_peers_download_bytes_per_second",
            "Current download rate summed over peers.",
            &[],
            down as f64,
        );
        out.gauge(
            "monero_peers_upload_bytes_per_second",
            "Current upload rate summed over peers.",
            &[],
            up as f64,
        );
    }

    if let Some(h) = s.hard_fork.outcome.ok() {
        out.gauge(
            "monero_hardfork_version",
            "Hard fork version in force.",
            &[],
            h.version as f64,
        );
        out.gauge(
            "monero_hardfork_enabled",
            "1 if that version is enabled.",
            &[],
            flag(h.enabled),
        );
        out.gauge(
            "monero_hardfork_earliest_height",
            "Earliest height of that version.",
            &[],
            h.earliest_height as f64,
        );
    }

    if let Some(f) = s.fee.outcome.ok() {
        out.gauge(
            "monero_fee_estimate_xmr_per_byte",
            "Estimated fee per byte of weight, by priority.",
            &[("priority", "default")],
            xmr(f.fee),
        );
        for (name, fee) in ["low", "normal", "elevated", "priority"]
            .iter()
            .zip(&f.fees)
        {
            out.gauge(
                "monero_fee_estimate_xmr_per_byte",
                "Estimated fee per byte of weight, by priority.",
                &[("priority", name)],
                xmr(*fee),
            );
        }
    }

    if let Some(b) = s.bans.outcome.ok() {
        out.gauge(
            "monero_bans",
            "Hosts currently banned.",
            &[],
            b.bans.len() as f64,
        );
    }

    if let Some(a) = s.alt_chains.outcome.ok() {
        out.gauge(
            "monero_alternative_chains",
            "Alternative chains known.",
            &[],
            a.chains.len() as f64,
        );
        let longest = a.chains.iter().map(|c| c.length).max().unwrap_or_default();
        out.gauge(
            "monero_alternative_chain_max_length_blocks",
            "Length of the longest alternative chain.",
            &[],
            longest as f64,
        );
    }

    if let Some(n) = s.net_stats.outcome.ok() {
        out.counter(
            "monero_network_received_bytes_total",
            "Bytes received from peers since monerod started.",
            &[],
            n.total_bytes_in as f64,
        );
        out.counter(
            "monero_network_sent_bytes_total",
            "Bytes sent to peers since monerod started.",
            &[],
            n.total_bytes_out as f64,
        );
        out.counter(
            "monero_network_received_packets_total",
            "Packets received from peers since monerod started.",
            &[],
            n.total_packets_in as f64,
        );
        out.counter(
            "monero_network_sent_packets_total",
            "Packets sent to peers since monerod started.",
            &[],
            n.total_packets_out as f64,
        );
    }

    if let Some(l) = s.limit.outcome.ok() {
        // monerod counts these limits in kB of 1024 bytes.
        out.gauge(
            "monero_rate_limit_down_bytes_per_second",
            "Download rate limit.",
            &[],
            (l.limit_down * 1024) as f64,
        );
        out.gauge(
            "monero_rate_limit_up_bytes_per_second",
            "Upload rate limit.",
            &[],
            (l.limit_up * 1024) as f64,
        );
    }

    if let Some(m) = s.mining.outcome.ok() {
        out.gauge(
            "monero_mining_active",
            "1 if monerod's built-in miner runs.",
            &[],
            flag(m.active),
        );
        out.gauge(
            "monero_mining_hashrate_hashes_per_second",
            "Hash rate of monerod's built-in miner.",
            &[],
            m.speed as f64,
        );
        out.gauge(
            "monero_mining_threads",
            "Threads of monerod's built-in miner.",
            &[],
            m.threads_count as f64,
        );
    }
}

/// A 128-bit difficulty from its hex form, or from the two 64-bit halves.
fn wide(hex: &str, low: u64, top64: u64) -> f64 {
    u128::from_str_radix(hex.trim_start_matches("0x"), 16)
        .map(|v| v as f64)
        .unwrap_or(((top64 as u128) << 64 | low as u128) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{Outcome, Timed};
    use monero_rpc::*;
    use std::time::Duration;

    fn ok<T>(v: T) -> Timed<T> {
        Timed {
            outcome: Outcome::Ok(v),
            duration: Duration::from_millis(1),
        }
    }
    fn skipped<T>() -> Timed<T> {
        Timed {
            outcome: Outcome::Skipped,
            duration: Duration::ZERO,
        }
    }
    fn failed<T>() -> Timed<T> {
        Timed {
            outcome: Outcome::Failed("connection refused".into()),
            duration: Duration::ZERO,
        }
    }

    pub(crate) fn snapshot(info: Timed<GetInfo>) -> Snapshot {
        Snapshot {
            info,
            last_block: failed(),
            txpool: failed(),
            backlog: failed(),
            connections: failed(),
            hard_fork: failed(),
            fee: failed(),
            bans: failed(),
            alt_chains: failed(),
            net_stats: failed(),
            limit: failed(),
            mining: failed(),
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn collectors_names_every_collector_in_order() {
        let names: Vec<&str> = snapshot(failed())
            .collectors()
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(names, crate::collect::COLLECTORS);
    }

    fn text(s: &Snapshot) -> String {
        let mut f = Families::default();
        render(s, &mut f);
        prometheus::TextEncoder::new()
            .encode_to_string(&f.into_vec())
            .unwrap()
    }

    use monero_testkit::metric_value as value;

    #[test]
    fn down_daemon_gives_up_zero_and_nothing_else_from_monerod() {
        let t = text(&snapshot(failed()));
        assert_eq!(value(&t, "monero_up"), Some(0.0));
        assert_eq!(value(&t, "monero_blockchain_height"), None);
        assert_eq!(t.lines().filter(|l| !l.starts_with('#')).count(), 1, "{t}");
    }

    #[test]
    fn restricted_placeholders_are_never_published() {
        let info = GetInfo {
            restricted: true,
            height: 42,
            free_space: u64::MAX,
            database_size: 5 << 30,
            version: String::new(),
            nettype: "mainnet".into(),
            synchronized: true,
            ..Default::default()
        };
        let mut s = snapshot(ok(info));
        s.connections = skipped();
        let t = text(&s);
        assert_eq!(value(&t, "monero_up"), Some(1.0));
        assert_eq!(value(&t, "monero_rpc_restricted"), Some(1.0));
        assert_eq!(value(&t, "monero_blockchain_height"), Some(42.0));
        for hidden in [
            "monero_free_space_bytes",
            "monero_database_size_bytes",
            "monero_connections",
            "monero_peerlist_size",
            "monero_start_time_seconds",
        ] {
            assert!(
                !t.contains(hidden),
                "{hidden} must not appear for a restricted port:\n{t}"
            );
        }
        assert_eq!(
            value(
                &t,
                r#"monero_build_info{network="mainnet",version="unknown"}"#
            ),
            Some(1.0)
        );
    }

    #[test]
    fn unrestricted_values_and_units() {
        let info = GetInfo {
            height: 100,
            target_height: 0,
            incoming_connections_count: 2,
            outgoing_connections_count: 8,
            free_space: 1 << 30,
            database_size: 1 << 20,
            version: "0.18.4.0-release".into(),
            nettype: "fakechain".into(),
            wide_difficulty: "0x1_0000000000000000".replace('_', ""),
            ..Default::default()
        };
        let mut s = snapshot(ok(info));
        s.fee = ok(FeeEstimate {
            fee: 20_000,
            fees: vec![20_000, 80_000, 320_000, 4_000_000],
            ..Default::default()
        });
        s.limit = ok(Limit {
            limit_down: 8192,
            limit_up: 2048,
            ..Default::default()
        });
        s.net_stats = ok(NetStats {
            total_bytes_in: 5,
            total_bytes_out: 7,
            ..Default::default()
        });
        s.connections = ok(GetConnections {
            connections: vec![
                Connection {
                    incoming: true,
                    address_type: 4,
                    state: "normal".into(),
                    height: 105,
                    ..Default::default()
                },
                Connection {
                    incoming: false,
                    address_type: 1,
                    state: "normal".into(),
                    height: 90,
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let t = text(&s);
        assert_eq!(
            value(&t, "monero_blockchain_target_height"),
            Some(100.0),
            "target never below height"
        );
        assert_eq!(
            value(&t, r#"monero_connections{direction="in"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(&t, r#"monero_connections{direction="out"}"#),
            Some(8.0)
        );
        assert_eq!(
            value(&t, "monero_free_space_bytes"),
            Some((1u64 << 30) as f64)
        );
        assert_eq!(value(&t, "monero_difficulty"), Some(18446744073709551616.0));
        assert_eq!(
            value(
                &t,
                r#"monero_build_info{network="regtest",version="0.18.4.0-release"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &t,
                r#"monero_fee_estimate_xmr_per_byte{priority="default"}"#
            ),
            Some(2e-8)
        );
        assert_eq!(
            value(
                &t,
                r#"monero_fee_estimate_xmr_per_byte{priority="priority"}"#
            ),
            Some(4e-6)
        );
        assert_eq!(
            value(&t, "monero_rate_limit_down_bytes_per_second"),
            Some(8192.0 * 1024.0)
        );
        assert_eq!(value(&t, "monero_network_received_bytes_total"), Some(5.0));
        assert!(t.contains("# TYPE monero_network_received_bytes_total counter"));
        assert_eq!(
            value(
                &t,
                r#"monero_peers{direction="in",state="normal",zone="tor"}"#
            ),
            Some(1.0)
        );
        assert_eq!(value(&t, r#"monero_peers_by_zone{zone="i2p"}"#), Some(0.0));
        assert_eq!(value(&t, "monero_peers_max_height"), Some(105.0));
        assert_eq!(value(&t, "monero_peer_height_lag_blocks"), Some(5.0));
    }

    #[test]
    fn backlog_histograms_bucket_cumulatively() {
        let mut s = snapshot(ok(GetInfo::default()));
        s.backlog = ok(TxpoolBacklog {
            backlog: vec![
                TxBacklogEntry {
                    weight: 1_400,
                    fee: 28_000_000,
                    time_in_pool: 30,
                },
                TxBacklogEntry {
                    weight: 2_800,
                    fee: 56_000_000,
                    time_in_pool: 4_000,
                },
            ],
            ..Default::default()
        });
        let t = text(&s);
        assert_eq!(
            value(
                &t,
                r#"monero_txpool_transaction_weight_bytes_bucket{le="1500"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &t,
                r#"monero_txpool_transaction_weight_bytes_bucket{le="3000"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &t,
                r#"monero_txpool_transaction_weight_bytes_bucket{le="+Inf"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            value(&t, "monero_txpool_transaction_weight_bytes_sum"),
            Some(4_200.0)
        );
        assert_eq!(
            value(
                &t,
                r#"monero_txpool_transaction_age_seconds_bucket{le="60"}"#
            ),
            Some(1.0)
        );
        // 28e6 piconero / 1400 bytes = 2e-8 XMR per byte: on the first bound.
        assert_eq!(
            value(
                &t,
                r#"monero_txpool_transaction_fee_per_byte_xmr_bucket{le="0.00000002"}"#
            ),
            Some(2.0)
        );
    }
    #[test]
    fn one_concurrent_call_per_collector() {
        let s = snapshot(failed());
        assert_eq!(s.collectors().len(), crate::collect::CALLS_PER_SCRAPE);
    }

    /// The README's metrics table must name every metric the exporter can render.
    #[test]
    fn readme_documents_every_metric() {
        let info = GetInfo {
            height: 5,
            ..Default::default()
        };
        let mut s = snapshot(ok(info));
        s.last_block = ok(BlockHeaderResponse::default());
        s.txpool = ok(TransactionPoolStats {
            pool_stats: PoolStats {
                txs_total: 1,
                ..Default::default()
            },
            ..Default::default()
        });
        s.backlog = ok(TxpoolBacklog {
            backlog: vec![TxBacklogEntry {
                weight: 1,
                fee: 1,
                time_in_pool: 1,
            }],
            ..Default::default()
        });
        s.connections = ok(GetConnections {
            connections: vec![Connection::default()],
            ..Default::default()
        });
        s.hard_fork = ok(HardForkInfo::default());
        s.fee = ok(FeeEstimate {
            fees: vec![1, 2, 3, 4],
            ..Default::default()
        });
        s.bans = ok(GetBans::default());
        s.alt_chains = ok(AlternateChains::default());
        s.net_stats = ok(NetStats::default());
        s.limit = ok(Limit::default());
        s.mining = ok(MiningStatus::default());
        let mut f = Families::default();
        render(&s, &mut f);
        let readme = include_str!("../README.md");
        let families = f.into_vec();
        assert!(families.len() > 50, "a full snapshot renders every family");
        for family in families {
            let name = family.name();
            // Families documented in a grouped row appear as their distinct suffix.
            let documented = readme.contains(&format!("`{name}`"))
                || readme.contains(&format!("`{name}{{"))
                || readme.contains(&format!(
                    "`_{}`",
                    name.rsplit("_transaction_").next().unwrap_or(name)
                ));
            assert!(documented, "{name} is not in the README's metrics table");
        }
    }
}
