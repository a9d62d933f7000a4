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


def trainer(tmp_path, tree, log_every=50, **train):
    tree = {**tree, "data": DATA, "train": {"out_dir": str(tmp_path), "max_steps": 10, **train},
            "log": {"every": log_every, "progress": False, "tensorboard": False}}
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


# --------------------------------------------------------------------------- fp16 loss scaling, several phases
# fp16 is refused off CUDA (few CPUs compute in fp16), but torch's CPU autocast and GradScaler run it: the tests
# lift the refusal to run the trainer's loss scaling as it runs on a GPU
PIX2PIX = {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4},
                                        "D": {"ndf": 4, "n_layers": 1}}}


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    import i2i.engine.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "check_amp", lambda device, amp: None)


def test_fp16_updates_each_phases_scaler_once_per_iteration(tmp_path, fp16_on_cpu, monkeypatch):
    tree = {**PIX2PIX, "losses": {"penalty": {"type": "r1", "weight": 1.0, "every": 2}}}
    t = trainer(tmp_path, tree, amp="fp16")
    # a scale at which these tiny nets do not overflow (at the initial 65536 their G does: a bad step, see below)
    t.scalers.load_state_dict({**torch.amp.GradScaler("cpu").state_dict(), "scale": 256.0})
    names = {id(s): n for n, s in t.scalers.scalers.items()}
    assert sorted(names.values()) == ["D", "D_reg", "G"] and all(s.is_enabled() for s in t.scalers.scalers.values())
    updates = []
    update = torch.amp.GradScaler.update
    monkeypatch.setattr(torch.amp.GradScaler, "update", lambda self, *a: updates.append(names[id(self)]) or update(self, *a))
    for step, batch in enumerate(batches(4)):
        updates.clear()
        t.train_step(batch)
        t.step += 1
        assert t.bad_losses == []
        assert sorted(updates) == (["D", "D_reg", "G"] if step % 2 == 0 else ["D", "G"])  # once per phase run
    trackers = {n: s.state_dict()["_growth_tracker"] for n, s in t.scalers.scalers.items()}
    assert trackers == {"D": 4, "G": 4, "D_reg": 2}  # iterations without overflow, per phase


def test_fp16_overflow_skips_after_step_and_counts_as_a_bad_step(tmp_path, fp16_on_cpu, monkeypatch):
    from i2i.engine.guard import StopTraining

    t = trainer(tmp_path, {**PIX2PIX, "losses": {"gan": {"name": "wgan", "clip": 0.01, "n_critic": 1}}},
                log_every=4, amp="fp16", max_bad_steps=3)
    t.scalers.load_state_dict({"G": {**torch.amp.GradScaler("cpu").state_dict(), "scale": 256.0}})  # G: no overflow
    loss = t.model.loss
    monkeypatch.setattr(t.model, "loss", lambda phase, b, o: (lambda l, g: (l * 1e12 if phase == "D" else l, g))(
        *loss(phase, b, o)))  # D's gradients overflow fp16 at any loss scale > 1e-7; its loss stays finite
    after = []
    after_step = t.model.after_step
    monkeypatch.setattr(t.model, "after_step",
                        lambda phase, ok: after.append((phase, bool(ok))) or after_step(phase, ok))
    d_before = [p.detach().clone() for p in t.model.D.parameters()]
    assert any(float(p.abs().max()) > 0.01 for p in d_before)  # weight clipping would change D
    # the guard is read at log steps: the third bad step in a row (3) stops every update, the log step (4) training
    (tmp_path / "run").mkdir()
    with pytest.raises(StopTraining, match=r"training stopped at step 4: non-finite the gradient of optimizer group D "
                                           r"\(fp16 overflow at loss scale 65536, lowered\) for 3 steps in a row up to "
                                           r"step 3, and no update since \(train.max_bad_steps\)"):
        t.fit()
    # no clipping after a step the scaler skipped (after_step is told, on the device, and leaves D alone); after the
    # third bad step, no update of G either
    assert t.step == 4 and after == [("D", False), ("G", True)] * 3 + [("D", False), ("G", False)]
    assert all(torch.equal(a, b) for a, b in zip(d_before, t.model.D.parameters()))
    assert t.scalers["D"].get_scale() == 65536 / 16 and t.scalers["G"].get_scale() == 256  # halved 4 times: D's alone


def test_resume_with_fp16_from_a_checkpoint_written_without_it(tmp_path, fp16_on_cpu):
    import yaml

    from i2i.cli.train import main as train_main
    from i2i.checkpoint import load_checkpoint
    from i2i.engine.scalers import LossScalers

    tree = {**PIX2PIX, "data": DATA, "train": {"out_dir": str(tmp_path / "runs"), "name": "run", "max_steps": 2},
            "log": {"progress": False, "tensorboard": False}}
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(tree))
    assert train_main(["--config", str(cfg)]) == 0
    run = tmp_path / "runs" / "run"
    assert load_checkpoint(run)["scaler"] == {"D": {}, "G": {}}  # written without fp16
    assert train_main(["--resume", str(run), "--set", "train.amp=fp16", "train.max_steps=4"]) == 0
    state = load_checkpoint(run)
    assert state["step"] == 4 and state["config"]["train"]["amp"] == "fp16"
    assert set(state["scaler"]) == {"D", "G"} and all(s["scale"] > 0 for s in state["scaler"].values())
    # the one scaler of older checkpoints goes to every phase
    older = torch.amp.GradScaler("cpu", init_scale=1024.0).state_dict()
    scalers = LossScalers(torch.device("cpu"), "fp16", ["D", "G"])
    scalers.load_state_dict(older)
    assert scalers["D"].get_scale() == scalers["G"].get_scale() == 1024.0
    scalers.load_state_dict({"D": {**older, "scale": 8.0}})  # a phase the checkpoint lacks keeps its scale
    assert scalers["D"].get_scale() == 8.0 and scalers["G"].get_scale() == 1024.0
