"""Prediction over genomic regions (``gitool predict``).

- :mod:`~gitool.predict.tiling`: regions (BED) ↔ model windows ↔ output bins;
- :mod:`~gitool.predict.inference`: :func:`~gitool.predict.inference.predict_regions`
  (lazy, batched, ``--rc``/``--shifts`` averaging) and
  :func:`~gitool.predict.inference.predict` (regions → one bigWig per track);
- :mod:`~gitool.predict.bigwig`: the multi-track bigWig/bedGraph writer.

Importing this package imports neither torch nor pyBigWig.
"""
