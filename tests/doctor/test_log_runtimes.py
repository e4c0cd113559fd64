"""Causes that live in the runtime around the framework: Apple's Metal plugins and the macOS under them, the TPU
runtime library, a batch scheduler's memory limit, TensorFlow's file system reporting a full disk, TensorRT's
libraries under TF-TRT, and Python 2's wording of a shadowed module. Each test uses a wording or layout none of the
corpus logs carries, so a cue is proven on the concept, not on the log it was written from."""

from __future__ import annotations

from bdv2.doctor.findings import Severity
from bdv2.doctor.logs.signatures import diagnose_log
from bdv2.doctor.matrix import Matrix


def first_two(text: str, matrix: Matrix) -> list[str]:
    return [f.id for f in diagnose_log(text, matrix) if f.severity is not Severity.INFO][:2]


# --- Apple GPU plugins -------------------------------------------------------------------------------------------

def test_a_primitive_jax_cannot_lower_for_metal_is_an_unsupported_op(matrix: Matrix) -> None:
    text = ("Platform 'METAL' is experimental and not all JAX functionality may be correctly supported!\n"
            "Traceback (most recent call last):\n  File \"/Users/kim/fit.py\", line 12, in <module>\n"
            "    L = jnp.linalg.cholesky(K)\n"
            "NotImplementedError: MLIR translation rule for primitive 'cholesky' not found for platform METAL")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-metal-op-unsupported"
    assert "cholesky" in found[0].title


def test_a_legalisation_failure_on_a_mac_is_the_metal_plugin(matrix: Matrix) -> None:
    # no word of Metal in the paste: a macOS home folder is where it ran
    text = ("jaxlib.xla_extension.XlaRuntimeError: UNKNOWN: /Users/kim/sim/step.py:40:0: error: failed to legalize "
            "operation 'stablehlo.scatter'\n/Users/kim/sim/step.py:40:0: note: see current operation")
    assert first_two(text, matrix)[0] == "log-metal-op-unsupported"


def test_a_tensorflow_op_without_a_kernel_for_the_metal_device(matrix: Matrix) -> None:
    text = ("I tensorflow/core/common_runtime/pluggable_device/pluggable_device_factory.cc:305] Created TensorFlow "
            "device (/job:localhost/replica:0/task:0/device:GPU:0 with 0 MB memory) -> physical PluggableDevice "
            "(device: 0, name: METAL, pci bus id: <undefined>)\n"
            "tensorflow.python.framework.errors_impl.NotFoundError: No registered 'RandomGammaGrad' OpKernel for "
            "'GPU' devices compatible with node {{node RandomGammaGrad}}")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-metal-op-unsupported"
    assert "RandomGammaGrad" in found[0].title


def test_a_no_kernel_error_on_a_cuda_gpu_is_not_metal(matrix: Matrix) -> None:
    text = ("Created TensorFlow device (/job:localhost/replica:0/task:0/device:GPU:0 with 22302 MB memory) -> "
            "physical GPU (device: 0, name: NVIDIA A10G, pci bus id: 0000:00:1e.0, compute capability: 8.6)\n"
            "tensorflow.python.framework.errors_impl.NotFoundError: No registered 'StringSplitV2' OpKernel for "
            "'GPU' devices compatible with node {{node StringSplitV2}}")
    assert "log-metal-op-unsupported" not in first_two(text, matrix)


def test_a_metal_plugin_newer_than_the_macos_in_each_of_its_wordings(matrix: Matrix) -> None:
    # the MPS dialect of an older macOS (https://github.com/jax-ml/jax/issues/20338), a framework symbol the loader
    # does not find, a precompiled Metal library of a newer language version
    for line in (
        'loc("-":0:0): error: current mps dialect version is 1.0.0, can\'t parse version 1.1.0',
        "dyld[811]: Symbol not found: _OBJC_CLASS_$_MPSGraphCompilationDescriptor\n  Referenced from: "
        "/Users/kim/venv/lib/python3.11/site-packages/jax_plugins/metal_plugin/pjrt_plugin_metal_14.dylib\n"
        "  Expected in: /System/Library/Frameworks/MetalPerformanceShadersGraph.framework/Versions/A/MPSGraph",
        "RuntimeError: Failed to load the metallib: the library uses language version 3.2 which is not supported "
        "on this OS",
    ):
        text = f"Metal device set to: Apple M2\n{line}\nzsh: abort      python train.py"
        assert first_two(text, matrix)[0] == "log-metal-macos-too-old", line


# --- the TPU runtime ---------------------------------------------------------------------------------------------

def test_a_raised_libtpu_load_failure_is_the_tpu_runtime_missing(matrix: Matrix) -> None:
    text = ("Traceback (most recent call last):\n  File \"/home/kim/train.py\", line 5, in <module>\n"
            "    print(jax.devices('tpu'))\n"
            "RuntimeError: Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so: libtpu.so: cannot "
            "open shared object file: No such file or directory (set JAX_PLATFORMS='' to automatically choose an "
            "available backend)")
    assert first_two(text, matrix)[0] == "log-libtpu-not-found"


def test_libtpu_logged_at_info_on_a_gpu_machine_is_not_a_cause(matrix: Matrix) -> None:
    # jax tries every backend and logs the ones it did not find; the run itself uses the GPU
    text = ("I1022 22:17:29.616872 140403999169408 xla_bridge.py:889] Unable to initialize backend 'tpu': INTERNAL: "
            "Failed to open libtpu.so: libtpu.so: cannot open shared object file: No such file or directory\n"
            "Available devices: [cuda(id=0)]\nTraceback (most recent call last):\n"
            "  File \"/home/kim/train.py\", line 40, in <module>\n    batch = next(it)\nKeyError: 'observation'")
    assert "log-libtpu-not-found" not in first_two(text, matrix)


# --- a scheduler's memory limit, a full disk in TensorFlow's words -------------------------------------------------

def test_a_schedulers_memory_limit_is_host_memory(matrix: Matrix) -> None:
    for line in ("TERM_MEMLIMIT: job killed after reaching LSF memory usage limit.",
                 "slurmstepd: error: Step 88123.0 exceeded memory limit (40960012 > 40960000), being killed",
                 "=>> PBS: job killed: mem 33554432kb exceeded limit 31457280kb"):
        text = f"step 400 loss 1.2\nstep 500 loss 1.1\n{line}\n"
        assert first_two(text, matrix)[0] == "log-host-out-of-memory", line


def test_tensorflows_resource_exhausted_on_a_written_path_is_a_full_disk(matrix: Matrix) -> None:
    text = ("W tensorflow/core/framework/op_kernel.cc:1401] OP_REQUIRES failed at save_restore_v2_ops.cc:109 : "
            "Resource exhausted: /scratch/kim/run3/model.ckpt-4000.data-00000-of-00001.tempstate5512\n"
            "tensorflow.python.framework.errors_impl.ResourceExhaustedError: Failed to save the checkpoint while "
            "writing shards: Resource exhausted: /scratch/kim/run3/model.ckpt-4000.data-00000-of-00001.tempstate5512")
    found = diagnose_log(text, matrix)
    assert found[0].id == "log-disk-full"
    assert "/scratch/kim/run3" in found[0].title


def test_a_gpu_tensor_resource_exhausted_is_not_a_full_disk(matrix: Matrix) -> None:
    text = ("tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with "
            "shape[64,256,56,56] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc")
    assert "log-disk-full" not in first_two(text, matrix)


# --- TensorRT's libraries under TF-TRT ---------------------------------------------------------------------------

def test_tensorrt_warnings_at_start_up_are_not_a_cause(matrix: Matrix) -> None:
    text = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libnvinfer.so.7'; dlerror: libnvinfer.so.7: cannot open shared object file: No such file or directory\n"
            "W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: Cannot dlopen some TensorRT "
            "libraries. If you would like to use Nvidia GPU with TensorRT, please make sure the missing libraries "
            "mentioned above are installed properly.\nEpoch 1/10\n")
    assert "sig-cuda-lib-missing-so" not in first_two(text, matrix)


def test_tf_trt_stopping_on_a_missing_tensorrt_library_is_the_cause(matrix: Matrix) -> None:
    text = ("W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
            "'libnvinfer_plugin.so.7'; dlerror: libnvinfer_plugin.so.7: cannot open shared object file\n"
            "F tensorflow/compiler/tf2tensorrt/stub/nvinfer_plugin_stub.cc:49] getInferPluginLibVersion could not "
            "load: libnvinfer_plugin.so.7\nAborted (core dumped)")
    assert first_two(text, matrix)[0] == "sig-cuda-lib-missing-so"


def test_an_old_tensorflow_giving_up_a_cuda_library(matrix: Matrix) -> None:
    text = ("I tensorflow/stream_executor/dso_loader.cc:102] Couldn't open CUDA library libcufft.so.8.0. "
            "LD_LIBRARY_PATH: /usr/local/cuda/lib64\n"
            "I tensorflow/stream_executor/cuda/cuda_fft.cc:344] Unable to load cuFFT DSO.\n")
    assert first_two(text, matrix)[0] == "sig-cuda-lib-missing-so"


# --- Python 2's wording of a shadowed module, a CPU fallback where CUDA saw no GPU ---------------------------------

def test_python2s_module_object_message_names_a_local_namesake(matrix: Matrix) -> None:
    text = (">>> import jax.numpy as jnp\nTraceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n"
            "  File \"/home/kim/jax.py\", line 4, in <module>\n    x = jnp.zeros(3)\n"
            "AttributeError: 'module' object has no attribute 'zeros'")
    assert first_two(text, matrix)[0] == "log-shadowed-module"


def test_a_cpu_fallback_where_cuda_found_no_gpu_is_not_a_cpu_only_jaxlib(matrix: Matrix) -> None:
    text = ("2021-03-02 10:01:12.000001: E external/org_tensorflow/tensorflow/stream_executor/cuda/cuda_driver.cc:271]"
            " failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected\n"
            "WARNING:absl:No GPU/TPU found, falling back to CPU. (Set TF_CPP_MIN_LOG_LEVEL=0 and rerun for more info.)")
    ids = first_two(text, matrix)
    assert "sig-cpu-jaxlib-on-gpu-machine" not in ids
    assert "log-expected-accelerator-missing" in ids


def test_a_wheel_file_name_typed_with_a_space_is_still_read(matrix: Matrix) -> None:
    text = "ERROR: jaxlib-0.4.7-cp 39-cp39-manylinux2014_x86_64.whl is not a supported wheel on this platform."
    assert first_two(text, matrix)[0] == "log-no-matching-distribution"
