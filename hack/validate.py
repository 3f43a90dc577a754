"""Validates Kubernetes objects offline; run by hack/validate.sh inside .venv.

Built-in kinds (and the CustomResourceDefinitions themselves) are validated with
kubernetes-validate in strict mode, once per Kubernetes version given: an unknown
field, a wrong type or a missing required field fails. kubernetes-validate has no
schema for custom resources (it only warns and passes them), so those are validated
here against the openAPIV3Schema of the matching CRD, with unknown fields rejected
as `kubectl apply --validate=strict` would. CEL rules (x-kubernetes-validations) are
not evaluated here: monero-crd's own tests run them.

Before trusting a pass, a self-check feeds the validators an object with a bogus
field and requires them to reject it.

usage: validate.py --versions 1.30.0,1.37.0 [--crds FILE]... [--counts FILE] LABEL=FILE...
"""

import argparse
import copy
import sys

import jsonschema
import yaml

import kubernetes_validate

CRD_API = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def api_kind(obj):
    if not isinstance(obj, dict):
        return (None, None)
    return (obj.get("apiVersion"), obj.get("kind"))


def describe(obj):
    """kind namespace/name, for messages."""
    if not isinstance(obj, dict):
        return "<not an object: %r>" % (obj,)
    meta = obj.get("metadata") or {}
    name = meta.get("name", "<no name>")
    if meta.get("namespace"):
        name = "%s/%s" % (meta["namespace"], name)
    return "%s %s" % (obj.get("kind", "<no kind>"), name)


def path_of(error):
    return ".".join(str(p) for p in error.absolute_path) or "<root>"


def structural_to_jsonschema(node, root=False, field=False):
    """A CRD's structural OpenAPI v3 schema as a draft-4 JSON Schema that rejects
    unknown fields the way the API server's strict field validation does. A field
    (property or map value) may be null even when not nullable: the API server
    prunes such nulls before validating."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {p: structural_to_jsonschema(s, field=True) for p, s in value.items()}
        elif key in ("items", "not"):
            out[key] = structural_to_jsonschema(value)
        elif key == "additionalProperties":
            out[key] = (structural_to_jsonschema(value, field=True)
                        if isinstance(value, dict) else value)
        elif key in ("anyOf", "oneOf", "allOf"):
            out[key] = [structural_to_jsonschema(s) for s in value]
        elif key.startswith("x-kubernetes-") or key in (
            "nullable", "default", "description", "example", "externalDocs",
        ):
            continue
        else:
            out[key] = value
    if root or node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable") or field:
        # Null allowed, keeping the schema flat so that errors stay precise.
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
        elif "anyOf" in out:
            out["anyOf"] = out["anyOf"] + [{"type": "null"}]
    return out


class CrdSchemas:
    def __init__(self):
        self.by_api = {}  # (group/version, kind) -> (crd name, validator)

    def add(self, crd):
        spec = crd.get("spec", {})
        group, kind = spec.get("group"), spec.get("names", {}).get("kind")
        for version in spec.get("versions", []):
            if not version.get("served", False):
                continue
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema is None:
                continue
            converted = structural_to_jsonschema(schema, root=True)
            jsonschema.Draft4Validator.check_schema(converted)
            self.by_api[("%s/%s" % (group, version["name"]), kind)] = (
                crd["metadata"]["name"],
                jsonschema.Draft4Validator(converted),
            )

    def find(self, obj):
        return self.by_api.get(api_kind(obj))


def kv_errors(obj, version):
    """None when obj is valid for version, "no-schema" when kubernetes-validate does
    not know its kind, else the error message."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
        return None
    except kubernetes_validate.ValidationError as e:
        return "%s: %s" % (path_of(e), e.message)
    except kubernetes_validate.SchemaNotFoundError:
        return "no-schema"
    except Exception as e:  # a malformed object can trip the library itself
        return "could not be validated: %s: %s" % (type(e).__name__, e)


def cr_errors(validator, obj):
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    return ["%s: %s" % (path_of(e), e.message) for e in errors]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", required=True, help="comma-separated Kubernetes versions")
    parser.add_argument("--crds", action="append", default=[], help="YAML with CRDs")
    parser.add_argument("--counts", help='write "PASSED FAILED" here')
    parser.add_argument("--crd-label", default="config/crd")
    parser.add_argument("sources", nargs="+", metavar="LABEL=FILE")
    args = parser.parse_args()
    versions = [v for v in args.versions.split(",") if v]

    failed_lines = []

    def fail(message):
        failed_lines.append(message)
        print("FAIL " + message, flush=True)

    passed = failed = 0

    # Every object, with where it came from.
    objects = []
    for source in args.sources:
        label, _, path = source.partition("=")
        try:
            objects += [(label, obj) for obj in load(path)]
        except (OSError, yaml.YAMLError) as e:
            failed += 1
            fail("%s: cannot read %s: %s" % (label, path, e))

    crds = CrdSchemas()
    crd_docs = [d for f in args.crds for d in load(f)]
    crd_docs += [o for _, o in objects if api_kind(o) == CRD_API]
    for crd in crd_docs:
        if api_kind(crd) == CRD_API:
            crds.add(crd)

    custom = [(l, o) for l, o in objects if crds.find(o)]
    builtin = [(l, o) for l, o in objects if not crds.find(o)]
    sources = len(args.sources)
    print(
        "objects: %d from %d sources: %d of built-in kinds (%d CustomResourceDefinitions), "
        "%d custom resources" % (
            len(objects), sources, len(builtin),
            sum(1 for _, o in builtin if api_kind(o) == CRD_API),
            len(custom),
        ),
        flush=True,
    )

    # Self-check: the validators must reject an unknown field, deep in a real object.
    canary = next((o for _, o in builtin if api_kind(o) == ("apps/v1", "StatefulSet")), None)
    try:
        canary = copy.deepcopy(canary)
        canary["spec"]["template"]["spec"]["containers"][0]["bogusField"] = 1
        where = "spec.template.spec.containers[0].bogusField"
    except (KeyError, IndexError, TypeError):
        canary = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "canary"},
                  "bogusField": 1}
        where = "bogusField"
    for version in versions:
        result = kv_errors(canary, version)
        if result is None or result == "no-schema":
            failed += 1
            fail("self-check %s: kubernetes-validate accepted %s with %s; strict mode is not "
                 "in effect" % (version, describe(canary), where))
        else:
            passed += 1
            print("ok   self-check %s: %s with %s rejected (%s)" % (
                version, describe(canary), where, result), flush=True)
    if custom:
        cr = copy.deepcopy(custom[0][1])
        if not isinstance(cr.get("spec"), dict):
            cr["spec"] = {}
        cr["spec"]["bogusField"] = 1
        errors = cr_errors(crds.find(cr)[1], cr)
        if errors:
            passed += 1
            print("ok   self-check CRD schema: %s with spec.bogusField rejected (%s)" % (
                describe(cr), errors[0]), flush=True)
        else:
            failed += 1
            fail("self-check CRD schema: %s with spec.bogusField was accepted" % describe(cr))

    # Built-in kinds, per Kubernetes version.
    for version in versions:
        ok = bad = 0
        for label, obj in builtin:
            if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind") \
                    or not (obj.get("metadata") or {}).get("name"):
                bad += 1
                fail("%s %s (%s): apiVersion, kind and metadata.name are required" % (
                    version, describe(obj), label))
                continue
            result = kv_errors(obj, version)
            if result is None:
                ok += 1
            elif result == "no-schema":
                bad += 1
                fail("%s %s (%s): no schema for %s in Kubernetes %s, and no CRD in %s "
                     "defines it" % (version, describe(obj), label, obj["apiVersion"], version,
                                     args.crd_label))
            else:
                bad += 1
                fail("%s %s (%s): %s" % (version, describe(obj), label, result))
        print("Kubernetes %s (strict): %d passed, %d failed (%d custom resources are checked "
              "against their CRDs below)" % (version, ok, bad, len(custom)), flush=True)
        passed += ok
        failed += bad

    # Custom resources, against the CRDs' schemas.
    ok = bad = 0
    for label, obj in custom:
        crd_name, validator = crds.find(obj)
        errors = cr_errors(validator, obj)
        if errors:
            bad += 1
            for error in errors:
                fail("CRD %s %s (%s): %s" % (crd_name, describe(obj), label, error))
        else:
            ok += 1
    print("custom resources against the CRD schemas (strict, CEL rules not evaluated): "
          "%d passed, %d failed" % (ok, bad), flush=True)
    passed += ok
    failed += bad

    if failed_lines:
        print("failures:")
        for line in failed_lines:
            print("  " + line)
    if args.counts:
        with open(args.counts, "w") as f:
            f.write("%d %d\n" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
