//! An async client for [monerod](https://www.getmonero.org/resources/developer-guides/daemon-rpc.html)'s
//! RPC, for any tokio program.
//!
//! [`DaemonClient`] has one typed method per RPC, named after the RPC in snake_case
//! (`generateblocks` is [`DaemonClient::generate_blocks`]), with request and response
//! types whose fields mirror monerod's JSON names. Errors are typed ([`Error`]) so that
//! a caller can tell a daemon that is down from one that is restricted, busy or refusing
//! the login.
//!
//! What it does that a plain HTTP client would not:
//! - digest login as monerod speaks it: the nonce is bound to a TCP connection and `nc`
//!   must grow by one, so each pooled connection keeps its own session and a logged-in
//!   call costs one round trip in steady state ([`DaemonClient::round_trips`] shows it);
//! - tolerant decoding: empty arrays that monerod leaves out and fields that newer
//!   versions add do not break decoding; a restricted `get_info`'s placeholders are
//!   flagged ([`GetInfo::restricted`], [`GetInfo::free_space_checked`], ...);
//! - SOCKS5, so that a node can be reached over Tor (`.onion` is resolved by the proxy);
//! - a cap on response size, and one timeout that covers connecting and reading.
//!
//! ```no_run
//! use std::time::Duration;
//! use monero_rpc::{DaemonClient, Error};
//!
//! # async fn run() -> Result<(), Error> {
//! let client = DaemonClient::builder("http://127.0.0.1:18081")
//!     .timeout(Duration::from_secs(5))
//!     .login("monero", "secret")
//!     .build()?;
//! match client.get_connections().await {
//!     Ok(c) => println!("{} peers", c.connections.len()),
//!     Err(Error::MethodUnavailable { .. }) => println!("restricted RPC: peers are hidden"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```

mod client;
mod daemon;
mod digest;
mod error;
mod transport;
pub mod types;
mod wallet;

pub use client::{
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, DaemonClient, DaemonClientBuilder, RpcResponse,
};
pub use error::{Error, Result};
pub use types::*;
pub use wallet::{
    Destination, Empty, Transfer, WalletAddress, WalletBalance, WalletClient, WalletHeight,
    WalletKey, WalletRefresh,
};
