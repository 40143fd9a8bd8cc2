"""Missing cells of a table filled from a trained ``columns`` model by importance sampling (MIWAE's imputation).

With K draws z_k ~ q(z | x_obs) and self-normalized weights w_k ∝ p(x_obs | z_k) p(z_k) / q(z_k | x_obs):

* single imputation: x̂_j = Σ_k w_k E[x_j | z_k] (a categorical or binary column: argmax_l Σ_k w_k p(x_j = l | z_k));
* multiple imputation (M draws): sampling-importance-resampling, k ~ Categorical(w), then x_j ~ p(x_j | z_k).

Observed cells are never changed: only NaN cells are filled.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..data.columns import ColumnSpec, decode_cell, encode
from ..errors import ConfigError, DataError
from ..likelihoods.columns import ColumnsLikelihood

SAMPLES_PER_PASS = 1 << 16  # z's decoded at once (K × rows): bounds peak memory


def log_weights(model: Any, x: Tensor, num_samples: int) -> Tuple[Tensor, Tensor]:
    """``(log w (K, B), decoder params (K, B, P, D))`` of K draws z_k ~ q(z|x) for rows ``x`` (NaN: missing)."""
    q = model.posterior(model.corrupt(x), model.condition(x, None))
    z = q.sample((num_samples,))
    params = model.decoder(z, None)
    log_px = model.likelihood.cell_log_prob(params, x).sum(-1)
    return log_px + model.prior.distribution().log_prob(z) - q.log_prob(z), params


@torch.no_grad()
def impute(model: Any, x: Tensor, num_samples: int = 1000, draws: Optional[int] = None,
           generator_seed: int = 0) -> Tensor:
    """Filled copies of ``x`` (model units, NaN where missing): shape ``(1, N, D)`` for the importance-weighted
    conditional mean (modes for categorical and binary columns), ``(M, N, D)`` for M draws by SIR."""
    likelihood: ColumnsLikelihood = model.likelihood
    if not isinstance(likelihood, ColumnsLikelihood):
        raise ConfigError("impute: needs a run trained with model.likelihood.type: columns")
    torch.manual_seed(generator_seed)
    m = draws or 1
    out = x.unsqueeze(0).repeat(m, 1, 1)
    rows = max(1, SAMPLES_PER_PASS // num_samples)
    for start in range(0, x.shape[0], rows):
        xb = x[start:start + rows]
        log_w, params = log_weights(model, xb, num_samples)
        w = log_w.softmax(0)  # (K, B)
        if draws:
            k = torch.multinomial(w.T, m, replacement=True).T  # (M, B): resampled particle per draw
            chosen = params.gather(0, k[..., None, None].expand(m, *params.shape[1:]))
            filled = likelihood.sample(chosen)
        else:
            filled = (w[..., None] * likelihood.mean(params)).sum(0, keepdim=True)
            if len(likelihood.bernoulli_idx):
                idx = likelihood.bernoulli_idx
                filled = filled.index_copy(-1, idx, (filled.index_select(-1, idx) > 0.5).to(filled.dtype))
            if len(likelihood.categorical_idx):
                probs = (w[..., None, None] * likelihood.category_logits(params).exp()).sum(0)  # (B, C, P)
                filled = filled.index_copy(-1, likelihood.categorical_idx, probs.argmax(-1).to(filled.dtype)[None])
        block = out[:, start:start + rows]
        out[:, start:start + rows] = torch.where(torch.isnan(block), filled, block)
    return out


def table_columns(run: Any) -> Tuple[List[ColumnSpec], List[str]]:
    """The run's feature columns and the other columns an impute input may carry (label, covariates)."""
    likelihood = run.config.model.likelihood
    if getattr(likelihood, "type", None) != "columns":
        raise ConfigError(f"impute: {run.path} was trained with model.likelihood.type {likelihood.type!r}; "
                          "imputation needs model.likelihood.type: columns")
    data = run.config.data
    others = ([data.label_column] if getattr(data, "label_column", None) else []) + \
        list(getattr(data, "covariate_columns", []) or [])
    return list(likelihood.columns), others


def impute_rows(run: Any, header: Sequence[str], rows: Sequence[Tuple[str, Sequence[Any]]], where: str,
                num_samples: int = 1000, draws: Optional[int] = None) -> List[List[List[Any]]]:
    """Rows ``(name, cells)`` of a table with the run's columns (any order), each missing feature cell filled
    (text, in the data's units); one list of rows per draw (one for the conditional mean)."""
    specs, others = table_columns(run)
    names = [s.name for s in specs]
    missing, unknown = [n for n in names if n not in header], [h for h in header if h not in names + others]
    if missing or unknown:
        what = f"lacks {', '.join(map(repr, missing))}" if missing else f"has {', '.join(map(repr, unknown))}"
        raise DataError(f"{where}: {what}; expected the run's columns: {', '.join(names)}")
    position = [list(header).index(n) for n in names]
    lines = [line for line, _ in rows]
    cells = [[row[i] for _, row in rows] for i in position]
    x = torch.from_numpy(encode(specs, cells, lines, where, "mask"))
    if run.standardizer is not None:
        x = run.standardizer.apply(x)
    device = run.device
    filled = impute(run.model, x.to(device), num_samples, draws, run.config.seed).cpu()
    if run.standardizer is not None:
        filled = run.standardizer.undo(filled)
    out = []
    for values in filled:
        table = [list(row) for _, row in rows]
        for j, (spec, col) in enumerate(zip(specs, position)):
            for i in torch.isnan(x[:, j]).nonzero().flatten().tolist():
                table[i][col] = decode_cell(spec, float(values[i, j]))
        out.append(table)
    return out


def impute_frame(run: Any, frame: Any, num_samples: int = 1000, draws: Optional[int] = None) -> Any:
    """A pandas DataFrame with the run's columns, its missing feature cells filled (a list of M frames for
    ``draws``); same columns, order and index; observed cells unchanged."""
    from ..data.table import frame_rows

    header, rows = frame_rows(frame)
    specs, _ = table_columns(run)
    tables = impute_rows(run, header, rows, "frame", num_samples, draws)
    frames = []
    for table in tables:
        out = frame.copy()
        for spec in specs:
            col = header.index(spec.name)
            values = [row[col] for row in table]
            out[frame.columns[col]] = values if spec.kind == "categorical" else [float(v) for v in values]
        frames.append(out)
    return frames if draws else frames[0]


@torch.no_grad()
def column_loglik(model: Any, data: Any, num_samples: int = 10, batch_size: int = 256) -> dict:
    """Per column kind, E_q[log p(x_kind, observed | z)] on the test split, nats per datapoint
    (``test_loglik_continuous``, ``_binary``, ``_count``, ``_categorical``); {} unless a ``columns`` model."""
    likelihood = getattr(model, "likelihood", None)
    if not isinstance(likelihood, ColumnsLikelihood):
        return {}
    kinds = [s.kind for s in likelihood.specs]
    totals = {kind: 0.0 for kind in dict.fromkeys(kinds)}
    x_all = data.test_x
    for start in range(0, x_all.shape[0], batch_size):
        x = x_all[start:start + batch_size]
        q = model.posterior(model.corrupt(x), model.condition(x, None))
        cells = likelihood.cell_log_prob(model.decoder(q.sample((num_samples,)), None), x).mean(0)  # (B, D)
        for kind in totals:
            columns = torch.tensor([k == kind for k in kinds], device=cells.device)
            totals[kind] += float(cells[:, columns].sum())
    return {f"test_loglik_{kind}": total / x_all.shape[0] for kind, total in totals.items()}
