import numpy as np
import pandas as pd
import pytest

import scdeconv as sd
from scdeconv.genesets import detect_species, hallmark, match_gene_sets, to_gene_sets


def test_hallmark_human_and_mouse():
    human = hallmark("human")
    mouse = hallmark("mouse")
    assert len(human) == 50 and set(human) == set(mouse)
    assert "ALAS2" in human["HALLMARK_HEME_METABOLISM"] and "Alas2" in mouse["HALLMARK_HEME_METABOLISM"]
    n_human = len({g for genes in human.values() for g in genes})
    n_mouse = len({g for genes in mouse.values() for g in genes})
    # About 4.1k of the 4.4k Hallmark genes have one-to-one mouse orthologs (Ensembl BioMart table).
    assert n_human == 4383 and 3900 <= n_mouse <= 4300
    with pytest.raises(ValueError, match="species must be"):
        hallmark("zebrafish")


def test_read_gmt_round_trip_and_errors(tmp_path):
    good = tmp_path / "sets.gmt"
    good.write_text("SET_A\tdesc\tGATA1\tKLF1\nSET_B\tna\tCD14\n")
    assert sd.read_gmt(good) == {"SET_A": ["GATA1", "KLF1"], "SET_B": ["CD14"]}
    broken = tmp_path / "broken.gmt"
    broken.write_text("SET_A\tdesc\tGATA1\nSET_B GATA1 KLF1\n")
    with pytest.raises(ValueError, match=r"malformed: line\(s\) \[2\]"):
        sd.read_gmt(broken)
    empty = tmp_path / "empty.gmt"
    empty.write_text("")
    with pytest.raises(ValueError, match="holds no gene sets"):
        sd.read_gmt(empty)
    binary = tmp_path / "binary.gmt"
    binary.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe")
    with pytest.raises(ValueError, match="not text"):
        sd.read_gmt(binary)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sd.read_gmt(tmp_path / "missing.gmt")


def test_detect_species():
    assert detect_species(sd.datasets.paul15().var_names) == "mouse"
    assert detect_species(["GATA1", "KLF1", "HBB", *hallmark("human")["HALLMARK_E2F_TARGETS"]]) == "human"
    assert detect_species(["Gene1", "Gene2"]) is None


def test_gene_set_forms_agree():
    as_dict = {"A": ["Gata1", "Klf1"], "B": ["Cd14"]}
    table = pd.DataFrame({"source": ["A", "A", "B"], "target": ["Gata1", "Klf1", "Cd14"]})
    assert to_gene_sets(table) == to_gene_sets(as_dict)
    with pytest.raises(ValueError, match="'source'"):
        to_gene_sets(pd.DataFrame({"set": ["A"], "gene": ["x"]}))
    with pytest.raises(TypeError, match="list of gene symbols"):
        to_gene_sets({"A": "Gata1"})


def test_human_sets_translated_for_mouse_data():
    sets = to_gene_sets({"HEME": hallmark("human")["HALLMARK_HEME_METABOLISM"]}, species="mouse")
    assert "Alas2" in sets["HEME"]


def test_match_is_case_insensitive_and_prefers_exact_case():
    var_names = ["LPCAT4", "Lpcat4", "Gata1", "Klf1", "Cd14"]
    indices, sizes = match_gene_sets({"S": ["GATA1", "klf1", "Lpcat4", "Absent"]}, var_names, min_size=3)
    np.testing.assert_array_equal(indices["S"], [1, 2, 3])
    assert sizes.loc["S", "n_genes"] == 4 and sizes.loc["S", "n_present"] == 3


def test_no_overlap_error():
    with pytest.raises(ValueError, match="No gene set has at least 3 of its genes"):
        match_gene_sets({"S": ["Foo1", "Foo2", "Foo3"]}, ["Gata1", "Klf1"])


def test_mouse_sets_on_human_data_are_refused():
    from scdeconv.genesets import resolve_gene_sets

    human_genes = np.array(hallmark("human")["HALLMARK_E2F_TARGETS"])
    with pytest.raises(ValueError, match="mouse symbols but the data look human"):
        resolve_gene_sets(hallmark("mouse"), human_genes, species=None, min_size=3)
    with pytest.raises(ValueError, match="Pass species='human'"):
        resolve_gene_sets("hallmark", human_genes, species="mouse", min_size=3)


def test_decoupler_table_with_weights_and_gseapy_dict():
    table = pd.DataFrame({"source": ["B", "A", "A"], "target": ["Cd14", "Gata1", "Klf1"], "weight": [1.0, 0.5, -1.0]})
    assert to_gene_sets(table) == {"B": ["Cd14"], "A": ["Gata1", "Klf1"]}
    library = {"A": np.array(["Gata1", "Klf1"]), "B": ("Cd14",)}  # gseapy libraries: set -> list of genes
    assert to_gene_sets(library) == {"A": ["Gata1", "Klf1"], "B": ["Cd14"]}


def test_msigdb_download_and_offline_message(monkeypatch):
    import gseapy

    def offline(**kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(gseapy.Msigdb, "get_gmt", staticmethod(offline))
    with pytest.raises(ConnectionError, match=r"Are you offline.*hallmark"):
        sd.genesets.msigdb("h.all")
    monkeypatch.setattr(gseapy.Msigdb, "get_gmt", staticmethod(lambda **kwargs: None))
    with pytest.raises(ValueError, match="no collection 'nope'"):
        sd.genesets.msigdb("nope")
    seen = {}

    def online(**kwargs):
        seen.update(kwargs)
        return {"HALLMARK_X": ["GATA1", "KLF1", ""]}

    monkeypatch.setattr(gseapy.Msigdb, "get_gmt", staticmethod(online))
    assert sd.genesets.msigdb("h.all", version="2023.2.Hs") == {"HALLMARK_X": ["GATA1", "KLF1"]}
    assert seen == {"category": "h.all", "dbver": "2023.2.Hs"}


def test_matching_is_reported_with_sizes_before_translation(caplog):
    import logging

    from scdeconv.genesets import resolve_gene_sets

    mouse_genes = np.array([*hallmark("mouse")["HALLMARK_HEME_METABOLISM"][:60], "Foo1"])
    human = {"HEME": hallmark("human")["HALLMARK_HEME_METABOLISM"], "TINY": ["GATA1", "NOT_A_GENE"]}
    with caplog.at_level(logging.INFO, logger="scdeconv"):
        indices, sizes, species = resolve_gene_sets(human, mouse_genes, species=None, min_size=3)
    assert species == "mouse" and list(indices) == ["HEME"]
    assert list(sizes.columns) == ["n_given", "n_genes", "n_present"]
    assert sizes.loc["HEME", "n_given"] == len(human["HEME"]) >= sizes.loc["HEME", "n_genes"]
    assert sizes.loc["HEME", "n_present"] == 60 and sizes.loc["TINY", "n_given"] == 2
    text = caplog.text
    assert "Translated human gene sets to mouse" in text and "Matched 1 gene sets" in text
    assert "Dropped 1 gene sets with fewer than 3 genes" in text and "TINY" in text
