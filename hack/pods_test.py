"""Pod-faithful tests: the pods `monero-operator render` prints, run by hack/podrun.py as
Docker containers from the images `make images` builds, on an internal Docker network.

Run by hack/pods.sh (which builds the images first); needs root (podrun reads and writes
the pods' volumes and takes away each pod's default route) and a Docker engine.
Ends with "pods: N passed, N failed, N skipped".

  PODS_OPERATOR  the monero-operator binary that renders (default target/release/monero-operator)
  PODS_KEEP=1    leave the pods running after the tests (`podrun.py down --project P` ends them)
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import yaml

from testlib import run_suite, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OPERATOR = os.environ.get("PODS_OPERATOR", os.path.join(ROOT, "target/release/monero-operator"))
PODRUN = [sys.executable, os.path.join(HERE, "podrun.py")]
TAG = os.environ.get("TAG") or re.search(r'^version = "(.*)"', open(os.path.join(ROOT, "Cargo.toml")).read(), re.M).group(1)
REGISTRY = os.environ.get("REGISTRY", "ghcr.io/monero-operator")
PODCONFIG_IMAGE = "%s/podconfig:%s" % (REGISTRY, TAG)
I2PD_IMAGE = "%s/i2pd:%s" % (REGISTRY, TAG)
# generateblocks wants a mainnet-format address; this one works on regtest.
ADDRESS = "42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm"


# Another monerod release's image (hack/monerod-images.sh: $REGISTRY/monerod:vX.Y.Z.W),
# for the runs of the pod tests on the releases images/monerod does not ship.
MONEROD_IMAGE = os.environ.get("PODS_MONEROD_IMAGE") or "%s/monerod:%s" % (REGISTRY, TAG)


def render(yaml_text, *extra):
    """The operator's rendering of a custom resource, with fresh identities."""
    images = ["--monerod-image=%s" % MONEROD_IMAGE]
    images += ["--%s-image=%s/%s:%s" % (k, REGISTRY, v, TAG) for k, v in
               [("exporter", "exporter"), ("podconfig", "podconfig"),
                ("tor", "tor"), ("i2pd", "i2pd"), ("xmrig", "xmrig")]]
    r = subprocess.run([OPERATOR, "render", "--identities", "-f", "-", *images, *extra],
                       input=yaml_text, text=True, capture_output=True, check=True)
    return r.stdout


def http(ip, port, path, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://%s:%s%s" % (ip, port, path), data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def json_rpc(ip, port, method, params=None):
    out = json.loads(http(ip, port, "/json_rpc", {"jsonrpc": "2.0", "id": "0", "method": method, "params": params or {}}))
    if "error" in out:
        raise AssertionError("%s: %s" % (method, out["error"]))
    return out["result"]


def in_pod(pid, *cmd):
    """A command in the pod's network namespace (as `kubectl exec` would reach 127.0.0.1)."""
    return subprocess.run(["nsenter", "--net=/proc/%s/ns/net" % pid, *cmd], capture_output=True, text=True, timeout=120)


def pod_rpc(pid, port, path, body=None, timeout=10):
    """monerod's unrestricted RPC, which the pod binds to its own 127.0.0.1 only."""
    args = ["curl", "-s", "--max-time", str(timeout), "http://127.0.0.1:%d%s" % (port, path)]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    r = in_pod(pid, *args)
    if r.returncode != 0:
        raise AssertionError("curl %s in pod: exit %d %s" % (path, r.returncode, r.stderr))
    return json.loads(r.stdout)


class Pods:
    """One podrun project: up in setUpClass, down in tearDownClass."""

    def __init__(self, project, stream):
        self.project = project
        self.stream = stream
        self.docs = [d for d in yaml.safe_load_all(stream) if d]
        self.state = None

    def up(self, wait):
        self.down()
        r = subprocess.run([*PODRUN, "up", "--project", self.project, "--wait", str(wait), "-"],
                           input=self.stream, text=True, capture_output=True)
        if r.returncode != 0:
            state = subprocess.run([*PODRUN, "state", "--project", self.project], capture_output=True, text=True)
            raise AssertionError("podrun up failed:\n%s\n%s" % (r.stderr, state.stdout))
        self.state = json.loads(r.stdout)
        return self.state

    def down(self):
        if os.environ.get("PODS_KEEP") == "1" and self.state:
            print("PODS_KEEP=1: leaving project %s running" % self.project, file=sys.stderr)
            return
        subprocess.run([*PODRUN, "down", "--project", self.project], capture_output=True)

    def ip(self, pod):
        return self.state["pods"][pod]["ip"]

    def pid(self, pod):
        infra = "podrun-%s-%s" % (self.project, pod)
        return subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", infra], capture_output=True, text=True, check=True).stdout.strip()

    def secret(self, name):
        for d in self.docs:
            if d.get("kind") == "Secret" and d["metadata"]["name"] == name:
                return {k: base64.b64decode(v) for k, v in (d.get("data") or {}).items()}
        raise AssertionError("no Secret %s in the rendered stream" % name)

    def restarts(self):
        out = {}
        for pod, st in self.state["pods"].items():
            for c, name in st["containers"].items():
                r = subprocess.run(["docker", "inspect", "-f", "{{.RestartCount}} {{.State.Running}}", name],
                                   capture_output=True, text=True)
                out["%s/%s" % (pod, c)] = r.stdout.strip()
        return out


def anon_address(zone, file_name, data):
    """The address monero-anon (the podconfig image) derives from a key file:
    `tor address DIR` (the file is hs_ed25519_secret_key) or `i2p address FILE`."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        path = os.path.join(d, file_name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        target = "/k" if zone == "tor" else "/k/" + file_name
        r = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", "%s:/k:ro" % d,
                            "--entrypoint", "monero-anon", PODCONFIG_IMAGE, zone, "address", target],
                           capture_output=True, text=True, check=True)
        return r.stdout.strip()


def onion_of(secret_key_bytes):
    return anon_address("tor", "hs_ed25519_secret_key", secret_key_bytes)


def b32_of(keys_bytes):
    return anon_address("i2p", "keys.dat", keys_bytes)


def i2pd_b32(pods, pod, keys_dir, keys_file):
    """The b32 address i2pd itself gives the pod's keys: a second i2pd from the same image,
    in the pod's network namespace (like `kubectl debug`), loading a copy of what the pod's
    i2pd loads, with its web console on the pod address so the test can read it. Its router
    is loopback-only and cannot reseed."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        data = os.path.join(d, "data")
        os.makedirs(data)
        with open(os.path.join(keys_dir, keys_file), "rb") as src, open(os.path.join(data, keys_file), "wb") as dst:
            dst.write(src.read())
        with open(os.path.join(d, "i2pd.conf"), "w") as f:
            f.write("log = stdout\nloglevel = warn\nipv6 = false\nhost = 127.0.0.1\nnetid = 99\n"
                    "[ntcp2]\nenabled = true\npublished = false\nport = 24567\n[ssu2]\nenabled = false\n"
                    "[http]\nenabled = true\naddress = 0.0.0.0\nport = 17070\nstrictheaders = false\n[httpproxy]\nenabled = false\n"
                    "[socksproxy]\nenabled = false\n[sam]\nenabled = false\n[bob]\nenabled = false\n"
                    "[i2cp]\nenabled = false\n[i2pcontrol]\nenabled = false\n[upnp]\nenabled = false\n"
                    "[reseed]\nurls = https://127.0.0.1:1/\n[addressbook]\nenabled = false\n"
                    "[nettime]\nenabled = false\n")
        with open(os.path.join(d, "tunnels.conf"), "w") as f:
            f.write("[debug]\ntype = server\nhost = 127.0.0.1\nport = 1\nkeys = %s\n" % keys_file)
        subprocess.run(["chown", "-R", "1000:1000", d], check=True)
        name = "podrun-%s-%s-debug-i2pd" % (pods.project, pod)
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "run", "-d", "--name", name, "--label", "podrun.project=%s" % pods.project,
                        "--network", "container:podrun-%s-%s" % (pods.project, pod), "--read-only",
                        "--cap-drop", "ALL", "--user", "1000:1000", "-v", "%s:/d" % d, I2PD_IMAGE,
                        "--datadir=/d/data", "--conf=/d/i2pd.conf", "--tunconf=/d/tunnels.conf",
                        "--certsdir=/usr/share/i2pd/certificates"], capture_output=True, check=True)
        try:
            page = wait_until("i2pd's tunnel page", 60,
                              lambda: re.search(r"[a-z2-7]{52}\.b32\.i2p", http(pods.ip(pod), 17070, "/?page=i2p_tunnels")))
            return page.group(0)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)


class PodsCase(unittest.TestCase):
    """Renders SPEC (or spec()), runs its pods as project PROJECT for the class's tests."""

    PROJECT = ""
    SPEC = ""
    WAIT = 180

    @classmethod
    def spec(cls):
        return cls.SPEC

    @classmethod
    def setUpClass(cls):
        cls.pods = Pods(cls.PROJECT, render(cls.spec()))
        cls.pods.up(wait=cls.WAIT)

    @classmethod
    def tearDownClass(cls):
        cls.pods.down()


class NodeSetWithTorAndI2p(PodsCase):
    """One MoneroNodeSet replica with the exporter, Tor, I2P and a public RPC."""

    PROJECT = "pods-anon"
    SPEC = """
kind: MoneroNodeSet
apiVersion: utxo.com.br/v1alpha1
metadata: {name: anon}
spec:
  network: regtest
  tor: {enabled: true}
  i2p: {enabled: true}
  monerod:
    rpc: {public: true}
"""

    def test_monerod_answers_rpc_and_exporter_sees_it(self):
        ip = self.pods.ip("anon-0")
        info = json.loads(http(ip, 18089, "/get_info"))
        self.assertEqual(info["status"], "OK")
        self.assertTrue(info["nettype"] in ("fakechain", "regtest"), info["nettype"])
        metrics = wait_until("monero_up 1", 30, lambda: "\nmonero_up 1\n" in "\n" + http(ip, 18090, "/metrics") and http(ip, 18090, "/metrics"))
        self.assertRegex(metrics, r'monero_build_info\{[^}]*network="regtest"')
        release = re.search(r":v([0-9.]+)$", MONEROD_IMAGE)
        if release:  # another release's image: it must be the one that runs
            self.assertRegex(metrics, r'monero_build_info\{[^}]*version="%s-' % re.escape(release.group(1)))
        self.assertEqual(http(ip, 18090, "/ready").strip()[:5], "ready")

    def test_onion_addresses_are_the_rendered_keys(self):
        keys = self.pods.secret("anon-identities")
        tor_dir = self.pods.state["pods"]["anon-0"]["dirs"]["anon-tor"]
        for service, key in (("p2p", "anon-0.tor"), ("rpc", "rpc.tor")):
            written = wait_until("tor's %s hostname" % service, 60,
                                 lambda: open(os.path.join(tor_dir, service, "hostname")).read().strip())
            self.assertEqual(written, onion_of(keys[key]), service)
        # monerod announces the same onion to its peers.
        monerod_conf = os.path.join(self.pods.state["pods"]["anon-0"]["dirs"]["anon-monerod"], "monerod.conf")
        self.assertIn("anonymous-inbound=%s:18083" % onion_of(keys["anon-0.tor"]), open(monerod_conf).read())

    def test_i2p_address_is_the_rendered_key(self):
        keys = self.pods.secret("anon-identities")
        i2pd_dir = self.pods.state["pods"]["anon-0"]["dirs"]["anon-i2pd"]
        keys_file = re.search(r"^keys = (\S+)", open(os.path.join(i2pd_dir, "tunnels.conf")).read(), re.M).group(1)
        with open(os.path.join(i2pd_dir, "data", keys_file), "rb") as f:
            self.assertEqual(f.read(), keys["anon-0.i2p"], "the pod's i2pd loads the rendered key")
        expected = b32_of(keys["anon-0.i2p"])
        self.assertEqual(i2pd_b32(self.pods, "anon-0", os.path.join(i2pd_dir, "data"), keys_file), expected)

    def test_pod_is_sealed_and_stable(self):
        pid = self.pods.pid("anon-0")
        routes = in_pod(pid, "ip", "route").stdout
        self.assertNotIn("default", routes, "a pod must have no way off the internal network")
        # Every program still runs, none restarted.
        for name, s in self.pods.restarts().items():
            if name.endswith("/podconfig"):
                continue
            self.assertEqual(s, "0 true", name)


class ThreeNodeNetwork(PodsCase):
    """The proposal's MoneroNetwork, at 3 replicas: each node peers only with the others."""

    PROJECT = "pods-net"
    names = ["regtest-%d" % i for i in range(3)]

    @classmethod
    def spec(cls):
        sample = open(os.path.join(ROOT, "config/samples/utxo_v1alpha1_moneronetwork.yaml")).read()
        spec = re.sub(r"replicas: \d+", "replicas: 3", sample)
        assert "replicas: 3" in spec
        return spec

    def test_every_node_has_the_others_as_peers(self):
        ips = {n: self.pods.ip(n) for n in self.names}

        def peers(n):
            out = pod_rpc(self.pods.pid(n), 18081, "/json_rpc", {"jsonrpc": "2.0", "id": "0", "method": "get_connections"})
            return {c["host"] for c in out["result"].get("connections", [])}

        for n in self.names:
            others = {ip for m, ip in ips.items() if m != n}
            got = wait_until("%s connected to %s" % (n, sorted(others)), 90, lambda: others <= peers(n) and peers(n))
            self.assertEqual(got, others, "%s peers only with the network" % n)

    def test_blocks_mined_on_one_reach_all(self):
        start = int(json.loads(http(self.pods.ip("regtest-0"), 18089, "/get_info"))["height"])
        # monerod answers BUSY (with no error) until it considers itself synchronized.
        wait_until("generateblocks on regtest-0", 60, lambda: pod_rpc(
            self.pods.pid("regtest-0"), 18081, "/json_rpc",
            {"jsonrpc": "2.0", "id": "0", "method": "generateblocks",
             "params": {"amount_of_blocks": 5, "wallet_address": ADDRESS}}, timeout=90).get("result", {}).get("status") == "OK")
        for n in self.names:
            wait_until("%s at height %d" % (n, start + 5), 90,
                       lambda: int(json.loads(http(self.pods.ip(n), 18089, "/get_info"))["height"]) >= start + 5)
        tops = {json_rpc(self.pods.ip(n), 18089, "get_last_block_header")["block_header"]["hash"] for n in self.names}
        self.assertEqual(len(tops), 1, "every node has the same top block")

    def test_exporters_report_peers(self):
        for n in self.names:
            m = wait_until("%s exporter peers" % n, 60,
                           lambda: re.search(r"^monero_connections\{direction=\"out\"\} (\d+)", http(self.pods.ip(n), 18090, "/metrics"), re.M))
            self.assertGreaterEqual(int(m.group(1)), 1, n)


class SoloMiners(PodsCase):
    """A MoneroMiningNodeSet solo-mining against a MoneroNodeSet of the same stream: the
    typed xmrig config the operator renders, loaded by a real xmrig, mines blocks into
    monerod through its restricted RPC (daemon mode)."""

    SPEC = """
kind: MoneroNodeSet
apiVersion: utxo.com.br/v1alpha1
metadata: {name: solo}
spec:
  network: regtest
  monerod:
    rpc: {public: true}
    # A lone regtest node is synchronized (and so gives block templates) only offline.
    # At difficulty 1 every hash is a block: xmrig's ~30 H/s (one light-mode thread)
    # would make a dozen blocks a second and keep monerod too busy to answer RPC.
    args: [--fixed-difficulty=50, --offline]
---
kind: MoneroMiningNodeSet
apiVersion: utxo.com.br/v1alpha1
metadata: {name: miners}
spec:
  replicas: 1
  xmrig:
    resources: {requests: {cpu: 100m, memory: 300Mi}}
    config:
      pools:
        - nodeSet: solo
          user: %s
      cpu: {maxThreadsHint: 25}
      randomx: {mode: light}
""" % ADDRESS
    PROJECT = "pods-mine"

    def test_xmrig_mines_blocks_into_the_node_set(self):
        ip = self.pods.ip("solo-0")
        wait_until("blocks mined by xmrig", 120,
                   lambda: json.loads(http(ip, 18089, "/get_info"))["height"] >= 4)
        logs = subprocess.run(["docker", "logs", self.pods.state["pods"]["miners-0"]["containers"]["xmrig"]],
                              capture_output=True, text=True).stdout
        self.assertIn("solo.default.svc.cluster.local:18089", logs)
        self.assertRegex(logs, r"accepted \(\d+/0\)", "xmrig's blocks are accepted, none rejected")

    def metrics(self):
        return http(self.pods.ip("miners-0"), 18090, "/metrics")

    def test_exporter_shows_hashrate_and_accepted_shares(self):
        def mining():
            m = self.metrics()
            rate = re.search(r'^xmrig_hashrate_hashes_per_second\{window="10s"\} (\S+)$', m, re.M)
            shares = re.search(r"^xmrig_shares_accepted_total (\S+)$", m, re.M)
            return rate and shares and float(rate.group(1)) > 0 and float(shares.group(1)) >= 1 and m
        m = wait_until("a hashrate and an accepted share in the exporter's metrics", 120, mining)
        self.assertIn("\nxmrig_up 1\n", "\n" + m)
        self.assertRegex(m, r'xmrig_info\{algo="rx/0",pool="solo\.default\.svc\.cluster\.local:18089",version="6\.')
        self.assertRegex(m, r"(?m)^xmrig_shares_rejected_total 0$")
        self.assertEqual(http(self.pods.ip("miners-0"), 18090, "/ready").strip(), "ready")
        # Every family the real xmrig makes the exporter expose is documented in docs/metrics.md.
        doc = open(os.path.join(ROOT, "docs/metrics.md")).read().split("\n## xmrig's metrics\n", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^\| `(xmrig_[a-z_]+)`", doc, re.M))
        exposed = set(re.findall(r"^# TYPE (xmrig_[a-z_]+) ", m, re.M))
        self.assertTrue(exposed, m)
        self.assertEqual(exposed - documented, set(), "exposed by the exporter but not in docs/metrics.md")

    def test_xmrigs_api_needs_the_token_and_stays_in_the_pod(self):
        token = self.pods.secret("miners-xmrig-api")["token"].decode()
        pid = self.pods.pid("miners-0")
        url = "http://127.0.0.1:18092/2/summary"
        without = in_pod(pid, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url)
        self.assertEqual(without.stdout, "401", "xmrig refuses a request without the token")
        wrong = in_pod(pid, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                       "-H", "Authorization: Bearer wrong", url)
        self.assertEqual(wrong.stdout, "403", "and one with a wrong token")
        right = in_pod(pid, "curl", "-s", "--max-time", "5", "-H", "Authorization: Bearer %s" % token, url)
        self.assertEqual(json.loads(right.stdout)["restricted"], True, "the API is read-only")
        # Bound to the pod's loopback: nothing listens on the pod IP.
        outside = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                  "http://%s:18092/2/summary" % self.pods.ip("miners-0")], capture_output=True, text=True)
        self.assertEqual(outside.stdout, "000", "xmrig's API must not answer on the pod IP")


class CiNetworkWallets(PodsCase):
    """The CI network sample: two nodes, blocks on node 0's schedule, and the wallets'
    pod: the rendered monero-wallet-rpc containers (read-only root, non-root, the
    login in a config file) reach their node through its Service name, the sidecar
    makes the wallets, and once coinbase reaches wallet 0 it pays wallet 1. With no
    operator here to hand the miners the wallets' addresses, the test mines to
    wallet 0 through node 0's unrestricted RPC itself."""

    PROJECT = "pods-ci"
    names = ["ci-0", "ci-1", "ci-wallets-0"]

    @classmethod
    def spec(cls):
        sample = open(os.path.join(ROOT, "config/samples/utxo_v1alpha1_moneronetwork_ci.yaml")).read()
        spec = sample.replace(
            "wallets: {count: 2, transactionsPerMinute: 2}",
            "wallets: {count: 2, transactionsPerMinute: 30, login: {secretName: ci-wallet-login}}")
        assert spec != sample
        return spec + """
---
apiVersion: v1
kind: Secret
metadata: {name: ci-wallet-login}
stringData: {username: ci, password: pods-wallet-password}
"""

    def wallets(self):
        return json.loads(http(self.pods.ip("ci-wallets-0"), 18090, "/wallets"))

    def test_wallets_are_made_funded_and_pay_each_other(self):
        made = wait_until("both wallets made", 120,
                          lambda: (lambda w: w if all(x.get("address") for x in w) and len(w) == 2 else None)(self.wallets()))
        self.assertNotEqual(made[0]["address"], made[1]["address"])
        wait_until("coinbase to wallet 0", 90, lambda: pod_rpc(
            self.pods.pid("ci-0"), 18081, "/json_rpc",
            {"jsonrpc": "2.0", "id": "0", "method": "generateblocks",
             "params": {"amount_of_blocks": 70, "wallet_address": made[0]["address"]}}, timeout=90
        ).get("result", {}).get("status") == "OK")
        # Spending is the proof it could (its unlocked balance drops to 0 for the
        # 10 blocks its change takes, so it is no steady sign).
        wait_until("wallet 0 sends", 180, lambda: self.wallets()[0].get("transfers", 0) >= 1)
        # node 0's sidecar makes blocks every 2 s: the transfers confirm.
        wait_until("wallet 1 paid by wallet 0", 180, lambda: self.wallets()[1].get("balance", 0) > 0)

    def test_the_wallet_rpc_needs_the_login(self):
        ip = self.pods.ip("ci-wallets-0")
        body = json.dumps({"jsonrpc": "2.0", "id": "0", "method": "get_version"})
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                              "http://%s:18083/json_rpc" % ip, "-d", body], capture_output=True, text=True)
        self.assertEqual(out.stdout, "401")
        out = wait_until("wallet-rpc answers with the login", 60, lambda: subprocess.run(
            ["curl", "-sf", "--max-time", "10", "--digest", "-u", "ci:pods-wallet-password",
             "http://%s:18084/json_rpc" % ip, "-d", body], capture_output=True, text=True).stdout)
        self.assertIn('"version"', out)

    def test_wallet_metrics(self):
        m = wait_until("monero_wallet_up for both", 120, lambda: len(re.findall(
            r'^monero_wallet_up\{wallet="[01]"\} 1$', http(self.pods.ip("ci-wallets-0"), 18090, "/metrics"), re.M)) == 2)
        self.assertTrue(m)


def main():
    cases = (NodeSetWithTorAndI2p, ThreeNodeNetwork, SoloMiners, CiNetworkWallets)
    return run_suite("pods", cases, sys.argv[1:], sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
