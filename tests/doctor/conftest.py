"""Shared fixtures."""

from __future__ import annotations

import pytest

from bdv2.doctor import load_matrix
from bdv2.doctor.matrix import Matrix


@pytest.fixture(scope="session")
def matrix() -> Matrix:
    return load_matrix()
