"""M2, semi-supervised: the enumerated unlabelled ELBO against the explicit sum over y of the labelled ELBO,
the classification term, class-balanced seeded label subsets, mixed batches, bad input and evaluation."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from conftest import tiny_model, tiny_overrides
from pyro_vae import load_config
from pyro_vae.config.schema import from_dict
from pyro_vae.data import load_data
from pyro_vae.data.digits import DigitsConfig
from pyro_vae.data.labels import choose_labeled, mixed_batch_indices
from pyro_vae.data.toy import ToyConfig
from pyro_vae.errors import ConfigError
from pyro_vae.evaluation.classification import Classifier, classification_metrics
from pyro_vae.models import build_model
from pyro_vae.run import load_run, train

SHAPE = (1, 3, 3)
K = 4


def tiny_m2(**options):
    return tiny_model("m2", SHAPE, K, classifier_dims=[8], **options)


def binary(n=5):
    return torch.randint(0, 2, (n, *SHAPE)).float()


def fit_labelled(model, x, y, steps):
    """Adam on the enumerated ELBO of a batch whose labels are all given (so only the classification term
    reaches q(y|x))."""
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    model.train()
    with pytest.warns(UserWarning, match="enumerat"):  # a batch with no hidden labels has nothing to enumerate
        for _ in range(steps):
            opt.zero_grad()
            elbo.differentiable_loss(model.model, model.guide, x, y).backward()
            opt.step()


class RecordZ(Messenger):
    """Keeps the value of the guide's ``z`` site (the noise the enumerated ELBO drew)."""

    def _pyro_post_sample(self, msg):
        if msg["name"] == "z":
            self.z = msg["value"].detach()


def labelled_elbo(model, x, y, z):
    """L(x, y) per datapoint at a given z: the program's labelled branch, its z_labeled fixed to ``z``."""
    guide = poutine.trace(poutine.condition(model.guide, data={"z_labeled": z})).get_trace(x, y)
    trace = poutine.trace(poutine.condition(model.model, data={"z_labeled": z})).get_trace(x, y)
    trace.compute_log_prob()
    guide.compute_log_prob()
    log_p = sum(site["log_prob"] for site in trace.nodes.values()
                if site["type"] == "sample" and not site_is_subsample(site))
    return log_p - guide.nodes["z_labeled"]["log_prob"]


def test_unlabelled_elbo_is_the_q_weighted_sum_of_labelled_elbos_plus_the_entropy():
    """U(x) = Σ_y q(y|x) L(x, y) + H[q(y|x)], each L(x, y) at the z TraceEnum_ELBO drew for that y."""
    model, x = tiny_m2(), binary()
    model.eval()
    hidden = torch.full((x.shape[0],), -1)
    record = RecordZ()
    loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model.model, record(model.guide), x, hidden)
    assert record.z.shape == (K, x.shape[0], 2)  # one z per enumerated y
    with torch.no_grad():
        q = model.class_probs(x).T  # (K, B)
        labelled = torch.stack([labelled_elbo(model, x, torch.full((x.shape[0],), k), record.z[k]) for k in range(K)])
        entropy = -(q * q.log()).sum(0)
        expected = ((q * labelled).sum(0) + entropy).sum()
    assert -loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_mixed_batch_adds_the_labelled_elbo_and_the_weighted_classification_term():
    """A batch with labelled and hidden points: training adds alpha·B/B_l · Σ_labelled log q(y|x) to the ELBO."""
    model, x = tiny_m2(alpha=0.3), binary(6)
    y = torch.tensor([2, -1, 0, -1, -1, 3])
    labeled = y >= 0
    elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=1)
    model.train()
    pyro.set_rng_seed(3)
    both = elbo.differentiable_loss(model.model, model.guide, x, y)
    model.eval()  # no classification term
    pyro.set_rng_seed(3)
    without = elbo.differentiable_loss(model.model, model.guide, x, y)
    log_q = model.classifier(x[labeled]).log_softmax(-1).gather(-1, y[labeled, None]).squeeze(-1)
    assert (without - both).item() == pytest.approx((0.3 * 6 / 3 * log_q.sum()).item(), rel=1e-5)


def test_m2_trains_with_the_classification_term_learning_the_labels():
    """Only labelled points and the classification term: the classifier fits them (the term reaches q(y|x))."""
    model, x = tiny_m2(alpha=5.0), binary(8)
    y = torch.arange(8) % K
    fit_labelled(model, x, y, steps=150)
    assert (model.class_probs(x).argmax(-1) == y).all()


def test_label_subsets_are_class_balanced_and_seeded():
    labels = torch.arange(1000) % 10
    a, b, c = choose_labeled(labels, 100, 10, 0), choose_labeled(labels, 100, 10, 0), choose_labeled(labels, 100, 10, 1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert labels[a].bincount(minlength=10).tolist() == [10] * 10
    counts = labels[choose_labeled(labels, 25, 10, 0)].bincount(minlength=10)
    assert counts.sum() == 25 and set(counts.tolist()) == {2, 3}
    assert len(set(a.tolist())) == 100


def test_labeled_data_hides_the_other_labels_and_mixes_labelled_points_into_each_batch():
    data = load_data(from_dict(DigitsConfig, {"labeled": 50, "labeled_per_batch": 8}), seed=0)
    assert data.train_y[data.labeled].bincount(minlength=10).tolist() == [5] * 10
    gen = torch.Generator().manual_seed(0)
    batches = list(data.batches("train", 100, shuffle=True, generator=gen))
    assert len(batches) == data.num_batches("train", 100, shuffle=True) == 16  # ceil(1567 / 100)
    seen = torch.cat([y for _, y in batches])
    assert all(int((y >= 0).sum()) == 8 for _, y in batches)
    assert int((seen == -1).sum()) == data.train_x.shape[0] - 50  # every hidden point once per epoch
    assert all((y == -1).all() for _, y in data.batches("test", 100))  # the test labels are hidden too
    # resuming an epoch (skip) gives the same remaining batches
    gen.manual_seed(0)
    rest = list(data.batches("train", 100, shuffle=True, generator=gen, skip=5))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches[5:], rest))


def test_mixed_batch_indices_cycle_the_labelled_set():
    batches = list(mixed_batch_indices(torch.arange(10, 100), torch.arange(10), 30, 4, torch.Generator()))
    assert [len(b) for b in batches] == [34, 34, 34]
    labelled = torch.cat([b[-4:] for b in batches])
    assert labelled.max() < 10 and len(set(labelled[:10].tolist())) == 10  # a full pass before repeating


@pytest.mark.parametrize("overrides, match", [
    (["data.labeled=5000"], "data.labeled: got 5000, but the training split has only 1617 points"),
    (["data.labeled=0"], "data.labeled: got 0; expected an integer >= 1"),
    (["data.labeled=1500"], "data.labeled: 1500 class-balanced labels need 150 points of class 2, but the "
                             "training split has 147"),
    (["model.type=vae", "data.labeled=100", "train.objective.type=elbo"], "data.labeled: VAE does not learn"),
    (["train.objective.type=elbo"], "train.objective.type: 'elbo' cannot train"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match) as error:
        train("configs/digits_m2.yaml", tmp_path / "run", overrides=tiny_overrides(*overrides))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_labeled_on_a_dataset_without_class_labels_is_a_config_error():
    with pytest.raises(ConfigError, match="data.labeled: dataset 'toy-circle' has no class labels"):
        load_data(from_dict(ToyConfig, {"labeled": 10}), seed=0)


def test_train_and_evaluate_report_the_classifier_accuracy(tmp_path):
    run = train("configs/digits_m2.yaml", tmp_path / "run",
                overrides=tiny_overrides("model.classifier_dims=[16]", "data.labeled=50"))
    assert (tmp_path / "run" / "analogies.png").is_file()
    report = load_run(tmp_path / "run").evaluate(num_samples=2)
    model, data = run.model, run.data()
    assert isinstance(model, Classifier)
    expected = float((model.class_probs(data.test_x).argmax(-1) == data.test_y).float().mean())
    assert report["classifier_accuracy"] == pytest.approx(expected)
    assert report["cluster_accuracy"] >= report["classifier_accuracy"] - 1e-9  # Hungarian matching can only help
    assert classification_metrics(build_model(load_config().model, data.shape, 10), data) == {}  # a plain VAE


def test_labeled_on_data_without_labels_is_a_config_error():
    from pyro_vae.data import Source, make_dataset

    with pytest.raises(ConfigError, match="data.labeled: dataset 'vectors' has no class labels"):
        make_dataset(Source("vectors", x=torch.rand(50, 3)), from_dict(DigitsConfig, {"labeled": 10}), 0)


def test_digits_config_trains_and_scores_on_the_grey_levels():
    """configs/digits_m2.yaml keeps the digits' 17 grey levels: its held-out images are the pixels themselves, not
    one Bernoulli draw of them (a draw costs the classifier about 10 points, and its score moves by ±2 points
    from draw to draw), and its training batches are the same grey levels, not re-drawn binary images."""
    data = load_data(load_config("configs/digits_m2.yaml").data, 0)
    levels = torch.unique(data.test_x) * 16
    assert levels.numel() == 17 and torch.equal(levels, levels.round())
    x, _ = next(iter(data.batches("train", 64, shuffle=True, generator=torch.Generator().manual_seed(0))))
    assert torch.unique(x).numel() > 2


def test_convolutional_features_under_the_classifier_fit_the_labels_and_feed_the_z_encoder():
    model = tiny_m2(alpha=5.0, classifier_channels=[2, 3])  # 3x3 -> 2x2 -> 1x1: h(x) = MLP of 3 conv features
    assert model.features[0].out_dim == 3 and model.encoder is not None
    x, y = binary(8), torch.arange(8) % K
    assert model.classifier(x).shape == (8, K) and model.classifier(x.expand(2, 8, *SHAPE)).shape == (2, 8, K)
    fit_labelled(model, x, y, steps=200)
    assert (model.class_probs(x).argmax(-1) == y).all()


def test_convolutional_features_need_images():
    with pytest.raises(ConfigError, match=r"model.classifier_channels: convolutional features need \(C, H, W\) "
                                          r"images, got data of shape \(9,\)"):
        tiny_model("m2", (9,), K, classifier_dims=[8], classifier_channels=[4])
    with pytest.raises(ConfigError, match="model.classifier_channels"):
        load_config("configs/digits_m2.yaml", ["model.classifier_channels=[0]"])
