"""Soft prompts as alternatives to hard patterns: prompt tuning, P-tuning and prefix tuning.

All three put trainable vectors where a template has ``{soft:N}`` (when a template has none, N
virtual tokens are put in front of it):

* ``prompt_tuning`` (Lester et al.): the N input embeddings are free parameters.
* ``p_tuning`` (Liu et al.): the N input embeddings come out of a prompt encoder, a bidirectional
  LSTM followed by an MLP (``encoder: lstm``) or an MLP alone (``encoder: mlp``).
* ``prefix_tuning`` (Li & Liang, in the deep-prompt form of P-tuning v2): every transformer layer
  sees its own trainable states at the N positions, produced by a reparameterising MLP. It works on
  any encoder whose layers sit in one ``ModuleList``; PEFT's key/value prefixes need a decoder
  cache that masked LMs in transformers 5 do not take, so the layer-input form is used here.

``freeze_model: true`` trains only the prompt (and the verbalizer reads the frozen MLM head), the
parameter-efficient setting; by default the LM is tuned together with the prompt.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

SOFT_KINDS = ("none", "prompt_tuning", "p_tuning", "prefix_tuning")


class SoftPromptError(ValueError):
    pass


@dataclass
class SoftPromptConfig:
    kind: str = "none"
    num_tokens: int = 4  # used when the template has no {soft:N}
    encoder: str = "lstm"  # p_tuning: lstm | mlp
    freeze_model: bool = False
    prefix_hidden: int = 256  # prefix tuning reparameterisation width

    def __post_init__(self):
        if self.kind not in SOFT_KINDS:
            raise SoftPromptError(f"soft prompt kind must be one of {SOFT_KINDS}, not {self.kind!r}")
        if self.encoder not in ("lstm", "mlp"):
            raise SoftPromptError(f"p_tuning encoder must be 'lstm' or 'mlp', not {self.encoder!r}")
        if self.num_tokens < 1:
            raise SoftPromptError("num_tokens must be at least 1")

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    def to_dict(self) -> dict:
        return asdict(self)


def find_layers(model) -> nn.ModuleList:
    n = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n and n:
            return module
    raise SoftPromptError(f"{type(model).__name__}: cannot find its transformer layers for prefix tuning")


class SoftPrompt(nn.Module):
    """Produces the soft-token embeddings and, for prefix tuning, the per-layer states."""

    def __init__(self, cfg: SoftPromptConfig, model, num_tokens: int):
        super().__init__()
        self.cfg = cfg
        self.num_tokens = num_tokens
        emb = model.get_input_embeddings().weight
        hidden = emb.shape[1]
        g = torch.Generator().manual_seed(0)
        # initialise from embeddings of ordinary vocabulary entries (past the special/rare head)
        low = min(1000, emb.shape[0] // 4)
        ids = torch.randint(low, emb.shape[0], (num_tokens,), generator=g)
        # through the embedding module, not its raw rows: Gemma scales embeddings by sqrt(hidden) there
        with torch.no_grad():
            init = model.get_input_embeddings()(ids.to(emb.device)).detach().clone()
        self.embedding = nn.Parameter(init)
        if cfg.kind == "p_tuning":
            if cfg.encoder == "lstm":
                self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=2, bidirectional=True, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        if cfg.kind == "prefix_tuning":
            layers = find_layers(model)  # not a submodule: the LM's weights are not the prompt's
            n_layers = len(layers)
            self.prefix_mlp = nn.Sequential(
                nn.Linear(hidden, cfg.prefix_hidden), nn.Tanh(), nn.Linear(cfg.prefix_hidden, n_layers * hidden)
            )
            self._positions: torch.Tensor | None = None
            self._handles = [
                layer.register_forward_pre_hook(self._make_hook(i), with_kwargs=True)
                for i, layer in enumerate(layers)
            ]
            self.n_layers, self.hidden = n_layers, hidden

    def input_embeddings(self) -> torch.Tensor:
        x = self.embedding
        if self.cfg.kind == "p_tuning":
            if self.cfg.encoder == "lstm":
                x = self.lstm(x.unsqueeze(0))[0].squeeze(0)
            x = self.mlp(x)
        return x

    def layer_states(self) -> torch.Tensor:
        return self.prefix_mlp(self.embedding).view(self.num_tokens, self.n_layers, self.hidden)

    def _make_hook(self, index: int):
        def hook(module, args, kwargs):
            if self._positions is None:
                return None
            if args:
                hs, rest = args[0], args[1:]
            else:
                hs, rest = kwargs["hidden_states"], ()
            states = self.layer_states()[:, index].to(hs.dtype)  # [N, H]
            b = torch.arange(hs.shape[0], device=hs.device).unsqueeze(1)
            hs = hs.clone()
            hs[b, self._positions] = states.unsqueeze(0).expand(hs.shape[0], -1, -1)
            if args:
                return (hs, *rest), kwargs
            kwargs = dict(kwargs, hidden_states=hs)
            return args, kwargs

        return hook

    def write(self, inputs_embeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Write the soft tokens into ``inputs_embeds`` at ``positions`` [B, N]; arm the layer hooks."""
        if positions.shape[1] != self.num_tokens:
            raise SoftPromptError(f"expected {self.num_tokens} soft positions, got {positions.shape[1]}")
        b = torch.arange(inputs_embeds.shape[0], device=inputs_embeds.device).unsqueeze(1)
        out = inputs_embeds.clone()
        out[b, positions] = self.input_embeddings().to(out.dtype).unsqueeze(0).expand(out.shape[0], -1, -1)
        if self.cfg.kind == "prefix_tuning":
            self._positions = positions
        return out

    def disarm(self) -> None:
        if self.cfg.kind == "prefix_tuning":
            self._positions = None
