//! The binary's offline commands, run as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_monero-operator"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn crd_prints_the_three_definitions() {
    let out = run(&["crd"], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for n in [
        "moneronodesets.utxo.com.br",
        "moneronetworks.utxo.com.br",
        "monerominingnodesets.utxo.com.br",
    ] {
        assert!(text.contains(&format!("name: {n}")), "{n}");
    }
}

#[test]
fn render_prints_every_object_of_every_sample() {
    for (sample, kinds) in [
        (
            "config/samples/utxo_v1alpha1_moneronodeset.yaml",
            vec![
                "Secret",
                "Service",
                "Service",
                "StatefulSet",
                "PodDisruptionBudget",
            ],
        ),
        (
            "config/samples/utxo_v1alpha1_monerominingnodeset.yaml",
            vec!["Service", "StatefulSet"],
        ),
    ] {
        let out = run(&["render", "-f", sample], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let got: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("kind: "))
            .collect();
        assert_eq!(got, kinds, "{sample}");
    }
    // 20 nodes: 20 per-node Services among the objects.
    let out = run(
        &[
            "render",
            "-f",
            "config/samples/utxo_v1alpha1_moneronetwork.yaml",
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("\nkind: Service\n").count(), 22);
}

#[test]
fn images_come_from_flags_and_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_monero-operator"))
        .args([
            "render",
            "-f",
            "config/samples/utxo_v1alpha1_moneronetwork.yaml",
            "--monerod-image",
            "reg.example/monerod:9",
        ])
        .env("MONERO_OPERATOR_EXPORTER_IMAGE", "reg.example/exporter:9")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("image: reg.example/monerod:9"));
    assert!(text.contains("image: reg.example/exporter:9"));
}

#[test]
fn an_invalid_object_exits_non_zero_naming_the_object_and_the_field() {
    let bad = "kind: MoneroNodeSet\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: broken}\nspec: {replicas: 2, network: mainnnet}\n";
    let out = run(&["render", "-f", "-"], Some(bad));
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("MoneroNodeSet broken")
            && err.contains("spec.network")
            && err.contains("mainnnet"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let typo = "kind: MoneroNetwork\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: net}\nspec: {replicaz: 2}\n";
    let out = run(&["render", "-f", "-"], Some(typo));
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("MoneroNetwork net") && err.contains("spec.replicaz: unknown field"),
        "{err}"
    );

    let conflict = "kind: MoneroNodeSet\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: c, namespace: prod}\nspec: {network: stagenet, monerod: {args: [--testnet]}}\n";
    let out = run(&["render", "-f", "-"], Some(conflict));
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(
            "MoneroNodeSet prod/c: spec.monerod.args: --testnet contradicts spec.network: stagenet"
        ),
        "{err}"
    );

    let out = run(&["render", "-f", "/nonexistent.yaml"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/nonexistent.yaml")
    );
}

#[test]
fn render_uses_secrets_from_the_same_file_and_keeps_them_out_of_pods() {
    let doc = "apiVersion: v1\nkind: Secret\nmetadata: {name: rpc, namespace: prod}\nstringData: {username: u, password: topsecret}\n---\n\
               kind: MoneroNodeSet\napiVersion: utxo.com.br/v1alpha1\nmetadata: {name: n, namespace: prod}\nspec: {monerod: {rpc: {login: {secretName: rpc}}}}\n";
    let out = run(&["render", "-f", "-"], Some(doc));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("topsecret"),
        "the login is base64 in the Secret's data, nowhere in clear"
    );
    assert!(text.contains("--rpc-login-file=/etc/monerod/rpc-login"));
}

#[test]
fn run_refuses_election_timings_that_let_two_leaders_overlap() {
    for (flags, want) in [
        (
            &["--lease-duration", "10", "--renew-deadline", "10"][..],
            "--renew-deadline (10s) must be shorter than --lease-duration (10s)",
        ),
        (
            &["--retry-period", "12"][..],
            "--retry-period (12s) must be shorter than --renew-deadline (10s)",
        ),
    ] {
        let mut args = vec!["run"];
        args.extend(flags);
        // Refused before any cluster is looked for.
        let out = Command::new(env!("CARGO_BIN_EXE_monero-operator"))
            .args(&args)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{flags:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
