"""The SomaMemory CustomResourceDefinition, built here as data: the one source of truth.

``python -m somamemory_operator.crd`` prints it; ``--write`` regenerates every generated file
(``operator/crd/somamemory-crd.yaml``, the chart's ``templates/crd.yaml`` and ``service_env.py``,
see :mod:`.codegen`); tests keep the checked-in copies identical to it.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from .constants import GROUP, KIND, PLURAL, SHORT_NAME, SINGULAR, VERSION
from .spec_schema import Schema, obj, spec_schema

PHASES = ["Pending", "Migrating", "Deploying", "Ready", "Degraded", "Failed", "Paused"]
MAX_NAME = 52  # leaves room for the Service, Job and pod name suffixes Kubernetes adds
DNS_1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

__all__ = ["Schema", "crd", "crd_yaml", "spec_schema"]


def status_schema() -> Schema:
    """The ``status`` schema written by the operator."""
    condition = obj(
        {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "minimum": 0},
        },
        required=["type", "status"],
    )
    return obj(
        {
            "phase": {"type": "string", "enum": PHASES},
            "message": {"type": "string"},
            "ready": {"type": "string", "description": "ready/desired server pods"},
            "replicas": {"type": "integer", "description": "server pods (scale subresource)"},
            "readyReplicas": {"type": "integer"},
            "desiredReplicas": {"type": "integer"},
            "selector": {"type": "string", "description": "server pod selector (scale)"},
            "image": {"type": "string", "description": "the image the server pods run"},
            "observedGeneration": {"type": "integer"},
            "deploymentGeneration": {"type": "integer"},
            "migratedImage": {"type": "string"},
            "migrationJob": {"type": "string"},
            "schemaRevision": {"type": "string", "description": "the database's schema"},
            "migrationSeconds": {
                "type": "integer",
                "description": "how long the last migration Job ran",
            },
            "lastBackupTime": {
                "type": "string",
                "format": "date-time",
                "description": "when the last SomaMemoryBackup of this instance completed",
            },
            "lastBackup": {"type": "string", "description": "the last SomaMemoryBackup"},
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        }
    )


def root_validations() -> list[dict[str, str]]:
    """Rules on the whole object (the API server lets them read metadata.name)."""
    return [
        {
            "rule": f"size(self.metadata.name) <= {MAX_NAME} && "
            f"self.metadata.name.matches('{DNS_1035}')",
            "message": "metadata.name must be a DNS-1035 label (lowercase letters, digits, '-', "
            f"starting with a letter) of at most {MAX_NAME} characters: it names the Service",
        }
    ]


def crd() -> dict[str, Any]:
    """The full CustomResourceDefinition object."""
    columns = [
        ("Phase", "string", ".status.phase"),
        ("Ready", "string", ".status.ready"),
        ("Schema", "string", ".status.schemaRevision"),
        ("Image", "string", ".status.image"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p} for n, t, p in columns
                    ],
                    "schema": {
                        "openAPIV3Schema": obj(
                            {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                            required=["spec"],
                            validations=root_validations(),
                        )
                    },
                }
            ],
        },
    }


def task_crds_yaml() -> str:
    """The backup and rebuild CRDs (:mod:`.task_crd`) as one YAML text, checked in too."""
    from .task_crd import task_crds

    header = (
        "# Generated from somamemory_operator/task_crd.py (python -m somamemory_operator.crd).\n"
    )
    return header + yaml.safe_dump_all(task_crds(), sort_keys=False, width=100)


def crd_yaml() -> str:
    """The CRD as the YAML text checked into the repository."""
    header = "# Generated from somamemory_operator/crd.py (python -m somamemory_operator.crd).\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)


def main(argv: list[str]) -> int:
    """Print the CRD, or (``--write``) regenerate every generated file from its source."""
    if argv == ["--write"]:
        from .codegen import write_all

        for path in write_all():
            sys.stdout.write(f"wrote {path}\n")
        return 0
    if argv:
        sys.stderr.write("usage: python -m somamemory_operator.crd [--write]\n")
        return 2
    sys.stdout.write(crd_yaml())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
