"""Whether the examined jax has a CUDA backend has one owner, the doctor's Snapshot (``jax_has_cuda``): its GPU
rules and the trainer's preflight read the same answer."""

from __future__ import annotations

import pytest

import bdv2.doctor as doctor
from bdv2.doctor.checks.gpu_rules import Backend, gpu_backend
from bdv2.doctor.probe.snapshot import Dist, Snapshot
from bdv2.trainer import launch


def _snap(versions: dict[str, str]) -> Snapshot:
    return Snapshot(python={"version": "3.11.7"}, markers={},
                    distributions=tuple(Dist(name=n, version=v) for n, v in versions.items()))


@pytest.mark.parametrize(("versions", "cuda"), [
    ({"jax": "0.10.2", "jaxlib": "0.10.2", "jax-cuda13-plugin": "0.10.2", "jax-cuda13-pjrt": "0.10.2"}, True),
    ({"jax": "0.4.26", "jaxlib": "0.4.26+cuda12.cudnn89"}, True),
    ({"jax": "0.10.2", "jaxlib": "0.10.2"}, False),
    ({"jax": "0.10.2"}, None),
])
def test_the_doctor_and_the_trainer_read_one_answer_for_a_cuda_backend(
        versions: dict[str, str], cuda: bool | None, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = _snap(versions)
    assert snap.jax_has_cuda is cuda
    if cuda is not None:
        assert (gpu_backend(snap)[0] is not Backend.NONE) is cuda
    monkeypatch.setattr(doctor, "examine", lambda **kw: doctor.Examination(snap, [], {}))
    assert launch.doctor_preflight().gpu_backend is cuda
