#!/usr/bin/env python3
"""Writes the API reference pages in docs/api/ from the CRDs, so they cannot drift.

    .venv/bin/python hack/crd-docs.py           # (re)write docs/api/*.md (make docs)
    .venv/bin/python hack/crd-docs.py --check   # exit 1 naming every stale page

Reads config/crd/monero-operator.crds.yaml (generated from the Rust types by
`make crds`) and the samples in config/samples/, and writes one page per kind plus
docs/api/README.md: printer columns, every field of spec and status with its type,
default, constraints and description, the CEL validation rules, and the samples
verbatim as examples (the samples are validated by `make validate` and monero-crd's
tests, so the examples are tested).

Kubernetes' own types (ResourceRequirements, Toleration, LocalObjectReference,
Condition) are one row each, linked to the Kubernetes API reference, instead of
repeating their upstream documentation.

Deterministic: the output depends only on the input files. Needs PyYAML only.
"""

import argparse
import glob
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRDS = "config/crd/monero-operator.crds.yaml"
SAMPLES = "config/samples/utxo_*.yaml"
OUT_DIR = "docs/api"
K8S_REF = "https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.30/"

# A short introduction per kind, written by hand: what it is for and what the
# operator makes of it. A kind without one is an error, so a new kind gets one.
INTROS = {
    "MoneroNodeSet": """\
A set of identical Monero full nodes (monerod), each with its own volume. Use it for
public or private nodes that serve wallets and peers. The operator makes a StatefulSet
(one pod and one PersistentVolumeClaim per replica), a headless Service, a client Service
for P2P and the restricted RPC, a Secret with monerod's config file, a
PodDisruptionBudget when there is more than one replica, and, when asked, a PodMonitor
and Tor or I2P identities. Bumping `spec.monerod.image` rolls the pods one at a time and
keeps their data. The network is `spec.network`, else a network flag in
`spec.monerod.args` (`--testnet`, `--stagenet`, `--regtest`), else mainnet; it cannot
change once set. See [architecture.md](../architecture.md) for the object tree and the
pod layout.""",
    "MoneroNetwork": """\
A closed network of monerod nodes that peer only with each other, such as a private
regtest chain for research and tests. Every node is an exclusive peer of
every other (`add-exclusive-node` in its config file), addressed through its own
ClusterIP Service, so the network reaches nothing else and survives pods being
rescheduled. `spec.template.spec` takes the same node settings as a MoneroNodeSet's spec.
Scaling rewrites every node's peer list, so every node restarts. The network is chosen
as in a MoneroNodeSet: `spec.template.spec.network`, else a network flag in the args,
else mainnet. See [architecture.md](../architecture.md).""",
    "MoneroMiningNodeSet": """\
A set of xmrig miners. `$(id)` in `spec.xmrig.args` or in the typed config is each
replica's index (0, 1, ...), so each miner can have its own worker name. A pool can be
an external pool (`url`) or a MoneroNodeSet in the same namespace for solo mining
(`nodeSet`). The operator makes a StatefulSet (for the stable index), a headless
Service, and a Secret with one xmrig config file per replica when the typed config is
used (it may hold pool passwords). See [architecture.md](../architecture.md).""",
}

# Kubernetes types recognized by the names of their properties.
K8S_TYPES = [
    ({"claims", "limits", "requests"}, False, "ResourceRequirements", "resourcerequirements-v1-core"),
    ({"effect", "key", "operator", "tolerationSeconds", "value"}, True, "Toleration", "toleration-v1-core"),
    ({"name"}, True, "LocalObjectReference", "localobjectreference-v1-core"),
    (
        {"lastTransitionTime", "message", "observedGeneration", "reason", "status", "type"},
        True,
        "Condition",
        "condition-v1-meta",
    ),
]


def k8s_type(schema):
    """The Kubernetes type name and anchor a schema is, or None."""
    is_list = schema.get("type") == "array"
    inner = schema.get("items", {}) if is_list else schema
    props = set((inner.get("properties") or {}).keys())
    for names, listed, name, anchor in K8S_TYPES:
        if props == names and listed == is_list:
            if name == "LocalObjectReference" and not inner.get("description", "").startswith(name):
                continue
            return ("[]" if is_list else "") + f"[{name}]({K8S_REF}#{anchor})"
    return None


def one_line(text):
    """A description as one table cell: paragraphs kept, line wraps joined."""
    paragraphs = [" ".join(p.split()) for p in (text or "").strip().split("\n\n")]
    return "<br><br>".join(p for p in paragraphs if p).replace("|", "\\|")


def scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value == "":
        return '""'
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return str(value)


def code(value):
    return "`" + scalar(value).replace("|", "\\|") + "`"


def type_of(schema):
    known = k8s_type(schema)
    if known:
        return known
    if schema.get("x-kubernetes-int-or-string"):
        return "int or string"
    t = schema.get("type", "")
    if t == "array":
        return "[]" + type_of(schema.get("items", {}))
    if t == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return "map[string]" + type_of(extra)
        return "object"
    fmt = schema.get("format")
    return f"{t} ({fmt})" if fmt else t


def constraints(schema):
    out = []
    if "enum" in schema:
        out.append("one of " + ", ".join(code(v) for v in schema["enum"]))
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        out.append(f"{scalar(lo)} to {scalar(hi)}")
    elif lo is not None:
        out.append(f"at least {scalar(lo)}")
    elif hi is not None:
        out.append(f"at most {scalar(hi)}")
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if lo is not None or hi is not None:
        out.append(f"length {lo if lo is not None else 0} to {hi}" if hi is not None else f"length at least {lo}")
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    if lo is not None or hi is not None:
        out.append(f"{lo if lo is not None else 0} to {hi} items" if hi is not None else f"at least {lo} items")
    if "pattern" in schema:
        out.append("pattern " + code(schema["pattern"]))
    if schema.get("x-kubernetes-validations"):
        out.append("CEL rules (below)")
    return "; ".join(out)


def rows(schema, path, out, rules):
    """One row per field under `schema`, depth first in the schema's order."""
    for rule in schema.get("x-kubernetes-validations") or []:
        rules.append((path, rule))
    if k8s_type(schema):
        return
    items = schema.get("items") if schema.get("type") == "array" else None
    if items is not None and items.get("type") == "object" and items.get("properties"):
        rows(items, path + "[]", out, rules)
        return
    props = schema.get("properties") or {}
    need = set(schema.get("required") or [])
    for name, sub in props.items():
        sub_path = f"{path}.{name}" if path else name
        out.append(
            "| `{}` | {} | {} | {} | {} | {} |".format(
                sub_path,
                type_of(sub),
                code(sub["default"]) if "default" in sub else "",
                constraints(sub),
                "yes" if name in need else "",
                one_line(sub.get("description")),
            )
        )
        rows(sub, sub_path, out, rules)


def samples_by_kind():
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, SAMPLES))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind"):
                found.setdefault(doc["kind"], []).append((os.path.relpath(path, ROOT), text))
                break
    return found


def page(crd, samples):
    names = crd["spec"]["names"]
    kind = names["kind"]
    if kind not in INTROS:
        raise SystemExit(f"hack/crd-docs.py: no introduction for kind {kind}; add one to INTROS")
    group = crd["spec"]["group"]
    versions = [v for v in crd["spec"]["versions"] if v.get("served")]
    if len(versions) != 1:
        raise SystemExit(f"hack/crd-docs.py: {kind}: expected one served version, found {len(versions)}")
    version = versions[0]
    schema = version["schema"]["openAPIV3Schema"]
    subresources = version.get("subresources") or {}

    lines = [
        f"# {kind}",
        "",
        "<!-- Generated by hack/crd-docs.py from config/crd/monero-operator.crds.yaml and",
        "     config/samples/: do not edit; run `make docs`. -->",
        "",
        INTROS[kind],
        "",
        "| | |",
        "| --- | --- |",
        f"| API version | `{group}/{version['name']}` |",
        f"| kind | `{kind}` |",
        f"| scope | {crd['spec']['scope']} |",
        f"| plural | `{names['plural']}` |",
    ]
    if names.get("shortNames"):
        lines.append("| short names | " + ", ".join(f"`{s}`" for s in names["shortNames"]) + " |")
    if names.get("categories"):
        cats = ", ".join(f"`{c}` (`kubectl get {c}`)" for c in names["categories"])
        lines.append(f"| categories | {cats} |")
    subs = []
    if "status" in subresources:
        subs.append("status")
    if "scale" in subresources:
        scale = subresources["scale"]
        subs.append(
            f"scale (`kubectl scale`, HorizontalPodAutoscaler: `{scale['specReplicasPath']}`, "
            f"`{scale['statusReplicasPath']}`, selector `{scale['labelSelectorPath']}`)"
        )
    if subs:
        lines.append("| subresources | " + "; ".join(subs) + " |")
    lines.append("")

    columns = version.get("additionalPrinterColumns") or []
    if columns:
        lines += [
            f"`kubectl get {names['plural']}` shows:",
            "",
            "| column | from | meaning |",
            "| --- | --- | --- |",
        ]
        for c in columns:
            lines.append(f"| {c['name']} | `{c['jsonPath']}` | {one_line(c.get('description', ''))} |")
        lines.append("")

    for path, text in samples.get(kind, []):
        lines += [
            f"## Example: [{os.path.basename(path)}](../../{path})",
            "",
            "```yaml",
            text.rstrip("\n"),
            "```",
            "",
        ]

    rules = []
    for part in ("spec", "status"):
        sub = (schema.get("properties") or {}).get(part)
        if sub is None:
            continue
        title = part.capitalize()
        lines += [f"## {title}", "", one_line(sub.get("description")), ""]
        if part == "spec":
            lines += [
                "Required means required whenever the object holding the field is given.",
                "Defaults are filled in by the API server.",
                "",
            ]
        else:
            lines += ["Written by the operator; never set it yourself.", ""]
        body = []
        for rule in sub.get("x-kubernetes-validations") or []:
            rules.append((part, rule))
        rows_out = []
        rows({k: v for k, v in sub.items() if k != "x-kubernetes-validations"}, part, rows_out, rules)
        body += [
            "| field | type | default | constraints | required | description |",
            "| --- | --- | --- | --- | --- | --- |",
        ] + rows_out
        lines += body + [""]

    lines += ["## Validation rules", ""]
    if rules:
        lines += [
            "The API server checks these CEL rules on create and update (Kubernetes 1.30 or",
            "newer) and refuses the object with the message shown. Rules that compare with",
            "`oldSelf` only apply to updates.",
            "",
            "| on | message | reason | rule |",
            "| --- | --- | --- | --- |",
        ]
        for path, rule in rules:
            lines.append(
                "| `{}` | {} | {} | {} |".format(
                    path,
                    one_line(rule.get("message", "")),
                    rule.get("reason", ""),
                    code(" ".join(rule["rule"].split())),
                )
            )
    else:
        lines.append("No CEL rules; the types, enums and ranges above are all the schema checks.")
    lines.append("")
    return kind, "\n".join(lines)


def index(kinds):
    lines = [
        "# API reference",
        "",
        "<!-- Generated by hack/crd-docs.py from config/crd/monero-operator.crds.yaml: do not",
        "     edit; run `make docs`. -->",
        "",
        "The custom resources of monero-operator, one page each, generated from the",
        "CustomResourceDefinitions so they cannot drift from what the API server checks.",
        "`kubectl explain <kind>.spec` shows the same descriptions in a cluster.",
        "",
        "| kind | short names | what it is |",
        "| --- | --- | --- |",
    ]
    for kind, crd in kinds:
        names = crd["spec"]["names"]
        short = ", ".join(f"`{s}`" for s in names.get("shortNames") or [])
        desc = one_line(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].get("description"))
        lines.append(f"| [{kind}]({kind.lower()}.md) | {short} | {desc} |")
    lines += [
        "",
        "How the operator turns them into Kubernetes objects: [architecture.md](../architecture.md).",
        "",
    ]
    return "\n".join(lines)


def render():
    with open(os.path.join(ROOT, CRDS), encoding="utf-8") as f:
        crds = [d for d in yaml.safe_load_all(f) if d]
    samples = samples_by_kind()
    pages = {}
    kinds = []
    for crd in crds:
        kind, text = page(crd, samples)
        pages[f"{OUT_DIR}/{kind.lower()}.md"] = text
        kinds.append((kind, crd))
    pages[f"{OUT_DIR}/README.md"] = index(kinds)
    return pages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page is stale")
    args = ap.parse_args()
    pages = render()
    stale = []
    for rel, text in sorted(pages.items()):
        path = os.path.join(ROOT, rel)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if args.check:
            stale.append(rel)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {rel}")
    if stale:
        for rel in stale:
            print(f"{rel} is stale: it differs from what hack/crd-docs.py makes of {CRDS} (run `make docs`)")
        sys.exit(1)


if __name__ == "__main__":
    main()
