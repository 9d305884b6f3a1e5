import pytest

TINY = "ds_k3_n1_c16_relu|mb3_k3_n1_c24_relu|mb3_k3_n1_c40_hswish|mb3_k3_n1_c64_hswish_se"

#: The synthetic dataset's test split (the export's accuracy check and parity images).
SYNTHETIC_TEST_IMAGES = 1000


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory):
    """A small network trained briefly on the synthetic dataset (class-dependent blobs, made
    in memory: no dataset package or download needed), written by the library's
    ``train_architecture`` as ``mobile-nas train`` writes it. The export reads the test and
    calibration images of the dataset the checkpoint records, so every export path (checks,
    parity, INT8 calibration, mobile profile, ORT) runs on any machine."""
    import torch

    from mobile_nas.space import get_space
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.trainer import train_architecture

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("ckpt") / "model.pt"
        # 5,000 training images (the synthetic set holds 6,000), 3 epochs of batch 32:
        # 85% test accuracy (10 classes), confident enough that its INT8 copy keeps it
        # (with 2 epochs or batch 64 it reached 45-67% and INT8 lost more than a point)
        ckpt = train_architecture(get_space("fmnist28").decode(TINY),
                                  load_dataset("synthetic", val_size=1000), out=out, epochs=3,
                                  optimizer="adamw", batch_size=32, progress=False,
                                  device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert out.is_file() and ckpt.metrics["test_images"] == SYNTHETIC_TEST_IMAGES
    return out
