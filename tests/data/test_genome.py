def test_genome_spelling_finds_the_same_chromosome_spelled_otherwise():
    from gitool.data.genome import genome_spelling

    names = ["chr1", "chr2", "chrX", "chrM"]
    assert genome_spelling("1", names) == "chr1"
    assert genome_spelling("Chr1", names) == "chr1"
    assert genome_spelling("CHRX", names) == "chrX"
    assert genome_spelling("MT", names) == "chrM"
    assert genome_spelling("chrMT", names) == "chrM"
    assert genome_spelling("chr1", names) is None  # it is the genome's own name
    assert genome_spelling("chr3", names) is None
    assert genome_spelling("chrM", ["1", "2", "MT"]) == "MT"
    assert genome_spelling("chr1", ["1", "2", "MT"]) == "1"
    assert genome_spelling("i", ["chrI", "chrII"]) == "chrI"
