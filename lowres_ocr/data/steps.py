"""KFP steps of the data stage: version the sets with DVC, build LMDBs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lowres_ocr.pipeline.workspace import data_md5, link_tree, project_root


def version_data(out: Path, sets: list[str], revision: str = "", source: str = "auto") -> dict[str, Any]:
    """``dvc pull`` the given sets and copy them to ``out``; ``revision`` (if set) must equal data.dvc's md5."""
    from lowres_ocr.data.remote import pull

    root = project_root()
    md5 = data_md5(root)
    if revision and revision not in (md5, md5.removesuffix(".dir")):
        raise ValueError(f"dataset revision {revision!r} requested, but this checkout/image tracks {md5} (data.dvc)")
    result = pull(root, [f"data/{s}" for s in sets], source=source)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for s in sets:
        link_tree(root / "data" / s, out / s)
        counts[s] = sum(1 for line in (out / s / "labels.tsv").read_text(encoding="utf-8").splitlines() if line.strip())
    return {"md5": md5, "source": result.source, "pull_seconds": round(result.seconds, 1), "samples": counts}


def build_lmdbs(data: Path, out: Path) -> dict[str, Any]:
    """One LMDB per set folder (case-sensitive labels where the set has ``labels_cs.tsv``)."""
    from lowres_ocr.data.build import BuildOptions, build_lmdb

    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for folder in sorted(p for p in data.iterdir() if (p / "labels.tsv").is_file()):
        labels = "labels_cs.tsv" if (folder / "labels_cs.tsv").is_file() else "labels.tsv"
        rep = build_lmdb([folder], out / folder.name, BuildOptions(labels=labels, overwrite=True))
        kept[folder.name], skipped[folder.name] = rep.kept, len(rep.problems)
    if not kept:
        raise ValueError(f"{data}: no dataset folder (with labels.tsv) inside")
    return {"kept": kept, "skipped": skipped}
