from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_apiserver import FakeApiServer  # noqa: E402


@pytest.fixture
def apiserver():
    with FakeApiServer() as server:
        yield server


@pytest.fixture
def clients(apiserver):
    from lowres_ocr.cluster import api

    return api.connect(host=apiserver.url)
