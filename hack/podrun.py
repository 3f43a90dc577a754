#!/usr/bin/env python3
"""Runs the pods `monero-operator render` prints as Docker containers, as a kubelet would.

Each pod of each StatefulSet in the YAML stream becomes:
  - an infra container (the pod's network namespace, like Kubernetes' pause container) on
    one Docker network per project, created --internal; the harness also deletes its
    default route and sends unresolvable names nowhere, so nothing in a pod can reach
    beyond that network and the host's end of it;
  - its init containers, run in order to completion (a failure stops `up`);
  - its containers, sharing the infra container's network namespace and the pod's volumes.

What is carried over from the pod spec, so that a pod that works here works the same way
in a cluster: image, command/args (Kubernetes semantics, including $(VAR) expansion),
env (value, fieldRef, secretKeyRef, configMapKeyRef) and envFrom, volumeMounts (subPath,
readOnly) of secret, configMap, projected, emptyDir (medium Memory on the host's tmpfs)
and volumeClaimTemplates volumes, file modes (defaultMode, items[].mode) and fsGroup
ownership, runAsUser/runAsGroup/fsGroup/supplementalGroups, runAsNonRoot (refused when
the image would run as root), readOnlyRootFilesystem, capabilities, allowPrivilegeEscalation,
memory and CPU limits, restartPolicy. Services become DNS names: each Service's name (short
and fully qualified, cluster domain cluster.local) resolves to the pods its selector
matches, and `<pod>.<serviceName>` to each StatefulSet pod, through Docker's DNS.
Readiness, startup and liveness probes (httpGet, tcpSocket, exec) are checked by `up --wait`.

Not modelled: Service port remapping (a Service's port must equal its targetPort; checked),
NetworkPolicy, scheduling and affinity, PodDisruptionBudgets, PodMonitors (listed as skipped).

usage:
  podrun.py up   --project P [--workdir DIR] [--wait SECONDS] FILE|-   prints the state JSON
  podrun.py down --project P [--workdir DIR]
  podrun.py state --project P [--workdir DIR]

The state JSON: {"network": NAME, "pods": {POD: {"ip": IP, "containers": {NAME: DOCKER_NAME},
"dirs": {VOLUME: HOST_DIR}}}}. Everything made carries the label podrun.project=P, and
`down` removes exactly that (containers, network, the work and tmpfs directories).
"""

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import yaml

LABEL = "podrun.project"
CLUSTER_DOMAIN = "cluster.local"
# The pause container: any image with `sleep`; the base image the images are built on.
PAUSE_IMAGE = os.environ.get("PODRUN_PAUSE_IMAGE", "debian:trixie-slim")
SKIPPED_KINDS = {"PodDisruptionBudget", "PodMonitor", "ServiceMonitor"}


class PodError(Exception):
    """Something in the stream that cannot be run; the message names it."""


def docker(*args, check=True, capture=True):
    r = subprocess.run(["docker", *args], text=True, capture_output=capture)
    if check and r.returncode != 0:
        raise PodError("docker %s: %s" % (" ".join(args[:3]), (r.stderr or r.stdout).strip()))
    return r.stdout.strip() if capture else ""


def b64(s):
    return base64.b64decode(s) if s else b""


def name_of(obj):
    return (obj.get("metadata") or {}).get("name", "")


def ns_of(obj):
    return (obj.get("metadata") or {}).get("namespace") or "default"


def expand(s, env):
    """Kubernetes' $(VAR) expansion: $$ escapes, unknown references stay as written."""

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, s)


class Cluster:
    """The objects of a rendered stream, indexed the way a kubelet would look them up."""

    def __init__(self, docs):
        self.secrets, self.configmaps, self.services, self.statefulsets = {}, {}, [], []
        self.skipped = []
        for d in docs:
            kind = d.get("kind")
            key = (ns_of(d), name_of(d))
            if kind == "Secret":
                data = {k: b64(v) for k, v in (d.get("data") or {}).items()}
                data.update({k: v.encode() for k, v in (d.get("stringData") or {}).items()})
                self.secrets[key] = data
            elif kind == "ConfigMap":
                data = {k: v.encode() for k, v in (d.get("data") or {}).items()}
                data.update({k: b64(v) for k, v in (d.get("binaryData") or {}).items()})
                self.configmaps[key] = data
            elif kind == "Service":
                self.services.append(d)
            elif kind == "StatefulSet":
                self.statefulsets.append(d)
            elif kind in SKIPPED_KINDS:
                self.skipped.append("%s/%s" % (kind, name_of(d)))
            elif kind is not None:
                raise PodError("%s/%s: kind not supported by podrun" % (kind, name_of(d)))

    def pods(self):
        """(pod name, namespace, labels, pod spec, claim templates, serviceName) for every replica."""
        for sts in self.statefulsets:
            spec = sts["spec"]
            tmpl = spec["template"]
            for i in range(spec.get("replicas", 1)):
                pod = "%s-%d" % (name_of(sts), i)
                labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
                labels["apps.kubernetes.io/pod-index"] = str(i)
                labels["statefulset.kubernetes.io/pod-name"] = pod
                yield {
                    "name": pod,
                    "namespace": ns_of(sts),
                    "labels": labels,
                    "annotations": dict((tmpl.get("metadata") or {}).get("annotations") or {}),
                    "spec": tmpl["spec"],
                    "claims": spec.get("volumeClaimTemplates") or [],
                    "service": spec.get("serviceName"),
                }

    def aliases(self, pod):
        """DNS names that lead to this pod."""
        ns = pod["namespace"]
        names = [pod["name"]]
        if pod["service"]:
            names.append("%s.%s.%s.svc.%s" % (pod["name"], pod["service"], ns, CLUSTER_DOMAIN))
        for svc in self.services:
            sel = (svc.get("spec") or {}).get("selector") or {}
            if ns_of(svc) != ns or not sel or any(pod["labels"].get(k) != v for k, v in sel.items()):
                continue
            for p in svc["spec"].get("ports") or []:
                target = p.get("targetPort", p["port"])
                if isinstance(target, int) and target != p["port"]:
                    raise PodError(
                        "Service %s/%s: port %s maps to targetPort %s; podrun resolves Services "
                        "to pod addresses, so the two must be equal" % (ns, name_of(svc), p["port"], target)
                    )
            n = name_of(svc)
            names += [n, "%s.%s" % (n, ns), "%s.%s.svc" % (n, ns), "%s.%s.svc.%s" % (n, ns, CLUSTER_DOMAIN)]
        return names


def write_files(dirpath, files, uid, gid):
    """files: {relative path: (bytes, mode)}; owned uid:gid like a kubelet's atomic writer."""
    os.makedirs(dirpath, exist_ok=True)
    os.chmod(dirpath, 0o755)
    for rel, (data, mode) in files.items():
        path = os.path.join(dirpath, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, uid, gid)
        os.chmod(path, mode)


def key_files(where, data, items, default_mode, optional):
    """A Secret's or ConfigMap's keys as files, honouring items and modes."""
    if data is None:
        if optional:
            return {}
        raise PodError("%s not found in the rendered stream" % where)
    if items:
        out = {}
        for it in items:
            if it["key"] not in data:
                if optional:
                    continue
                raise PodError("%s has no key %s" % (where, it["key"]))
            out[it["path"]] = (data[it["key"]], it.get("mode", default_mode))
        return out
    return {k: (v, default_mode) for k, v in data.items()}


class Runner:
    def __init__(self, project, workdir):
        self.project = project
        self.workdir = workdir
        self.shmdir = os.path.join("/dev/shm", "podrun-" + project)
        self.network = "podrun-" + project

    def cname(self, pod, container=None):
        return "podrun-%s-%s%s" % (self.project, pod, "-" + container if container else "")

    # --- volumes -------------------------------------------------------------------
    def volumes(self, cluster, pod, fs_group):
        """Host directories for each pod volume: {volume name: (host dir, always read-only)}."""
        ns = pod["namespace"]
        base = os.path.join(self.workdir, pod["name"])
        gid = fs_group if fs_group is not None else 0
        out = {}
        for claim in pod["claims"]:
            d = os.path.join(base, "pvc-" + name_of(claim))
            os.makedirs(d, exist_ok=True)
            # What a kubelet does with fsGroup: group-owned, group-writable, setgid.
            os.chown(d, 0, gid)
            os.chmod(d, 0o2775 if fs_group is not None else 0o755)
            out[name_of(claim)] = (d, False)
        for v in pod["spec"].get("volumes") or []:
            vname = v["name"]
            if "emptyDir" in v:
                root = self.shmdir if (v["emptyDir"] or {}).get("medium") == "Memory" else base
                d = os.path.join(root, pod["name"], "empty-" + vname) if root == self.shmdir else os.path.join(root, "empty-" + vname)
                os.makedirs(d, exist_ok=True)
                os.chown(d, 0, gid)
                os.chmod(d, 0o2777 if fs_group is not None else 0o777)
                out[vname] = (d, False)
            elif "secret" in v or "configMap" in v:
                src = v.get("secret") or v.get("configMap")
                sname = src.get("secretName") or src.get("name")
                table = cluster.secrets if "secret" in v else cluster.configmaps
                kind = "Secret" if "secret" in v else "ConfigMap"
                files = key_files(
                    "%s %s/%s (volume %s)" % (kind, ns, sname, vname),
                    table.get((ns, sname)),
                    src.get("items"),
                    src.get("defaultMode", 0o644),
                    src.get("optional", False),
                )
                d = os.path.join(self.shmdir, pod["name"], "vol-" + vname)
                write_files(d, files, 0, gid)
                out[vname] = (d, True)
            elif "projected" in v:
                mode = v["projected"].get("defaultMode", 0o644)
                files = {}
                for s in v["projected"].get("sources") or []:
                    if "secret" in s or "configMap" in s:
                        src = s.get("secret") or s.get("configMap")
                        table = cluster.secrets if "secret" in s else cluster.configmaps
                        kind = "Secret" if "secret" in s else "ConfigMap"
                        files.update(
                            key_files(
                                "%s %s/%s (volume %s)" % (kind, ns, src["name"], vname),
                                table.get((ns, src["name"])),
                                src.get("items"),
                                mode,
                                src.get("optional", False),
                            )
                        )
                    else:
                        raise PodError("pod %s volume %s: projected source %s not supported" % (pod["name"], vname, list(s)))
                d = os.path.join(self.shmdir, pod["name"], "vol-" + vname)
                write_files(d, files, 0, gid)
                out[vname] = (d, True)
            else:
                raise PodError("pod %s volume %s: only emptyDir, secret, configMap and projected volumes are supported" % (pod["name"], vname))
        return out

    # --- containers ----------------------------------------------------------------
    def env_of(self, cluster, pod, c, ip):
        ns = pod["namespace"]
        env = {}
        for ef in c.get("envFrom") or []:
            ref = ef.get("secretRef") or ef.get("configMapRef")
            table = cluster.secrets if "secretRef" in ef else cluster.configmaps
            data = table.get((ns, ref["name"]))
            if data is None and not ref.get("optional"):
                raise PodError("container %s: envFrom %s not found" % (c["name"], ref["name"]))
            for k, v in (data or {}).items():
                env[ef.get("prefix", "") + k] = v.decode()
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = expand(e["value"], env)
                continue
            src = e.get("valueFrom") or {}
            if "fieldRef" in src:
                path = src["fieldRef"]["fieldPath"]
                m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
                fields = {
                    "metadata.name": pod["name"],
                    "metadata.namespace": ns,
                    "status.podIP": ip,
                    "spec.nodeName": "podrun",
                    "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
                }
                if m:
                    value = pod[m.group(1)].get(m.group(2), "")
                elif path in fields:
                    value = fields[path]
                else:
                    raise PodError("container %s env %s: fieldRef %s not supported" % (c["name"], e["name"], path))
                env[e["name"]] = value
            elif "secretKeyRef" in src or "configMapKeyRef" in src:
                ref = src.get("secretKeyRef") or src.get("configMapKeyRef")
                table = cluster.secrets if "secretKeyRef" in src else cluster.configmaps
                data = table.get((ns, ref["name"])) or {}
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise PodError("container %s env %s: %s/%s has no key %s" % (c["name"], e["name"], ns, ref["name"], ref["key"]))
                env[e["name"]] = data[ref["key"]].decode()
            else:
                raise PodError("container %s env %s: source %s not supported" % (c["name"], e["name"], list(src)))
        return env

    def run_args(self, cluster, pod, c, ip, vols, detach):
        spec = pod["spec"]
        psc = spec.get("securityContext") or {}
        csc = c.get("securityContext") or {}
        image = c["image"]
        args = ["run", "--name", self.cname(pod["name"], c["name"]), "--label", "%s=%s" % (LABEL, self.project)]
        args += ["--network", "container:" + self.cname(pod["name"])]
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            effective = uid
            if effective is None:
                user = docker("image", "inspect", "-f", "{{.Config.User}}", image).split(":")[0]
                effective = int(user) if user.isdigit() else (0 if user in ("", "root") else None)
            if effective == 0:
                raise PodError("pod %s container %s: runAsNonRoot, but %s runs as root" % (pod["name"], c["name"], image))
        if uid is not None:
            args += ["--user", "%d:%d" % (uid, gid if gid is not None else 0)]
        for g in ([psc["fsGroup"]] if "fsGroup" in psc else []) + list(psc.get("supplementalGroups") or []):
            args += ["--group-add", str(g)]
        if csc.get("privileged"):
            raise PodError("pod %s container %s: privileged containers are not run" % (pod["name"], c["name"]))
        if csc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        caps = csc.get("capabilities") or {}
        for cap in caps.get("drop") or []:
            args += ["--cap-drop", cap]
        for cap in caps.get("add") or []:
            args += ["--cap-add", cap]
        if csc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        limits = (c.get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            args += ["--memory", quantity_bytes(limits["memory"])]
        if "cpu" in limits:
            args += ["--cpus", str(quantity_cpu(limits["cpu"]))]
        for m in c.get("volumeMounts") or []:
            if m["name"] not in vols:
                raise PodError("pod %s container %s: volumeMount %s names no volume" % (pod["name"], c["name"], m["name"]))
            src, always_ro = vols[m["name"]]
            if m.get("subPath"):
                src = os.path.join(src, m["subPath"])
                os.makedirs(src, exist_ok=True)
            ro = ",readonly" if (always_ro or m.get("readOnly")) else ""
            args += ["--mount", "type=bind,src=%s,dst=%s%s" % (src, m["mountPath"], ro)]
        env = self.env_of(cluster, pod, c, ip)
        for k, v in env.items():
            args += ["--env", "%s=%s" % (k, v)]
        if detach:
            policy = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}[spec.get("restartPolicy", "Always")]
            args += ["--detach", "--restart", policy]
        command = [expand(x, env) for x in c.get("command") or []]
        cargs = [expand(x, env) for x in c.get("args") or []]
        if command:
            args += ["--entrypoint", command[0], image] + command[1:] + cargs
        else:
            args += [image] + cargs
        return args

    # --- pods ----------------------------------------------------------------------
    def up(self, cluster):
        os.makedirs(self.workdir, exist_ok=True)
        if not docker("network", "ls", "-q", "--filter", "name=^%s$" % self.network):
            docker("network", "create", "--internal", "--label", "%s=%s" % (LABEL, self.project), self.network)
        state = {"network": self.network, "pods": {}, "skipped": cluster.skipped}
        pods = list(cluster.pods())
        # Every infra container first, so every pod's DNS names exist before any program starts.
        for pod in pods:
            infra = self.cname(pod["name"])
            args = ["run", "--detach", "--name", infra, "--hostname", pod["name"][:63]]
            args += ["--label", "%s=%s" % (LABEL, self.project), "--network", self.network]
            # Names Docker's DNS cannot answer go to a resolver that does not exist.
            args += ["--dns", "127.0.0.1"]
            for a in cluster.aliases(pod):
                args += ["--network-alias", a]
            args += ["--user", "65534:65534", "--read-only", "--cap-drop", "ALL", PAUSE_IMAGE, "sleep", "infinity"]
            docker(*args)
            pid = docker("inspect", "-f", "{{.State.Pid}}", infra)
            # An internal network still has a default route to its bridge; take it away so
            # that anything addressed beyond the network fails at once, inside the pod.
            subprocess.run(["nsenter", "--net=/proc/%s/ns/net" % pid, "ip", "route", "del", "default"],
                           capture_output=True)
            ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", infra)
            state["pods"][pod["name"]] = {"ip": ip, "containers": {}, "dirs": {}}
        for pod in pods:
            st = state["pods"][pod["name"]]
            fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
            vols = self.volumes(cluster, pod, fs_group)
            st["dirs"] = {k: v[0] for k, v in vols.items()}
            for c in pod["spec"].get("initContainers") or []:
                name = self.cname(pod["name"], c["name"])
                docker(*self.run_args(cluster, pod, c, st["ip"], vols, detach=False), check=False)
                code = docker("inspect", "-f", "{{.State.ExitCode}}", name)
                if code != "0":
                    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
                    raise PodError("pod %s init container %s exited %s:\n%s%s" % (pod["name"], c["name"], code, logs.stdout, logs.stderr))
                st["containers"][c["name"]] = name
            for c in pod["spec"]["containers"]:
                docker(*self.run_args(cluster, pod, c, st["ip"], vols, detach=True))
                st["containers"][c["name"]] = self.cname(pod["name"], c["name"])
        self.save(state)
        return state, pods

    def save(self, state):
        with open(os.path.join(self.workdir, "state.json"), "w") as f:
            json.dump(state, f, indent=1)

    def state(self):
        with open(os.path.join(self.workdir, "state.json")) as f:
            return json.load(f)

    def down(self):
        ids = docker("ps", "-aq", "--filter", "label=%s=%s" % (LABEL, self.project)).split()
        if ids:
            docker("rm", "-f", "-v", *ids)
        if docker("network", "ls", "-q", "--filter", "name=^%s$" % self.network):
            docker("network", "rm", self.network)
        for d in (self.workdir, self.shmdir):
            shutil.rmtree(d, ignore_errors=True)


def quantity_bytes(q):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(q))
    if not m or (m.group(2) and m.group(2) not in units):
        raise PodError("memory quantity %r not understood" % q)
    return str(int(m.group(1)) * units.get(m.group(2), 1))


def quantity_cpu(q):
    q = str(q)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


# --- probes ------------------------------------------------------------------------
def probe_ok(probe, ip, container):
    """One probe attempt from the host, as a kubelet makes it from the node."""
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "httpGet" in probe:
            h = probe["httpGet"]
            url = "http://%s:%s%s" % (ip, h["port"], h.get("path", "/"))
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return 200 <= r.status < 400
        if "tcpSocket" in probe:
            with socket.create_connection((ip, probe["tcpSocket"]["port"]), timeout=timeout):
                return True
        if "exec" in probe:
            r = subprocess.run(["docker", "exec", container, *probe["exec"]["command"]], capture_output=True, timeout=timeout + 5)
            return r.returncode == 0
    except Exception:
        return False
    raise PodError("probe %s not supported" % list(probe))


def wait_ready(state, pods, seconds):
    """Waits until every container's startup and readiness probes pass (no probe: running)."""
    deadline = time.monotonic() + seconds
    pending = {(p["name"], c["name"]): c for p in pods for c in p["spec"]["containers"]}
    while pending:
        for (pod, cname), c in list(pending.items()):
            st = state["pods"][pod]
            docker_name = st["containers"][cname]
            running = docker("inspect", "-f", "{{.State.Running}}", docker_name, check=False) == "true"
            probes = [c[k] for k in ("startupProbe", "readinessProbe") if k in c]
            if running and all(probe_ok(p, st["ip"], docker_name) for p in probes):
                del pending[(pod, cname)]
        if not pending:
            return
        if time.monotonic() > deadline:
            lines = []
            for (pod, cname) in pending:
                name = state["pods"][pod]["containers"][cname]
                logs = subprocess.run(["docker", "logs", "--tail", "15", name], capture_output=True, text=True)
                lines.append("%s/%s not ready; last log lines:\n%s%s" % (pod, cname, logs.stdout, logs.stderr))
            raise PodError("not ready after %ss:\n%s" % (seconds, "\n".join(lines)))
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=["up", "down", "state"])
    ap.add_argument("file", nargs="?", help="rendered YAML stream; - for standard input")
    ap.add_argument("--project", required=True, help="name for everything this run makes")
    ap.add_argument("--workdir", help="host directory for volumes and state (default /tmp/podrun-PROJECT)")
    ap.add_argument("--wait", type=float, default=0, help="seconds to wait for every probe to pass")
    a = ap.parse_intermixed_args()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", a.project):
        ap.error("--project: lower-case letters, digits and '-', at most 31 characters")
    runner = Runner(a.project, a.workdir or "/tmp/podrun-" + a.project)
    try:
        if a.action == "down":
            runner.down()
            return 0
        if a.action == "state":
            print(json.dumps(runner.state(), indent=1))
            return 0
        if not a.file:
            ap.error("up needs FILE (the output of monero-operator render) or -")
        text = sys.stdin.read() if a.file == "-" else open(a.file).read()
        cluster = Cluster([d for d in yaml.safe_load_all(text) if d])
        state, pods = runner.up(cluster)
        if a.wait:
            wait_ready(state, pods, a.wait)
        print(json.dumps(state, indent=1))
        return 0
    except PodError as e:
        print("podrun: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
