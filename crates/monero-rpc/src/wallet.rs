//! monero-wallet-rpc: the few calls a program needs to hold a wallet, read its
//! balance and send a transfer. The wallet RPC speaks the same JSON-RPC and
//! digest login as monerod, so this is a thin typed layer over the same
//! transport ([`DaemonClient`]), with its connection reuse and timeouts.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{DaemonClient, RpcResponse};
use crate::error::{Error, Result};

/// A client of one monero-wallet-rpc (which holds one open wallet at a time).
///
/// ```no_run
/// use monero_rpc::{DaemonClient, WalletClient};
///
/// # async fn run() -> Result<(), monero_rpc::Error> {
/// let wallet = WalletClient::new(DaemonClient::builder("http://127.0.0.1:18083").build()?);
/// wallet.open_or_create("lab", "").await?;
/// let b = wallet.get_balance(0).await?;
/// println!("{} unlocked of {}", b.unlocked_balance, b.balance);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct WalletClient {
    rpc: DaemonClient,
}

/// A wallet-rpc answer has no `status`: errors come as JSON-RPC errors.
macro_rules! no_status {
    ($($t:ty),* $(,)?) => {$(
        impl RpcResponse for $t {
            fn status(&self) -> Option<&str> {
                None
            }
        }
    )*};
}

/// An answer with nothing in it (`open_wallet`, `create_wallet`, `store`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Empty {}

/// `get_address`: the account's main address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct WalletAddress {
    pub address: String,
}

/// `get_balance`, in atomic units. Coinbase outputs unlock 60 blocks after
/// their block, others after 10.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct WalletBalance {
    pub balance: u64,
    pub unlocked_balance: u64,
    pub blocks_to_unlock: u64,
}

/// `refresh`: what a scan of new blocks found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct WalletRefresh {
    pub blocks_fetched: u64,
    pub received_money: bool,
}

/// `get_height`: the height the wallet has scanned to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct WalletHeight {
    pub height: u64,
}

/// `query_key`: the key asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct WalletKey {
    pub key: String,
}

/// One destination of a transfer, in atomic units.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Destination {
    pub amount: u64,
    pub address: String,
}

/// `transfer`: the transaction made and relayed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Transfer {
    pub tx_hash: String,
    pub amount: u64,
    pub fee: u64,
}

no_status!(
    Empty,
    WalletAddress,
    WalletBalance,
    WalletRefresh,
    WalletHeight,
    WalletKey,
    Transfer
);

impl WalletClient {
    /// A wallet client over `rpc` (its URL, login and timeout).
    pub fn new(rpc: DaemonClient) -> WalletClient {
        WalletClient { rpc }
    }

    /// The wallet-rpc's `host:port`.
    pub fn address(&self) -> &str {
        self.rpc.address()
    }

    /// Opens the wallet file `filename` in the wallet-rpc's `--wallet-dir`.
    pub async fn open_wallet(&self, filename: &str, password: &str) -> Result<()> {
        let _: Empty = self
            .rpc
            .json_rpc(
                "open_wallet",
                json!({ "filename": filename, "password": password }),
            )
            .await?;
        Ok(())
    }

    /// Makes a new wallet file `filename` (English seed words) and opens it.
    pub async fn create_wallet(&self, filename: &str, password: &str) -> Result<()> {
        let _: Empty = self
            .rpc
            .json_rpc(
                "create_wallet",
                json!({ "filename": filename, "password": password, "language": "English" }),
            )
            .await?;
        Ok(())
    }

    /// Opens `filename`, making it first when it does not exist: what a program
    /// that keeps one wallet on a volume does at every start. When both fail,
    /// the error is the open's (the file may exist and be unreadable).
    pub async fn open_or_create(&self, filename: &str, password: &str) -> Result<()> {
        let opened = self.open_wallet(filename, password).await;
        match opened {
            Err(Error::Rpc { .. }) => match self.create_wallet(filename, password).await {
                Ok(()) => Ok(()),
                Err(_) => opened,
            },
            other => other,
        }
    }

    /// One of the wallet's keys: `mnemonic` (its seed words), `view_key` or `spend_key`.
    pub async fn query_key(&self, key_type: &str) -> Result<String> {
        let k: WalletKey = self
            .rpc
            .json_rpc("query_key", json!({ "key_type": key_type }))
            .await?;
        Ok(k.key)
    }

    /// Makes the wallet file `filename` from seed words, scanning from
    /// `restore_height`, and opens it.
    pub async fn restore_deterministic_wallet(
        &self,
        filename: &str,
        seed: &str,
        restore_height: u64,
        password: &str,
    ) -> Result<()> {
        let _: serde_json::Value = self
            .rpc
            .json_rpc(
                "restore_deterministic_wallet",
                json!({ "filename": filename, "seed": seed, "restore_height": restore_height,
                        "password": password, "language": "English", "autosave_current": true }),
            )
            .await?;
        Ok(())
    }

    /// The main address of account `account_index`.
    pub async fn get_address(&self, account_index: u32) -> Result<WalletAddress> {
        self.rpc
            .json_rpc("get_address", json!({ "account_index": account_index }))
            .await
    }

    /// The balance of account `account_index`.
    pub async fn get_balance(&self, account_index: u32) -> Result<WalletBalance> {
        self.rpc
            .json_rpc("get_balance", json!({ "account_index": account_index }))
            .await
    }

    /// Scans the blocks the daemon has that the wallet has not seen.
    pub async fn refresh(&self) -> Result<WalletRefresh> {
        self.rpc.json_rpc("refresh", ()).await
    }

    /// The height the wallet has scanned to.
    pub async fn get_height(&self) -> Result<WalletHeight> {
        self.rpc.json_rpc("get_height", ()).await
    }

    /// Makes, signs and relays a transaction paying `destinations`, at the
    /// default priority.
    pub async fn transfer(&self, destinations: &[Destination]) -> Result<Transfer> {
        self.rpc
            .json_rpc("transfer", json!({ "destinations": destinations }))
            .await
    }

    /// Writes the wallet file.
    pub async fn store(&self) -> Result<()> {
        let _: Empty = self.rpc.json_rpc("store", ()).await?;
        Ok(())
    }
}
