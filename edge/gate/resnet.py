"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) run with numpy.

The same network and the same weights as ``dlib.face_recognition_model_v1``, read from the same
model file: only the arithmetic moves from dlib's own matrix code (the ``dlib-bin`` wheel is
built without BLAS: ≈ 140 ms per face here) to numpy's BLAS (≈ 23 ms, same machine).
Encodings agree with dlib's to ~1e-6 (tests/edge/gate/test_gate_resnet.py), so galleries built
either way mix freely.

The network (dlib's ``dnn_face_recognition_ex.cpp``), 150×150 RGB face chip in, 128 floats out:
``con 7×7/2 (32) → affine → relu → max_pool 3×3/2`` then residual blocks of two 3×3 convolutions
with affine (frozen batch-norm) layers — 3×32, 4×64, 3×128, 3+1×256 channels, the first block of
each level after the first one strided (its shortcut an average pool, zero-padded where channels
or sizes differ) — then a global average pool and a 256×128 fully connected layer.

BLAS runs on one thread while encoding: the products are small, and a multi-threaded OpenBLAS
on two busy cores measured ≈ 950 ms per face instead of ≈ 30 ms here (the limit is set and
restored around each encoding, one encoding at a time; other numpy users keep theirs).

The file is dlib's serialisation: layer details bottom-up, each with a version string; tensors
as (version 2, num_samples, k, nr, nc) packed integers followed by little-endian float32s.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from edge.gate.errors import ModelFilesMissing

F32 = npt.NDArray[np.float32]
CHIP_SIZE = 150
CHIP_PADDING = 0.25
LEVELS = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))
"""(channels, residual blocks) per level, from the input up; every level but the first starts
with a strided block (dlib's ``alevel4`` … ``alevel0``)."""


class _Reader:
    """dlib's serialisation primitives: packed integers, strings, floats, tensors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise ModelFilesMissing("the model file ends inside a layer")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def integer(self) -> int:
        head = self._byte()
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos : self.pos + size], "little")
        self.pos += size
        return -value if head & 0x80 else value

    def string(self) -> str:
        size = self.integer()
        text = self.data[self.pos : self.pos + size].decode("ascii")
        self.pos += size
        return text

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(mantissa * 2.0**exponent)

    def tensor(self) -> F32:
        version = self.integer()
        if version != 2:
            raise ModelFilesMissing(f"unexpected dlib tensor version {version}")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        if min(shape) < 0 or self.pos + 4 * count > len(self.data):
            raise ModelFilesMissing(f"a tensor {shape} runs past the end of the model file")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.astype(np.float32)

    def seek(self, marker: str) -> None:
        """Move past the next serialised string ``marker`` (a layer's version string)."""
        needle = bytes([1, len(marker)]) + marker.encode("ascii")
        found = self.data.find(needle, self.pos)
        if found < 0:
            raise ModelFilesMissing(f"no {marker!r} layer after byte {self.pos} of the model")
        self.pos = found + len(needle)


@dataclass(frozen=True, slots=True)
class _Conv:
    weights: F32
    """(k·k·in, out): rows in (dy, dx, channel) order, for channels-last patches."""
    bias: F32
    size: int
    stride: int

    @property
    def pad(self) -> int:
        return 0 if self.stride != 1 else self.size // 2  # dlib's default padding


def _conv_then_affine(reader: _Reader, size: int, stride: int, inputs: int, outputs: int) -> _Conv:
    """A ``con_`` layer and the ``affine_`` layer after it, folded into one convolution."""
    reader.seek("con_4")
    params = reader.tensor()
    n = outputs * inputs * size * size
    if params.size != n + outputs:
        raise ModelFilesMissing(f"con layer holds {params.size} values, expected {n + outputs}")
    filters = params[:n].reshape(outputs, inputs, size, size)
    bias = params[n:]
    reader.seek("affine_")
    affine = reader.tensor()
    gamma, beta = affine[:outputs], affine[outputs:]
    weights = (filters * gamma[:, None, None, None]).transpose(2, 3, 1, 0)
    weights = np.ascontiguousarray(weights.reshape(size * size * inputs, outputs))
    return _Conv(weights, (bias * gamma + beta).astype(np.float32), size, stride)


def _convolve(x: F32, conv: _Conv) -> F32:
    """Cross-correlation of a channels-last (H, W, C) image: im2col + one BLAS product."""
    if conv.pad:
        p = conv.pad
        x = np.pad(x, ((p, p), (p, p), (0, 0)))
    windows = sliding_window_view(x, (conv.size, conv.size), axis=(0, 1))
    windows = windows[:: conv.stride, :: conv.stride]  # (Ho, Wo, C, k, k)
    ho, wo = windows.shape[:2]
    patches = np.ascontiguousarray(windows.transpose(0, 1, 3, 4, 2)).reshape(ho * wo, -1)
    out = patches @ conv.weights
    out += conv.bias
    return out.reshape(ho, wo, -1)


def _pool(x: F32, size: int, reduce: str) -> F32:
    windows = sliding_window_view(x, (size, size), axis=(0, 1))[::2, ::2]
    pooled = windows.max(axis=(3, 4)) if reduce == "max" else windows.mean(axis=(3, 4))
    return np.asarray(pooled, dtype=np.float32)


def _add_padded(a: F32, b: F32) -> F32:
    """dlib's ``add_prev``: the sum over the larger shape, each input zero outside its own."""
    shape = tuple(max(i, j) for i, j in zip(a.shape, b.shape, strict=True))
    out = np.zeros(shape, np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return out


@dataclass(frozen=True, slots=True)
class _Block:
    first: _Conv
    second: _Conv
    down: bool


class FaceResNet:
    """``encode(chip)``: a 150×150 RGB face chip (``dlib.get_face_chip``) → 128 float32."""

    def __init__(self, path: Path) -> None:
        try:
            reader = _Reader(path.read_bytes())
        except OSError as exc:
            raise ModelFilesMissing(f"cannot read {path}: {exc}") from exc
        reader.seek("input_rgb_image_sized")
        self.mean = np.array([reader.real() for _ in range(3)], np.float32)
        self.stem = _conv_then_affine(reader, 7, 2, 3, 32)
        blocks: list[_Block] = []
        inputs = 32
        for level, (channels, count) in enumerate(LEVELS):
            for i in range(count):
                down = level > 0 and i == 0
                first = _conv_then_affine(reader, 3, 2 if down else 1, inputs, channels)
                second = _conv_then_affine(reader, 3, 1, channels, channels)
                blocks.append(_Block(first, second, down))
                inputs = channels
        self.blocks = tuple(blocks)
        reader.seek("fc_2")
        outputs, inputs = reader.integer(), reader.integer()
        fc = reader.tensor()
        if (inputs, outputs) != (256, 128) or fc.size != 256 * 128:
            raise ModelFilesMissing(f"fc layer {inputs}×{outputs} holds {fc.size} values")
        self.fc = np.ascontiguousarray(fc.reshape(256, 128))
        self._blas = ThreadpoolController().select(user_api="blas")
        self._lock = threading.Lock()

    def encode(self, chip: npt.NDArray[np.uint8]) -> F32:
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"a face chip is {CHIP_SIZE}×{CHIP_SIZE}×3, not {chip.shape}")
        with self._lock, self._blas.limit(limits=1):
            return self._forward(chip)

    def _forward(self, chip: npt.NDArray[np.uint8]) -> F32:
        x = (chip.astype(np.float32) - self.mean) / np.float32(256.0)
        x = np.maximum(_convolve(x, self.stem), 0.0)
        x = _pool(x, 3, "max")
        for block in self.blocks:
            y = np.maximum(_convolve(x, block.first), 0.0)
            y = _convolve(y, block.second)
            shortcut = _pool(x, 2, "mean") if block.down else x
            x = np.maximum(_add_padded(shortcut, y), 0.0)
        pooled = x.mean(axis=(0, 1), dtype=np.float32)
        return np.asarray(pooled @ self.fc, dtype=np.float32)
