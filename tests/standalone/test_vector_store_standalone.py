"""The contract of tests/stores/test_vector_store.py, unchanged, on a real Milvus standalone.

Every ``test_*`` function there that takes the ``store`` fixture (the ones run on each backend)
is collected here too, and gets the ``store`` of this directory's conftest: one store on the
standalone server. Tests there that build their own milvus-lite store are not repeated here.
"""

from __future__ import annotations

import inspect

import pytest

from ..stores import test_vector_store as contract
from .milvus_standalone import ENABLED, SKIP_REASON

if not ENABLED:
    pytest.skip(SKIP_REASON, allow_module_level=True)

globals().update(
    {
        name: test
        for name, test in vars(contract).items()
        if name.startswith("test_") and "store" in inspect.signature(test).parameters
    }
)
