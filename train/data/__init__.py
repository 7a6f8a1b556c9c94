"""Training data: generated proxy data (``proxy``), augmentation (``augment``) and, in ``datasets``, adapters
for the formats the paper trains and tests on (Human3.6M, MSCOCO whole-body, MPII, EHF, AGORA)."""

from binaryhpe.train.data.proxy import ProxyConfig, ProxyDataset, collate, flip_permutation  # noqa: F401
