"""doctor/logs/resolver.py: pip, uv, poetry and conda/mamba refusals read as who requires what (real wordings)."""

from __future__ import annotations

from pathlib import Path

from bdv2.doctor.logs.resolver import (
    Requirement,
    Resolver,
    ResolverKind,
    admits,
    conflicts,
    exclusions,
    resolver_findings,
    row_for,
)
from bdv2.doctor.matrix import Matrix

CORPUS = Path(__file__).parent.parent / "data" / "log_corpus" / "structural"


def _log(name: str) -> str:
    """A real resolver output (its thread is on the file's `# source:` line)."""
    return (CORPUS / name).read_text()


PIP = _log("log-resolver-conflict__marl-jax-chex.log")
PIP_EXTRAS = _log("log-resolver-conflict__xlb-jax-cuda-plugin.log")
PIP_CHECK = _log("log-installed-conflict__interpax-jax.log")
UV = _log("log-resolver-conflict__uv-jax-tpu-libtpu.log")
POETRY = _log("log-resolver-conflict__poetry-tf-jax-nccl.log")
MAMBA = _log("log-resolver-conflict__libmamba-jaxlib-cuda.log")
CONDA = _log("log-resolver-conflict__conda-pytorch-cudatoolkit.log")


def test_pip_resolution_impossible() -> None:
    [c] = conflicts(PIP)
    assert c.resolver is Resolver.PIP
    assert c.parties == ["-r requirements.txt (line 43)", "jax==0.4.1"]
    assert c.requirements == [Requirement("the user", "", "jax", "==0.4.1"),
                              Requirement("chex", "0.1.7", "jax", ">=0.4.6")]
    [c] = conflicts(PIP_EXTRAS)
    assert c.requirements[0] == Requirement("jax", "0.4.35", "jax-cuda12-plugin", "<=0.4.35 and >=0.4.34")


def test_pip_post_install_check() -> None:
    [c] = conflicts(PIP_CHECK)
    assert c.resolver is Resolver.PIP_CHECK
    assert c.requirements == [Requirement("interpax", "0.2.4", "jax", "<=0.4.20,>=0.3.2", have="0.4.24")]
    [f] = resolver_findings(PIP_CHECK)
    assert f.id == ResolverKind.INSTALLED_CONFLICT.value
    assert f.title.endswith("interpax 0.2.4 needs jax<=0.4.20,>=0.3.2, which excludes the installed jax 0.4.24")
    req = conflicts(PIP_CHECK)[0].requirements[0]
    assert str(req) == "interpax 0.2.4 requires jax <=0.4.20,>=0.3.2, but jax 0.4.24 is installed"


def test_uv_and_poetry_derivations() -> None:
    [c] = conflicts(UV)
    assert c.resolver is Resolver.UV
    assert Requirement("jax", "0.4.33", "libtpu-nightly", "==0.1.dev20240916") in c.requirements
    [c] = conflicts(POETRY)
    assert c.resolver is Resolver.POETRY
    assert c.requirements[:2] == [Requirement("tensorflow", "2.15.0", "nvidia-nccl-cu12", "2.16.5"),
                                  Requirement("jax", "0.4.23", "nvidia-nccl-cu12", ">=2.18.3")]


def test_conda_and_mamba() -> None:
    [c] = conflicts(MAMBA)
    assert c.resolver is Resolver.CONDA
    assert Requirement("jaxlib", "0.3.10", "__cuda", "", have="nothing provides it") in c.requirements
    [c] = conflicts(CONDA)
    assert Requirement("pytorch", "0.4.0", "cudatoolkit", "9") in c.requirements


def test_the_finding_names_a_known_good_row_with_those_packages(matrix: Matrix) -> None:
    # the set-up guide's pins: https://github.com/tensorflow/probability/releases/tag/v0.22.1 needs jax >= 0.4.14
    log = ("ERROR: Cannot install jax==0.4.13 and tensorflow-probability==0.22.1 because these package versions have "
           "conflicting dependencies.\n\nThe conflict is caused by:\n    The user requested jax==0.4.13\n"
           "    tensorflow-probability 0.22.1 depends on jax>=0.4.14\n")
    [f] = resolver_findings(log, matrix)
    assert f.id == ResolverKind.CONFLICT.value and f.fix is not None
    row = row_for(conflicts(log)[0], matrix)
    assert row is not None and f"bdv2 matrix constraints {row.name} > constraints.txt" in f.fix.commands
    assert "jax" in row.packages and "tensorflow-probability" in row.packages
    assert row.packages["tensorflow-probability"].contains("0.22.1")  # the row that keeps the user's TFP pin


def test_nothing_in_an_ordinary_log() -> None:
    assert conflicts("Successfully installed jax-0.4.30 jaxlib-0.4.30\nERROR: something else failed") == []


def test_which_requirement_excludes_which_version() -> None:
    assert exclusions(conflicts(PIP)[0]) == ["chex 0.1.7 needs jax>=0.4.6, which excludes the requested jax 0.4.1"]
    assert exclusions(conflicts(PIP_CHECK)[0]) == [
        "interpax 0.2.4 needs jax<=0.4.20,>=0.3.2, which excludes the installed jax 0.4.24"]
    assert exclusions(conflicts(POETRY)[0]) == [
        "jax 0.4.23 needs nvidia-nccl-cu12>=2.18.3, which excludes tensorflow 2.15.0's pin, nvidia-nccl-cu12 2.16.5"]
    assert exclusions(conflicts(CONDA)[0]) == [
        "pytorch 0.4.0 needs cudatoolkit 9, which excludes the requested cudatoolkit 8.0"]
    assert exclusions(conflicts(UV)[0]) == []  # a pre-release pin: the resolver's own words stand


def test_admits_only_what_it_can_read() -> None:
    assert admits(">=0.4.6", "0.4.1") is False and admits("<=0.4.35 and >=0.4.34", "0.4.34") is True
    assert admits("~=0.3.1", "0.3.4") is True and admits("~=0.3.1", "0.4.0") is False
    assert admits("==0.1.dev20240916", "0.1.dev20240916") is None and admits("==0.4.*", "0.4.1") is None


def test_pip_explanation_kept_without_its_header() -> None:
    [c] = conflicts(_log("log-resolver-conflict__easylm-jax-cuda11-torch.log"))
    assert c.resolver is Resolver.PIP and c.parties == []
    assert Requirement("jax", "0.4.14", "nvidia-cuda-runtime-cu11", ">=11.8") in c.requirements
    assert exclusions(c) == ["jax 0.4.14 needs nvidia-cuda-runtime-cu11>=11.8, which excludes torch 2.0.1's pin, "
                             "nvidia-cuda-runtime-cu11 11.7.99"]


def test_libmamba_tree_reads_requests_and_what_they_require() -> None:
    [c] = conflicts(_log("log-resolver-conflict__speedppi-libmamba-ambertools.log"))
    assert c.parties == ["ambertools ==23.3", "openmmforcefields ==0.11.2"]
    assert Requirement("openmmforcefields", "0.11.2", "ambertools", ">=20.0,<23") in c.requirements
    assert exclusions(c) == ["openmmforcefields 0.11.2 needs ambertools>=20.0,<23, which excludes the requested "
                             "ambertools 23.3"]
    [c] = conflicts(_log("log-resolver-conflict__torchmd-mamba-cuda-version.log"))
    assert c.parties == ["cuda-version 12.2**", "cudatoolkit"]
    assert c.requirements == [Requirement("cuda-version", "12.2", "cudatoolkit", "12.2|12.2.*")]


def test_a_conda_verdict_without_its_explanation_is_still_a_refusal() -> None:
    text = ("(env) $ conda install -c conda-forge -n work jax\nSolving environment: failed\n\n"
            "UnsatisfiableError: The following specifications were found to be incompatible with each other:\n")
    [c] = conflicts(text)
    assert c.resolver is Resolver.CONDA and c.parties == ["jax"] and c.requirements == []
    [f] = resolver_findings(text)
    assert f.id == ResolverKind.CONFLICT.value and "jax" in f.title


def test_no_matching_distribution_is_not_a_conflict() -> None:
    pip = _log("log-no-matching-distribution__local-pip-jaxlib-cuda-local-version.log")
    [f] = resolver_findings(pip)
    assert f.id == ResolverKind.NO_DISTRIBUTION.value and "jaxlib==0.4.13+cuda12.cudnn89" in f.title
    assert f.fix is not None and "jax[cuda12]" in f.fix.summary and any("0.4.13, 0.4.18" in e for e in f.evidence)
    uv = _log("log-no-matching-distribution__local-uv-jaxlib0175.log")
    assert conflicts(uv) == [] and [f.id for f in resolver_findings(uv)] == [ResolverKind.NO_DISTRIBUTION.value]
    wheels = ("  × No solution found when resolving dependencies:\n"
              "  ╰─▶ Because tensorflow==2.8.0 has no wheels with a\n"
              "      matching Python ABI tag (e.g., `cp311`) and you require tensorflow==2.8.0, we can conclude that\n"
              "      your requirements are unsatisfiable.\n")
    # tensorflow 2.8.0's wheels on PyPI are cp37-cp310: uv's cp311 is newer, said first
    python, f = resolver_findings(wheels)
    assert python.id == "log-python-too-new" and "3.7-3.10" in python.title and "3.11" in python.title
    assert f.id == ResolverKind.NO_DISTRIBUTION.value and "Python ABI tag" in f.evidence[0]
    # a dependency missing from the index is still the dependency's conflict (uv's own wording, uv-jax-tpu log)
    assert [f.id for f in resolver_findings(UV)] == [ResolverKind.CONFLICT.value]
