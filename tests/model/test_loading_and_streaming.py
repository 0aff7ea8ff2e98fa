"""The real loading code pointed at local directories, and chunk-wise prefill with injection (what the streaming
runtime will do) against one full prefill."""

import torch

from gazeqwen_edge.model.checkpoint import save_checkpoint
from gazeqwen_edge.model.config import VideoEncoderConfig
from gazeqwen_edge.model.gazeqwen import MC_PROMPTS, GazeQwen


def test_from_pretrained_local_dirs(tmp_path, tiny_gq, clip, scanpath):
    gq = tiny_gq
    gq.qwen.save_pretrained(tmp_path / "qwen")
    gq.tokenizer.save_pretrained(tmp_path / "qwen")
    gq.video_encoder.model.save_pretrained(tmp_path / "vjepa")
    save_checkpoint(tmp_path / "ckpt", gq.resampler)
    a, b = torch.randn(8, 64), torch.randn(64, 8) * 0.1
    lora = {
        "base_model.model.model.language_model.layers.2.self_attn.v_proj.lora_A.weight": a,
        "base_model.model.model.language_model.layers.2.self_attn.v_proj.lora_B.weight": b[:32],
    }
    save_checkpoint(tmp_path / "ckpt_lora", gq.resampler, lora, {"r": 8, "lora_alpha": 16})
    loaded = GazeQwen.from_pretrained(
        str(tmp_path / "qwen"),
        checkpoint=str(tmp_path / "ckpt"),
        video_encoder=VideoEncoderConfig(backend="transformers", source=str(tmp_path / "vjepa"), n_frames=8),
        dtype=torch.float32,
        min_pixels=gq.min_pixels,
        max_pixels=gq.max_pixels,
    )
    options = ["A. box", "B. cup", "C. jar"]
    want = gq.score_options(clip, scanpath, "Which one?", options)
    got = loaded.score_options(clip, scanpath, "Which one?", options)
    assert got.keys() == want.keys()
    torch.testing.assert_close(
        torch.tensor(list(got.values())), torch.tensor(list(want.values())), rtol=1e-5, atol=1e-6
    )


def test_chunked_prefill_with_injection_equals_full(tiny_gq, clip, scanpath):
    """Prefill the text before the video, then each temporal step's video tokens with that step's residuals, then
    the rest, into one DynamicCache with explicit 3-D positions: the last logits equal one full prefill."""
    from transformers import DynamicCache

    gq = tiny_gq
    user, _ = MC_PROMPTS["reference"].render("Which?", ["A. x", "B. y"])
    batch = gq.collate([gq.prepare(clip, scanpath, user)])
    full = gq.prefill(batch).logits[:, -1]

    res, pos = gq.gaze_residuals(batch)  # (M, 1, T, N, D), (1, T*N)
    m, _, t, n, _ = res.shape
    vout = gq.qwen.model.get_video_features(batch.pixel_values_videos, batch.video_grid_thw, return_dict=True)
    video_embeds = torch.cat(vout.pooler_output)  # (T*N, hidden)
    embeds = gq.qwen.get_input_embeddings()(batch.input_ids).clone()
    first = int(pos[0, 0])
    embeds[0, first : first + t * n] = video_embeds
    cache = DynamicCache(config=gq.qwen.config)
    cuts = [0, first] + [first + (i + 1) * n for i in range(t)] + [batch.input_ids.shape[1]]
    with torch.no_grad():
        for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
            kwargs = dict(
                inputs_embeds=embeds[:, a:b],
                position_ids=batch.position_ids[:, :, a:b],
                attention_mask=batch.attention_mask[:, :b],
                cache=cache,
                use_cache=True,
            )
            step = k - 1
            if 0 <= step < t:
                chunk_res = res[:, :, step]  # (M, 1, N, D): this step's residuals
                with gq.injector.inject(chunk_res, torch.arange(n).unsqueeze(0)):
                    out = gq.qwen(**kwargs)
                assert gq.injector.fired == list(gq.resampler.config.injected_layers)
            else:
                out = gq.qwen(**kwargs)
    torch.testing.assert_close(out.logits[:, -1], full, rtol=1e-5, atol=2e-6)
    plain = gq.collate([gq.prepare(clip, None, user)])
    assert (gq.prefill(plain).logits[:, -1] - full).abs().max() > 1e-4  # the injected residuals matter here
