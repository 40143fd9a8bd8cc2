"""make_dataset: one pipeline from a reader's rows to a dataset, in memory or streamed, with one batch order."""

from __future__ import annotations

import pytest
import torch

from pyro_vae.config.schema import from_dict
from pyro_vae.data import FileDataConfig, RowData, Source, make_dataset
from pyro_vae.data.dataset import TensorRows
from pyro_vae.data import make
from pyro_vae.data.digits import DigitsConfig
from pyro_vae.errors import DataError


class Labelled(TensorRows):
    """Rows whose items carry their class labels, as a user's torch Dataset of (x, y) does."""

    target_width = 0


def config(**options) -> FileDataConfig:
    return from_dict(FileDataConfig, {"num_workers": 0, "test_fraction": 0.25, **options})


def test_batches_follow_the_seeded_permutation_and_leave_the_global_stream_alone():
    x = torch.randn(50, 3)
    data = make_dataset(Source("rows", x=x, labels=torch.arange(50) % 2, num_classes=2), config(), seed=0)
    order = torch.randperm(data.num_train, generator=torch.Generator().manual_seed(7))
    state = torch.get_rng_state()
    got = list(data.batches("train", 16, shuffle=True, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(torch.get_rng_state(), state)
    assert [b[0].shape[0] for b in got] == [16, 16, 6]  # 38 training rows (12 of 50 held out)
    assert torch.equal(torch.cat([b[0] for b in got]), data.train_x[order])
    assert torch.equal(torch.cat([b[1] for b in got]), data.train_y[order])


def test_a_reader_read_into_memory_or_streamed_gives_the_same_dataset():
    x, labels = torch.rand(40, 1, 4, 4), torch.arange(40) % 3
    made = {setting: make_dataset(Source("rows", reader=Labelled(x, labels), num_classes=3, standardize=True),
                                  config(in_memory=setting), seed=1) for setting in (True, False)}
    memory, stream = made[True], made[False]
    assert type(memory) is type(stream) is RowData and memory.in_memory and not stream.in_memory
    assert stream.shape == memory.shape
    assert torch.allclose(stream.test_x, memory.test_x, atol=1e-6) and torch.equal(stream.test_y, memory.test_y)
    for skip in (0, 2):
        a = list(memory.batches("train", 8, True, torch.Generator().manual_seed(3), skip))
        b = list(stream.batches("train", 8, True, torch.Generator().manual_seed(3), skip))
        assert len(a) == len(b) == 4 - skip
        assert all(torch.allclose(p[0], q[0], atol=1e-6) and torch.equal(p[1], q[1]) for p, q in zip(a, b))


def test_a_reader_carrying_its_labels_gives_them_as_classes_in_memory():
    x, labels = torch.rand(30, 2), torch.arange(30) % 3
    data = make_dataset(Source("rows", reader=Labelled(x, labels)), config(in_memory=True), seed=0)
    assert data.num_classes == 3 and torch.equal(torch.cat([data.train_x, data.test_x]).sort(0).values,
                                                 x.sort(0).values)


def test_a_readers_source_keeps_the_split_it_always_had():
    """digits through make_dataset: the seeded test_fraction split of 1,797 images, scaled by 16."""
    data = make_dataset(Source("digits", x=torch.arange(1797.0)[:, None, None].expand(1797, 8, 8) % 17,
                               labels=torch.arange(1797) % 10, num_classes=10, max_value=16.0),
                        from_dict(DigitsConfig, {"binarize": "none"}), seed=0)
    assert (data.num_train, data.num_test, data.shape) == (1617, 180, (1, 8, 8))
    assert float(data.train_x.max()) == 1.0


def test_rows_that_do_not_fit_in_memory_are_one_line(monkeypatch):
    """An allocation that fails while the rows are put in memory (torch's allocator raises RuntimeError) is a
    DataError naming the rows and the way out, not a traceback."""
    def refuse(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 322121728 bytes")

    monkeypatch.setattr(make, "in_memory", refuse)
    x = torch.rand(40, 1, 4, 4)
    with pytest.raises(DataError, match=r"40 rows of shape \(1, 4, 4\) do not fit in memory; set data.in_memory: false"):
        make_dataset(Source("rows", reader=Labelled(x, torch.arange(40) % 3), num_classes=3), config(in_memory=True), 0)
