"""Prediction over genomic regions (``gitool predict``).

- :mod:`~gitool.predict.model`: a trained model and its genome made ready to predict
  (shared with ``gitool variants``);
- :mod:`~gitool.predict.tiling`: regions (BED) ↔ model windows ↔ output bins;
- :mod:`~gitool.predict.inference`: :func:`~gitool.predict.inference.predict_regions`
  (lazy, batched, ``--rc``/``--shifts`` averaging) and
  :func:`~gitool.predict.inference.predict` (regions → one bigWig per track);
- :mod:`~gitool.predict.bigwig`: the multi-track bigWig/bedGraph writer;
- :mod:`~gitool.predict.writer`: writing in the background with a bounded number of open
  files (a writer thread; writer processes over groups of tracks for large heads).

Importing this package imports neither torch nor pyBigWig.
"""
