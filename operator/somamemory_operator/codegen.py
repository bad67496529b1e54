"""Writers of the operator's generated files: run ``python -m somamemory_operator.crd --write``.

- ``service_env.py`` from the service's settings object (``somamemory.settings.Settings``): the
  operator image does not carry the service's dependencies, so the variable names travel as data;
- the CRD, into ``operator/crd/`` and the operator chart's ``templates/crd.yaml`` (a template, so
  that ``helm upgrade`` upgrades it; ``helm.sh/resource-policy: keep`` keeps it on uninstall).

Tests regenerate each file in memory and fail when a checked-in copy differs.
"""

from __future__ import annotations

import pathlib
import typing

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICE_ENV_FILE = pathlib.Path(__file__).with_name("service_env.py")
CRD_FILE = ROOT / "operator" / "crd" / "somamemory-crd.yaml"
CHART_CRD_TEMPLATE = ROOT / "charts" / "somamemory-operator" / "templates" / "crd.yaml"
# the backup and rebuild kinds (task_crd.py), one file of four CRDs
TASK_CRD_FILE = ROOT / "operator" / "crd" / "somamemory-backup-crds.yaml"
CHART_TASK_CRD_TEMPLATE = ROOT / "charts" / "somamemory-operator" / "templates" / "crd-backups.yaml"


def settings_variables() -> tuple[dict[str, str], set[str]]:
    """(variable -> settings field, secret variables), read from the service's Settings class."""
    from pydantic import AliasChoices, SecretStr

    from somamemory.settings import Settings

    variables: dict[str, str] = {}
    secrets: set[str] = set()
    prefix = str(Settings.model_config.get("env_prefix", ""))
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = (
            [str(choice) for choice in alias.choices]
            if isinstance(alias, AliasChoices)
            else [f"{prefix}{name}".upper()]
        )
        annotation = field.annotation
        secret = annotation is SecretStr or SecretStr in typing.get_args(annotation)
        for variable in names:
            variables[variable] = name
            if secret:
                secrets.add(variable)
    return variables, secrets


def service_env_source() -> str:
    """The text of ``service_env.py``."""
    variables, secrets = settings_variables()
    lines = [
        '"""Every environment variable the service reads, and which of them hold secrets.',
        "",
        "Generated from ``somamemory.settings.Settings`` by ``python -m somamemory_operator.crd",
        "--write``: do not edit. The operator image does not carry the service's dependencies, so",
        "the names travel as data; a test regenerates this file and fails when it differs.",
        '"""',
        "",
        "# variable -> the settings field it sets",
        "SERVICE_ENV: dict[str, str] = {",
        *(f'    "{var}": "{variables[var]}",' for var in sorted(variables)),
        "}",
        "",
        "# secret variables: spec.env passes them with valueFrom.secretKeyRef only",
        "SECRET_ENV: frozenset[str] = frozenset(",
        "    {",
        *(f'        "{var}",' for var in sorted(secrets)),
        "    }",
        ")",
        "",
    ]
    return "\n".join(lines)


def chart_crd_template(crd_text: str) -> str:
    """The CRD as a chart template: Helm's labels, kept on uninstall, optional."""
    header, _, body = crd_text.partition("\n")
    return f"{header}\n{{{{- if .Values.crd.install }}}}\n" + _helm_crd(body) + "{{- end }}\n"


def chart_task_crd_template(crds_text: str) -> str:
    """The backup and rebuild CRDs as one chart template, each like the SomaMemory's."""
    header, _, body = crds_text.partition("\n")
    docs = [doc.strip("\n") + "\n" for doc in body.split("---\n") if doc.strip()]
    return (
        f"{header}\n{{{{- if .Values.crd.install }}}}\n"
        + "---\n".join(_helm_crd(doc) for doc in docs)
        + "{{- end }}\n"
    )


def _helm_crd(body: str) -> str:
    name = next(line for line in body.splitlines() if line.startswith("  name: "))
    marker = name + "\n"
    meta = (
        marker + "  labels:\n"
        '    {{- include "somamemory-operator.labels" . | nindent 4 }}\n'
        "  annotations:\n"
        "    # Helm upgrades CRDs only from templates; this one stays on uninstall\n"
        "    helm.sh/resource-policy: keep\n"
    )
    return body.replace(marker, meta, 1)


def write_all() -> list[pathlib.Path]:
    """Regenerate every generated file; return the paths written."""
    import importlib

    SERVICE_ENV_FILE.write_text(service_env_source())
    from . import crd, envvars, service_env

    importlib.reload(service_env)
    importlib.reload(envvars)
    importlib.reload(crd)
    text = crd.crd_yaml()
    CRD_FILE.write_text(text)
    CHART_CRD_TEMPLATE.write_text(chart_crd_template(text))
    tasks = crd.task_crds_yaml()
    TASK_CRD_FILE.write_text(tasks)
    CHART_TASK_CRD_TEMPLATE.write_text(chart_task_crd_template(tasks))
    return [SERVICE_ENV_FILE, CRD_FILE, CHART_CRD_TEMPLATE, TASK_CRD_FILE, CHART_TASK_CRD_TEMPLATE]
