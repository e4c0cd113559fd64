"""doctor/logs/loader.py: LD_DEBUG=libs traces and ldd output.

The line formats are glibc's (https://man7.org/linux/man-pages/man8/ld.so.8.html); the folders and library
names follow the real traces in tests/data/log_corpus/structural/ and the threads cited per case.
"""

from __future__ import annotations

from bdv2.doctor.findings import EnvOpKind
from bdv2.doctor.logs.loader import LoaderKind, Origin, loader_findings, lookups, origin

WHEELS = "/home/u/.venv/lib/python3.11/site-packages/nvidia"

# LD_LIBRARY_PATH listing a system toolkit first, the way https://github.com/jax-ml/jax/issues/5464 sets it
SYSTEM_FIRST = f"""\
     18570:	find library=libcudnn.so.9 [0]; searching
     18570:	 search path=/usr/local/cuda/lib64:/opt/cudnn/lib64		(LD_LIBRARY_PATH)
     18570:	  trying file=/usr/local/cuda/lib64/libcudnn.so.9
     18570:\t
     18570:	find library=libcublas.so.12 [0]; searching
     18570:	 search path={WHEELS}/cublas/lib		(RPATH from file {WHEELS}/../jaxlib/xla_extension.so)
     18570:	  trying file={WHEELS}/cublas/lib/libcublas.so.12
     18570:\t
     18570:	calling init: /usr/local/cuda/lib64/libcudnn.so.9
     18570:	calling init: {WHEELS}/cublas/lib/libcublas.so.12
"""

# ldd's wording for a missing and a found library (https://github.com/tensorflow/tensorflow/issues/17185's format)
LDD = f"""\
	libcudart.so.12 => {WHEELS}/cuda_runtime/lib/libcudart.so.12 (0x00007f6126f4f000)
	libcusolver.so.11 => not found
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f6126d4b000)
"""


def test_origin_of_a_folder() -> None:
    assert origin(f"{WHEELS}/cudnn/lib/libcudnn.so.9") is Origin.PIP_WHEEL
    assert origin("/usr/local/cuda-12.2/lib64/libcudnn.so.9") is Origin.SYSTEM
    assert origin("/usr/lib/x86_64-linux-gnu/libcudnn.so.8") is Origin.SYSTEM
    assert origin("/home/u/miniconda3/envs/tf/lib/libcudnn.so.8") is Origin.CONDA


def test_ld_debug_names_the_folder_that_answered() -> None:
    by_lib = {lk.lib: lk for lk in lookups(SYSTEM_FIRST)}
    assert by_lib["libcudnn.so.9"].folder == "/usr/local/cuda/lib64"
    assert by_lib["libcudnn.so.9"].searched == ["/usr/local/cuda/lib64:/opt/cudnn/lib64 (LD_LIBRARY_PATH)"]
    assert by_lib["libcublas.so.12"].folder == f"{WHEELS}/cublas/lib"


def test_a_system_copy_beside_the_wheels_is_a_finding() -> None:
    [f] = loader_findings(SYSTEM_FIRST)
    assert f.id == LoaderKind.OUTSIDE_WHEELS.value
    assert f.title.startswith("libcudnn.so.9 was loaded from /usr/local/cuda/lib64 (system toolkit)")
    assert f.fix is not None
    assert [(o.op, o.name, o.value) for o in f.fix.env_ops] == [
        (EnvOpKind.REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda/lib64")]


def test_ldd_not_found_is_a_finding_and_names_the_wheel() -> None:
    [f] = loader_findings(LDD)
    assert f.id == LoaderKind.NOT_FOUND.value and "libcusolver.so.11" in f.title
    assert f.fix is not None and "nvidia-cusolver-cu12" in f.fix.summary


def test_system_libraries_without_wheels_and_the_driver_are_fine() -> None:
    # https://github.com/tensorflow/tensorflow/issues/17185: a toolkit install, no pip wheels in the trace
    ldd = ("\tlibcublas.so.8.0 => /usr/local/cuda/lib64/libcublas.so.8.0 (0x00007f612a725000)\n"
           "\tlibcuda.so.1 => /usr/lib/x86_64-linux-gnu/libcuda.so.1 (0x00007f612a725000)\n")
    assert loader_findings(ldd) == []
    # https://github.com/NixOS/nixpkgs/issues/236070: the driver library is never a wheel's
    trace = ("      6795:\tfind library=libcuda.so.1 [0]; searching\n      6795:\tsearch path=\t\t(LD_LIBRARY_PATH)\n"
             f"      6795:\t  trying file=/run/opengl-driver/lib/libcuda.so.1\n   6795: trying file={WHEELS}/x/lib/a\n")
    assert loader_findings(trace) == []


def test_a_failed_dlopen_after_the_search_is_not_found() -> None:
    trace = ("     4032:\tfind library=libcublas.so.8.0 [0]; searching\n"
             "     4032:\t search cache=/etc/ld.so.cache\n"
             "     4032:\t search path=/lib/x86_64-linux-gnu:/usr/lib\t\t(system search path)\n"
             "     4032:\t  trying file=/usr/lib/libcublas.so.8.0\n"
             "ImportError: libcublas.so.8.0: cannot open shared object file: No such file or directory\n")
    [f] = loader_findings(trace)
    assert f.id == LoaderKind.NOT_FOUND.value


def test_runpath_folders_with_dotdot_are_the_wheels() -> None:
    # a measured trace: RUNPATH `$ORIGIN/../nvidia/<part>/lib` is searched as `.../cudaprobe/../nvidia/...`
    from pathlib import Path

    corpus = Path(__file__).parent.parent / "data" / "log_corpus" / "structural"
    text = (corpus / "log-cuda-lib-not-found__local-ld-debug-cudnn9-missing.log").read_text()
    site = "/home/user/venv/lib/python3.11/site-packages"
    assert origin(f"{site}/cudaprobe/../nvidia/cuda_cupti/lib/libcupti.so.12") is Origin.PIP_WHEEL
    loaded = {lk.lib: lk.loaded for lk in lookups(text)}
    assert loaded["libcupti.so.12"] == f"{site}/nvidia/cuda_cupti/lib/libcupti.so.12"
    assert [f.id for f in loader_findings(text)] == [LoaderKind.NOT_FOUND.value]  # only cuDNN, absent everywhere
    moved = text.replace(f"init: {site}/cudaprobe/../nvidia/cuda_cupti/lib/", "init: /usr/local/cuda-12.0/lib64/")
    found = loader_findings(moved)
    assert found[0].id == LoaderKind.OUTSIDE_WHEELS.value and "/usr/local/cuda-12.0/lib64" in found[0].title
