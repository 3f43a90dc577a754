//! Keys and configs checked by the real programs (Debian packages `tor` and
//! `i2pd`), on loopback only: tor with `DisableNetwork 1`, i2pd with a private
//! netid, every listener on 127.0.0.1 and a dead reseed URL. Skipped, with a
//! message, when a program is not on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use monero_anon::i2p::Destination;
use monero_anon::render::{self, I2pdConf, Ports, ServerTunnel, Torrc};
use monero_anon::tor::{self, OnionKey};
use monero_testkit::{Process, TempDir, free_port, http_get, skip_unless_installed, wait_until};

const DEADLINE: Duration = Duration::from_secs(60);

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn test_ports() -> Ports {
    Ports {
        tor_socks: lo(free_port().unwrap()),
        i2p_socks: lo(free_port().unwrap()),
        tor_inbound: lo(free_port().unwrap()),
        i2p_inbound: lo(free_port().unwrap()),
        tor_virtual_port: 18083,
        rpc: Some((18089, lo(free_port().unwrap()))),
    }
}

fn private_dir(path: &Path) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn tor_loads_our_keys_with_the_same_address_and_its_own_keys_parse_back() {
    if skip_unless_installed(&[("tor", "tor")]) {
        return;
    }
    let dir = TempDir::new("anon-tor").unwrap();
    let ours: Vec<OnionKey> = (0..2).map(|_| OnionKey::generate().unwrap()).collect();
    let mut extra = vec!["DisableNetwork 1".to_string()];
    for (i, key) in ours.iter().enumerate() {
        let hs = dir.path().join(format!("ours{i}"));
        private_dir(&hs);
        fs::write(hs.join(tor::SECRET_FILE), key.secret_file()).unwrap();
        fs::write(hs.join(tor::PUBLIC_FILE), key.public_file()).unwrap();
        // A wrong hostname file: tor must rewrite it from the key.
        fs::write(hs.join(tor::HOSTNAME_FILE), "wrong.onion\n").unwrap();
        if i > 0 {
            extra.push(format!("HiddenServiceDir {}", hs.display()));
            extra.push(format!(
                "HiddenServicePort 18083 127.0.0.1:{}",
                free_port().unwrap()
            ));
        }
    }
    // One service whose keys tor makes itself.
    let theirs = dir.path().join("theirs");
    private_dir(&theirs);
    extra.push(format!("HiddenServiceDir {}", theirs.display()));
    extra.push(format!(
        "HiddenServicePort 18083 127.0.0.1:{}",
        free_port().unwrap()
    ));
    let data = dir.path().join("data");
    private_dir(&data);
    let conf = render::torrc(&Torrc {
        data_dir: data.display().to_string(),
        hidden_service_dir: dir.path().join("ours0").display().to_string(),
        ports: test_ports(),
        extra,
    });
    let torrc = dir.path().join("torrc");
    fs::write(&torrc, &conf).unwrap();

    let verify = Command::new("tor")
        .args(["--verify-config", "-f"])
        .arg(&torrc)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "tor --verify-config refused:\n{conf}\n{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    let mut cmd = Command::new("tor");
    cmd.arg("-f").arg(&torrc);
    let mut tor = Process::spawn("tor", cmd, dir.path().join("tor.log")).unwrap();
    let hostname = |d: &str| {
        fs::read_to_string(dir.path().join(d).join(tor::HOSTNAME_FILE)).unwrap_or_default()
    };
    wait_until("tor to write every hostname", DEADLINE, || {
        hostname("theirs").ends_with(".onion\n")
            && (0..2).all(|i| hostname(&format!("ours{i}")) != "wrong.onion\n")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tor.log_tail(3000)));
    for (i, key) in ours.iter().enumerate() {
        assert_eq!(
            hostname(&format!("ours{i}")),
            key.hostname_file(),
            "service {i}"
        );
    }
    let made_by_tor =
        OnionKey::from_secret_file(&fs::read(theirs.join(tor::SECRET_FILE)).unwrap()).unwrap();
    assert_eq!(made_by_tor.hostname_file(), hostname("theirs"));
    tor::check_public_file(
        &made_by_tor,
        &fs::read(theirs.join(tor::PUBLIC_FILE)).unwrap(),
    )
    .unwrap();
    tor.stop(Duration::from_secs(10));
    assert!(!tor.is_running());
}

#[test]
fn tor_accepts_every_torrc_the_renderer_produces() {
    if skip_unless_installed(&[("tor", "tor")]) {
        return;
    }
    let dir = TempDir::new("anon-torrc").unwrap();
    for (name, rpc) in [("p2p-only", false), ("p2p-and-rpc", true)] {
        let hs = dir.path().join(name).join("hs");
        private_dir(&hs);
        let data = dir.path().join(name).join("data");
        private_dir(&data);
        let mut ports = test_ports();
        if !rpc {
            ports.rpc = None;
        }
        let conf = render::torrc(&Torrc {
            data_dir: data.display().to_string(),
            hidden_service_dir: hs.display().to_string(),
            ports,
            extra: vec![],
        });
        let path = dir.path().join(name).join("torrc");
        fs::write(&path, &conf).unwrap();
        // --verify-config parses and checks the file and exits; it makes no connection.
        let out = Command::new("tor")
            .args(["--verify-config", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}:\n{conf}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // And a broken line is refused, so the check can fail.
    let bad = dir.path().join("bad");
    fs::write(&bad, "HiddenServicePort not-a-port\n").unwrap();
    assert!(
        !Command::new("tor")
            .args(["--verify-config", "-f"])
            .arg(&bad)
            .output()
            .unwrap()
            .status
            .success()
    );
}

fn tunnels_page(port: u16) -> String {
    http_get(port, "/?page=i2p_tunnels")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

#[test]
fn i2pd_loads_our_keys_with_the_same_address_and_its_own_keys_parse_back() {
    if skip_unless_installed(&[("i2pd", "i2pd")]) {
        return;
    }
    let dir = TempDir::new("anon-i2pd").unwrap();
    let data = dir.path().join("data");
    private_dir(&data);
    let ours: Vec<Destination> = (0..2).map(|_| Destination::generate().unwrap()).collect();
    let mut tunnels = Vec::new();
    for (i, d) in ours.iter().enumerate() {
        fs::write(data.join(format!("ours{i}.dat")), d.keys_file()).unwrap();
        tunnels.push(ServerTunnel {
            name: format!("ours{i}"),
            keys: format!("ours{i}.dat"),
            target: lo(free_port().unwrap()),
        });
    }
    tunnels.push(ServerTunnel {
        name: "theirs".into(),
        keys: "theirs.dat".into(),
        target: lo(free_port().unwrap()),
    });
    let console = free_port().unwrap();
    let ntcp2 = free_port().unwrap();
    let conf = render::i2pd_conf(&I2pdConf {
        ports: test_ports(),
        ntcp2_port: ntcp2,
        ssu2: false,
        web_console: Some(lo(console)),
        // The network rule: a private netid, loopback only, no reseed, no clock sync.
        extra: [
            "netid = 99",
            "host = 127.0.0.1",
            "address4 = 127.0.0.1",
            "nat = false",
            "reseed.verify = false",
            "reseed.urls = https://127.0.0.1:1/",
            "addressbook.enabled = false",
            "addressbook.defaulturl = http://127.0.0.1:1/hosts.txt",
            "addressbook.subscriptions = http://127.0.0.1:1/hosts.txt",
            "nettime.enabled = false",
        ]
        .map(String::from)
        .to_vec(),
    });
    fs::write(dir.path().join("i2pd.conf"), &conf).unwrap();
    fs::write(
        dir.path().join("tunnels.conf"),
        render::tunnels_conf(&tunnels),
    )
    .unwrap();
    let mut cmd = Command::new("i2pd");
    cmd.arg(format!("--datadir={}", data.display()))
        .arg(format!("--conf={}", dir.path().join("i2pd.conf").display()))
        .arg(format!(
            "--tunconf={}",
            dir.path().join("tunnels.conf").display()
        ));
    let mut i2pd = Process::spawn("i2pd", cmd, dir.path().join("i2pd.log")).unwrap();
    wait_until(
        "i2pd to list our destinations and make its own",
        DEADLINE,
        || {
            let page = tunnels_page(console);
            data.join("theirs.dat").exists() && ours.iter().all(|d| page.contains(&d.address()))
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nconf:\n{conf}\nlog:\n{}\npage:\n{}",
            i2pd.log_tail(4000),
            tunnels_page(console)
        )
    });
    let made_by_i2pd =
        Destination::from_keys_file(&fs::read(data.join("theirs.dat")).unwrap()).unwrap();
    wait_until("i2pd to list its own destination", DEADLINE, || {
        tunnels_page(console).contains(&made_by_i2pd.address())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tunnels_page(console)));
    // Everything i2pd listens on is loopback.
    let log = i2pd.log_tail(20000);
    assert!(!log.contains("unrecognised option"), "{log}");
    i2pd.stop(Duration::from_secs(10));
    assert!(!i2pd.is_running());
}

#[test]
fn the_binary_writes_keys_with_tors_modes_and_never_overwrites_them() {
    let dir = TempDir::new("anon-bin").unwrap();
    let bin = env!("CARGO_BIN_EXE_monero-anon");
    let hs = dir.path().join("hs");
    let out = Command::new(bin)
        .args(["tor", "keygen", "--out"])
        .arg(&hs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        fs::metadata(&hs).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        fs::metadata(hs.join(tor::SECRET_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        fs::read_to_string(hs.join(tor::HOSTNAME_FILE)).unwrap(),
        printed
    );
    let again = Command::new(bin)
        .args(["tor", "keygen", "--out"])
        .arg(&hs)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    let addr = Command::new(bin)
        .args(["tor", "address"])
        .arg(&hs)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(addr.stdout).unwrap(), printed);

    let keys = dir.path().join("p2p.dat");
    let out = Command::new(bin)
        .args(["i2p", "keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(out.status.success());
    let b32 = String::from_utf8(out.stdout).unwrap();
    assert!(b32.trim_end().ends_with(".b32.i2p"));
    assert_eq!(
        fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let addr = Command::new(bin)
        .args(["i2p", "address"])
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(addr.stdout).unwrap(), b32);
    assert!(
        !Command::new(bin)
            .args(["i2p", "keygen", "--out"])
            .arg(&keys)
            .status()
            .unwrap()
            .success()
    );
    fs::write(dir.path().join("junk.dat"), b"junk").unwrap();
    let bad = Command::new(bin)
        .args(["i2p", "address"])
        .arg(dir.path().join("junk.dat"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("shorter than a destination"));
}
