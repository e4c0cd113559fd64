"""Tests of bdv2.doctor. Shared code is imported as modules of this package (``from . import helpers``);
conftest.py holds fixtures only."""
