"""The cluster tier: the operator against a real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok's fake node) that hack/cluster.sh starts on
loopback. The operator runs as a host process holding only a token of the
monero-operator ServiceAccount, so RBAC is exactly what config/rbac grants.

Run by hack/cluster-test.sh (`make test-cluster`), which starts and stops the cluster.
Ends with "cluster: N passed, N failed, N skipped".

  CLUSTER_BIN       the folder with kubectl (hack/cluster/build.sh prints it)
  CLUSTER_OPERATOR  the monero-operator binary
  --count           print how many tests there are and exit
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

import yaml

from testlib import free_ports, run_suite, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(ROOT, ".cache/cluster")
KUBECONFIG = os.path.join(CACHE, "admin.kubeconfig")
BIN = os.environ.get("CLUSTER_BIN", "")
OPERATOR = os.environ.get("CLUSTER_OPERATOR", os.path.join(ROOT, "target/debug/monero-operator"))
GROUP = "utxo.com.br"
OPERATOR_NS = "monero-system"
SA = "system:serviceaccount:%s:monero-operator" % OPERATOR_NS
# Status refresh of the operator processes the tests start: short, so that "several
# reconciles with nothing changed" takes seconds.
STATUS_INTERVAL = 5
# Leader election of the operator processes (seconds): lease, renew deadline, retry.
LEASE = (8, 5, 1)


def kubectl(*args, input=None, check=True, kubeconfig=KUBECONFIG, timeout=120):
    r = subprocess.run([os.path.join(BIN, "kubectl"), "--kubeconfig", kubeconfig, *args],
                       input=input, text=True, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("kubectl %s: exit %d\n%s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def get(kind, name, ns=None, check=True):
    """The object as JSON, or None when it does not exist (and check is False)."""
    args = ["get", kind, name, "-o", "json"] + (["-n", ns] if ns else [])
    r = kubectl(*args, check=False)
    if r.returncode != 0:
        if not check and "NotFound" in r.stderr:
            return None
        raise AssertionError("kubectl get %s %s: %s" % (kind, name, r.stderr.strip()))
    return json.loads(r.stdout)


def items(kind, ns, selector=None):
    args = ["get", kind, "-n", ns, "-o", "json"] + (["-l", selector] if selector else [])
    return json.loads(kubectl(*args).stdout)["items"]


def apply(doc, ns=None, server_side=False):
    # JSON, not YAML: kubectl reads YAML 1.1, where a bare y or n is a boolean.
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": doc if isinstance(doc, list) else [doc]})
    args = ["apply", "-f", "-"] + (["-n", ns] if ns else []) + (["--server-side", "--force-conflicts"] if server_side else [])
    return kubectl(*args, input=text)


def condition(obj, type_):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return None


def namespace(name):
    """A fresh namespace that enforces the restricted Pod Security level."""
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", timeout=180)
    apply({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    return name


def cr(kind, name, spec, ns):
    return {"apiVersion": GROUP + "/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def regtest(replicas=1, **spec):
    """A small regtest MoneroNodeSet spec."""
    out = {"replicas": replicas, "network": "regtest", "storage": {"size": "1Gi"}}
    out.update(spec)
    return out


def children(ns, instance):
    """Every object the operator made for one custom resource, by kind/name."""
    out = {}
    for kind in ("statefulsets", "services", "secrets", "poddisruptionbudgets"):
        for o in items(kind, ns, "app.kubernetes.io/instance=%s" % instance):
            out["%s/%s" % (o["kind"], o["metadata"]["name"])] = o
    return out


def versions(objs):
    return {k: o["metadata"]["resourceVersion"] for k, o in objs.items()}


def events(ns, name, kind="MoneroNodeSet"):
    """Events about one custom resource, as (reason, note, count) triples."""
    out = []
    for e in items("events.events.k8s.io", ns):
        if e.get("regarding", {}).get("name") == name and e["regarding"].get("kind") == kind:
            out.append((e.get("reason"), e.get("note"), e.get("series", {}).get("count", 1)))
    return sorted(out)


AUDIT = os.path.join(CACHE, "run", "audit.log")


def operator_requests(since=0, ns=None):
    """The operator's requests the API server recorded after byte `since` of its audit
    log, as (verb, resource, name) triples, leaving out the Lease (leader election) and
    watches (one long request each); with `ns`, only those in that namespace or in
    none; and the new end of the log."""
    with open(AUDIT) as f:
        f.seek(since)
        lines = f.read().splitlines()
        end = f.tell()
    out = []
    for line in lines:
        e = json.loads(line)
        if e.get("stage") != "ResponseComplete":
            continue
        ref = e.get("objectRef") or {}
        if ref.get("resource") == "leases" or e.get("verb") == "watch":
            continue
        if ns and ref.get("namespace") not in (None, ns):
            continue
        out.append((e.get("verb"), ref.get("resource", e.get("requestURI")), ref.get("name")))
    return out, end


def free_port():
    return free_ports(1)[0]


class Operator:
    """One `monero-operator run` process with the ServiceAccount's token."""

    started = []

    def __init__(self, identity, kubeconfig):
        self.identity = identity
        self.port = free_port()
        self.log_path = os.path.join(CACHE, "run", "operator-%s.log" % identity)
        env = dict(os.environ, KUBECONFIG=kubeconfig, RUST_LOG="info,monero_reconciler=debug")
        lease, renew, retry = LEASE
        args = [OPERATOR, "run", "--log-format", "json", "--listen", "127.0.0.1:%d" % self.port, "--identity", identity,
                "--lease-namespace", OPERATOR_NS, "--status-interval", str(STATUS_INTERVAL),
                "--lease-duration", str(lease), "--renew-deadline", str(renew), "--retry-period", str(retry)]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        Operator.started.append(self)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=5) as r:
            return r.read().decode()

    def counter(self, name, kind):
        """A counter of this process's /metrics, summed over the series of one kind."""
        total = 0.0
        for line in self.metrics().splitlines():
            m = re.match(r'%s\{[^}]*kind="%s"[^}]*\} (\S+)' % (name, kind), line)
            if m:
                total += float(m.group(1))
        return total

    def reconciles(self, kind):
        """How many reconciles of a kind this process finished."""
        return self.counter("monero_operator_reconciles_total", kind)

    def errors(self, kind):
        return self.counter("monero_operator_reconcile_errors_total", kind)

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def reconciled(self, key):
        """How many reconciles of one object (KIND/NAMESPACE/NAME) this process finished."""
        n = 0
        for line in self.logs().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            f = e.get("fields") or {}
            if f.get("message") == "reconciled" and f.get("object") == key:
                n += 1
        return n

    def wait_reconciled(self, key, more, seconds=60):
        start = self.reconciled(key)
        wait_until("%d more reconciles of %s by %s" % (more, key, self.identity), seconds,
                   lambda: self.reconciled(key) >= start + more)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.log.closed:
            return
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def service_account_kubeconfig():
    """A kubeconfig holding a TokenRequest token of the operator's ServiceAccount."""
    token = kubectl("-n", OPERATOR_NS, "create", "token", "monero-operator", "--duration", "6h").stdout.strip()
    admin = yaml.safe_load(open(KUBECONFIG))
    cluster = admin["clusters"][0]["cluster"]
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "monero-operator", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "monero-operator"}}],
        "current-context": "local",
    }
    path = os.path.join(CACHE, "run", "operator.kubeconfig")
    with open(path, "w") as f:
        os.chmod(path, 0o600)
        yaml.safe_dump(cfg, f)
    return path


def storage():
    """Two StorageClasses (one that allows expansion, the default, and one that does
    not) and pre-made volumes for each, so StatefulSet claims bind without a provisioner."""
    docs = []
    for name, expand, default in (("expandable", True, True), ("fixed", False, False)):
        docs.append({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                     "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": str(default).lower()}},
                     "provisioner": "kubernetes.io/no-provisioner", "allowVolumeExpansion": expand,
                     "volumeBindingMode": "Immediate", "reclaimPolicy": "Retain"})
        for i in range(30):
            docs.append({"apiVersion": "v1", "kind": "PersistentVolume",
                         "metadata": {"name": "%s-%02d" % (name, i)},
                         "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"],
                                  "storageClassName": name, "persistentVolumeReclaimPolicy": "Retain",
                                  "hostPath": {"path": "/nonexistent/%s-%02d" % (name, i)}}})
    apply(docs)


class Cluster(unittest.TestCase):
    """Shared setup: config/default applied, storage made, one operator leading."""

    operator = None
    deploy = None

    @classmethod
    def setUpClass(cls):
        if Cluster.deploy is None:
            Cluster.deploy = kubectl("apply", "-k", os.path.join(ROOT, "config/default"), check=False)
            if Cluster.deploy.returncode == 0:
                storage()
        if Cluster.deploy.returncode != 0:
            raise AssertionError("kubectl apply -k config/default failed:\n" + Cluster.deploy.stderr)
        if Cluster.operator is None or not Cluster.operator.alive():
            Cluster.kubeconfig = service_account_kubeconfig()
            Cluster.operator = Operator("op-a", Cluster.kubeconfig)
            wait_until("op-a to lead", 60, lambda: "leading" in Cluster.operator.logs())

    def assertNoForbidden(self):
        """A verb missing from config/rbac shows as a 403 in the operator's log."""
        for op in Operator.started:
            denied = re.findall(r'cannot \w+ resource \\?"[^"\\]+\\?"[^"]*', op.logs())
            self.assertEqual(denied, [], "%s was refused by RBAC" % op.identity)


class T01Deploy(Cluster):
    def test_config_default_is_accepted_and_the_crds_are_established(self):
        # The API server warns about what it accepts but does not understand (an
        # unknown schema format, a deprecated field): none of that either.
        self.assertNotIn("Warning", Cluster.deploy.stderr)
        for plural in ("moneronodesets", "moneronetworks", "monerominingnodesets"):
            crd = get("crd", "%s.%s" % (plural, GROUP))
            self.assertEqual(condition(crd, "Established")["status"], "True", plural)
            self.assertEqual(condition(crd, "NamesAccepted")["status"], "True", plural)
        # The manager's Deployment passes the restricted Pod Security level of its
        # namespace and its (fake) pod becomes available on the kwok node.
        wait_until("the operator Deployment available", 90,
                   lambda: condition(get("deployment", "monero-operator", OPERATOR_NS), "Available")["status"] == "True")

    def test_every_sample_is_accepted(self):
        ns = namespace("samples")
        samples = os.path.join(ROOT, "config/samples")
        r = kubectl("apply", "--dry-run=server", "-n", ns, "-k", samples, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        # One custom resource per sample file.
        want = len([f for f in os.listdir(samples) if f.startswith("utxo_") and f.endswith(".yaml")])
        self.assertEqual(len(re.findall(r"created \(server dry run\)", r.stdout)), want, r.stdout)

    def test_the_token_is_the_service_accounts(self):
        r = kubectl("auth", "whoami", "-o", "json", kubeconfig=Cluster.kubeconfig)
        self.assertEqual(json.loads(r.stdout)["status"]["userInfo"]["username"], SA)




REFUSALS = os.path.join(ROOT, "crates/monero-crd/tests/refusals.yaml")
PLURAL = {"MoneroNodeSet": "moneronodesets", "MoneroNetwork": "moneronetworks", "MoneroMiningNodeSet": "monerominingnodesets"}


class T02Refusals(Cluster):
    """Every object the docs promise to refuse is refused by the API server itself, with
    the documented field and message (the cases are shared with monero-crd's tests)."""

    def test_every_case_is_refused_by_the_api_server_as_documented(self):
        ns = namespace("refusals")
        cases = yaml.safe_load(open(REFUSALS))
        self.assertGreater(len(cases), 20)
        wrong = []
        for i, case in enumerate(cases):
            name = "r%d" % i
            if "old" in case:
                apply(cr(case["kind"], name, case["old"], ns))
                r = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", check=False,
                            input=json.dumps(cr(case["kind"], name, case["spec"], ns)))
            else:
                r = kubectl("create", "--dry-run=server", "-n", ns, "-f", "-", check=False,
                            input=json.dumps(cr(case["kind"], name, case["spec"], ns)))
            why = r.stderr
            if r.returncode == 0:
                wrong.append("%s: accepted" % case["name"])
            elif "%s:" % case["field"] not in why and "%s " % case["field"] not in why:
                wrong.append("%s: does not name %s:\n%s" % (case["name"], case["field"], why))
            elif case.get("message") and case["message"] not in why:
                wrong.append("%s: does not say %r:\n%s" % (case["name"], case["message"], why))
        self.assertEqual(wrong, [])

    def test_every_rule_message_in_the_crds_has_a_case(self):
        """A CEL rule without a case here would be a promise nobody checks."""
        messages = set()

        def walk(s):
            if isinstance(s, dict):
                for r in s.get("x-kubernetes-validations") or []:
                    messages.add(r.get("message"))
                for v in s.values():
                    walk(v)
            elif isinstance(s, list):
                for v in s:
                    walk(v)
        for plural in PLURAL.values():
            walk(get("crd", "%s.%s" % (plural, GROUP))["spec"])
        covered = {c.get("message") for c in yaml.safe_load(open(REFUSALS))}
        self.assertEqual(sorted(m for m in messages if m not in covered), [])

    def test_the_messages_the_docs_quote_are_the_servers(self):
        docs = "".join(open(os.path.join(ROOT, "docs", f)).read()
                       for f in ("troubleshooting.md", "api/moneronodeset.md", "api/moneronetwork.md", "api/monerominingnodeset.md"))
        spans = [m for line in docs.splitlines() for m in re.findall(r"`([^`|]+)`", line)]
        quoted = {m for m in spans if re.search(r"immutable|grow but not shrink|exactly one of|not both|needs spec\.tor", m)}
        self.assertTrue(quoted)
        said = " ".join(c.get("message") or "" for c in yaml.safe_load(open(REFUSALS)))
        self.assertEqual(sorted(q for q in quoted if q not in said), [])


class T04Create(Cluster):
    """A MoneroNodeSet's children, their owner, and a status that kwok's pods allow."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ns = namespace("create")
        apply(cr("MoneroNodeSet", "nodes", regtest(2), cls.ns))
        cls.obj = get("moneronodeset", "nodes", cls.ns)

    def test_every_child_exists_with_its_owner(self):
        want = {"StatefulSet/nodes", "Service/nodes", "Service/nodes-headless", "Secret/nodes-monerod",
                "PodDisruptionBudget/nodes"}
        have = wait_until("the children of nodes", 60,
                          lambda: (lambda c: c if want <= set(c) else None)(children(self.ns, "nodes")))
        for key, o in have.items():
            refs = o["metadata"].get("ownerReferences") or []
            self.assertEqual([(r["kind"], r["name"], r["uid"], r.get("controller")) for r in refs],
                             [("MoneroNodeSet", "nodes", self.obj["metadata"]["uid"], True)], key)

    def test_pods_run_and_status_says_why_they_do_not_answer(self):
        wait_until("two Running pods", 90, lambda: [
            p for p in items("pods", self.ns, "app.kubernetes.io/instance=nodes")
            if p["status"].get("phase") == "Running"] and len(items("pods", self.ns, "app.kubernetes.io/instance=nodes")) == 2)

        def reported():
            st = get("moneronodeset", "nodes", self.ns).get("status") or {}
            nodes = st.get("nodes") or []
            return st if len(nodes) == 2 and all(n.get("message") for n in nodes) else None
        st = wait_until("per-replica status with a message", 90, reported)
        self.assertEqual(st["replicas"], 2)
        self.assertEqual(st["observedGeneration"], self.obj["metadata"]["generation"])
        for n in st["nodes"]:
            self.assertRegex(n["message"], r"127\.244\.", n)
        # Pods that do not answer are a state, not an error: no reconcile fails.
        self.assertEqual(Cluster.operator.errors("MoneroNodeSet"), 0, Cluster.operator.logs()[-3000:])
        self.assertNoForbidden()

    def test_nothing_changes_when_nothing_changed(self):
        self.test_pods_run_and_status_says_why_they_do_not_answer()
        before = versions(children(self.ns, "nodes"))
        status_rv = get("moneronodeset", "nodes", self.ns)["metadata"]["resourceVersion"]
        evs = events(self.ns, "nodes")
        # Three status intervals' worth of reconciles of it with nothing changed.
        Cluster.operator.wait_reconciled("MoneroNodeSet/%s/nodes" % self.ns, 3, seconds=STATUS_INTERVAL * 8)
        self.assertEqual(versions(children(self.ns, "nodes")), before)
        self.assertEqual(get("moneronodeset", "nodes", self.ns)["metadata"]["resourceVersion"], status_rv)
        self.assertEqual(events(self.ns, "nodes"), evs)

    def test_a_no_op_reconcile_makes_no_api_request(self):
        """Owned objects are read from the operator's caches, not fetched per reconcile:
        counted by the API server itself (its audit log of the operator's account)."""
        self.test_pods_run_and_status_says_why_they_do_not_answer()
        key = "MoneroNodeSet/%s/nodes" % self.ns
        Cluster.operator.wait_reconciled(key, 1, seconds=STATUS_INTERVAL * 4)
        _, mark = operator_requests()
        Cluster.operator.wait_reconciled(key, 3, seconds=STATUS_INTERVAL * 8)
        made, _ = operator_requests(mark, self.ns)
        self.assertEqual(made, [])



def sts_pod_spec(ns, name):
    return get("statefulset", name, ns)["spec"]["template"]


def container(template, name):
    return next(c for c in template["spec"]["containers"] if c["name"] == name)


with open(os.path.join(ROOT, "hack/cluster/podmonitor-crd-stub.yaml")) as f:
    POD_MONITOR_CRD = yaml.safe_load(f)


class T06Change(Cluster):
    """A spec change reaches the children, and a field removed from the spec goes."""

    def test_an_image_bump_and_removed_fields_reach_the_children(self):
        apply(POD_MONITOR_CRD)
        wait_until("the PodMonitor CRD established", 30,
                   lambda: condition(get("crd", "podmonitors.monitoring.coreos.com"), "Established")["status"] == "True")
        ns = namespace("change")
        full = regtest(1,
                       monerod={"image": "example.invalid/monerod:1", "resources": {"limits": {"memory": "2Gi"}}},
                       pod={"nodeSelector": {"disk": "ssd"},
                            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                            "labels": {"team": "a"}, "annotations": {"note": "x"}},
                       service={"annotations": {"svc": "y"}},
                       exporter={"podMonitor": {"enabled": True, "labels": {"release": "prom"}}})
        apply(cr("MoneroNodeSet", "change", full, ns))
        wait_until("the full spec applied", 60, lambda: sts_pod_spec(ns, "change")["spec"].get("nodeSelector") == {"disk": "ssd"})
        pm = wait_until("the PodMonitor", 60, lambda: get("podmonitor", "change", ns, check=False))
        self.assertEqual(pm["metadata"]["labels"].get("release"), "prom")

        bare = regtest(1, monerod={"image": "example.invalid/monerod:2"},
                       exporter={"podMonitor": {"enabled": True}})
        apply(cr("MoneroNodeSet", "change", bare, ns))

        def changed():
            t = sts_pod_spec(ns, "change")
            return container(t, "monerod")["image"] == "example.invalid/monerod:2" and t
        t = wait_until("the image bump", 60, changed)
        self.assertNotIn("nodeSelector", t["spec"])
        self.assertNotIn("dedicated", [x.get("key") for x in t["spec"].get("tolerations") or []])
        self.assertNotIn("team", t["metadata"].get("labels") or {})
        self.assertNotIn("note", t["metadata"].get("annotations") or {})
        self.assertNotIn("memory", (container(t, "monerod").get("resources") or {}).get("limits") or {})
        self.assertNotIn("svc", get("service", "change", ns)["metadata"].get("annotations") or {})
        self.assertNotIn("release", get("podmonitor", "change", ns)["metadata"].get("labels") or {})
        self.assertNoForbidden()


    def test_a_gated_rollout_moves_the_highest_replica_and_halts_when_it_does_not_answer(self):
        # kwok's pods turn Ready but serve no RPC: the first replica moved can
        # never pass the gate, so the rollout must halt there with the other
        # replica left on the old revision by the real StatefulSet controller.
        ns = namespace("gated")
        sel = "app.kubernetes.io/instance=gated"
        spec = regtest(2, monerod={"image": "example.invalid/monerod:1"}, updateStrategy={"progressDeadline": "1s"})
        apply(cr("MoneroNodeSet", "gated", spec, ns))
        wait_until("two Running pods", 90, lambda: len([
            p for p in items("pods", ns, sel) if p["status"].get("phase") == "Running"]) == 2)
        self.assertEqual(get("statefulset", "gated", ns)["spec"]["updateStrategy"]["rollingUpdate"]["partition"], 2)
        spec["monerod"]["image"] = "example.invalid/monerod:2"
        apply(cr("MoneroNodeSet", "gated", spec, ns))

        def halted():
            c = condition(get("moneronodeset", "gated", ns), "Progressing") or {}
            return c if c.get("reason") == "RolloutHalted" else None
        c = wait_until("Progressing=False RolloutHalted", 120, halted)
        self.assertEqual(c["status"], "False")
        self.assertIn("gated-1", c["message"])
        self.assertIn("RPC did not answer", c["message"])
        sts = get("statefulset", "gated", ns)
        self.assertEqual(sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"], 1)
        revs = {p["metadata"]["name"]: p["metadata"]["labels"].get("controller-revision-hash") for p in items("pods", ns, sel)}
        self.assertEqual(revs.get("gated-1"), sts["status"]["updateRevision"], revs)
        self.assertNotEqual(revs.get("gated-0"), sts["status"]["updateRevision"], revs)
        self.assertEqual(get("moneronodeset", "gated", ns)["status"].get("updatedReplicas"), 1)
        self.assertIn("RolloutHalted", [r for r, _, _ in events(ns, "gated")], events(ns, "gated"))
        self.assertNoForbidden()


class T07Quantities(Cluster):
    """Values in the forms users write converge after one apply: no apply loop."""

    def test_user_forms_of_quantities_converge(self):
        ns = namespace("quantities")
        spec = regtest(1,
                       monerod={"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"},
                                              "limits": {"cpu": "1000m", "memory": "2.5Gi"}}},
                       storage={"size": "1024Mi"},
                       pod={"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "", "effect": "NoSchedule"}]})
        apply(cr("MoneroNodeSet", "q", spec, ns))
        wait_until("the StatefulSet", 60, lambda: get("statefulset", "q", ns, check=False))
        wait_until("status", 60, lambda: (get("moneronodeset", "q", ns).get("status") or {}).get("nodes"))
        key = "MoneroNodeSet/%s/q" % ns
        Cluster.operator.wait_reconciled(key, 2, seconds=STATUS_INTERVAL * 6)
        before = versions(children(ns, "q"))
        evs = events(ns, "q")
        Cluster.operator.wait_reconciled(key, 3, seconds=STATUS_INTERVAL * 8)
        self.assertEqual(versions(children(ns, "q")), before, "a child was written again with nothing changed")
        self.assertEqual(events(ns, "q"), evs)

    def test_a_bare_number_is_refused_naming_the_field_and_a_quoted_one_converges(self):
        """YAML's `cpu: 0.5` arrives as a JSON number. Like every CRD that embeds
        ResourceRequirements (their schema is integer-or-string), the API server refuses
        it; the message names the field, and "0.5" (quoted) works."""
        ns = namespace("quantities-number")
        r = kubectl("apply", "-n", ns, "-f", "-", check=False,
                    input=json.dumps(cr("MoneroNodeSet", "n", regtest(1, monerod={"resources": {"requests": {"cpu": 0.5}}}), ns)))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("spec.monerod.resources.requests.cpu", r.stderr)
        apply(cr("MoneroNodeSet", "n", regtest(1, monerod={"resources": {"requests": {"cpu": "0.5"}}}), ns))
        sts = wait_until("the StatefulSet", 60, lambda: get("statefulset", "n", ns, check=False))
        self.assertEqual(container(sts["spec"]["template"], "monerod")["resources"]["requests"]["cpu"], "500m")


class T08Scale(Cluster):
    def test_kubectl_scale_and_an_hpa_use_the_scale_subresource(self):
        ns = namespace("scale")
        apply(cr("MoneroNodeSet", "s", regtest(1), ns))
        wait_until("the StatefulSet", 60, lambda: get("statefulset", "s", ns, check=False))
        kubectl("-n", ns, "scale", "moneronodeset/s", "--replicas=3")
        wait_until("3 replicas in the StatefulSet", 60, lambda: get("statefulset", "s", ns)["spec"]["replicas"] == 3)
        wait_until("status.replicas 3", 90, lambda: (get("moneronodeset", "s", ns).get("status") or {}).get("replicas") == 3)
        scale = json.loads(kubectl("get", "--raw", "/apis/%s/v1alpha1/namespaces/%s/moneronodesets/s/scale" % (GROUP, ns)).stdout)
        self.assertEqual(scale["spec"]["replicas"], 3)
        self.assertEqual(scale["status"]["selector"], get("moneronodeset", "s", ns)["status"]["selector"])
        apply({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "s", "namespace": ns},
               "spec": {"scaleTargetRef": {"apiVersion": GROUP + "/v1alpha1", "kind": "MoneroNodeSet", "name": "s"},
                        "minReplicas": 1, "maxReplicas": 4,
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}})
        # No metrics server here: the HPA cannot compute a recommendation, but it must
        # read the scale subresource (AbleToScale) to get that far.
        hpa = wait_until("the HPA to read the scale", 90,
                         lambda: (lambda h: h if condition(h, "AbleToScale") else None)(get("hpa", "s", ns)))
        self.assertEqual(condition(hpa, "AbleToScale")["status"], "True", condition(hpa, "AbleToScale"))
        kubectl("-n", ns, "delete", "hpa", "s")

    def test_printer_columns_and_explain(self):
        ns = "scale"
        out = kubectl("-n", ns, "get", "moneronodesets").stdout
        self.assertRegex(out.splitlines()[0], r"NAME\s+REPLICAS\s+READY\s+UP-TO-DATE\s+HEIGHT\s+SYNCED\s+AGE")
        out = kubectl("get", "monerominingnodesets", "-A").stdout
        self.assertTrue(out == "" or "HASHRATE" in out.splitlines()[0], out)
        crd = get("crd", "moneronodesets." + GROUP)
        want = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]["description"]
        out = kubectl("explain", "moneronodeset.spec.replicas").stdout
        self.assertIn(" ".join(want.split()[:6]), " ".join(out.split()))


def pvcs(ns, instance):
    return sorted(p["metadata"]["name"] for p in items("pvc", ns) if p["metadata"]["name"].startswith("data-%s-" % instance))


class T09Delete(Cluster):
    """Deletion, background and foreground, and what storage.retention keeps."""

    def made(self, ns, name, when_deleted):
        spec = regtest(1, tor={"enabled": True}, storage={"size": "1Gi", "retention": {"whenDeleted": when_deleted}})
        apply(cr("MoneroNodeSet", name, spec, ns))
        wait_until("%s's claim bound" % name, 90, lambda: [
            p for p in items("pvc", ns) if p["metadata"]["name"] == "data-%s-0" % name and p["status"].get("phase") == "Bound"])
        wait_until("%s's identities" % name, 60, lambda: get("secret", name + "-identities", ns, check=False))
        wait_until("%s's children" % name, 60, lambda: len(children(ns, name)) >= 4)

    def gone(self, ns, name):
        wait_until("%s and its children gone" % name, 120, lambda: get("moneronodeset", name, ns, check=False) is None
                   and not [k for k in children(ns, name) if not k.endswith("-identities")]
                   and not items("pods", ns, "app.kubernetes.io/instance=%s" % name))

    def test_background_delete_keeps_what_retention_keeps(self):
        ns = namespace("delete")
        self.made(ns, "keep", "Retain")
        self.made(ns, "drop", "Delete")
        kubectl("-n", ns, "delete", "moneronodeset", "keep", "drop", "--wait=false")
        self.gone(ns, "keep")
        self.gone(ns, "drop")
        wait_until("drop's claim removed", 90, lambda: pvcs(ns, "drop") == [])
        self.assertEqual(pvcs(ns, "keep"), ["data-keep-0"])
        self.assertIsNotNone(get("secret", "keep-identities", ns, check=False), "Retain keeps the onion keys")
        wait_until("drop's identities removed", 60, lambda: get("secret", "drop-identities", ns, check=False) is None)

    def test_foreground_delete_recreates_nothing(self):
        ns = namespace("delete-fg")
        self.made(ns, "fg", "Retain")
        uids = {k: o["metadata"]["uid"] for k, o in children(ns, "fg").items()}
        kubectl("-n", ns, "delete", "moneronodeset", "fg", "--cascade=foreground", "--wait=false")
        deadline = time.monotonic() + 120
        seen_deleting = False
        while time.monotonic() < deadline:
            obj = get("moneronodeset", "fg", ns, check=False)
            if obj is None:
                break
            seen_deleting = seen_deleting or bool(obj["metadata"].get("deletionTimestamp"))
            for k, o in children(ns, "fg").items():
                self.assertEqual(o["metadata"]["uid"], uids.get(k), "%s was made again during a foreground deletion" % k)
            time.sleep(0.3)
        self.assertTrue(seen_deleting)
        self.gone(ns, "fg")
        self.assertEqual(pvcs(ns, "fg"), ["data-fg-0"])


def lease_holder():
    lease = get("lease", "monero-operator", OPERATOR_NS, check=False)
    return lease and lease["spec"].get("holderIdentity")


def all_reconciles(op):
    return sum(op.reconciles(k) for k in ("MoneroNodeSet", "MoneroNetwork", "MoneroMiningNodeSet"))


class T10Leader(Cluster):
    def test_1_one_leads_and_the_other_takes_over_when_it_dies(self):
        b = Operator("op-b", Cluster.kubeconfig)
        try:
            wait_until("op-b waiting to lead", 30, lambda: "waiting to lead" in b.logs())
            self.assertEqual(lease_holder(), "op-a")
            ns = namespace("leader")
            apply(cr("MoneroNodeSet", "before", regtest(1), ns))
            wait_until("op-a made before's StatefulSet", 60, lambda: get("statefulset", "before", ns, check=False))
            self.assertEqual(all_reconciles(b), 0, "a follower reconciled")
            t0 = time.monotonic()
            Cluster.operator.stop(signal.SIGKILL)
            wait_until("op-b to lead", LEASE[0] + 15, lambda: lease_holder() == "op-b" and "leading" in b.logs())
            self.assertLess(time.monotonic() - t0, LEASE[0] + 15)
            apply(cr("MoneroNodeSet", "after", regtest(1), ns))
            wait_until("op-b made after's StatefulSet", 60, lambda: get("statefulset", "after", ns, check=False))
            self.assertGreater(all_reconciles(b), 0)
        finally:
            Cluster.operator = b

    def test_2_a_leader_whose_api_server_hangs_stops_before_its_lease_can_be_taken(self):
        leader = Cluster.operator
        wait_until("%s leading" % leader.identity, 60, lambda: lease_holder() == leader.identity)
        c = Operator("op-c", Cluster.kubeconfig)
        pid = int(open(os.path.join(CACHE, "run", "kube-apiserver.pid")).read())
        try:
            wait_until("op-c waiting to lead", 30, lambda: "waiting to lead" in c.logs())
            os.kill(pid, signal.SIGSTOP)
            t0 = time.monotonic()
            try:
                wait_until("the leader to stop", LEASE[0] + 5, lambda: not leader.alive())
                stopped = time.monotonic() - t0
            finally:
                os.kill(pid, signal.SIGCONT)
            # The last renewal was at most one retry period before the pause, so the
            # leader must be gone before the lease it holds can expire.
            self.assertLess(stopped, LEASE[0], "the leader outlived its lease")
            self.assertNotEqual(leader.proc.returncode, 0)
            wait_until("op-c to lead", LEASE[0] + 30, lambda: lease_holder() == "op-c")
        finally:
            Cluster.operator = c



def ready(ns, name, kind="moneronodeset"):
    return condition(get(kind, name, ns), "Ready") or {}


def claim_size(ns, claim):
    return get("pvc", claim, ns)["spec"]["resources"]["requests"]["storage"]


class T11ErrorsInStatus(Cluster):
    """What the API server refuses shows in the object's status, and the rest still applies."""

    def grow(self, ns, name, cls):
        apply(cr("MoneroNodeSet", name, regtest(1, storage={"size": "1Gi", "storageClassName": cls}), ns))
        wait_until("%s's claim bound" % name, 90, lambda: get("pvc", "data-%s-0" % name, ns, check=False)
                   and get("pvc", "data-%s-0" % name, ns)["status"].get("phase") == "Bound")
        apply(cr("MoneroNodeSet", name, regtest(1, storage={"size": "2Gi", "storageClassName": cls},
                                                monerod={"image": "example.invalid/monerod:grown"}), ns))
        wait_until("the image change applied", 60,
                   lambda: container(sts_pod_spec(ns, name), "monerod")["image"] == "example.invalid/monerod:grown")

    def test_growing_a_volume_on_a_class_that_cannot_expand_is_a_condition(self):
        ns = namespace("grow-fixed")
        self.grow(ns, "fixed", "fixed")

        def refused():
            st = get("moneronodeset", "fixed", ns).get("status") or {}
            for c in st.get("conditions") or []:
                if "data-fixed-0" in (c.get("message") or "") and c["status"] != "Unknown":
                    return c
        c = wait_until("a condition naming the claim", 60, refused)
        self.assertRegex(c["message"], r"(?i)storageclass|expan|resiz", c)
        self.assertEqual(claim_size(ns, "data-fixed-0"), "1Gi")

    def test_growing_a_volume_on_an_expandable_class_patches_the_claim(self):
        ns = namespace("grow-expandable")
        self.grow(ns, "exp", "expandable")
        wait_until("the claim asked to grow", 60, lambda: claim_size(ns, "data-exp-0") == "2Gi")

    def test_a_child_the_api_server_refuses_gives_ready_false_with_its_message(self):
        ns = namespace("refused-child")
        # The builders check what they can; a toleration is left to the API server, which
        # refuses a value with operator Exists.
        bad = [{"key": "k", "operator": "Exists", "value": "v", "effect": "NoSchedule"}]
        apply(cr("MoneroNodeSet", "bad", regtest(1, pod={"tolerations": bad}), ns))
        c = wait_until("Ready=False with the server's message", 60,
                       lambda: (lambda r: r if r.get("status") == "False" and "toleration" in r.get("message", "") else None)(ready(ns, "bad")))
        self.assertEqual(c["reason"], "ApplyFailed")
        self.assertIn("StatefulSet", c["message"])
        self.assertNoForbidden()

    def test_a_quota_refusal_gives_ready_false_with_its_message(self):
        ns = namespace("quota")
        apply({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-services", "namespace": ns},
               "spec": {"hard": {"services": "0"}}})
        apply(cr("MoneroNodeSet", "q", regtest(1), ns))
        c = wait_until("Ready=False with the quota message", 60,
                       lambda: (lambda r: r if r.get("status") == "False" and "quota" in r.get("message", "") else None)(ready(ns, "q")))
        self.assertRegex(c["message"], r"forbidden|exceeded quota")

    def test_two_kinds_of_one_name_do_not_fight_over_a_statefulset(self):
        ns = namespace("same-name")
        apply(cr("MoneroNodeSet", "same", regtest(1), ns))
        sts = wait_until("the node set's StatefulSet", 60, lambda: get("statefulset", "same", ns, check=False))
        apply(cr("MoneroNetwork", "same", {"replicas": 2, "template": {"spec": {"storage": {"size": "1Gi"}}}}, ns))
        c = wait_until("the network refused with NameConflict", 60,
                       lambda: (lambda r: r if r.get("reason") == "NameConflict" else None)(ready(ns, "same", "moneronetwork")))
        self.assertIn("MoneroNodeSet", c["message"])
        # A change to the network makes the operator look again at once: still nothing taken.
        kubectl("-n", ns, "annotate", "moneronetwork", "same", "touched=1")
        Cluster.operator.wait_reconciled("MoneroNetwork/%s/same" % ns, 1, seconds=30)
        after = get("statefulset", "same", ns)
        self.assertEqual(after["metadata"]["uid"], sts["metadata"]["uid"])
        self.assertEqual(after["metadata"]["ownerReferences"][0]["kind"], "MoneroNodeSet")
        # Its status moves with its pods; its spec, which the network would have rewritten, not.
        self.assertEqual(after["metadata"]["generation"], sts["metadata"]["generation"])
        self.assertEqual(after["spec"], sts["spec"])

    def test_a_network_node_service_colliding_with_a_set_is_refused(self):
        ns = namespace("service-collision")
        apply(cr("MoneroNodeSet", "net-1", regtest(1), ns))
        wait_until("net-1's Service", 60, lambda: get("service", "net-1", ns, check=False))
        apply(cr("MoneroNetwork", "net", {"replicas": 2, "template": {"spec": {"storage": {"size": "1Gi"}}}}, ns))
        c = wait_until("the network refused with NameConflict", 60,
                       lambda: (lambda r: r if r.get("reason") == "NameConflict" else None)(ready(ns, "net", "moneronetwork")))
        self.assertIn("net-1", c["message"])
        self.assertEqual(get("service", "net-1", ns)["metadata"]["ownerReferences"][0]["kind"], "MoneroNodeSet")


def crd_max_replicas(plural):
    crd = get("crd", "%s.%s" % (plural, GROUP))
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"].get("maximum")


class T12SizeLimits(Cluster):
    """The largest objects the CRDs allow produce nothing over the API server's limits."""

    def test_the_largest_network_is_made_whole(self):
        n = crd_max_replicas("moneronetworks")
        self.assertIsNotNone(n, "spec.replicas of a MoneroNetwork has no maximum")
        ns = namespace("largest-network")
        apply(cr("MoneroNetwork", "big", {"replicas": n, "template": {"spec": {"storage": {"size": "1Gi"}}}}, ns))
        wait_until("%d node Services and the StatefulSet" % n, 180, lambda: get("statefulset", "big", ns, check=False)
                   and len([s for s in items("services", ns, "app.kubernetes.io/instance=big") if re.fullmatch(r"big-\d+", s["metadata"]["name"])]) == n)
        for sec in items("secrets", ns, "app.kubernetes.io/instance=big"):
            size = sum(len(v) * 3 // 4 for v in (sec.get("data") or {}).values())
            self.assertLess(size, 1 << 20, sec["metadata"]["name"])
        self.assertNotEqual(ready(ns, "big", "moneronetwork").get("reason"), "ApplyFailed")

    def test_the_largest_miner_set_is_made_whole(self):
        n = crd_max_replicas("monerominingnodesets")
        self.assertIsNotNone(n, "spec.replicas of a MoneroMiningNodeSet has no maximum")
        ns = namespace("largest-miners")
        pools = [{"url": "pool-%d.example.invalid:3333" % i, "user": "w" * 95} for i in range(8)]
        apply(cr("MoneroMiningNodeSet", "rigs", {"replicas": n, "xmrig": {"config": {"pools": pools}}}, ns))
        wait_until("the miners' StatefulSet", 120, lambda: get("statefulset", "rigs", ns, check=False))
        self.assertNotEqual(ready(ns, "rigs", "monerominingnodeset").get("reason"), "ApplyFailed")


def template_hash(ns, name):
    sts = get("statefulset", name, ns, check=False) or {}
    return ((sts.get("spec") or {}).get("template", {}).get("metadata", {}).get("annotations") or {}).get(
        "utxo.com.br/config-hash")


class T13Fleet(Cluster):
    """Public nodes: a NodePort Service per replica the API server allocates as asked,
    and a ban list read from a ConfigMap (with only the ServiceAccount's rights)."""

    def test_each_replica_gets_its_node_port_and_the_ban_list_rolls_the_pods(self):
        ns = namespace("fleet")
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bans", "namespace": ns},
              "data": {"list": "# spy nodes\n198.51.100.7\n"}}
        apply(cm)
        spec = regtest(2, service={"perReplica": {"type": "NodePort", "nodePortBase": 30180}},
                       monerod={"banList": {"name": "bans", "key": "list"}, "zmqPub": "Cluster"})
        apply(cr("MoneroNodeSet", "pub", spec, ns))
        for i in range(2):
            svc = wait_until("Service pub-p2p-%d" % i, 60, lambda i=i: get("service", "pub-p2p-%d" % i, ns, check=False))
            self.assertEqual(svc["spec"]["type"], "NodePort")
            self.assertEqual(svc["spec"]["externalTrafficPolicy"], "Local")
            self.assertEqual(svc["spec"]["ports"][0]["nodePort"], 30180 + i)
            self.assertEqual(svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"], "pub-%d" % i)
        secret = get("secret", "pub-monerod", ns)
        self.assertEqual(base64.b64decode(secret["data"]["ban-list.txt"]).decode(), "198.51.100.7\n")
        self.assertIn("p2p-external-port=30181", base64.b64decode(secret["data"]["pub-1.conf"]).decode())
        before = wait_until("the StatefulSet's config hash", 60, lambda: template_hash(ns, "pub"))
        cm["data"]["list"] = "198.51.100.7\n203.0.113.0/24\n"
        apply(cm)
        wait_until("a new config hash after the ban list changed", STATUS_INTERVAL * 6,
                   lambda: template_hash(ns, "pub") not in (None, before))
        self.assertNoForbidden()

    def test_a_missing_ban_list_is_a_condition_naming_the_field(self):
        ns = namespace("fleet-missing")
        apply(cr("MoneroNodeSet", "nobans", regtest(1, monerod={"banList": {"name": "absent", "key": "list"}}), ns))
        c = wait_until("Ready=False InvalidSpec", 60, lambda: (lambda c: c if c and c["reason"] == "InvalidSpec" else None)(
            condition(get("moneronodeset", "nobans", ns), "Ready")))
        self.assertIn("spec.monerod.banList.key", c["message"])
        self.assertIn("ConfigMap absent not found", c["message"])
        self.assertIsNone(get("statefulset", "nobans", ns, check=False))
        self.assertNoForbidden()


def main():
    cases = [c for c in globals().values() if isinstance(c, type) and issubclass(c, Cluster) and c is not Cluster]
    cases.sort(key=lambda c: c.__name__)
    if "--count" in sys.argv:
        print(sum(unittest.defaultTestLoader.loadTestsFromTestCase(c).countTestCases() for c in cases))
        return 0
    try:
        return run_suite("cluster", cases, sys.argv[1:], sys.modules[__name__])
    finally:
        for op in Operator.started:
            op.stop()


if __name__ == "__main__":
    sys.exit(main())
