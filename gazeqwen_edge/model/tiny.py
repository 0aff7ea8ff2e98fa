"""Tiny, random-weight stand-ins of every model of the spine, built offline in seconds: a Qwen2.5-VL with 4 decoder
layers, a 2-layer V-JEPA 2, a byte-level BPE tokenizer trained in code with the Qwen chat special tokens, and a
matching resampler. Used by the tests and `gazeqwen-edge demo`; the code paths they run are the real ones.

Dependencies point one way: this module builds on config, gazeqwen, resampler and video_encoder (whose "tiny" backend
is the 2-layer V-JEPA 2 used here); none of the loading code imports it.
"""

from __future__ import annotations

import functools

import torch

from gazeqwen_edge.model.config import ResamplerConfig

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Same structure as Qwen2.5-VL's template: a default system turn, list contents with {"type": "video"} items
# rendered as <|vision_start|><|video_pad|><|vision_end|>, and the assistant generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "You are a helpful assistant.",
    "What am I looking at? Which object is the user looking at right now?",
    "The best option is: A. B. C. D. Answer with the option's letter from the given choices directly.",
    "red green blue yellow circle square triangle box cup knife jar spices bowl plate table",
    "Where did I put the knife? I am looking at the red box on the table.",
    "Yes No A B C D 0 1 2 3 4 5 6 7 8 9 the a an of on in at to is are was what where when which who",
    "Tell me when I look at the cup. The user looked at the green square before the blue circle.",
]


@functools.lru_cache(maxsize=4)
def tiny_tokenizer(vocab_size: int = 512):
    """A real fast tokenizer (byte-level BPE) trained in code, with Qwen's chat special tokens and a chat template.
    Cached per process; treat the returned object as read-only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
    )


TINY_VISION = (2, 32)  # the tiny vision tower: blocks, width (random, the tests' and the first demo models')


def special_token_ids(tokenizer) -> dict[str, int]:
    """The Qwen2.5-VL config keys of `tokenizer`'s special tokens: bos / eos / pad (text config) and the image, video
    and vision start / end ids (top level), each the id of the token Qwen2.5-VL uses for it."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def tiny_qwen_config(tokenizer=None, n_layers: int = 4, hidden: int = 64, vision: tuple[int, int] = TINY_VISION):
    """The tiny Qwen2.5-VL's config: an LLM of `n_layers` x `hidden` and a vision tower of `vision` = (blocks, width)
    (MLP 2 x width, heads of 32 channels, at least 2; full attention in every second block, windowed attention of
    56 px, i.e. 2 x 2 merged tokens, in the others, as Qwen2.5-VL alternates them)."""
    from transformers import Qwen2_5_VLConfig

    tok = tokenizer if tokenizer is not None else tiny_tokenizer()
    ids = special_token_ids(tok)
    head_dim = hidden // 4
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=n_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 1e4,
                "mrope_section": [
                    head_dim // 8,
                    3 * head_dim // 16,
                    head_dim // 2 - head_dim // 8 - 3 * head_dim // 16,
                ],
            },
            bos_token_id=ids["bos_token_id"],
            eos_token_id=ids["eos_token_id"],
            pad_token_id=ids["pad_token_id"],
        ),
        vision_config=dict(
            depth=vision[0],
            hidden_size=vision[1],
            intermediate_size=2 * vision[1],
            num_heads=max(2, vision[1] // 32),
            out_hidden_size=hidden,
            window_size=56,
            fullatt_block_indexes=list(range(1, vision[0], 2)) or [0],
            tokens_per_second=2,
        ),
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )


def tiny_qwen(
    seed: int = 0, tokenizer=None, n_layers: int = 4, hidden: int = 64, vision: tuple[int, int] = TINY_VISION
):
    """A random Qwen2_5_VLForConditionalGeneration (fp32, eval mode, default sdpa attention)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_qwen_config(tokenizer, n_layers, hidden, vision))
    return model.eval()


def tiny_resampler_config(
    gaze_encoding: str = "spatial",
    n_llm_layers: int = 4,
    d_llm: int = 64,
    regime: str = "stream",
    injected_layers: tuple[int, ...] = (1, 3),
    gaze_mark: bool = False,
) -> ResamplerConfig:
    """A resampler for the tiny Qwen (hidden 64, 4 layers; by default injecting into layers 1 and 3, the spread of the
    7B's 6, 13, 20, 27) and the tiny V-JEPA (96-d). A residual added after the LAST layer only reaches the video
    tokens' own logits, never an answer: models trained here inject earlier (the demo model: 0 and 1)."""
    return ResamplerConfig(
        regime=regime,
        d_vjepa=96,
        d_llm=d_llm,
        n_latents=8,
        d_latent=32,
        n_blocks=2,
        ff_mult=4,
        injected_layers=tuple(injected_layers),
        n_llm_layers=n_llm_layers,
        gaze_encoding=gaze_encoding,
        gaze_mark=gaze_mark,
    )


def build_tiny_gazeqwen(
    seed: int = 0,
    gaze_encoding: str = "spatial",
    perturb: float = 0.0,
    timer=None,
    regime: str = "stream",
    injected_layers: tuple[int, ...] = (1, 3),
    vjepa_crop: int | None = None,
    device: str = "cpu",
    hidden: int = 64,
    n_layers: int = 4,
    vision: tuple[int, int] = TINY_VISION,
    gaze_mark: bool = False,
    **kwargs,
):
    """A complete tiny GazeQwen (random weights, the same on any `device`: they are drawn on the CPU, then moved).
    perturb > 0 fills the zero-initialised output projections with N(0, perturb) so the gaze path visibly changes the
    logits (a stand-in for a trained checkpoint). gaze_mark: the resampler's gaze mark (ResamplerConfig)."""
    from gazeqwen_edge.model.config import VideoEncoderConfig
    from gazeqwen_edge.model.gazeqwen import GazeQwen
    from gazeqwen_edge.model.resampler import GazeResampler
    from gazeqwen_edge.model.video_encoder import load_video_encoder

    tok = tiny_tokenizer()
    qwen = tiny_qwen(seed, tok, n_layers=n_layers, hidden=hidden, vision=vision)
    if vjepa_crop is None:
        encoder = load_video_encoder(VideoEncoderConfig(backend="tiny"), seed=seed + 1)
    else:  # the tiny V-JEPA at another input size (more patches per frame: finer features at the gaze)
        from transformers import VJEPA2Config, VJEPA2Model

        from gazeqwen_edge.model.video_encoder import TINY_VJEPA2, TransformersVJEPA2Encoder

        torch.manual_seed(seed + 1)
        encoder = TransformersVJEPA2Encoder(
            VJEPA2Model(VJEPA2Config(**{**TINY_VJEPA2, "crop_size": vjepa_crop})).eval()
        )
    torch.manual_seed(seed + 2)
    resampler = GazeResampler(
        tiny_resampler_config(
            gaze_encoding,
            n_llm_layers=n_layers,
            d_llm=hidden,
            regime=regime,
            injected_layers=injected_layers,
            gaze_mark=gaze_mark,
        )
    ).eval()
    if perturb:
        with torch.no_grad():
            for p in resampler.proj_outs:
                p.weight.normal_(0.0, perturb)
    kwargs = {"min_pixels": 56 * 56, "max_pixels": 112 * 112, **kwargs}
    qwen, encoder, resampler = (m.to(device) for m in (qwen, encoder, resampler))
    return GazeQwen(qwen, tok, encoder, resampler, timer=timer, **kwargs)
