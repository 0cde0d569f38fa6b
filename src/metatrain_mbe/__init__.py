"""metatrain-mbe: many-body expansion analysis, sub-cluster augmentation and
MBE-aware export for metatrain models.

The package is layered; each layer imports only the ones below it:

1. :mod:`metatrain_mbe.expansion` — pure tensor math of the expansion;
2. :mod:`metatrain_mbe.data` — structures, sub-clusters, splits, data sets, files;
3. :mod:`metatrain_mbe.compute` — evaluating models and reference codes, the
   exported MBE model;
4. :mod:`metatrain_mbe.analysis` — reference and model terms, statistics, the
   numbers of the report;
5. :mod:`metatrain_mbe.interface` — options, the ``mtt-mbe`` CLI, report files.

``docs/architecture.md`` says where each kind of change goes.
"""

from .errors import MBEInputError

__version__ = "0.1.0"

__all__ = ["MBEInputError", "__version__"]
