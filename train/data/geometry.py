"""SMPL-X joint left/right pairs and batched numpy rotations, shared by the proxy data set (``proxy.py``) and
its augmentation (``augment.py``), which both import them from here (neither imports the other for them)."""

from __future__ import annotations

import numpy as np

from binaryhpe import BinaryHPEError

#: left/right joint pairs of the SMPL-X layout (proxy.py describes the joints)
LR_PAIRS = [(1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (23, 24)] + \
    [(25 + i, 40 + i) for i in range(15)]


def flip_permutation(n: int = 55) -> np.ndarray:
    """Joint index permutation that swaps left and right SMPL-X joints (for the first ``n`` joints)."""
    perm = np.arange(max(n, 55))
    for a, b in LR_PAIRS:
        perm[a], perm[b] = b, a
    perm = perm[:n]
    if n < 55 and (perm >= n).any():
        raise BinaryHPEError(f"flip_permutation: {n} joints split a left/right pair of the SMPL-X layout")
    return perm


# ----------------------------------------------------------------------------------------------------------
# rotations (numpy, batched)


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    aa = np.asarray(aa, dtype=np.float64)
    th = np.linalg.norm(aa, axis=-1, keepdims=True)
    k = aa / np.maximum(th, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    z = np.zeros_like(kx)
    K = np.stack([np.stack([z, -kz, ky], -1), np.stack([kz, z, -kx], -1), np.stack([-ky, kx, z], -1)], -2)
    s, c = np.sin(th)[..., None], np.cos(th)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """Rotation matrices -> axis-angle through the quaternion (robust near angle pi)."""
    R = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    q = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = np.argmax(q, axis=-1)
    cand = [
        np.stack([1 + m00 + m11 + m22, R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                  R[..., 1, 0] - R[..., 0, 1]], -1),
        np.stack([R[..., 2, 1] - R[..., 1, 2], 1 + m00 - m11 - m22, R[..., 0, 1] + R[..., 1, 0],
                  R[..., 0, 2] + R[..., 2, 0]], -1),
        np.stack([R[..., 0, 2] - R[..., 2, 0], R[..., 0, 1] + R[..., 1, 0], 1 - m00 + m11 - m22,
                  R[..., 1, 2] + R[..., 2, 1]], -1),
        np.stack([R[..., 1, 0] - R[..., 0, 1], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1],
                  1 - m00 - m11 + m22], -1),
    ]
    quat = np.choose(best[..., None], cand)
    quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    quat = np.where(quat[..., :1] < 0, -quat, quat)
    v = quat[..., 1:]
    sin = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2 * np.arctan2(sin, quat[..., :1])
    return np.where(sin > 1e-12, v / np.maximum(sin, 1e-12) * angle, 2 * v)
