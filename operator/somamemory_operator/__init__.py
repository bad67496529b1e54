"""The SomaMemory Kubernetes operator (kopf). ``kopf run -m somamemory_operator`` runs it.

Importing the package registers the handlers; the manifest renderers in
:mod:`somamemory_operator.manifests` are plain functions usable without a cluster.
"""

from . import handlers

__all__ = ["handlers"]
