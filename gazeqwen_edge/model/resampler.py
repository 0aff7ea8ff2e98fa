"""The gaze resampler ("f_theta"): one independent module per injected LLM layer, parameter names exactly as in the
reference checkpoint (latents.{m}, proj_ins.{m}, q/k/g/v_projs.{m}.{i}, ff_blocks.{m}.{i}.{0,1,3}, block_norms.{m}.{i},
proj_outs.{m}, amplitude), plus gaze_marks.{m} where the config's gaze_mark is on (ours, not in the reference).

Pure tensor-in/tensor-out: one call computes the residuals of every injected layer for B clips x T temporal steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gazeqwen_edge.model.config import ResamplerConfig
from gazeqwen_edge.model.gaze_encoding import reference_gaze_encoding, spatial_gaze_parts


class GazeResampler(nn.Module):
    def __init__(self, config: ResamplerConfig):
        super().__init__()
        self.config = config
        c = config
        d, m_n, b_n = c.d_latent, c.n_modules, c.n_blocks
        self.latents = nn.ParameterList([nn.Parameter(torch.randn(c.n_latents, d) * 0.02) for _ in range(m_n)])
        self.proj_ins = nn.ModuleList([nn.Linear(c.d_vjepa, d, bias=False) for _ in range(m_n)])

        def per_block(make):
            return nn.ModuleList([nn.ModuleList([make() for _ in range(b_n)]) for _ in range(m_n)])

        self.q_projs = per_block(lambda: nn.Linear(d, d))
        self.k_projs = per_block(lambda: nn.Linear(d, d))
        self.g_projs = per_block(lambda: nn.Linear(d, d))
        self.v_projs = per_block(lambda: nn.Linear(d, d))
        self.ff_blocks = per_block(
            lambda: nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d * c.ff_mult), nn.GELU(), nn.Linear(d * c.ff_mult, d))
        )
        self.block_norms = per_block(lambda: nn.LayerNorm(d))
        self.proj_outs = nn.ModuleList([nn.Linear(d, c.d_llm, bias=False) for _ in range(m_n)])
        for p in self.proj_outs:
            nn.init.zeros_(p.weight)
        self.amplitude = nn.Parameter(torch.ones(c.n_llm_layers))
        if c.gaze_mark:  # drawn last, so a model without marks draws every other parameter as before; unit scale,
            # like the layer-normed latents the read-out mixes (proj_out starts at zero, so no output changes yet)
            self.gaze_marks = nn.ParameterList([nn.Parameter(torch.randn(d)) for _ in range(m_n)])

    def module_parameter_count(self, m: int = 0) -> int:
        """Parameters of injected module m (without the shared amplitude)."""
        return sum(
            p.numel() for name, p in self.named_parameters() if name != "amplitude" and name.split(".")[1] == str(m)
        )

    def forward(
        self,
        features: torch.Tensor,
        gaze_points: torch.Tensor,
        gaze_mask: torch.Tensor,
        has_gaze: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """features (B, T, H, W, d_vjepa) aligned to the LLM's merged video grid; gaze_points (B, T, K, 2);
        gaze_mask (B, T, K) bool; has_gaze (B,) bool or None (all True).
        Returns residuals (M, B, T, H*W, d_llm), M = len(injected_layers), tokens row-major like Qwen's video tokens.
        With gaze_mark, module m adds gaze_marks[m] x the token's proximity to the gaze (ResamplerConfig) to each
        token's latent read-out before proj_out."""
        c = self.config
        b, t, h, w = c.feature_shape(features.shape)
        dv = c.d_vjepa
        n, bt, d, nl = h * w, b * t, c.d_latent, c.n_latents
        dtype = self.proj_ins[0].weight.dtype
        x_in = features.reshape(bt, n, dv).to(dtype)
        gaze_points = gaze_points.to(features.device)
        gaze_mask = gaze_mask.to(features.device)

        # The gaze enters the keys as g_proj(G) on the video tokens and g_proj(0) = g_proj.bias on the latents.
        # Neither the per-token key code nor its zero rows for the latents are built: reference: one g_proj(G) per
        # step, broadcast over the tokens; spatial: g_proj split into its x and y halves, applied to the w column and
        # h row codes (spatial_gaze_parts) and broadcast over the grid. Same sums as the literal formula.
        bias = None
        if c.gaze_encoding == "reference":
            g = reference_gaze_encoding(gaze_points, gaze_mask, d, c.temperature).to(dtype).reshape(bt, 1, d)

            def token_gaze(proj: nn.Linear) -> torch.Tensor:  # (BT, 1, d): the same for every token
                return proj(g)

        else:
            half = d // 2
            code_x, code_y, tok_bias = spatial_gaze_parts(
                gaze_points, gaze_mask, (h, w), d, c.spatial_sigma, c.temperature, c.spatial_scale
            )
            code_x = code_x.reshape(bt, w, half).to(dtype)
            code_y = code_y.reshape(bt, h, half).to(dtype)
            bias = torch.cat([tok_bias.reshape(bt, 1, n).to(dtype), x_in.new_zeros(bt, 1, nl)], dim=2)

            def token_gaze(proj: nn.Linear) -> torch.Tensor:  # (BT, N, d), row-major over the h x w grid
                gx = F.linear(code_x, proj.weight[:, :half], proj.bias)  # (BT, w, d)
                gy = F.linear(code_y, proj.weight[:, half:])  # (BT, h, d)
                return (gx.unsqueeze(1) + gy.unsqueeze(2)).reshape(bt, n, d)

        proximity = None
        if c.gaze_mark:  # (BT, N, 1): mean_k exp(-d_k^2 / (2 sigma^2)) over the active fixations, 0 without one
            if bias is None:
                _, _, tok_bias = spatial_gaze_parts(
                    gaze_points, gaze_mask, (h, w), 4, c.spatial_sigma, c.temperature, c.spatial_scale
                )
                prox = tok_bias.reshape(bt, n, 1).exp()
            else:
                prox = bias[:, 0, :n].unsqueeze(-1).exp()
            active = gaze_mask.reshape(bt, -1).any(-1).view(bt, 1, 1)
            proximity = torch.where(active, prox, torch.zeros_like(prox)).to(dtype)
        scale = 1.0 / math.sqrt(d)
        sample_gain = None
        if has_gaze is not None:  # (B,) -> one factor per (sample, step) row of the BT batch
            sample_gain = has_gaze.to(device=x_in.device, dtype=dtype).view(b, 1).expand(b, t).reshape(bt, 1, 1)
        outs = []
        for m, layer in enumerate(c.injected_layers):
            x = self.proj_ins[m](x_in)  # (BT, N, d)
            lat = self.latents[m].unsqueeze(0).expand(bt, nl, d)
            for i in range(c.n_blocks):
                xl = torch.cat([x, lat], dim=1)
                q = self.q_projs[m][i](lat)
                g_proj = self.g_projs[m][i]
                k_proj = self.k_projs[m][i]
                k = torch.cat([k_proj(x) + token_gaze(g_proj), k_proj(lat) + g_proj.bias], dim=1)
                v = self.v_projs[m][i](xl)
                logits = torch.matmul(q, k.transpose(1, 2)) * scale
                if bias is not None:
                    logits = logits + bias
                lat = lat + torch.matmul(F.softmax(logits, dim=-1), v)
                lat = self.block_norms[m][i](lat + self.ff_blocks[m][i](lat))
            r = torch.matmul(F.softmax(torch.matmul(x, lat.transpose(1, 2)) * scale, dim=-1), lat)
            if proximity is not None:
                r = r + proximity * self.gaze_marks[m]
            # proj_out is linear without bias: scaling its d_latent input by amplitude (and by 0 for samples without
            # gaze, which gives exact zeros) equals scaling its d_llm output, at a fraction of the memory traffic.
            gain = self.amplitude[layer] if sample_gain is None else self.amplitude[layer] * sample_gain
            outs.append(self.proj_outs[m](r * gain).reshape(b, t, n, c.d_llm))
        return torch.stack(outs, dim=0)
