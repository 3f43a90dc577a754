//! The configuration files tor and i2pd read in a node's pod, and the monerod
//! flags that point monerod at them. Everything listens on the pod's loopback:
//! monerod, tor and i2pd share the pod's network namespace, and nothing but the
//! anonymity networks themselves should reach these ports.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// The ports and addresses one pod's anonymity sidecars use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    /// tor's SOCKS port, for monerod's outgoing Tor connections.
    pub tor_socks: SocketAddr,
    /// i2pd's SOCKS port, for monerod's outgoing I2P connections.
    pub i2p_socks: SocketAddr,
    /// Where monerod accepts P2P connections arriving over Tor.
    pub tor_inbound: SocketAddr,
    /// Where monerod accepts P2P connections arriving over I2P.
    pub i2p_inbound: SocketAddr,
    /// The onion service port peers dial (monerod's convention: 18083).
    pub tor_virtual_port: u16,
    /// Where monerod's restricted RPC listens, to serve it as an onion service
    /// too (wallets over Tor); None serves P2P only.
    pub rpc: Option<(u16, SocketAddr)>,
}

impl Ports {
    /// The defaults of a pod: tor 9050, i2pd 4447, inbound 18083 and 18085 on 127.0.0.1.
    pub fn pod_defaults(restricted_rpc: Option<u16>) -> Ports {
        let lo = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Ports {
            tor_socks: lo(9050),
            i2p_socks: lo(4447),
            tor_inbound: lo(18083),
            i2p_inbound: lo(18085),
            tor_virtual_port: 18083,
            rpc: restricted_rpc.map(|p| (p, lo(p))),
        }
    }
}

/// What a torrc serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Torrc {
    /// tor's DataDirectory.
    pub data_dir: String,
    /// The HiddenServiceDir holding the keys (tor requires mode 0700).
    pub hidden_service_dir: String,
    /// Ports.
    pub ports: Ports,
    /// Lines appended verbatim (tests add `DisableNetwork 1` or a dead bridge).
    pub extra: Vec<String>,
}

/// The torrc of one pod.
pub fn torrc(t: &Torrc) -> String {
    let mut s =
        String::from("# written by monero-anon; tor runs in the foreground, logs to stdout\n");
    let _ = writeln!(s, "DataDirectory {}", t.data_dir);
    let _ = writeln!(s, "SocksPort {}", t.ports.tor_socks);
    // Only monerod in this pod may use the SOCKS port.
    let _ = writeln!(s, "SocksPolicy accept 127.0.0.1/32");
    let _ = writeln!(s, "SocksPolicy reject *");
    s.push_str("RunAsDaemon 0\nLog notice stdout\nAvoidDiskWrites 1\n");
    let _ = writeln!(s, "HiddenServiceDir {}", t.hidden_service_dir);
    s.push_str("HiddenServiceVersion 3\n");
    let _ = writeln!(
        s,
        "HiddenServicePort {} {}",
        t.ports.tor_virtual_port, t.ports.tor_inbound
    );
    if let Some((virtual_port, target)) = t.ports.rpc {
        let _ = writeln!(s, "HiddenServicePort {virtual_port} {target}");
    }
    for line in &t.extra {
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// What an i2pd.conf serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I2pdConf {
    /// Ports.
    pub ports: Ports,
    /// The router's NTCP2 port.
    pub ntcp2_port: u16,
    /// Also use SSU2 (UDP); a router behind NAT does better with it.
    pub ssu2: bool,
    /// The web console, for debugging; None disables it.
    pub web_console: Option<SocketAddr>,
    /// Lines appended verbatim, inside sections named in them (tests set a
    /// private `netid`, loopback-only addresses and a dead reseed URL).
    pub extra: Vec<String>,
}

/// The i2pd.conf of one pod. The data directory is given on i2pd's command
/// line (`--datadir`): i2pd ignores the config file's `datadir`.
pub fn i2pd_conf(c: &I2pdConf) -> String {
    let mut s = String::from("# written by monero-anon\n");
    s.push_str("log = stdout\nloglevel = warn\nipv4 = true\nipv6 = false\n");
    // Tests put top-level keys (host, netid, nat) before the first section.
    for line in c
        .extra
        .iter()
        .filter(|l| !l.contains('.') && !l.starts_with('['))
    {
        s.push_str(line);
        s.push('\n');
    }
    s.push_str("\n[ntcp2]\nenabled = true\npublished = false\n");
    let _ = writeln!(s, "port = {}", c.ntcp2_port);
    let _ = write!(s, "\n[ssu2]\nenabled = {}\npublished = false\n", c.ssu2);
    match c.web_console {
        Some(a) => {
            let _ = write!(
                s,
                "\n[http]\nenabled = true\naddress = {}\nport = {}\n",
                a.ip(),
                a.port()
            );
        }
        None => s.push_str("\n[http]\nenabled = false\n"),
    }
    s.push_str("\n[httpproxy]\nenabled = false\n");
    let _ = write!(
        s,
        "\n[socksproxy]\nenabled = true\naddress = {}\nport = {}\n",
        c.ports.i2p_socks.ip(),
        c.ports.i2p_socks.port()
    );
    s.push_str("\n[sam]\nenabled = false\n\n[bob]\nenabled = false\n\n[i2cp]\nenabled = false\n\n[i2pcontrol]\nenabled = false\n\n[upnp]\nenabled = false\n");
    // Section-qualified extra lines, `section.key = value`.
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in c
        .extra
        .iter()
        .filter(|l| l.contains('.') && !l.starts_with('['))
    {
        if let Some((key, value)) = line.split_once('=')
            && let Some((section, name)) = key.trim().split_once('.')
        {
            let entry = format!("{} = {}", name.trim(), value.trim());
            match sections.iter_mut().find(|(s, _)| s == section) {
                Some((_, v)) => v.push(entry),
                None => sections.push((section.to_string(), vec![entry])),
            }
        }
    }
    for (section, lines) in sections {
        let _ = write!(s, "\n[{section}]\n");
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
    }
    s
}

/// One i2pd server tunnel: an I2P destination forwarding to a local port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTunnel {
    /// Section name.
    pub name: String,
    /// The keys file (relative to i2pd's data directory, or absolute).
    pub keys: String,
    /// Where connections arriving at the destination go.
    pub target: SocketAddr,
}

/// tunnels.conf with the given server tunnels.
pub fn tunnels_conf(tunnels: &[ServerTunnel]) -> String {
    let mut s = String::from("# written by monero-anon\n");
    for t in tunnels {
        let _ = write!(
            s,
            "\n[{}]\ntype = server\nhost = {}\nport = {}\nkeys = {}\n",
            t.name,
            t.target.ip(),
            t.target.port(),
            t.keys
        );
    }
    s
}

/// The monerod flags for a pod served over Tor (its onion address) and/or I2P
/// (its b32 address). `--tx-proxy` takes an IP, not a host name.
pub fn monerod_flags(ports: &Ports, onion: Option<&str>, b32: Option<&str>) -> Vec<String> {
    /// monerod's own defaults for these connection limits.
    const OUT: u32 = 16;
    const IN: u32 = 64;
    let mut f = Vec::new();
    if let Some(onion) = onion {
        f.push(format!("--tx-proxy=tor,{},{OUT}", ports.tor_socks));
        f.push(format!(
            "--anonymous-inbound={onion}:{},{},{IN}",
            ports.tor_virtual_port, ports.tor_inbound
        ));
    }
    if let Some(b32) = b32 {
        f.push(format!("--tx-proxy=i2p,{},{OUT}", ports.i2p_socks));
        f.push(format!(
            "--anonymous-inbound={b32},{},{IN}",
            ports.i2p_inbound
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monerod_flags_name_the_proxies_and_inbound_addresses() {
        let p = Ports::pod_defaults(Some(18089));
        assert_eq!(
            monerod_flags(&p, Some("abc.onion"), Some("xyz.b32.i2p")),
            vec![
                "--tx-proxy=tor,127.0.0.1:9050,16",
                "--anonymous-inbound=abc.onion:18083,127.0.0.1:18083,64",
                "--tx-proxy=i2p,127.0.0.1:4447,16",
                "--anonymous-inbound=xyz.b32.i2p,127.0.0.1:18085,64",
            ]
        );
        assert_eq!(monerod_flags(&p, None, None), Vec::<String>::new());
    }

    #[test]
    fn torrc_serves_p2p_and_rpc_from_the_hidden_service_dir() {
        let t = torrc(&Torrc {
            data_dir: "/var/lib/tor".into(),
            hidden_service_dir: "/var/lib/tor/monero".into(),
            ports: Ports::pod_defaults(Some(18089)),
            extra: vec!["DisableNetwork 1".into()],
        });
        for line in [
            "SocksPort 127.0.0.1:9050",
            "HiddenServiceDir /var/lib/tor/monero",
            "HiddenServicePort 18083 127.0.0.1:18083",
            "HiddenServicePort 18089 127.0.0.1:18089",
            "DisableNetwork 1",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
        }
    }

    #[test]
    fn i2pd_conf_puts_extra_lines_in_their_sections() {
        let c = i2pd_conf(&I2pdConf {
            ports: Ports::pod_defaults(None),
            ntcp2_port: 29001,
            ssu2: false,
            web_console: None,
            extra: vec![
                "netid = 99".into(),
                "reseed.urls = https://127.0.0.1:1/".into(),
                "ntcp2.address = 127.0.0.1".into(),
            ],
        });
        let before_sections = c.split("\n[").next().unwrap();
        assert!(before_sections.contains("netid = 99"), "{c}");
        assert!(
            c.contains("\n[reseed]\nurls = https://127.0.0.1:1/\n"),
            "{c}"
        );
        assert!(
            c.contains("\n[socksproxy]\nenabled = true\naddress = 127.0.0.1\nport = 4447\n"),
            "{c}"
        );
        let t = tunnels_conf(&[ServerTunnel {
            name: "monero-p2p".into(),
            keys: "p2p.dat".into(),
            target: "127.0.0.1:18085".parse().unwrap(),
        }]);
        assert!(
            t.contains(
                "[monero-p2p]\ntype = server\nhost = 127.0.0.1\nport = 18085\nkeys = p2p.dat\n"
            ),
            "{t}"
        );
    }
}
