"""The real loading path, on tiny IDX files the tests write themselves."""

import gzip
import struct

import pytest
import torch

from devicebench import data

N_TRAIN, N_TEST = 12, 5


def idx_images(images: torch.Tensor) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", 0x803, n, rows, cols) + images.numpy().tobytes()


def idx_labels(labels: torch.Tensor) -> bytes:
    return struct.pack(">II", 0x801, len(labels)) + labels.to(torch.uint8).numpy().tobytes()


def write_idx(folder, compress: bool, seed: int = 0):
    """The four files of an MNIST-format data set, as torchvision and Debian name them."""
    gen = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "train-images-idx3-ubyte": idx_images(torch.randint(0, 256, (N_TRAIN, 28, 28), generator=gen, dtype=torch.uint8)),
        "train-labels-idx1-ubyte": idx_labels(torch.arange(N_TRAIN) % 10),
        "t10k-images-idx3-ubyte": idx_images(torch.randint(0, 256, (N_TEST, 28, 28), generator=gen, dtype=torch.uint8)),
        "t10k-labels-idx1-ubyte": idx_labels(torch.arange(N_TEST) % 10),
    }
    for name, content in contents.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return contents


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_data_root_in_torchvision_layout(tmp_path, name, compress):
    root = tmp_path / "root"
    contents = write_idx(root / name / "raw", compress)
    images = data.load(root, debian_dir=tmp_path / "none")
    assert images.name == name
    assert images.train_images.shape == (N_TRAIN, 28, 28) and images.test_images.shape == (N_TEST, 28, 28)
    assert images.train_images[0].numpy().tobytes() == contents["train-images-idx3-ubyte"][16 : 16 + 784]
    assert images.train_labels.tolist() == [i % 10 for i in range(N_TRAIN)]
    x, y = images.train[3]  # torchvision's own __getitem__ with ToTensor, as the loader variant uses it
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == 3


def test_mnist_is_preferred_over_fashion_mnist(tmp_path):
    write_idx(tmp_path / "root" / "FashionMNIST" / "raw", compress=False)
    write_idx(tmp_path / "root" / "MNIST" / "raw", compress=False)
    assert data.load(tmp_path / "root", debian_dir=tmp_path / "none").name == "MNIST"


def test_debian_files_are_decompressed_into_the_cache(tmp_path, cache):
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    contents = write_idx(debian, compress=True)
    images = data.load(None, debian_dir=debian)
    assert images.name == "FashionMNIST"
    raw = cache / "FashionMNIST" / "raw"
    assert {p.name for p in raw.iterdir()} == set(contents)
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == contents["t10k-labels-idx1-ubyte"]
    assert images.source == str(raw)
    # The next run reads the cache, even with the package gone.
    assert data.load(None, debian_dir=tmp_path / "gone").name == "FashionMNIST"


def test_without_data_a_learnable_synthetic_set_is_used_and_said(tmp_path):
    with pytest.warns(data.DataWarning, match="synthetic"):
        images = data.load(None, debian_dir=tmp_path / "none")
    assert images.name == "synthetic"
    assert images.train_images.shape == (60_000, 28, 28) and images.train_images.dtype == torch.uint8
    assert set(images.test_labels.unique().tolist()) == set(range(10))


def test_download_without_a_network_falls_back_with_a_warning(tmp_path, monkeypatch):
    from torchvision import datasets

    def no_network(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(datasets, "MNIST", no_network)
    debian = tmp_path / "debian"
    write_idx(debian, compress=True)
    with pytest.warns(data.DataWarning, match="could not download MNIST"):
        assert data.load(None, download=True, debian_dir=debian).name == "FashionMNIST"


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    raw = tmp_path / "root" / "MNIST" / "raw"
    write_idx(raw, compress=False)
    (raw / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not readable as MNIST IDX files"):
        data.load(tmp_path / "root", debian_dir=tmp_path / "none")
