"""MNIST-format image data for the CNN: real where it can be had, synthetic (and said so) where not.

The order of preference, first found wins:

1. ``--data-root``: MNIST or Fashion-MNIST in torchvision's layout (``MNIST/raw``,
   ``FashionMNIST/raw``; the four IDX files, plain or ``.gz``);
2. MNIST downloaded by torchvision into the cache, only when the user asks
   (``--data-download``) and a network answers;
3. Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
   (``/usr/share/datasets/fashion-mnist``). Debian recompressed its ``.gz`` files, so
   torchvision's checksums reject them: they are decompressed once into the cache, in the
   layout torchvision reads without checksums (``FashionMNIST/raw/`` without ``.gz``);
4. a learnable synthetic set of the same shape, with a warning.

The cache is ``$DEVICEBENCH_CACHE``, else ``$XDG_CACHE_HOME/devicebench``, else
``~/.cache/devicebench``: outside the checkout, so ``results/`` holds runs only.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataWarning(UserWarning):
    """Real data could not be had and a stand-in is used."""


def cache_dir() -> Path:
    if os.environ.get("DEVICEBENCH_CACHE"):
        return Path(os.environ["DEVICEBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "devicebench"


class SyntheticImages(torch.utils.data.Dataset):
    """Same interface and per-item work as torchvision's MNIST: ``data``, ``targets``, PIL + transform."""

    def __init__(self, data: torch.Tensor, targets: torch.Tensor, transform=None):
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.data[index].numpy(), mode="L")
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


@dataclass(frozen=True)
class ImageData:
    """A training and a test set (torchvision datasets: uint8 ``data`` (N, 28, 28), ``targets``) and their origin."""

    name: str
    source: str
    train: torch.utils.data.Dataset
    test: torch.utils.data.Dataset

    @property
    def train_images(self) -> torch.Tensor:
        return self.train.data

    @property
    def train_labels(self) -> torch.Tensor:
        return self.train.targets

    @property
    def test_images(self) -> torch.Tensor:
        return self.test.data

    @property
    def test_labels(self) -> torch.Tensor:
        return self.test.targets


def _has_idx_files(raw: Path) -> bool:
    return all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in IDX_FILES)


class DataError(ValueError):
    """Image files that cannot be trained on; the message names the file and what is wrong."""


def _decompress_into(src: Path, raw: Path) -> None:
    """``src/*.gz`` -> ``raw/*`` (plain IDX), written atomically so a killed run leaves no half file."""
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        target = raw / name
        if target.exists():
            continue
        source = src / f"{name}.gz"
        if not source.exists():
            source = src / name
        partial = target.with_name(f"{name}.{os.getpid()}.partial")  # processes may race to write it
        try:
            if source.suffix == ".gz":
                with gzip.open(source, "rb") as fin, open(partial, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            else:
                shutil.copyfile(source, partial)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            partial.unlink(missing_ok=True)
            raise DataError(f"{source}: not a readable gzip file ({exc or 'it ends early: truncated?'})") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)


def _writable(folder: Path) -> Path:
    """``folder``, created; where it cannot be written, a new temporary folder, with a warning."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
        return folder
    except OSError as exc:
        fallback = Path(tempfile.mkdtemp(prefix="devicebench-cache-"))
        warnings.warn(
            f"the cache {folder} cannot be written ({exc.strerror or exc}): decompressing into {fallback} "
            "for this run (set DEVICEBENCH_CACHE to a writable folder to keep it)",
            DataWarning,
            stacklevel=3,
        )
        return fallback


def _check(name: str, where: Path, split: str, dataset) -> None:
    """MNIST-format or a clear error: (N, 28, 28) uint8 images and as many labels, each 0-9."""
    images, labels = dataset.data, dataset.targets
    if tuple(images.shape[1:]) != (28, 28):
        raise DataError(f"{where}: {split} images are {'x'.join(map(str, images.shape[1:]))}, not 28x28: not {name}")
    if len(labels) != len(images):
        raise DataError(f"{where}: {len(images)} {split} images but {len(labels)} labels")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) <= 9):
        raise DataError(f"{where}: {split} labels outside 0-9 (from {int(labels.min())} to {int(labels.max())})")


def _load_torchvision(name: str, src: Path, cache: Path) -> ImageData:
    """Read the IDX files of ``src`` (a ``<name>/raw`` folder) through torchvision's own dataset
    class (no download, no checksum). Plain files are read where they are; ``.gz`` ones are
    decompressed into the cache, never beside the user's files."""
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    in_layout = src.name == "raw" and src.parent.name == name  # torchvision's root/<name>/raw
    if in_layout and all((src / f).exists() for f in IDX_FILES):
        root, raw = src.parent.parent, src
    else:
        root = _writable(cache)
        raw = root / name / "raw"
        _decompress_into(src, raw)
    cls = getattr(datasets, name)
    try:
        train = cls(str(root), train=True, download=False, transform=ToTensor())
        test = cls(str(root), train=False, download=False, transform=ToTensor())
    except Exception as exc:
        raise DataError(f"{raw}: not readable as {name} IDX files ({exc})") from None
    _check(name, raw, "training", train)
    _check(name, raw, "test", test)
    return ImageData(name, str(raw), train, test)


def synthetic(n_train: int = 60_000, n_test: int = 10_000, seed: int = 0) -> ImageData:
    """Ten classes, each a fixed random pattern of blobs under heavy per-image noise: learnable, not trivial."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(10, 1, 7, 7, generator=gen)
    prototypes = torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 10, (n,), generator=gen)
        images = prototypes[labels] + 0.35 * torch.randn(n, 28, 28, generator=gen)
        return (images.clamp(0, 1) * 255).to(torch.uint8), labels

    from torchvision.transforms import ToTensor

    train, test = SyntheticImages(*make(n_train), ToTensor()), SyntheticImages(*make(n_test), ToTensor())
    return ImageData("synthetic", "generated", train, test)


def load(data_root: Path | None = None, download: bool = False, debian_dir: Path = DEBIAN_FASHION_MNIST) -> ImageData:
    """The best data set this machine has, by the order in the module's docstring."""
    cache = cache_dir()
    if data_root is not None:
        for name in ("MNIST", "FashionMNIST"):
            if _has_idx_files(data_root / name / "raw"):
                return _load_torchvision(name, data_root / name / "raw", cache)
    if _has_idx_files(cache / "MNIST" / "raw"):
        return _load_torchvision("MNIST", cache / "MNIST" / "raw", cache)
    if download:
        from torchvision import datasets

        try:
            root = _writable(cache)
            datasets.MNIST(str(root), train=True, download=True)
            datasets.MNIST(str(root), train=False, download=True)
            return _load_torchvision("MNIST", root / "MNIST" / "raw", root)
        except Exception as exc:  # no network is an expected state, not a crash
            warnings.warn(f"could not download MNIST ({exc}); trying the other sources", DataWarning, stacklevel=2)
    if _has_idx_files(cache / "FashionMNIST" / "raw"):
        return _load_torchvision("FashionMNIST", cache / "FashionMNIST" / "raw", cache)
    if _has_idx_files(debian_dir):
        return _load_torchvision("FashionMNIST", debian_dir, cache)
    warnings.warn(
        "no MNIST or Fashion-MNIST found (give --data-root, or install Debian's dataset-fashion-mnist): "
        "training on a synthetic set of the same shape",
        DataWarning,
        stacklevel=2,
    )
    return synthetic()
