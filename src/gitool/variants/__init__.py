"""Variant effects (``gitool variants``).

- :mod:`~gitool.variants.vcf`: VCF records (pysam) → one classified variant per allele;
- :mod:`~gitool.variants.alleles`: the reference and alternate inputs and how their bins
  line up (indels);
- :mod:`~gitool.variants.scoring`: batched scoring, :func:`~gitool.variants.scoring.
  score_variants` from Python;
- :mod:`~gitool.variants.ism`: in-silico saturation mutagenesis of a region;
- :mod:`~gitool.variants.command`: the command's files (scores TSV, profiles, ISM maps).

Importing this package imports neither torch nor pysam.
"""
