#!/usr/bin/env python3
"""The checks of hack/observability-test.sh, against programs it has started on loopback.

  wait   --prometheus URL --deadline SECONDS EXPR...
         polls Prometheus until every EXPR returns at least one series (exit 1 on timeout)
  check  --prometheus URL --exporter URL... --operator URL [--counts FILE]
         compares docs/metrics.md with what the exporters and the operator expose, the
         exporter README's table, metrics.rs and the alert rules with it, and runs every
         dashboard query through Prometheus. Prints PASS/FAIL lines; writes "PASSED FAILED"
         to --counts. Exits 1 when a check fails.

Paths default to the repository's files; standard library only.
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PASSED = 0
FAILED = 0


def result(ok, what, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print("PASS %s" % what)
    else:
        FAILED += 1
        print("FAIL %s" % what)
        for line in str(detail).splitlines():
            print("  " + line)


def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def prom(base, path, **params):
    """GET a Prometheus API path; returns (ok, data or error text)."""
    query = urllib.parse.urlencode(params, doseq=True)
    status, body = http_get("%s%s?%s" % (base, path, query))
    try:
        doc = json.loads(body)
    except ValueError:
        return False, "HTTP %d: %s" % (status, body[:300])
    if doc.get("status") != "success":
        return False, "%s: %s" % (doc.get("errorType"), doc.get("error"))
    return True, doc["data"]


def instant(base, expr):
    return prom(base, "/api/v1/query", query=expr)


# ---- the Prometheus text format -------------------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def parse_exposition(text):
    """{family: {"type": str, "labels": set of label names}} of one /metrics body."""
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            families.setdefault(name, {"type": kind.strip(), "labels": set()})
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        name = m.group(1)
        family = name
        if name not in families:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[: -len(suffix)] in families:
                    family = name[: -len(suffix)]
        entry = families.setdefault(family, {"type": "untyped", "labels": set()})
        if m.group(3):
            entry["labels"].update(LABEL.findall(m.group(3)))
    return families


# ---- docs/metrics.md ------------------------------------------------------------------


def doc_table(text, heading):
    """{metric: {"type", "labels"}} from the table under the `## heading` section."""
    section = text.split("\n## " + heading + "\n", 1)
    if len(section) != 2:
        raise SystemExit("docs/metrics.md has no section '## %s'" % heading)
    body = section[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        m = re.fullmatch(r"`([a-z_:][a-z0-9_:]*)`", cells[0])
        if not m:
            continue
        rows[m.group(1)] = {
            "type": cells[1],
            "labels": set(re.findall(r"`([a-zA-Z_][a-zA-Z0-9_]*)`", cells[2])),
        }
    return rows


# ---- PromQL -------------------------------------------------------------------------

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan",
}


def metric_names(expr):
    """The metric names an expression selects (close enough for dashboards and rules)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        token = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or token.lower() in KEYWORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # part of a number such as 1e3
        names.add(token)
    return names


def family_of(name, histograms):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return name


def regex_escape(value):
    """A label value as an RE2 regex inside a double-quoted PromQL string."""
    escaped = re.sub(r"([.+*?()|\[\]{}^$\\])", r"\\\1", value)
    return escaped.replace("\\", "\\\\")


def substitute(expr, values, builtins):
    def repl(m):
        name = m.group(1) or m.group(2)
        if name in builtins:
            return builtins[name]
        if name in values:
            return values[name]
        return m.group(0)

    return re.sub(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}|\$([a-zA-Z_][a-zA-Z0-9_]*)", repl, expr)


# ---- the checks -----------------------------------------------------------------------


def compare(what, documented, exposed, prometheus, registered=None):
    """One check per metric name: documented, exposed, same type and labels, and
    scraped by Prometheus."""
    names = set(documented) | set(exposed) | set(registered or ())
    for name in sorted(names):
        problems = []
        series = name + "_count" if (exposed.get(name) or {}).get("type") == "histogram" else name
        ok, data = instant(prometheus, "count(%s)" % series)
        if not ok or not data["result"]:
            problems.append("Prometheus has no series %s" % series)
        d = documented.get(name)
        x = exposed.get(name)
        if d is None:
            problems.append("exposed but not in docs/metrics.md")
        if x is None:
            problems.append("in docs/metrics.md but not exposed")
        if registered is not None and name not in registered:
            problems.append("not registered in metrics.rs")
        if d and x:
            if d["type"] != x["type"]:
                problems.append("type: documented %s, exposed %s" % (d["type"], x["type"]))
            if d["labels"] != x["labels"]:
                problems.append(
                    "labels: documented %s, exposed %s"
                    % (sorted(d["labels"]) or "none", sorted(x["labels"]) or "none")
                )
        result(not problems, "%s metric %s" % (what, name), "\n".join(problems))


def readme_names(readme):
    """Full metric names in the first column of the README's metrics table, and the text."""
    body = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in body.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.strip("|").split("|")[0]
        for token in re.findall(r"`([^`]+)`", first):
            if token.startswith("monero_"):
                names.add(token.split("{", 1)[0])
    return names, body


def check(args):
    docs = open(args.docs).read()
    exp_doc = doc_table(docs, "The exporter's metrics")
    op_doc = doc_table(docs, "The operator's metrics")

    # 1. The exporters: every family exposed by any of them, documented as exposed.
    exposed = {}
    for url in args.exporter:
        status, body = http_get(url)
        result(status == 200, "GET %s answers 200" % url, "HTTP %d" % status)
        for name, f in parse_exposition(body).items():
            e = exposed.setdefault(name, {"type": f["type"], "labels": set()})
            e["labels"] |= f["labels"]
    compare("exporter", exp_doc, exposed, args.prometheus)

    # 2. The operator: exposed, documented and registered in metrics.rs.
    registered = set(re.findall(r'"(monero_operator_[a-z0-9_]+)"', open(args.metrics_rs).read()))
    status, body = http_get(args.operator)
    result(status == 200, "GET %s answers 200" % args.operator, "HTTP %d" % status)
    compare("operator", op_doc, parse_exposition(body), args.prometheus, registered)

    # 3. The exporter README's table names the same metrics as docs/metrics.md (grouped
    # rows name a family by its distinct suffix, as the exporter's unit test reads them).
    in_readme, table = readme_names(open(args.readme).read())
    missing = [
        n for n in sorted(exp_doc)
        if "`%s`" % n not in table
        and "`%s{" % n not in table
        and "`_%s`" % n.split("_transaction_")[-1] not in table
    ]
    extra = sorted(in_readme - set(exp_doc))
    result(
        not missing and not extra,
        "crates/monero-exporter/README.md and docs/metrics.md list the same exporter metrics",
        ("not in the README: %s\n" % ", ".join(missing) if missing else "")
        + ("not in docs/metrics.md: %s" % ", ".join(extra) if extra else ""),
    )

    # xmrig's metrics need a real xmrig, which runs only in the pod tests (hack/pods_test.py
    # compares that section with what its exporter exposes); here they are known names.
    known = set(exp_doc) | set(op_doc) | set(doc_table(docs, "xmrig's metrics")) | {"up"}
    histograms = {n for n, d in list(exp_doc.items()) + list(op_doc.items()) if d["type"] == "histogram"}

    # 4. Every metric the alerts use exists.
    rules = open(args.rules).read()
    alerts = re.findall(r"- alert: *(\S+)\n\s+(?:#[^\n]*\n\s+)*expr: *(.+)", rules)
    expected = len(re.findall(r"- alert:", rules))
    result(len(alerts) == expected, "read the expr of every alert in %s" % args.rules,
           "found %d exprs for %d alerts (an expr that is not on one line after the alert?)"
           % (len(alerts), expected))
    for alert, expr in alerts:
        names = {family_of(n, histograms) for n in metric_names(expr)}
        unknown = sorted(names - known)
        result(not unknown, "alert %s uses only documented metrics" % alert,
               "unknown: %s" % ", ".join(unknown))

    # 5. The dashboards.
    for path in args.dashboard or DASHBOARDS:
        check_dashboard(args, path, known, histograms)

    if args.counts:
        with open(args.counts, "w") as f:
            f.write("%d %d\n" % (PASSED, FAILED))
    return 1 if FAILED else 0


def wait(args):
    end = time.monotonic() + args.deadline
    pending = list(args.expr)
    last = {}
    while pending:
        for expr in list(pending):
            ok, data = instant(args.prometheus, expr)
            if ok and data["result"]:
                pending.remove(expr)
            else:
                last[expr] = data if not ok else "no series yet"
        if not pending:
            break
        if time.monotonic() > end:
            for expr in pending:
                print("timed out after %ss waiting for Prometheus to return %s (%s)" % (args.deadline, expr, last.get(expr)), file=sys.stderr)
            return 1
        time.sleep(0.25)
    return 0


def check_dashboard(args, path, known, histograms):
    """One dashboard: its structure, its variables and every panel's query through
    Prometheus, and its ConfigMap in `kubectl kustomize config/grafana`."""
    dash = json.load(open(path))
    variables = dash.get("templating", {}).get("list", [])
    problems = []
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        problems.append("schemaVersion %r (want 36 or newer)" % dash.get("schemaVersion"))
    ds = [v for v in variables if v.get("type") == "datasource"]
    if not ds or ds[0].get("query") != "prometheus":
        problems.append("no datasource variable of type prometheus")
    ds_ref = "${%s}" % (ds[0]["name"] if ds else "datasource")
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    defined = {v["name"] for v in variables}
    for p in panels:
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != ds_ref:
            problems.append("panel %r does not use %s" % (p.get("title"), ds_ref))
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != ds_ref:
                problems.append("a target of %r does not use %s" % (p.get("title"), ds_ref))
            for var in re.findall(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)", t.get("expr", "")):
                if var not in defined and not var.startswith("__"):
                    problems.append("%r uses undefined variable $%s" % (p.get("title"), var))
    result(not problems, "dashboard structure (%s)" % path, "\n".join(problems))

    builtins = {
        "__rate_interval": args.rate_interval,
        "__interval": args.interval,
        "__range": args.range,
    }
    values = {}
    for v in variables:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q)
        if not m:
            result(False, "dashboard variable $%s is a label_values() query" % v["name"], q)
            continue
        match = substitute(m.group(1), values, builtins)
        unknown = sorted(metric_names(match) - known)
        ok, data = prom(args.prometheus, "/api/v1/label/%s/values" % m.group(2), **{"match[]": match})
        found = data if ok else []
        result(
            ok and bool(found) and not unknown,
            "dashboard variable $%s: %s -> %s" % (v["name"], q, ", ".join(found) or "nothing"),
            data if not ok else ("unknown metrics: %s" % ", ".join(unknown) if unknown else "no values"),
        )
        vals = [regex_escape(x) for x in found]
        values[v["name"]] = "(%s)" % "|".join(vals) if vals else v.get("allValue") or ".*"

    for p in panels:
        for t in p.get("targets", []):
            expr = t.get("expr")
            if not expr:
                continue
            query = substitute(expr, values, builtins)
            names = {family_of(n, histograms) for n in metric_names(query)}
            unknown = sorted(names - known)
            kind = "operator" if any(n.startswith("monero_operator_") for n in names) else "exporter"
            ok, data = instant(args.prometheus, query)
            series = len(data["result"]) if ok else 0
            what = "panel %r (%s) target %s: %d series" % (p.get("title"), kind, t.get("refId"), series)
            detail = [query]
            if not ok:
                detail.append("query failed: %s" % data)
            elif not series:
                detail.append("no series")
            if unknown:
                detail.append("metrics not in docs/metrics.md: %s" % ", ".join(unknown))
            result(ok and series > 0 and not unknown, what, "\n".join(detail))

    # The ConfigMap for Grafana's sidecar carries the dashboard unchanged.
    if args.kustomized:
        text = open(args.kustomized).read()
        problems = []
        stem = os.path.basename(path)[: -len(".json")]
        if "name: %s-dashboard" % stem not in text:
            problems.append("no ConfigMap named %s-dashboard" % stem)
        if not re.search(r'\n\s+grafana_dashboard: "1"\n', text):
            problems.append('no label grafana_dashboard: "1"')
        m = re.search(r"\n(\s+)%s: \|-?\n((?:\1\s+.*\n|\n)+)" % re.escape(stem + ".json"), text)
        if not m:
            problems.append("no %s.json block in the ConfigMap's data" % stem)
        else:
            indent = len(m.group(1)) + 2
            embedded = "".join(line[indent:] + "\n" for line in m.group(2).splitlines())
            shipped = path
            if embedded.strip() != open(shipped).read().strip():
                problems.append("the embedded dashboard differs from %s" % shipped)
        result(not problems, "kubectl kustomize config/grafana: a ConfigMap with %s" % stem,
               "\n".join(problems))


DASHBOARDS = [ROOT + "/config/grafana/monero-nodes.json", ROOT + "/config/grafana/monero-network.json"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--prometheus", required=True)
    w.add_argument("--deadline", type=float, default=60)
    w.add_argument("expr", nargs="+")
    c = sub.add_parser("check")
    c.add_argument("--prometheus", required=True)
    c.add_argument("--exporter", action="append", required=True, help="a /metrics URL (repeatable)")
    c.add_argument("--operator", required=True, help="the operator's /metrics URL")
    c.add_argument("--docs", default=ROOT + "/docs/metrics.md")
    c.add_argument("--readme", default=ROOT + "/crates/monero-exporter/README.md")
    c.add_argument("--metrics-rs", default=ROOT + "/crates/monero-reconciler/src/controller/metrics.rs")
    c.add_argument("--rules", default=ROOT + "/config/prometheus/rules.yaml")
    c.add_argument("--dashboard", action="append", help="a dashboard to check (repeatable; default: both shipped)")
    c.add_argument("--rate-interval", default="10s", help="what $__rate_interval becomes")
    c.add_argument("--interval", default="1s", help="what $__interval becomes")
    c.add_argument("--range", default="1m", help="what $__range becomes")
    c.add_argument("--kustomized", help="output of `kubectl kustomize config/grafana` to check")
    c.add_argument("--counts", help="write 'PASSED FAILED' here")
    args = p.parse_args()
    sys.exit(wait(args) if args.command == "wait" else check(args))


if __name__ == "__main__":
    main()
