//! Every method against a real regtest monerod (Debian package `monero`) on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use monero_rpc::{BlockId, DaemonClient, Error, KeyImageSpentStatus};
use monero_testkit::{
    Monerod, MonerodConfig, TEST_ADDRESS, WalletRpc, monerod_at_least, wait_until_async,
};

fn client(url: &str) -> DaemonClient {
    DaemonClient::builder(url)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_on_an_unrestricted_port() {
    let mut daemon = Monerod::start_default().unwrap();
    let c = client(&daemon.rpc_url());

    let info = c.get_info().await.unwrap();
    assert_eq!(info.status, "OK");
    assert_eq!(
        info.height, 1,
        "a fresh regtest chain has only the genesis block"
    );
    assert_eq!(info.network(), "regtest");
    assert!(!info.is_restricted());
    assert!(info.offline);
    assert!(info.version_checked().is_some_and(|v| v.starts_with("0.")));
    assert!(info.free_space_checked().is_some());

    let generated = c.generate_blocks(10, TEST_ADDRESS).await.unwrap();
    assert_eq!(generated.blocks.len(), 10);
    assert_eq!(generated.height, 10, "height of the last generated block");
    assert_eq!(c.get_block_count().await.unwrap().count, 11);
    let h = c.get_height().await.unwrap();
    assert_eq!(h.height, 11);
    assert_eq!(h.hash, generated.blocks[9]);
    assert_eq!(c.get_info().await.unwrap().height, 11);

    let last = c.get_last_block_header().await.unwrap().block_header;
    assert_eq!(last.height, 10);
    assert_eq!(last.hash, generated.blocks[9]);
    assert_eq!(last.depth, 0);
    assert!(last.reward > 0);

    let by_height = c.get_block_header_by_height(5).await.unwrap().block_header;
    let by_hash = c
        .get_block_header_by_hash(&by_height.hash)
        .await
        .unwrap()
        .block_header;
    assert_eq!(by_height, by_hash);
    assert_eq!(by_height.hash, generated.blocks[4]);
    assert_eq!(c.on_get_block_hash(5).await.unwrap(), by_height.hash);

    let range = c.get_block_headers_range(1, 10).await.unwrap().headers;
    assert_eq!(range.len(), 10);
    for pair in range.windows(2) {
        assert_eq!(pair[1].height, pair[0].height + 1);
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "headers chain by prev_hash"
        );
    }
    assert_eq!(range[4], by_height);

    let block = c.get_block(BlockId::Height(5)).await.unwrap();
    assert_eq!(block.block_header.hash, by_height.hash);
    assert!(!block.blob.is_empty() && block.json.contains("miner_tx"));
    assert_eq!(block.miner_tx_hash, by_height.miner_tx_hash);
    let same = c
        .get_block(BlockId::Hash(by_height.hash.clone()))
        .await
        .unwrap();
    assert_eq!(same.blob, block.blob);

    let unknown = "00".repeat(32);
    let txs = c
        .get_transactions(&[block.miner_tx_hash.clone(), unknown.clone()], true)
        .await
        .unwrap();
    assert_eq!(txs.txs.len(), 1);
    assert_eq!(txs.txs[0].tx_hash, block.miner_tx_hash);
    assert_eq!(txs.txs[0].block_height, 5);
    assert!(!txs.txs[0].in_pool);
    assert!(txs.txs[0].as_json.contains("vout"));
    assert_eq!(txs.missed_tx, vec![unknown.clone()]);

    let sync = c.sync_info().await.unwrap();
    assert_eq!(sync.height, 11);
    assert!(sync.peers.is_empty());
    assert!(c.get_connections().await.unwrap().connections.is_empty());

    let hf = c.hard_fork_info().await.unwrap();
    assert!(hf.enabled);
    assert!(hf.version >= 1);
    let fee = c.get_fee_estimate(None).await.unwrap();
    assert!(fee.fee > 0);
    // One fee per priority from 0.18 on; 0.17 gives only the base fee.
    let priorities = if monerod_at_least(&[0, 18]) { 4 } else { 0 };
    assert_eq!(fee.fees.len(), priorities);
    assert!(
        fee.fees.windows(2).all(|w| w[0] <= w[1]),
        "fees rise with priority"
    );
    assert!(c.get_fee_estimate(Some(10)).await.unwrap().fee > 0);
    let version = c.get_version().await.unwrap();
    assert!(version.rpc_version().0 >= 3);

    assert!(c.get_bans().await.unwrap().bans.is_empty());
    let ban = |host: &str, ban: bool| monero_rpc::SetBan {
        host: host.into(),
        ban,
        seconds: 600,
    };
    c.set_bans(&[ban("198.51.100.7", true), ban("198.51.100.8", true)])
        .await
        .unwrap();
    let mut banned: Vec<String> = c
        .get_bans()
        .await
        .unwrap()
        .bans
        .into_iter()
        .map(|b| b.host)
        .collect();
    banned.sort();
    assert_eq!(banned, ["198.51.100.7", "198.51.100.8"]);
    c.set_bans(&[ban("198.51.100.7", false)]).await.unwrap();
    let bans = c.get_bans().await.unwrap().bans;
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].host, "198.51.100.8");
    assert!(bans[0].seconds > 0 && bans[0].seconds <= 600, "{bans:?}");
    c.set_bans(&[ban("198.51.100.8", false)]).await.unwrap();
    assert!(c.get_bans().await.unwrap().bans.is_empty());
    assert!(c.get_alternate_chains().await.unwrap().chains.is_empty());
    assert!(c.get_txpool_backlog().await.unwrap().backlog.is_empty());

    // Difficulty is fixed at 1, so the template as given is a valid block.
    let template = c.get_block_template(TEST_ADDRESS, 8).await.unwrap();
    assert_eq!(template.height, 11);
    assert_eq!(template.prev_hash, generated.blocks[9]);
    assert!(template.expected_reward > 0);
    c.submit_block(&[&template.blocktemplate_blob])
        .await
        .unwrap();
    assert_eq!(c.get_block_count().await.unwrap().count, 12);
    match c.submit_block(&["00"]).await {
        Err(Error::Rpc { code, method, .. }) => {
            assert!(code < 0);
            assert_eq!(method, "submit_block");
        }
        other => panic!("a garbage block must be refused, got {other:?}"),
    }

    let sum = c.get_coinbase_tx_sum(0, 12).await.unwrap();
    let rewards: u64 = c
        .get_block_headers_range(0, 11)
        .await
        .unwrap()
        .headers
        .iter()
        .map(|h| h.reward)
        .sum();
    assert_eq!(
        sum.emission_amount, rewards,
        "emission equals the sum of block rewards"
    );

    let stats = c.get_transaction_pool_stats().await.unwrap().pool_stats;
    assert_eq!(stats.txs_total, 0);
    assert!(
        c.get_transaction_pool()
            .await
            .unwrap()
            .transactions
            .is_empty()
    );
    let net = c.get_net_stats().await.unwrap();
    assert!(net.start_time > 0);
    let peers = c.get_peer_list().await.unwrap();
    assert!(peers.white_list.is_empty() && peers.gray_list.is_empty());
    assert!(
        c.get_public_nodes(true, true)
            .await
            .unwrap()
            .white
            .is_empty()
    );
    let limit = c.get_limit().await.unwrap();
    assert!(limit.limit_down > 0 && limit.limit_up > 0);
    assert!(!c.mining_status().await.unwrap().active);

    let refused = c.send_raw_transaction("00", true).await.unwrap();
    assert!(!refused.accepted());
    assert_eq!(refused.status, "Failed");
    let spent = c.is_key_image_spent(&["11".repeat(32)]).await.unwrap();
    assert_eq!(
        spent.statuses().collect::<Vec<_>>(),
        vec![KeyImageSpentStatus::Unspent]
    );

    let address = c.address().to_owned();
    c.stop_daemon().await.unwrap();
    monero_testkit::wait_until(
        "monerod to exit after stop_daemon",
        Duration::from_secs(60),
        || !daemon.is_running(),
    )
    .unwrap();
    match c.get_block_count().await {
        Err(e @ Error::Connect { .. }) => {
            assert!(e.to_string().contains(&address), "{e}");
            assert!(e.is_transient());
        }
        other => panic!("a stopped daemon must give a connect error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_port_refuses_private_methods_and_hides_placeholders() {
    let daemon = Monerod::start_default().unwrap();
    let c = client(&daemon.restricted_url());

    let info = c.get_info().await.unwrap();
    assert!(info.is_restricted());
    assert_eq!(info.free_space, u64::MAX, "monerod's placeholder");
    assert_eq!(info.free_space_checked(), None);
    assert_eq!(info.version_checked(), None);
    assert_eq!(info.database_size_checked(), None);
    assert_eq!(info.connections_checked(), None);

    // Public methods work.
    assert_eq!(c.get_block_count().await.unwrap().count, 1);
    assert_eq!(c.get_height().await.unwrap().height, 1);
    assert!(c.get_fee_estimate(None).await.unwrap().fee > 0);
    assert!(c.get_txpool_backlog().await.unwrap().backlog.is_empty());
    assert_eq!(
        c.get_transaction_pool_stats()
            .await
            .unwrap()
            .pool_stats
            .txs_total,
        0
    );
    assert!(c.get_limit().await.unwrap().limit_up > 0);

    fn unavailable<T: std::fmt::Debug>(r: Result<T, Error>, expected: &str) {
        match r {
            Err(Error::MethodUnavailable { method, address }) => {
                assert_eq!(method, expected);
                assert!(address.starts_with("127.0.0.1:"));
            }
            other => panic!("{expected} must be unavailable on a restricted port, got {other:?}"),
        }
    }
    // JSON-RPC methods: code -32601.
    unavailable(c.get_connections().await, "get_connections");
    unavailable(c.sync_info().await, "sync_info");
    unavailable(c.get_bans().await, "get_bans");
    unavailable(c.set_bans(&[]).await, "set_bans");
    unavailable(c.get_alternate_chains().await, "get_alternate_chains");
    unavailable(c.get_coinbase_tx_sum(0, 1).await, "get_coinbase_tx_sum");
    unavailable(c.generate_blocks(1, TEST_ADDRESS).await, "generateblocks");
    // Other endpoints: HTTP 404.
    unavailable(c.get_net_stats().await, "/get_net_stats");
    unavailable(c.get_peer_list().await, "/get_peer_list");
    unavailable(c.mining_status().await, "/mining_status");
    unavailable(c.stop_daemon().await, "/stop_daemon");

    // The unrestricted port of the same daemon still serves them.
    let full = client(&daemon.rpc_url());
    assert!(full.get_connections().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_login_costs_one_round_trip_per_call() {
    let daemon = Monerod::start(MonerodConfig {
        restricted_port: true,
        login: Some(("alice".into(), "correct horse".into())),
        ..Default::default()
    })
    .unwrap();

    let anonymous = client(&daemon.rpc_url());
    assert!(matches!(
        anonymous.get_block_count().await,
        Err(Error::Unauthorized { .. })
    ));
    let wrong = DaemonClient::builder(daemon.rpc_url())
        .login("alice", "wrong")
        .build()
        .unwrap();
    match wrong.get_info().await {
        Err(e @ Error::Unauthorized { .. }) => assert!(e.to_string().contains("get_info"), "{e}"),
        other => panic!("a wrong password must be refused, got {other:?}"),
    }
    let wrong_user = DaemonClient::builder(daemon.rpc_url())
        .login("bob", "correct horse")
        .build()
        .unwrap();
    assert!(matches!(
        wrong_user.get_height().await,
        Err(Error::Unauthorized { .. })
    ));

    let c = DaemonClient::builder(daemon.rpc_url())
        .login("alice", "correct horse")
        .build()
        .unwrap();
    assert_eq!(c.get_block_count().await.unwrap().count, 1);
    assert_eq!(c.round_trips(), 2, "the first call answers the challenge");
    for _ in 0..20 {
        c.get_block_count().await.unwrap();
        c.get_height().await.unwrap();
    }
    assert_eq!(c.round_trips(), 42, "steady state: one round trip per call");

    // Concurrent calls open more connections; each negotiates once, then all succeed.
    let calls = (0..8).map(|_| {
        let c = c.clone();
        async move { c.get_info().await }
    });
    for r in futures_join(calls).await {
        assert_eq!(r.unwrap().height, 1);
    }

    // The login from the URL works too, and on the restricted port.
    let port = daemon.ports.restricted;
    let from_url =
        DaemonClient::new(&format!("http://alice:correct%20horse@127.0.0.1:{port}")).unwrap();
    assert_eq!(from_url.get_block_count().await.unwrap().count, 1);
    let restricted = DaemonClient::builder(daemon.restricted_url())
        .login("alice", "correct horse")
        .build()
        .unwrap();
    assert!(restricted.get_info().await.unwrap().is_restricted());
}

async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A real transaction, made by monero-wallet-rpc, through the pool and into a block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_transaction_through_pool_backlog_and_chain() {
    let daemon = Monerod::start_default().unwrap();
    let c = client(&daemon.rpc_url());
    let restricted = client(&daemon.restricted_url());
    let mut wallet = WalletRpc::start(daemon.ports.rpc).unwrap();
    wallet.restore_test_wallet().unwrap();
    let address = wallet
        .json_rpc("get_address", r#"{"account_index":0}"#)
        .unwrap();
    assert!(
        address.contains(TEST_ADDRESS),
        "the test seed must give TEST_ADDRESS: {address}"
    );

    // 60 blocks unlock a coinbase; more blocks give the ring enough decoys.
    c.generate_blocks(100, TEST_ADDRESS).await.unwrap();
    wallet.json_rpc("refresh", "{}").unwrap();
    let transfer = wallet
        .json_rpc(
            "transfer",
            &format!(
                r#"{{"destinations":[{{"amount":1000000000000,"address":"{TEST_ADDRESS}"}}],"do_not_relay":true,"get_tx_hex":true}}"#
            ),
        )
        .unwrap();
    let transfer: serde_json::Value = serde_json::from_str(&transfer).unwrap();
    let tx_hex = transfer["result"]["tx_blob"].as_str().unwrap().to_owned();
    let tx_hash = transfer["result"]["tx_hash"].as_str().unwrap().to_owned();
    let fee = transfer["result"]["fee"].as_u64().unwrap();

    let sent = c.send_raw_transaction(&tx_hex, false).await.unwrap();
    assert!(sent.accepted(), "{sent:?}");

    let pool = c.get_transaction_pool().await.unwrap();
    assert_eq!(pool.transactions.len(), 1);
    let pooled = &pool.transactions[0];
    assert_eq!(pooled.id_hash, tx_hash);
    assert_eq!(pooled.fee, fee);
    let key_images: Vec<String> = pool
        .spent_key_images
        .iter()
        .map(|k| k.id_hash.clone())
        .collect();
    assert!(!key_images.is_empty());
    assert!(
        pool.spent_key_images
            .iter()
            .all(|k| k.txs_hashes == vec![tx_hash.clone()])
    );

    let stats = c.get_transaction_pool_stats().await.unwrap().pool_stats;
    assert_eq!(stats.txs_total, 1);
    assert_eq!(stats.bytes_total, pooled.blob_size);
    assert_eq!(stats.fee_total, fee);

    // The backlog is a binary blob inside the JSON: its decoded values must match. A
    // restricted port lists a transaction only once monerod has marked it relayed,
    // which may take a moment on a busy machine.
    let backlog = c.get_txpool_backlog().await.unwrap().backlog;
    assert_eq!(backlog.len(), 1, "{pooled:?}");
    assert_eq!(backlog[0].fee, fee);
    assert_eq!(backlog[0].weight, pooled.weight);
    wait_until_async(
        "the restricted port to list the relayed transaction",
        Duration::from_secs(60),
        || async {
            restricted
                .get_txpool_backlog()
                .await
                .is_ok_and(|b| b.backlog.len() == 1)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        restricted.get_txpool_backlog().await.unwrap().backlog,
        backlog
    );
    assert_eq!(c.get_info().await.unwrap().tx_pool_size, 1);

    let spent = c.is_key_image_spent(&key_images).await.unwrap();
    assert!(
        spent
            .statuses()
            .all(|s| s == KeyImageSpentStatus::SpentInPool),
        "{spent:?}"
    );
    let txs = c.get_transactions(&[&tx_hash], false).await.unwrap();
    assert!(txs.txs[0].in_pool);

    let again = c.send_raw_transaction(&tx_hex, false).await.unwrap();
    assert!(
        again.accepted() || again.double_spend,
        "resending is harmless: {again:?}"
    );

    let mined = c.generate_blocks(1, TEST_ADDRESS).await.unwrap();
    wait_until_async(
        "the pool to empty after a block",
        Duration::from_secs(30),
        || async {
            c.get_transaction_pool()
                .await
                .is_ok_and(|p| p.transactions.is_empty())
        },
    )
    .await
    .unwrap();
    let spent = c.is_key_image_spent(&key_images).await.unwrap();
    assert!(
        spent
            .statuses()
            .all(|s| s == KeyImageSpentStatus::SpentInBlockchain),
        "{spent:?}"
    );
    let txs = c.get_transactions(&[&tx_hash], false).await.unwrap();
    assert!(!txs.txs[0].in_pool);
    assert_eq!(txs.txs[0].block_height, mined.height);
    let block = c.get_block(BlockId::Height(mined.height)).await.unwrap();
    assert_eq!(block.tx_hashes, vec![tx_hash.clone()]);
    assert_eq!(block.block_header.num_txes, 1);
    let sum = c.get_coinbase_tx_sum(mined.height, 1).await.unwrap();
    assert_eq!(sum.fee_amount, fee);

    // monerod answers OK to a transaction it already has in the chain, but must not
    // put it back into the pool.
    c.send_raw_transaction(&tx_hex, false).await.unwrap();
    assert!(
        c.get_transaction_pool()
            .await
            .unwrap()
            .transactions
            .is_empty()
    );
    wallet.stop();
}
