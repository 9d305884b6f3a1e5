import pytest
import torch

from mobile_nas.models.build import build_model
from mobile_nas.space import get_space
from mobile_nas.train.data import load_dataset
from mobile_nas.train.trainer import TrainError, evaluate_accuracy, train_model

TINY = "ds_k3_n1_c16_relu|ds_k3_n1_c24_relu|ds_k3_n1_c40_relu|ds_k3_n1_c64_relu"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train fastest on one thread, and a busy machine punishes two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", val_size=300)


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model(get_space("fmnist28").decode(TINY))


def test_training_learns_and_reports_history(data):
    model = _model()
    before = evaluate_accuracy(model, data.val, data.mean, data.std)
    result = train_model(model, data, epochs=3, batch_size=64, train_subset=1000,
                         progress=False)
    assert [h.epoch for h in result.history] == [1, 2, 3]
    assert result.train_images == 1000 and result.resumed_from_epoch == 0
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.val_accuracy > max(0.4, before + 0.2)  # chance is 0.1
    assert result.val_accuracy == evaluate_accuracy(model, data.val, data.mean, data.std)
    assert not model.training


def test_killed_run_resumes_to_the_same_weights(data, tmp_path):
    kw = dict(epochs=2, batch_size=128, train_subset=384, progress=False, optimizer="adamw")
    full = _model()
    train_model(full, data, **kw)

    ckpt = tmp_path / "state.pt"

    class Killed(Exception):
        pass

    def kill_after_first(stats):
        if stats.epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train_model(_model(), data, checkpoint_path=ckpt, on_epoch=kill_after_first, **kw)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    resumed = _model(seed=99)  # different init: the weights must come from the checkpoint
    result = train_model(resumed, data, checkpoint_path=ckpt, resume=True, **kw)
    assert result.resumed_from_epoch == 1 and len(result.history) == 2
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temp files


def test_resume_refuses_other_runs_and_corrupt_files(data, tmp_path):
    ckpt = tmp_path / "state.pt"
    train_model(_model(), data, epochs=1, train_subset=256, progress=False,
                checkpoint_path=ckpt)
    with pytest.raises(TrainError, match="different run: .*batch_size=128 \\(now 64\\)"):
        train_model(_model(), data, epochs=1, batch_size=64, train_subset=256,
                    progress=False, checkpoint_path=ckpt, resume=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainError, match="not a readable training checkpoint"):
        train_model(_model(), data, epochs=1, train_subset=256, progress=False,
                    checkpoint_path=ckpt, resume=True)


def test_bad_settings_are_named(data):
    with pytest.raises(TrainError, match="unknown optimizer 'adam'"):
        train_model(_model(), data, epochs=1, optimizer="adam")
    with pytest.raises(TrainError, match="epochs must be a positive integer, got 0"):
        train_model(_model(), data, epochs=0)
