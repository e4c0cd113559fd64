"""Shared fixtures."""

from __future__ import annotations

import pytest

from bdv2.doctor.matrix import Matrix, load_matrix


@pytest.fixture(scope="session")
def matrix() -> Matrix:
    return load_matrix()
