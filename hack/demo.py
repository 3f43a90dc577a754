"""`make demo`: a 3-node private regtest MoneroNetwork with Tor, from the pods that
`monero-operator render` prints, run by hack/podrun.py from the images `make images`
builds, on an internal Docker network. Mines blocks on one node, waits until all have
them, and prints each node's height, peers, onion address and a few of its exporter's
metrics. Nothing leaves the machine: the network is internal, the pods have no default
route and no resolver beyond Docker's names (tor reports the network unreachable).

  DEMO_KEEP=1    keep the pods running afterwards (`hack/podrun.py down --project demo`)
  DEMO_BLOCKS    blocks to mine (default 20)
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pods_test as t  # noqa: E402  (the pod tests' helpers)

SPEC = """
kind: MoneroNetwork
apiVersion: utxo.com.br/v1alpha1
metadata: {name: demo}
spec:
  replicas: 3
  template:
    spec:
      network: regtest
      tor: {enabled: true}
      monerod:
        args: [--fixed-difficulty=1]
"""


def metric(text, name):
    m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)
    return m.group(1) if m else "-"


def main():
    blocks = int(os.environ.get("DEMO_BLOCKS", "20"))
    print("== rendering a 3-node MoneroNetwork with Tor (monero-operator render --identities)")
    pods = t.Pods("demo", t.render(SPEC))
    names = ["demo-%d" % i for i in range(3)]
    print("== starting its pods on the internal Docker network podrun-demo (hack/podrun.py)")
    try:
        pods.up(wait=180)
        for n in names:
            print("   %s  %s  containers: %s" % (n, pods.ip(n), ", ".join(pods.state["pods"][n]["containers"])))
        print("== waiting for every node to peer with the other two")
        ips = {n: pods.ip(n) for n in names}

        def peers(n):
            out = t.pod_rpc(pods.pid(n), 18081, "/json_rpc", {"jsonrpc": "2.0", "id": "0", "method": "get_connections"})
            return sorted({c["host"] for c in out["result"].get("connections", [])})

        for n in names:
            others = sorted(ip for m, ip in ips.items() if m != n)
            t.wait_until("%s peering" % n, 90, lambda: peers(n) == others)
        print("== mining %d blocks on demo-0" % blocks)
        t.wait_until("generateblocks", 60, lambda: t.pod_rpc(
            pods.pid("demo-0"), 18081, "/json_rpc",
            {"jsonrpc": "2.0", "id": "0", "method": "generateblocks",
             "params": {"amount_of_blocks": blocks, "wallet_address": t.ADDRESS}}, timeout=90).get("result", {}).get("status") == "OK")
        for n in names:
            t.wait_until("%s to reach height %d" % (n, blocks + 1), 90,
                         lambda: json.loads(t.http(pods.ip(n), 18089, "/get_info"))["height"] >= blocks + 1)
        print()
        print("%-7s %-6s %-31s %-62s %s" % ("node", "height", "peers", "onion (P2P)", "exporter: up / connections in,out / db bytes"))
        for n in names:
            info = json.loads(t.http(pods.ip(n), 18089, "/get_info"))
            onion = open(os.path.join(pods.state["pods"][n]["dirs"]["anon-tor"], "p2p", "hostname")).read().strip()
            m = t.http(pods.ip(n), 18090, "/metrics")
            conns = "%s,%s" % (metric(m, 'monero_connections{direction="in"}'), metric(m, 'monero_connections{direction="out"}'))
            print("%-7s %-6d %-31s %-62s %s / %s / %s" % (n, info["height"], ",".join(peers(n)), onion,
                                                        metric(m, "monero_up"), conns, metric(m, "monero_database_size_bytes")))
        print()
        print("Every node is a pod as a cluster would run it: monerod, the exporter sidecar and tor,")
        print("after the podconfig init container wrote their configs and the onion keys from the")
        print("rendered demo-identities Secret. Metrics: curl http://%s:18090/metrics" % pods.ip("demo-0"))
        if os.environ.get("DEMO_KEEP") == "1":
            print("DEMO_KEEP=1: the pods keep running; stop them with: hack/podrun.py down --project demo")
        return 0
    except Exception as e:
        print("demo failed: %s" % e, file=sys.stderr)
        return 1
    finally:
        if os.environ.get("DEMO_KEEP") != "1":
            pods.down()


if __name__ == "__main__":
    sys.exit(main())
