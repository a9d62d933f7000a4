"""What one training iteration does with several optimizer phases: lazy regularization (D_reg) judges the
inputs D judged, an image pool is queried once per iteration, BEGAN's k_t moves once per iteration."""
import pytest
import torch

from i2i.configure import build_config
from i2i.engine.trainer import Trainer
from i2i.losses.energy import BEGAN, per_sample

DATA = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0,
        "max_items": 8}
CYCLEGAN = {"model": {"name": "cyclegan", "pool_size": 50},
            "nets": {"G": {"name": "resnet", "n_blocks": 1, "ngf": 4}, "D": {"ndf": 4, "n_layers": 1}}}


def trainer(tmp_path, tree, **train):
    tree = {**tree, "data": DATA, "train": {"out_dir": str(tmp_path), "max_steps": 10, **train},
            "log": {"progress": False, "tensorboard": False}}
    return Trainer(build_config(tree), tmp_path / "run")


def batches(n, size=2):
    g = torch.Generator().manual_seed(3)
    return [{"A": torch.rand(size, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(size, 3, 32, 32, generator=g) * 2 - 1}
            for _ in range(n)]


def run_steps(t, n):
    for batch in batches(n):
        t.train_step(batch)
        t.step += 1


def test_lazy_regularization_queries_the_image_pool_once_per_iteration(tmp_path, monkeypatch):
    tree = {**CYCLEGAN, "losses": {"penalty": {"type": "r1", "weight": 1.0, "every": 2}}}
    t = trainer(tmp_path, tree)
    assert [p.name for p in t.model.phases()] == ["G", "D", "D_reg"]
    judged = []  # the fake inputs each D_reg term sees, and the ones D saw in the same iteration
    penalty = t.model.penalty
    monkeypatch.setattr(t.model, "penalty", lambda D, real, fake, **kw: judged.append(fake) or penalty(D, real, fake, **kw))
    seen_by_d = []
    d_loss = t.model.d_loss
    monkeypatch.setattr(t.model, "d_loss", lambda D, real, fake, **kw: seen_by_d.append(fake) or d_loss(D, real, fake, **kw))
    run_steps(t, 5)  # D_reg runs at steps 0, 2 and 4
    # a pool bigger than all fakes so far keeps each fake it was given: one per image per iteration
    assert len(t.model.pool_A.images) == len(t.model.pool_B.images) == 5 * 2
    assert len(judged) == 3 * 2 and len(seen_by_d) == 5 * 2
    d_reg_steps = [0, 2, 4]
    for i, step in enumerate(d_reg_steps):
        for d in range(2):  # D_A and D_B of that iteration judge the very same fakes in D and D_reg
            assert judged[2 * i + d] is seen_by_d[2 * step + d]


def test_began_updates_k_t_once_per_iteration_from_both_discriminators(tmp_path, monkeypatch):
    autoencoder = {"name": "autoencoder", "ndf": 4, "n_down": 2, "energy": "l1"}
    tree = {**CYCLEGAN, "nets": {**CYCLEGAN["nets"], "D": autoencoder},
            "losses": {"gan": {"name": "began", "gamma": 0.5, "lambda_k": 0.5, "k0": 0.25}}}
    t = trainer(tmp_path, tree)
    gan = t.model.gan
    assert isinstance(gan, BEGAN)
    pairs, updates = [], []
    d_loss, update = gan.d_loss, gan.update

    def recording_d_loss(real, fake):
        pairs.append((float(per_sample(real.detach()).mean()), float(per_sample(fake.detach()).mean())))
        return d_loss(real, fake)

    monkeypatch.setattr(gan, "d_loss", recording_d_loss)
    monkeypatch.setattr(gan, "update", lambda: updates.append(gan.k) or update())
    k = 0.25
    for step, batch in enumerate(batches(3)):
        pairs.clear()
        t.train_step(batch)
        t.step += 1
        assert len(pairs) == 2 and len(updates) == step + 1  # two discriminators, one update
        l_real = (pairs[0][0] + pairs[1][0]) / 2
        l_fake = (pairs[0][1] + pairs[1][1]) / 2
        balance = 0.5 * l_real - l_fake
        k = min(max(k + 0.5 * balance, 0.0), 1.0)
        assert gan.k == pytest.approx(k, rel=1e-5, abs=1e-6)
        assert gan.logs()["m_global"] == pytest.approx(l_real + abs(balance), rel=1e-5)


def test_began_leaves_k_t_alone_for_a_non_finite_balance():
    loss = BEGAN(lambda_k=0.1, k0=0.3)
    loss.d_loss(torch.ones(2), torch.full((2,), float("nan")))
    loss.update()
    assert loss.k == 0.3
    loss.update()  # nothing pending: nothing happens
    assert loss.k == 0.3
