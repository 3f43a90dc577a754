"""Benchmark on the real control plane (not a timed test): N MoneroNodeSets applied at
once on kwok's fake node, with the operator (a release build) holding only its
ServiceAccount's rights. Reports:

  - seconds from the apply until every StatefulSet exists, and until every status is written;
  - the operator's API requests per no-op reconcile, counted by the API server itself
    (its audit log of the operator's account; Lease renewals and watches left out);
  - the operator's resident memory at rest (before the apply), at its peak, and at rest after.

Run by hack/bench-cluster.sh (`make bench-cluster`), which starts a fresh cluster and
stops it. Machines here are shared and noisy: run it a few times and read medians.

  BENCH_SETS  how many MoneroNodeSets (default 1000)
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_test as ct  # noqa: E402
from testlib import wait_until  # noqa: E402

N = int(os.environ.get("BENCH_SETS", "1000"))
NS = "bench"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """The operator's resident memory, once a second."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except OSError:
                return
            time.sleep(1)


def count(kind):
    out = ct.kubectl("get", kind, "-n", NS, "-o", "json", timeout=300).stdout
    return json.loads(out)["items"]


def main():
    r = ct.kubectl("apply", "-k", os.path.join(ct.ROOT, "config/default"), check=False)
    if r.returncode != 0:
        print(r.stderr)
        return 1
    ct.namespace(NS)
    op = ct.Operator("bench", ct.service_account_kubeconfig())
    try:
        wait_until("the operator to lead", 60, lambda: "leading" in op.logs())
        time.sleep(5)
        idle = rss_kib(op.proc.pid)
        sampler = Sampler(op.proc.pid)
        sampler.start()
        sets = [ct.cr("MoneroNodeSet", "n%04d" % i, ct.regtest(1), NS) for i in range(N)]
        t0 = time.monotonic()
        ct.apply(sets)
        applied = time.monotonic() - t0
        wait_until("%d StatefulSets" % N, 1800, lambda: len(count("statefulsets")) >= N)
        t_sts = time.monotonic() - t0
        wait_until("%d statuses" % N, 1800, lambda: sum(
            1 for s in count("moneronodesets") if (s.get("status") or {}).get("observedGeneration")) >= N)
        t_status = time.monotonic() - t0
        # At rest: let the first status rounds settle, then count a window of reconciles.
        time.sleep(ct.STATUS_INTERVAL * 3)
        _, mark = ct.operator_requests()
        before = op.reconciles("MoneroNodeSet")
        time.sleep(ct.STATUS_INTERVAL * 4)
        made, _ = ct.operator_requests(mark)
        done = op.reconciles("MoneroNodeSet") - before
        sampler.stop = True
        rest = rss_kib(op.proc.pid)
        by_verb = {}
        for verb, resource, _ in made:
            by_verb["%s %s" % (verb, resource)] = by_verb.get("%s %s" % (verb, resource), 0) + 1
        print("bench-cluster: %d MoneroNodeSets (1 replica each) on kwok, operator %s" % (N, ct.OPERATOR))
        print("  apply of all %d (kubectl)        %6.1f s" % (N, applied))
        print("  every StatefulSet exists         %6.1f s after the apply" % t_sts)
        print("  every status written             %6.1f s after the apply" % t_status)
        print("  no-op reconciles in the window   %6d" % done)
        print("  API requests in that window      %6d (%.2f per reconcile)" % (len(made), len(made) / max(done, 1)))
        for k, v in sorted(by_verb.items(), key=lambda kv: -kv[1]):
            print("      %-40s %d" % (k, v))
        print("  resident memory idle / peak / at rest with %d sets: %.1f / %.1f / %.1f MiB" % (
            N, idle / 1024, sampler.peak / 1024, rest / 1024))
        return 0
    finally:
        op.stop()


if __name__ == "__main__":
    sys.exit(main())
