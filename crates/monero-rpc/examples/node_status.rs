//! Prints a short status of one monerod, the way another Rust program would embed this
//! crate.
//!
//! ```text
//! cargo run -p monero-rpc --example node_status -- [URL] [--login USER:PASS] [--proxy socks5h://HOST:PORT]
//! ```
//!
//! The URL defaults to `http://127.0.0.1:18081`.

use std::time::Duration;

use monero_rpc::{DaemonClient, Error};

const USAGE: &str =
    "usage: node_status [URL] [--login USER:PASS] [--proxy socks5h://HOST:PORT] [--timeout SECS]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = String::from("http://127.0.0.1:18081");
    let mut builder_args: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--login" | "--proxy" | "--timeout" => {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
                builder_args.push((flag, value));
            }
            f if f.starts_with('-') => return Err(format!("unknown option {f}\n{USAGE}").into()),
            _ => url = arg,
        }
    }

    let mut builder = DaemonClient::builder(url).timeout(Duration::from_secs(10));
    for (flag, value) in builder_args {
        builder = match flag.as_str() {
            "--login" => {
                let (user, pass) = value.split_once(':').ok_or("--login wants USER:PASS")?;
                builder.login(user, pass)
            }
            "--proxy" => builder.socks5_proxy(value),
            _ => builder.timeout(Duration::from_secs(value.parse()?)),
        };
    }
    let client = builder.build()?;
    println!("monerod at {}", client.address());

    let info = client.get_info().await?;
    let sync = if info.synchronized {
        "synchronized".to_owned()
    } else if info.target_height > info.height {
        format!(
            "syncing, {:.1}%",
            info.height as f64 * 100.0 / info.target_height as f64
        )
    } else {
        "not synchronized yet".to_owned()
    };
    println!(
        "network:  {}{}",
        info.network(),
        if info.is_restricted() {
            " (restricted RPC)"
        } else {
            ""
        }
    );
    println!(
        "height:   {} of target {} ({sync})",
        info.height, info.target_height
    );
    if let Some(version) = info.version_checked() {
        println!("version:  {version}");
    }

    // A restricted port refuses get_connections; that is not a failure of the program.
    match client.get_connections().await {
        Ok(c) => {
            let incoming = c.connections.iter().filter(|p| p.incoming).count();
            println!(
                "peers:    {} ({incoming} in, {} out)",
                c.connections.len(),
                c.connections.len() - incoming
            );
        }
        Err(Error::MethodUnavailable { .. }) => match info.connections_checked() {
            Some((inc, out)) => println!("peers:    {} ({inc} in, {out} out)", inc + out),
            None => println!("peers:    hidden by the restricted RPC"),
        },
        Err(e) => return Err(e.into()),
    }

    let fee = client.get_fee_estimate(None).await?;
    println!(
        "fee:      {} piconero/byte (priorities {:?})",
        fee.fee, fee.fees
    );

    let top = client.get_last_block_header().await?.block_header;
    println!(
        "top:      block {} {} at {} ({} txs, reward {:.12} XMR)",
        top.height,
        top.hash,
        top.timestamp,
        top.num_txes,
        top.reward as f64 / 1e12
    );
    Ok(())
}
