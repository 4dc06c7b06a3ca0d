"""The real loading path, on tiny IDX files the tests write themselves."""

import gzip
import struct

import pytest
import torch

from devicebench.measure import data

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


def test_gz_files_in_the_data_root_are_decompressed_into_the_cache_not_beside_them(tmp_path, cache):
    root = tmp_path / "root"
    write_idx(root / "MNIST" / "raw", compress=True)
    before = sorted(p.name for p in (root / "MNIST" / "raw").iterdir())
    images = data.load(root, debian_dir=tmp_path / "none")
    assert images.name == "MNIST" and images.source == str(cache / "MNIST" / "raw")
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == before  # the user's folder untouched


def test_an_unwritable_cache_falls_back_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEBENCH_CACHE", str(tmp_path / "a-file" / "cache"))
    (tmp_path / "a-file").write_text("a file, not a folder: no cache under it")
    debian = tmp_path / "debian"
    write_idx(debian, compress=True)
    with pytest.warns(data.DataWarning, match="cannot be written"):
        images = data.load(None, debian_dir=debian)
    assert images.name == "FashionMNIST" and len(images.train_labels) == N_TRAIN


def test_a_truncated_gz_is_one_clear_error_and_leaves_nothing_behind(tmp_path, cache):
    raw = tmp_path / "root" / "MNIST" / "raw"
    write_idx(raw, compress=True)
    whole = (raw / "train-images-idx3-ubyte.gz").read_bytes()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte.gz: not a readable gzip file") as error:
        data.load(tmp_path / "root", debian_dir=tmp_path / "none")
    assert "\n" not in str(error.value)
    assert not list(cache.rglob("*.partial"))


def _idx_with(raw, images=None, labels=None):
    write_idx(raw, compress=False)
    if images is not None:
        (raw / "train-images-idx3-ubyte").write_bytes(idx_images(images))
    if labels is not None:
        (raw / "train-labels-idx1-ubyte").write_bytes(idx_labels(labels))


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (torch.zeros(N_TRAIN, 32, 32, dtype=torch.uint8), None, "training images are 32x32, not 28x28"),
        (None, torch.arange(N_TRAIN - 2) % 10, f"{N_TRAIN} training images but {N_TRAIN - 2} labels"),
        (None, torch.arange(N_TRAIN) % 12, "training labels outside 0-9"),
    ],
    ids=["32x32", "fewer labels", "label 11"],
)
def test_data_that_is_not_mnist_shaped_is_refused_on_load(tmp_path, images, labels, message):
    _idx_with(tmp_path / "root" / "MNIST" / "raw", images, labels)
    with pytest.raises(data.DataError, match=message):
        data.load(tmp_path / "root", debian_dir=tmp_path / "none")


def test_bad_data_fails_the_image_benchmarks_in_one_line_and_skips_the_rest(tmp_path):
    from .conftest import run_benches

    root = tmp_path / "root"
    _idx_with(root / "MNIST" / "raw", labels=torch.arange(N_TRAIN) % 12)
    run = run_benches("-k", "test_cnn and cpu and not ddp", f"--data-root={root}", "-rs", storage=tmp_path / "storage")
    assert run.ret == 1, run.output
    assert "training labels outside 0-9" in run.stdout and "Traceback" not in run.stdout
    assert "bf16 needs bf16 tensor cores; cpu has none" in run.stdout  # variants that do not apply: still skipped, not errors
