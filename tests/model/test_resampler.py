"""Resampler: reference names and sizes, shapes, batching, a literal per-step re-implementation, gaze encodings."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gazeqwen_edge.model.config import ResamplerConfig
from gazeqwen_edge.model.gaze_encoding import (
    GazeInputs,
    active_fixations,
    reference_gaze_encoding,
    sincos_encoding,
    spatial_gaze_encoding,
    token_centres,
)
from gazeqwen_edge.model.resampler import GazeResampler


def reference_key_names(n_mod=4, n_blocks=2):
    """The keys of the authors' best_model.pt state_dict, written out from REFERENCE.md section 1."""
    keys = {"amplitude"}
    for m in range(n_mod):
        keys |= {f"latents.{m}", f"proj_ins.{m}.weight", f"proj_outs.{m}.weight"}
        for i in range(n_blocks):
            for p in ("q_projs", "k_projs", "g_projs", "v_projs", "block_norms"):
                keys |= {f"{p}.{m}.{i}.weight", f"{p}.{m}.{i}.bias"}
            for j in (0, 1, 3):
                keys |= {f"ff_blocks.{m}.{i}.{j}.weight", f"ff_blocks.{m}.{i}.{j}.bias"}
    return keys


def small_cfg(enc="reference", **kw):
    base = dict(d_vjepa=24, d_llm=40, n_latents=6, d_latent=16, n_blocks=2, injected_layers=(0, 2, 3), n_llm_layers=5)
    base.update(kw)
    return ResamplerConfig(gaze_encoding=enc, **base)


def perturbed(cfg, seed=0):
    torch.manual_seed(seed)
    r = GazeResampler(cfg).eval()
    with torch.no_grad():
        for p in r.proj_outs:
            p.weight.normal_(0, 0.3)
        r.amplitude.uniform_(0.5, 1.5)
    return r


def test_reference_config_names_and_parameter_count():
    r = GazeResampler(ResamplerConfig())
    assert set(r.state_dict()) == reference_key_names()
    # 32x256 latents + 768x256 proj_in + 2 blocks x (4 x (256x256+256) + FF(LN + 256x1024+1024 + 1024x256+256) + LN)
    # + 256x3584 proj_out
    per_module = 32 * 256 + 768 * 256 + 2 * (4 * (256 * 256 + 256) + 512 + 256 * 1024 + 1024 + 1024 * 256 + 256 + 512)
    per_module += 256 * 3584
    for m in range(4):
        assert r.module_parameter_count(m) == per_module
    assert 2.69e6 < per_module < 2.71e6
    assert sum(p.numel() for p in r.parameters()) == 4 * per_module + 28
    assert all((p.weight == 0).all() for p in r.proj_outs)
    assert torch.equal(r.amplitude, torch.ones(28))
    assert r.latents[0].std().item() == pytest.approx(0.02, rel=0.15)


@pytest.mark.parametrize("enc", ["reference", "spatial"])
def test_shapes_and_untrained_is_zero(enc):
    cfg = small_cfg(enc)
    r = GazeResampler(cfg)
    feats = torch.randn(2, 3, 4, 5, 24)
    pts = torch.rand(2, 3, 2, 2)
    mask = torch.tensor([[[1, 0], [1, 1], [0, 0]], [[0, 0], [1, 0], [1, 0]]], dtype=torch.bool)
    out = r(feats, pts, mask)
    assert out.shape == (3, 2, 3, 20, 40)
    assert torch.count_nonzero(out) == 0  # zero-initialised proj_out: nothing changes


def literal_step(r: GazeResampler, m: int, layer: int, feats_step, g_vec=None, key_code=None, bias=None):
    """The reference formula for one temporal step, written out with the reference's (H*W, d) shapes."""
    d = r.config.d_latent
    x = feats_step @ r.proj_ins[m].weight.T
    lat = r.latents[m]
    n = x.shape[0]
    for i in range(r.config.n_blocks):
        xl = torch.cat([x, lat])
        gin = torch.cat([g_vec.expand(n, d) if key_code is None else key_code, torch.zeros(lat.shape[0], d)])
        q = F.linear(lat, r.q_projs[m][i].weight, r.q_projs[m][i].bias)
        k = F.linear(xl, r.k_projs[m][i].weight, r.k_projs[m][i].bias)
        k = k + F.linear(gin, r.g_projs[m][i].weight, r.g_projs[m][i].bias)
        v = F.linear(xl, r.v_projs[m][i].weight, r.v_projs[m][i].bias)
        s = q @ k.T / math.sqrt(d)
        if bias is not None:
            s = s + torch.cat([bias, torch.zeros(lat.shape[0])])
        lat = lat + torch.softmax(s, -1) @ v
        lat = r.block_norms[m][i](lat + r.ff_blocks[m][i](lat))
    rr = torch.softmax(x @ lat.T / math.sqrt(d), -1) @ lat
    return (rr @ r.proj_outs[m].weight.T) * r.amplitude[layer]


def detr_code(x, y, dim=16, temp=1e4):
    """Sine/cosine code written out element by element (REFERENCE.md section 1)."""
    half = dim // 2
    out = []
    for v in (x, y):
        for i in range(half):
            dt = temp ** (2 * (i // 2) / half)
            out.append(math.sin(v / dt) if i % 2 == 0 else math.cos(v / dt))
    return torch.tensor(out)


@pytest.mark.parametrize("enc", ["reference", "spatial"])
def test_batched_matches_literal_per_step(enc):
    cfg = small_cfg(enc)
    r = perturbed(cfg)
    torch.manual_seed(1)
    feats = torch.randn(2, 3, 4, 5, 24)
    scanpaths = [np.array([[0.2, 0.7, 0.5, 1.0], [0.6, 0.4, 1.0, 1.0]]), np.array([[0.9, 0.1, 4.0, 1.0]])]
    gi = GazeInputs.from_scanpaths(scanpaths, np.array([0.0, 1.0, 4.0]))
    with torch.no_grad():
        out = r(feats, gi.points, gi.mask, gi.has_gaze)
        for b in range(2):
            for t in range(3):
                active = [
                    (x, y) for x, y, mid, dur in scanpaths[b] if mid - dur / 2 <= [0.0, 1.0, 4.0][t] <= mid + dur / 2
                ]
                g_vec = key_code = bias = None
                if enc == "reference":
                    g_vec = torch.stack([detr_code(x, y) for x, y in active]).mean(0) if active else torch.zeros(16)
                else:
                    c = token_centres(4, 5)
                    key_code, bias = torch.zeros(20, 16), torch.zeros(20)
                    if active:
                        codes, gauss = [], []
                        for gx, gy in active:
                            off = c - torch.tensor([gx, gy], dtype=torch.float32)
                            codes.append(
                                torch.stack([detr_code(2 * math.pi * ox, 2 * math.pi * oy) for ox, oy in off.tolist()])
                            )
                            gauss.append(torch.exp(-(off**2).sum(-1).double() / (2 * 0.1**2)))
                        key_code = torch.stack(codes).mean(0)
                        bias = torch.stack(gauss).mean(0).log().float()  # log of the mean Gaussian
                for m, layer in enumerate(cfg.injected_layers):
                    want = literal_step(r, m, layer, feats[b, t].reshape(20, 24), g_vec, key_code, bias)
                    torch.testing.assert_close(out[m, b, t], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("enc", ["reference", "spatial"])
def test_batched_equals_per_sample(enc):
    r = perturbed(small_cfg(enc))
    feats = torch.randn(3, 2, 4, 5, 24)
    gi = GazeInputs.from_scanpaths(
        [np.array([[0.2, 0.7, 0.5, 1.0]]), np.array([[0.6, 0.4, 1.0, 3.0], [0.1, 0.1, 1.0, 0.5]]), None], [0.5, 1.0]
    )
    with torch.no_grad():
        whole = r(feats, gi.points, gi.mask, gi.has_gaze)
        for b in range(3):
            one = r(feats[b : b + 1], gi.points[b : b + 1], gi.mask[b : b + 1], gi.has_gaze[b : b + 1])
            torch.testing.assert_close(whole[:, b : b + 1], one, rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(whole[:, 2]) == 0  # empty scanpath -> zero residual
    assert torch.count_nonzero(whole[:, 0]) > 0


def test_spatial_and_reference_differ_and_respond_to_gaze():
    torch.manual_seed(0)
    feats = torch.randn(1, 1, 4, 5, 24)
    outs = {}
    for enc in ("reference", "spatial"):
        r = perturbed(small_cfg(enc), seed=3)
        with torch.no_grad():
            a = r(feats, torch.tensor([[[[0.1, 0.1]]]]), torch.ones(1, 1, 1, dtype=torch.bool))
            b = r(feats, torch.tensor([[[[0.9, 0.8]]]]), torch.ones(1, 1, 1, dtype=torch.bool))
        assert not torch.allclose(a, b)  # both encodings see where the gaze is
        outs[enc] = a
    assert not torch.allclose(outs["reference"], outs["spatial"])


def test_reference_code_is_the_same_for_every_token_spatial_is_not():
    pts, mask = torch.tensor([[[[0.3, 0.6]]]]), torch.ones(1, 1, 1, dtype=torch.bool)
    g = reference_gaze_encoding(pts, mask, 16)
    torch.testing.assert_close(g[0, 0], detr_code(0.3, 0.6), rtol=1e-5, atol=1e-6)
    code, bias = spatial_gaze_encoding(pts, mask, (4, 5), 16, sigma=0.1)
    assert code.shape == (1, 1, 20, 16) and bias.shape == (1, 1, 20)
    assert code[0, 0].std(0).sum() > 0  # per-token codes differ
    c = token_centres(4, 5)
    torch.testing.assert_close(bias[0, 0], -((c - torch.tensor([0.3, 0.6])) ** 2).sum(-1) / 0.02)
    nearest = int(((c - torch.tensor([0.3, 0.6])) ** 2).sum(-1).argmin())
    assert int(bias[0, 0].argmax()) == nearest
    # no active fixation: zero code, zero bias, zero G
    code0, bias0 = spatial_gaze_encoding(pts, torch.zeros(1, 1, 1, dtype=torch.bool), (4, 5), 16)
    assert torch.count_nonzero(code0) == 0 and torch.count_nonzero(bias0) == 0
    assert torch.count_nonzero(reference_gaze_encoding(pts, torch.zeros(1, 1, 1, dtype=torch.bool), 16)) == 0


def test_spatial_bias_peaks_at_the_gazed_token_in_qwens_order():
    """Token n of a merged grid is row n // w, column n % w (Qwen's video-token order); gaze x is the column axis.
    Written out without token_centres: a gaze near the top-right corner favours token w - 1, bottom-left h*w - w."""
    h, w = 3, 4
    for (x, y), n in (((0.95, 0.05), w - 1), ((0.05, 0.95), (h - 1) * w), ((0.4, 0.5), 1 * w + 1)):
        _, bias = spatial_gaze_encoding(torch.tensor([[[[x, y]]]]), torch.ones(1, 1, 1, dtype=torch.bool), (h, w), 16)
        assert int(bias[0, 0].argmax()) == n, (x, y)
        cx, cy = (n % w + 0.5) / w, (n // w + 0.5) / h
        assert bias[0, 0, n].item() == pytest.approx(-((cx - x) ** 2 + (cy - y) ** 2) / (2 * 0.1**2), rel=1e-5)


def test_sincos_matches_elementwise_formula():
    xy = torch.tensor([[0.0, 1.0], [0.37, 0.81]])
    enc = sincos_encoding(xy, 256)
    for row, (x, y) in zip(enc, xy.tolist(), strict=True):
        torch.testing.assert_close(row, detr_code(x, y, 256), rtol=1e-5, atol=1e-6)


def test_active_fixations_boundaries():
    sp = np.array([[0.1, 0.2, 1.0, 1.0], [0.5, 0.5, 1.4, 0.2], [0.9, 0.9, 5.0, 0.1]])
    pts, mask = active_fixations(sp, [0.5, 1.3, 1.5, 1.6, 3.0])
    assert mask.tolist() == [[True, False], [True, True], [True, True], [False, False], [False, False]]
    np.testing.assert_allclose(pts[1], [[0.1, 0.2], [0.5, 0.5]])
    pts, mask = active_fixations(None, [0.0, 1.0])
    assert pts.shape == (2, 1, 2) and not mask.any()


def test_stream_steps_take_the_fixations_of_their_whole_span():
    """A fixation that starts after a step's first frame (0.3 s into a 1 s step) is invisible to the instant rule
    (the reference regime) but active for the step's span (the stream regime); one that ended before it is neither."""
    from gazeqwen_edge.model.gaze_encoding import GazeInputs, active_fixations

    scan = np.array([[0.2, 0.3, 1.5, 0.4], [0.8, 0.7, 0.4, 0.2]], np.float32)  # [1.3, 1.7] and [0.3, 0.5]
    pts, mask = active_fixations(scan, [1.0])
    assert not mask.any()
    pts, mask = active_fixations(scan, [1.0], span_s=1.0)
    assert mask.sum() == 1 and np.allclose(pts[0, mask[0]], [0.2, 0.3])
    g = GazeInputs.from_scanpaths([scan, scan], [[0.0, 1.0], [0.0, 1.0]], span_s=[0.0, 1.0])
    assert g.mask[0].sum() == 0 and g.mask[1, 0].sum() == 1 and g.mask[1, 1].sum() == 1


def test_latest_keeps_only_the_fixation_that_started_last_in_each_step():
    """step_fixations "latest": of the fixations a step finds over its span, only the one that started last (the one
    looked at when the step ends); a step that finds none still has none, and the instant rule is filtered alike."""
    from gazeqwen_edge.model.gaze_encoding import GazeInputs, active_fixations

    # [0.1, 0.4] at A, [0.45, 0.75] at B, [0.8, 1.2] at C, then [1.5, 1.6] at A again: written out per step of 1 s
    scan = np.array([[0.1, 0.1, 0.25, 0.3], [0.5, 0.5, 0.6, 0.3], [0.9, 0.9, 1.0, 0.4], [0.1, 0.1, 1.55, 0.1]])
    pts, mask = active_fixations(scan, [0.0, 1.0, 2.0], span_s=1.0)
    assert mask.sum(1).tolist() == [3, 2, 0]
    pts, mask = active_fixations(scan, [0.0, 1.0, 2.0], span_s=1.0, latest=True)
    assert pts.shape == (3, 1, 2) and mask[:, 0].tolist() == [True, True, False]
    assert pts[0, 0].tolist() == pytest.approx([0.9, 0.9]) and pts[1, 0].tolist() == pytest.approx([0.1, 0.1])
    pts, mask = active_fixations(scan, [0.9], latest=True)  # the instant rule: C alone is active at 0.9 s anyway
    assert mask.sum() == 1 and pts[0, 0].tolist() == pytest.approx([0.9, 0.9])
    g = GazeInputs.from_scanpaths([scan, None], [0.0, 1.0], span_s=1.0, latest=True)
    assert g.mask.shape == (2, 2, 1) and g.mask[0].all() and not g.mask[1].any()


def per_token_spatial(points, mask, grid_hw, dim, sigma=0.1, temperature=1e4, scale=2 * math.pi):
    """The spatial encoding as first written: a code per token AND fixation (B, T, K, N, dim), then the mean."""
    h, w = grid_hw
    c = token_centres(h, w)
    off = c[None, None, None] - points.float().unsqueeze(-2)  # (B, T, K, N, 2)
    m = mask.float()[..., None, None]
    code = (sincos_encoding(off, dim, temperature, scale) * m).sum(2) / m.sum(2).clamp(min=1.0)
    logit = -(off**2).sum(-1) / (2 * sigma**2)
    logit = torch.where(mask.unsqueeze(-1), logit, torch.full_like(logit, -1e4))
    bias = torch.logsumexp(logit, dim=2) - mask.sum(-1, keepdim=True).clamp(min=1).float().log()
    return code, torch.where(mask.any(-1, keepdim=True), bias, torch.zeros_like(bias))


def per_token_forward(r, feats, points, mask, has_gaze):
    """The resampler as first written: the key gaze code materialised for every token and latent row ((BT, N+L, d),
    zeros on the latents) and projected by g_proj there; the reference for the separable, broadcast form."""
    c = r.config
    b, t, h, w, dv = feats.shape
    n, bt, d, nl = h * w, b * t, c.d_latent, c.n_latents
    x_in = feats.reshape(bt, n, dv)
    bias = None
    if c.gaze_encoding == "reference":
        g = reference_gaze_encoding(points, mask, d, c.temperature)
        key_gaze = torch.cat([g.reshape(bt, 1, d).expand(bt, n, d), torch.zeros(bt, nl, d)], dim=1)
    else:
        code, tok_bias = per_token_spatial(points, mask, (h, w), d, c.spatial_sigma, c.temperature, c.spatial_scale)
        key_gaze = torch.cat([code.reshape(bt, n, d), torch.zeros(bt, nl, d)], dim=1)
        bias = torch.cat([tok_bias.reshape(bt, 1, n), torch.zeros(bt, 1, nl)], dim=2)
    gain = has_gaze.float().view(b, 1).expand(b, t).reshape(bt, 1, 1)
    outs = []
    for m, layer in enumerate(c.injected_layers):
        x = r.proj_ins[m](x_in)
        lat = r.latents[m].unsqueeze(0).expand(bt, nl, d)
        for i in range(c.n_blocks):
            xl = torch.cat([x, lat], dim=1)
            k = r.k_projs[m][i](xl) + r.g_projs[m][i](key_gaze)
            logits = r.q_projs[m][i](lat) @ k.transpose(1, 2) / math.sqrt(d)
            if bias is not None:
                logits = logits + bias
            lat = lat + F.softmax(logits, dim=-1) @ r.v_projs[m][i](xl)
            lat = r.block_norms[m][i](lat + r.ff_blocks[m][i](lat))
        rr = F.softmax(x @ lat.transpose(1, 2) / math.sqrt(d), dim=-1) @ lat
        outs.append(r.proj_outs[m](rr * r.amplitude[layer] * gain).reshape(b, t, n, c.d_llm))
    return torch.stack(outs)


@pytest.mark.parametrize("enc", ["reference", "spatial"])
def test_separable_form_equals_the_per_token_formula(enc):
    """The resampler's lean form (g_proj of the gaze per step / per row and column, broadcast; no per-token code) and
    spatial_gaze_parts give what the per-token formula gives, to float rounding: several fixations, steps without
    any, a sample without gaze, a non-square grid."""
    r = perturbed(small_cfg(enc, d_latent=32), seed=5)
    torch.manual_seed(2)
    feats = torch.randn(3, 4, 3, 7, 24)
    points = torch.rand(3, 4, 3, 2)
    mask = torch.rand(3, 4, 3) < 0.6
    mask[0, 1] = False
    has = torch.tensor([True, True, False])
    with torch.no_grad():
        got = r(feats, points, mask, has)
        want = per_token_forward(r, feats, points, mask, has)
    scale = want.abs().max()
    assert scale > 0.1
    assert (got - want).abs().max() < 1e-6 * scale  # float32 rounding of outputs up to ~4 (ulp 4.8e-7)
    code, bias = spatial_gaze_encoding(points, mask, (3, 7), 32)
    code_old, bias_old = per_token_spatial(points, mask, (3, 7), 32)
    assert (code - code_old).abs().max() < 1e-6 and (bias - bias_old).abs().max() < 1e-6


def test_features_of_another_width_or_rank_are_refused():
    r = GazeResampler(small_cfg())
    pts, mask = torch.zeros(1, 2, 1, 2), torch.ones(1, 2, 1, dtype=torch.bool)
    with pytest.raises(ValueError, match="expects d_vjepa=24"):
        r(torch.zeros(1, 2, 3, 4, 23), pts, mask)
    with pytest.raises(ValueError, match=r"\(B, T, H, W, d_vjepa\)"):
        r(torch.zeros(2, 3, 4, 24), pts, mask)


def test_gaze_mark_adds_the_mark_by_each_tokens_closeness_to_the_gaze():
    """gaze_mark: residual = the same resampler's residual without it + proj_out(amplitude * p_n * mark), p_n the
    mean over active fixations of exp(-|c_n - g|^2 / (2 sigma^2)) written out per token; 0 on a step without an
    active fixation, and the other parameters are drawn exactly as without the mark (shipped models stay the same)."""
    cfg = small_cfg("spatial", gaze_mark=True)
    torch.manual_seed(5)
    fresh = GazeResampler(cfg).state_dict()
    torch.manual_seed(5)
    for k, v in GazeResampler(small_cfg("spatial")).state_dict().items():
        torch.testing.assert_close(fresh[k], v, rtol=0, atol=0)
    assert set(fresh) - set(GazeResampler(small_cfg("spatial")).state_dict()) == {f"gaze_marks.{m}" for m in range(3)}
    marked = perturbed(cfg)
    plain = GazeResampler(small_cfg("spatial")).eval()
    plain.load_state_dict({k: v for k, v in marked.state_dict().items() if not k.startswith("gaze_marks")})
    torch.manual_seed(1)
    feats = torch.randn(1, 2, 4, 5, 24)
    gaze = [(0.2, 0.7), (0.6, 0.4)]
    gi = GazeInputs.from_scanpaths([np.array([[x, y, 0.5, 1.0] for x, y in gaze])], np.array([0.0, 3.0]))
    with torch.no_grad():
        out = marked(feats, gi.points, gi.mask, gi.has_gaze)
        base = plain(feats, gi.points, gi.mask, gi.has_gaze)
    c = token_centres(4, 5)
    prox = torch.stack([torch.exp(-((c - torch.tensor(g)) ** 2).sum(-1) / (2 * 0.1**2)) for g in gaze]).mean(0)
    for m, layer in enumerate(cfg.injected_layers):
        mark = marked.amplitude[layer] * prox[:, None] * marked.gaze_marks[m]
        with torch.no_grad():
            want = base[m, 0, 0] + marked.proj_outs[m](mark)
        torch.testing.assert_close(out[m, 0, 0], want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out[m, 0, 1], base[m, 0, 1], rtol=0, atol=0)  # t = 3 s: no active fixation
    ref = perturbed(small_cfg("reference", gaze_mark=True))  # the mark does not depend on the key encoding
    ref_plain = GazeResampler(small_cfg("reference")).eval()
    ref_plain.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("gaze_marks")})
    with torch.no_grad():
        ref_base = ref_plain(feats, gi.points, gi.mask, gi.has_gaze)
        want = ref_base[0, 0, 0] + ref.proj_outs[0](ref.amplitude[0] * prox[:, None] * ref.gaze_marks[0])
        torch.testing.assert_close(ref(feats, gi.points, gi.mask, gi.has_gaze)[0, 0, 0], want, rtol=1e-4, atol=1e-5)
