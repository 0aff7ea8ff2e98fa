"""Merged LoRA against peft's own LoRA forward (the reference implementation)."""

import pytest
import torch

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.lora import merge_lora


def test_merge_equals_peft():
    peft = pytest.importorskip("peft")
    from gazeqwen_edge.model.tiny import tiny_qwen

    base = tiny_qwen(seed=3)
    cfg = peft.LoraConfig(
        r=8, lora_alpha=16, target_modules=r".*language_model\.layers\.\d+\.self_attn\.(q_proj|v_proj)"
    )
    model = peft.get_peft_model(tiny_qwen(seed=3), cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)  # B is zero-initialised: make the adapter do something
    state = peft.get_peft_model_state_dict(model)
    assert any("lora_A" in k for k in state) and len(state) == 2 * 2 * 4
    ids = torch.randint(0, base.config.text_config.vocab_size - 10, (1, 12))
    with torch.no_grad():
        want = model(input_ids=ids).logits
        before = base(input_ids=ids).logits
        n = merge_lora(base, state, {"r": 8, "lora_alpha": 16})
        got = base(input_ids=ids).logits
    assert n == 8
    assert (want - before).abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_merge_rejects_foreign_keys():
    from gazeqwen_edge.model.tiny import tiny_qwen

    with pytest.raises(InputError, match="not LLM attention LoRA"):
        merge_lora(tiny_qwen(), {"visual.blocks.0.attn.qkv.lora_A.weight": torch.zeros(8, 32)}, None)
    with pytest.raises(InputError, match="do not fit"):
        merge_lora(
            tiny_qwen(),
            {
                "layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(8, 7),
                "layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(64, 8),
            },
            None,
        )
