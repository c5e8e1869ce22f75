"""Reference package for hw3 (作业三): convolution, pooling, the convolution's backward pass and
batch normalisation.

The grader imports this package by path (rubrics/hw3.toml: assignment.reference) and names its
functions as "module.function"; the function items' references are the names exported here.
Everything is written with plain tensor operations (no torch.nn.functional convolution, pooling or
batch-norm call), so tests/test_hw3_reference.py can check it against torch.nn.functional.
"""
from .batchnorm import batch_norm
from .conv import conv2d, conv2d_backward, max_pool2d, output_size

__all__ = ["conv2d", "max_pool2d", "conv2d_backward", "batch_norm", "output_size"]
