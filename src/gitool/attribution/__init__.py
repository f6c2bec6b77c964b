"""Which bases drive a prediction, and which motifs a model learned.

- :mod:`~gitool.attribution.attribute`: per-base contributions toward chosen tracks and bins
  (``gitool attribute``: saliency, integrated gradients, DeepLIFT/SHAP, ISM);
- :mod:`~gitool.attribution.modisco`: TF-MoDISco on those contributions and each motif
  matched against JASPAR with Tomtom (``gitool modisco``);
- :mod:`~gitool.attribution.marginalize`: a motif, or a pair at chosen spacings, inserted
  into shuffled genome backgrounds and the predicted change (``gitool marginalize``).

Importing this package imports neither torch nor the attribution libraries.
"""
