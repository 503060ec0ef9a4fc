"""A real card's add-ons: what a GPU holds beyond the bytes Caffe asks cudaMalloc for.

The replay (:mod:`.sim`) gives the bytes Caffe *requests* through cudaMalloc, exactly (the
stub-CUDA oracle, ../shared/oracle-gpu, checks them to the byte).  A real card holds more, and
each add-on here says how its figure is known - a **measured rule** (Caffe's source or a
documented behaviour, exact given its inputs) or an **estimate** (a typical figure, with the
range seen and where it comes from) - so that the report can show them apart and the
requested bytes stay comparable with the oracle:

- the CUDA context (:data:`caffemem.buffers.CONTEXT_MIB_BY_CUDA`, by CUDA major version,
  ``--context-mib`` overrides it);
- cudaMalloc rounding (:func:`rounded`);
- cuBLAS's workspace (:func:`cublas_workspace_bytes`);
- cuRAND's generator and cuDNN's handles: counted (Caffe's source), their bytes not
  documented, so not added.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..buffers import CUDNN_STREAMS_PER_GROUP, MemoryEnv, context_mib_for
from ..units import human

KiB, MiB = 1 << 10, 1 << 20

#: below this a cudaMalloc is served from 2 MiB pages in steps of SMALL_STEP; from it up, in
#: whole LARGE_STEP pages
SMALL_LIMIT = 1 * MiB
SMALL_STEP = 512
LARGE_STEP = 2 * MiB

MEASURED, ESTIMATE, NOT_COUNTED = "measured rule", "estimate", "not counted"


def rounded(nbytes: int) -> int:
    """What a cudaMalloc of ``nbytes`` takes on a real card: a multiple of 512 B below 1 MiB,
    of 2 MiB from 1 MiB up.  An estimate: NVIDIA documents only that addresses are aligned to
    at least 256 B (CUDA C++ Programming Guide, "Device Memory Accesses"); 512 B steps are
    what cards measure (cupy #176, TITAN X and K80) and 2 MiB the driver's large pages (the
    VMM granularity, cuMemGetAllocationGranularity; PyTorch's caching allocator mirrors both:
    kMinBlockSize 512 B, kRoundLarge 2 MiB)."""
    if nbytes <= 0:
        return 0
    step = SMALL_STEP if nbytes < SMALL_LIMIT else LARGE_STEP
    return -(-nbytes // step) * step


def cublas_workspace_bytes(cuda: int) -> int:
    """cuBLAS's own workspace for the handle that runs the GEMMs, allocated at its first
    GEMM: from CUDA 11 (cuBLAS 11's workspace pools), 2 x 4 MiB + 8 x 16 KiB, the default
    pool configuration ``:4096:2:16:8`` (CUBLAS_WORKSPACE_CONFIG, cuBLAS documentation;
    PyTorch gives every handle the same default; 32 MiB is recommended on Hopper); none
    before.  An estimate: the library allocates it, not Caffe."""
    return (2 * 4096 + 8 * 16) * KiB if cuda >= 11 else 0


def fixed_bytes(env: MemoryEnv) -> int:
    """The add-ons that do not depend on the allocations (per GPU): the CUDA context and
    cuBLAS's workspace.  A GPU's total is its rounded peak plus these."""
    return env.context_bytes + (cublas_workspace_bytes(env.cuda) if env.card_addons else 0)


@dataclass
class AddOn:
    """One add-on of a real card, per GPU: its bytes, how they are known and where from."""

    name: str
    bytes: int
    basis: str  # MEASURED, ESTIMATE or NOT_COUNTED
    source: str

    def line(self) -> str:
        figure = "not counted" if self.basis == NOT_COUNTED else human(self.bytes)
        basis = "" if self.basis == NOT_COUNTED else f"{self.basis}: "
        return f"{self.name}: {figure} ({basis}{self.source})"

    def to_dict(self) -> dict:
        return {"name": self.name, "bytes": self.bytes, "basis": self.basis, "source": self.source}


def addons(env: MemoryEnv, requested_peak: int, rounded_peak: int, cudnn_handles: int) -> list[AddOn]:
    """A real card's add-ons for one GPU whose replayed peak is ``requested_peak`` bytes
    (``rounded_peak`` with every cudaMalloc rounded as :func:`rounded` says)."""
    default, low, high = context_mib_for(env.cuda)
    if env.context_is_default:
        ctx_source = (f"default for CUDA {env.cuda}; {low}-{high} MiB seen, depends on driver, "
                      f"card and libraries; measure an idle process with nvidia-smi and give "
                      f"--context-mib")
    else:
        ctx_source = "given (--context-mib)"
    out = [AddOn("CUDA context", env.context_bytes, ESTIMATE if env.context_is_default else MEASURED,
                 ctx_source)]
    if not env.card_addons:
        return out
    out.append(AddOn("cudaMalloc rounding", max(0, rounded_peak - requested_peak), ESTIMATE,
                     "every cudaMalloc rounded up to 512 B below 1 MiB, to 2 MiB pages from "
                     "1 MiB up, as cards measure; NVIDIA documents only 256 B alignment"))
    ws = cublas_workspace_bytes(env.cuda)
    out.append(AddOn("cuBLAS workspace", ws, ESTIMATE,
                     f"CUDA {env.cuda}: " + ("cuBLAS's default pool :4096:2:16:8 for the handle "
                                             "that runs the GEMMs, CUBLAS_WORKSPACE_CONFIG"
                                             if ws else "no workspace pool before cuBLAS 11")
                     + "; Caffe makes one handle per thread that uses it, common.cpp:13-20, "
                       "107-117"))
    out.append(AddOn("cuRAND generator", 0, NOT_COUNTED,
                     "one XORWOW generator per thread that uses Caffe, common.cpp:117; its "
                     "device state size is not documented"))
    if cudnn_handles:
        out.append(AddOn(f"cuDNN handles ({cudnn_handles})", 0, NOT_COUNTED,
                         f"the count is Caffe's: {CUDNN_STREAMS_PER_GROUP} per group per cuDNN "
                         f"convolution, cudnn_conv_layer.cpp:22-23, 51-56, one per other cuDNN "
                         f"layer; what cudnnCreate holds on the device is not documented; the "
                         f"cuDNN convolution workspaces are in the requested bytes, at Caffe's "
                         f"bound, cudnn_conv_layer.cpp:113, 185-200"))
    return out
