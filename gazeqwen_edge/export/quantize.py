"""The LLM at 4 bit for the edge: bitsandbytes NF4, saved pre-quantised so the edge machine does not quantise at load.

What is quantised: every `nn.Linear` of the Qwen2.5-VL LLM decoder layers (q/k/v/o projections and the MLP). What is
not: the vision tower and lm_head (`llm_int8_skip_modules=["model.visual", "lm_head"]`: the module names transformers 5
really matches for Qwen2.5-VL; `["visual"]` does NOT skip the tower, REFERENCE.md section 6), the token embeddings and
every norm (not Linear). NF4 with double quantisation: 4-bit weights in blocks of 64 with an absmax per block, the
absmaxes themselves quantised to 8 bit (Dettmers et al. 2023, QLoRA; bitsandbytes' defaults for `quant_type="nf4"`).

Jetson: bitsandbytes' PyPI aarch64 wheels are built for server ARM and fail to load on Jetson (REFERENCE.md section 5);
build it from source on the Orin (README "Export for the edge" has the commands). The saved bundle is the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gazeqwen_edge.errors import InputError, MissingDependencyError, disk_errors, require

QUANTS = ("nf4", "none")
SKIP_MODULES = ("model.visual", "lm_head")  # REFERENCE.md section 6: these names keep them in full precision
COMPUTE_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def bnb_config(compute_dtype: str = "bfloat16", double_quant: bool = True):
    """transformers' BitsAndBytesConfig for NF4 (blocksize 64, bitsandbytes' default) with the vision tower and
    lm_head skipped. compute_dtype: the dtype the dequantised matmuls run in. Raises MissingDependencyError (exit 4)
    without bitsandbytes."""
    quiet_bitsandbytes()
    require("bitsandbytes", "quant", "4-bit (NF4) quantisation")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=COMPUTE_DTYPES[compute_dtype],
        llm_int8_skip_modules=list(SKIP_MODULES),
    )


def quiet_bitsandbytes() -> None:
    """bitsandbytes >= 0.49 logs a warning at import that its optional CPU kernels (the `kernels` package, which
    downloads code from a hub) are absent; the built-in CPU path works without them. Keep it off the terminal."""
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def quantize_llm(src: str | Path, dst: str | Path, quant: str = "nf4", compute_dtype: str = "bfloat16") -> dict:
    """Load the Qwen2.5-VL saved at `src` (save_pretrained directory with its tokenizer), quantise its decoder
    Linears to NF4 on the CPU (bitsandbytes' CPU backend; on a CUDA machine the result is the same format) and save
    it pre-quantised to `dst` with the tokenizer. quant "none" copies it in the dtype it was saved in. Returns the manifest's
    quantisation record: method, double_quant, compute_dtype, skip_modules, and the number of quantised Linears.
    Raises InputError for an unknown quant or unreadable source, MissingDependencyError without bitsandbytes."""
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration
    from transformers.utils import logging as hf_logging

    if quant not in QUANTS:
        raise InputError(None, f"--quant must be one of {', '.join(QUANTS)}, got {quant!r}")
    if compute_dtype not in COMPUTE_DTYPES:
        raise InputError(None, f"compute dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {compute_dtype!r}")
    hf_logging.disable_progress_bar()
    src, dst = Path(src), Path(dst)
    kwargs: dict = {"dtype": COMPUTE_DTYPES[compute_dtype] if quant == "nf4" else "auto"}  # none: as saved
    if quant == "nf4":
        kwargs.update(quantization_config=bnb_config(compute_dtype), device_map="cpu")
    try:
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(src, local_files_only=True, **kwargs)
        tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    except (OSError, ValueError) as e:
        raise InputError(src, f"cannot load the LLM to quantise ({e})") from e
    with disk_errors(dst):  # a full disk: OSError with its errno, not safetensors' own error
        model.save_pretrained(dst)
        tok.save_pretrained(dst)
    record = {"method": quant, "skip_modules": list(SKIP_MODULES) if quant == "nf4" else []}
    if quant == "nf4":
        import bitsandbytes as bnb

        record.update(
            double_quant=True,
            blocksize=64,
            compute_dtype=compute_dtype,
            quantized_linears=sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()),
        )
    return record


def is_quantized(llm_dir: str | Path) -> bool:
    """Whether a saved LLM directory holds pre-quantised bitsandbytes weights (its config's quantization_config)."""
    cfg = json.loads(Path(llm_dir, "config.json").read_text())
    return (cfg.get("quantization_config") or {}).get("quant_method") == "bitsandbytes"


def load_dtype(llm_dir: str | Path, requested: torch.dtype) -> torch.dtype:
    """The dtype to load a saved LLM in: an NF4 one in its compute dtype (transformers 5.24 loads a pre-quantised
    model asked for another dtype with its skipped modules and norms in mixed dtypes), anything else as requested."""
    if not is_quantized(llm_dir):
        return requested
    cfg = json.loads(Path(llm_dir, "config.json").read_text())["quantization_config"]
    return COMPUTE_DTYPES.get(str(cfg.get("bnb_4bit_compute_dtype")), torch.bfloat16)


def check_can_load(llm_dir: str | Path) -> None:
    """Raise MissingDependencyError (exit 4) when the LLM at `llm_dir` is NF4 and bitsandbytes is not installed."""
    if is_quantized(llm_dir):
        quiet_bitsandbytes()
        try:
            require("bitsandbytes", "quant", "this NF4 bundle")
        except MissingDependencyError as e:
            e.hint = "pip install 'gazeqwen-edge[quant]' (on Jetson: build bitsandbytes from source, see the README)"
            raise
