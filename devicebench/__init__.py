"""devicebench: how much faster PyTorch training runs on a GPU than on the CPU, measured honestly."""

__version__ = "0.1.0"
