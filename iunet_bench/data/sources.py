"""Listing the cases of a data set without reading any image: MSD layout, paired folders or a CSV
manifest, DICOM series folders, and the phantom generator.

A listing problem that concerns the whole data set (no dataset.json, no pairs at all, a manifest without
the needed columns) raises ValueError naming the `data.<key>`; a problem with one case (an image without a
label, a manifest row naming a missing file, two files or rows for one case name) is left for the reader,
which reports it for that case only (`CaseRef.problem`), and noted in `Listing.notes`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from iunet_bench.data.config import AnyData, DicomData, FolderData, MsdData, PhantomData
from iunet_bench.data.io import file_kind, strip_suffix
from iunet_bench.data.phantom import phantom_id


@dataclass(frozen=True)
class CaseRef:
    """Where one case comes from: image and label paths (an image path may be a DICOM folder), or the
    index of a generated phantom. `problem`: why the case cannot be loaded, found while listing (e.g. two
    image files share its name); loading it then fails with this message."""

    case_id: str
    image: Path | None = None
    label: Path | None = None
    index: int | None = None
    problem: str | None = None


@dataclass
class Listing:
    refs: list[CaseRef]
    label_values: tuple[int, ...] | None  # values a label may hold (None: no check)
    foreground: tuple[int, ...]
    modalities: tuple[str, ...] = ()  # msd: from dataset.json; phantom: CT; folder, dicom: not known here
    notes: list[str] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # label value -> name (msd: dataset.json's labels)


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _mapping(cfg: AnyData, known: tuple[int, ...] | None) -> tuple[tuple[int, ...] | None, tuple[int, ...]]:
    """(allowed label values, foreground values) from the config and the data set's own mapping."""
    if cfg.foreground is not None:
        foreground = cfg.foreground
    elif known is not None:
        foreground = tuple(v for v in known if v != 0)
    else:
        foreground = (1,)
    classes = getattr(cfg, "classes", None)
    if cfg.label_values is not None:
        allowed = tuple(sorted(set(cfg.label_values) | {0}))
    elif known is not None:
        allowed = tuple(sorted(set(known) | {0}))
    else:
        allowed = tuple(sorted({0, *(classes or foreground)}))
    for key, values in (("classes", classes), ("foreground", () if classes else foreground)):
        outside = sorted(set(values or ()) - set(allowed))
        if outside:
            raise ValueError(f"data.{key}: values {outside} are not in the label mapping {list(allowed)}")
    return allowed, foreground


def _merge(refs: list[CaseRef], where: str, notes: list[str]) -> list[CaseRef]:
    """One ref per case id, sorted. A case listed twice with the same files is kept once (noted); with
    different files it gets a `problem` naming them, so that case fails when loaded and the rest load."""
    groups: dict[str, list[CaseRef]] = {}
    for r in refs:
        groups.setdefault(r.case_id, []).append(r)
    out = []
    for cid in sorted(groups):
        group = groups[cid]
        first = group[0]
        if len({(r.image, r.label) for r in group}) > 1:
            listed = "; ".join(f"image {r.image}, label {r.label}" for r in group)
            problem = f"{where} lists case {cid!r} {len(group)} times with different files ({listed})"
            notes.append(f"case {cid}: {problem}")
            first = CaseRef(cid, first.image, first.label, problem=problem)
        elif len(group) > 1:
            notes.append(f"case {cid}: {where} lists it {len(group)} times (same files; kept once)")
        out.append(first)
    return out


def _by_name(files: Iterable[Path], suffix: str, role: str, problems: dict[str, str]) -> dict[str, Path]:
    """Files by case name (their name without image suffix and `suffix`). Two files with one name (say
    c0.mha and c0.nii.gz) are a problem for that case, recorded in `problems`, naming both files."""
    found: dict[str, list[Path]] = {}
    for p in files:
        found.setdefault(_stem(p, suffix), []).append(p)
    for name, paths in found.items():
        if len(paths) > 1:
            text = f"{len(paths)} {role} files share the case name {name!r}: " + ", ".join(map(str, paths))
            problems[name] = f"{problems[name]}; {text}" if name in problems else text
    return {name: paths[0] for name, paths in found.items()}


def list_msd(cfg: MsdData) -> Listing:
    path = cfg.root / "dataset.json"
    if not path.is_file():
        raise ValueError(
            f"data.root: {path} is missing; an MSD data set has dataset.json, imagesTr/ and labelsTr/"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        entries = meta["training"]
        labels = dict(meta.get("labels", {"0": "", "1": ""}))
        known = tuple(sorted(int(k) for k in labels))
        names = {int(k): str(v) for k, v in labels.items() if v}
        modalities = tuple(str(v) for v in dict(meta.get("modality") or {}).values())  # none: not known
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"data.root: {path} is not a valid MSD dataset.json ({type(exc).__name__}: {exc})"
        ) from None
    if len(modalities) > 1:
        raise ValueError(
            f"data.root: {path} lists {len(modalities)} modalities {list(modalities)}: "
            "multi-channel (4D) images are not supported; use one channel per image with data=folder"
        )
    refs = []
    for e in entries:
        if not isinstance(e, dict) or "image" not in e:
            raise ValueError(f"data.root: {path}: a training entry {e!r} has no 'image'")
        image = cfg.root / str(e["image"])
        label = cfg.root / str(e["label"]) if e.get("label") else None
        problem = _link_problem(image) or (_link_problem(label) if label is not None else None)
        refs.append(CaseRef(strip_suffix(image.name), _resolved(image), _resolved(label), problem=problem))
    if not refs:
        raise ValueError(f"data.root: {path} lists no training cases")
    allowed, foreground = _mapping(cfg, known)
    notes: list[str] = []
    refs = _merge(refs, str(path), notes)
    return Listing(refs, allowed, foreground, modalities, notes, names)


def _link_problem(path: Path) -> str | None:
    """Why `path` cannot be followed (a symbolic link that loops or points nowhere), or None."""
    try:
        path.resolve(strict=True)
    except FileNotFoundError:
        return f"{path} is a symbolic link to a missing file" if path.is_symlink() else None
    except (RuntimeError, OSError) as exc:  # RuntimeError: a loop (Python < 3.13), OSError ELOOP
        return f"{path} cannot be followed: a symbolic link loop ({type(exc).__name__}: {exc})"
    return None


def _resolved(path: Path | None) -> Path | None:
    """`path` with links resolved where they can be (a broken one stays as it is: its case carries the
    problem)."""
    if path is None:
        return None
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path


def _image_entries(folder: Path, problems: dict[str, str], suffix: str) -> list[Path]:
    """Image files of a folder, sorted. An entry named like an image that is no regular file (a link that
    loops or points nowhere, a folder, a FIFO) is a problem of its case (named by the entry's name), not a
    file silently left out (its case would then be reported as having no image)."""
    out = []
    for p in sorted(folder.iterdir()):
        if not _visible(p) or strip_suffix(p.name) == p.name:
            continue
        kind = file_kind(p)
        problem = _link_problem(p) if p.is_symlink() else None
        if problem is None and kind is not None:
            problem = f"{p} is {kind}, not an image file (data=folder pairs image files by name)"
        if problem:
            name = _stem(p, suffix)
            problems[name] = f"{problems[name]}; {problem}" if name in problems else problem
        out.append(p)
    return out


def _stem(path: Path, suffix: str) -> str:
    stem = strip_suffix(path.name)
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem


def list_folder(cfg: FolderData) -> Listing:
    allowed, foreground = _mapping(cfg, None)
    if cfg.manifest:
        notes: list[str] = []
        return Listing(_manifest(cfg, Path(cfg.manifest), notes), allowed, foreground, notes=notes)
    images_dir = cfg.root / cfg.images_dir
    labels_dir = cfg.root / cfg.labels_dir
    for key, d in (("images_dir", images_dir), ("labels_dir", labels_dir)):
        if not d.is_dir():
            raise ValueError(f"data.{key}: {d} is not an existing folder")
    problems: dict[str, str] = {}  # case name -> two or more files share it
    images = _by_name(
        _image_entries(images_dir, problems, cfg.image_suffix), cfg.image_suffix, "image", problems
    )
    labels = _by_name(
        _image_entries(labels_dir, problems, cfg.label_suffix), cfg.label_suffix, "label", problems
    )
    pairs = set(images) & set(labels)
    if not pairs:
        raise ValueError(
            f"data.root: no image/label pairs in {images_dir} ({len(images)} images) and {labels_dir} "
            f"({len(labels)} labels): files pair by name (NIfTI, MHA/MHD, NRRD), after removing "
            "data.image_suffix / data.label_suffix"
        )
    notes = [f"image {images[c]} has no label in {labels_dir}" for c in sorted(set(images) - pairs)]
    notes += [f"label {labels[c]} has no image in {images_dir}" for c in sorted(set(labels) - pairs)]
    notes += [f"case {c}: {problems[c]}" for c in sorted(problems)]
    refs = [
        CaseRef(c, images.get(c), labels.get(c), problem=problems.get(c))
        for c in sorted(set(images) | set(labels))
    ]
    return Listing(refs, allowed, foreground, notes=notes)


def _manifest(cfg: FolderData, manifest: Path, notes: list[str]) -> list[CaseRef]:
    path = manifest if manifest.is_absolute() else cfg.root / manifest
    if not path.is_file():
        raise ValueError(f"data.manifest: {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
        header = set(rows[0]) if rows else set()
    missing = [c for c in ("case_id", "image", "label") if c not in header]
    if not rows:
        raise ValueError(
            f"data.manifest: {path} has no rows: it needs a case_id,image,label header and a row per case"
        )
    if missing:
        raise ValueError(
            f"data.manifest: {path} has no column {', '.join(map(repr, missing))} (its header: "
            f"{', '.join(sorted(header))}); it needs case_id,image,label"
        )
    base = path.parent
    root = _resolved(cfg.root)
    refs = []
    for i, r in enumerate(rows, start=2):
        cid = (r["case_id"] or "").strip()
        if not cid:
            raise ValueError(f"data.manifest: {path} line {i} has no case_id")
        img, lab = (r["image"] or "").strip(), (r["label"] or "").strip()
        image, label = (base / img) if img else None, (base / lab) if lab else None
        outside = [str(p) for p in (image, label) if p is not None and not _resolved(p).is_relative_to(root)]
        problem = (
            f"data.manifest {path} line {i}: {', '.join(outside)} lies outside data.root {root}"
            if outside
            else None
        )
        refs.append(CaseRef(cid, image, label, problem=problem))
    return _merge(refs, f"data.manifest {path}", notes)


def list_dicom(cfg: DicomData) -> Listing:
    series_root = cfg.root / cfg.images_dir
    pattern = cfg.label_pattern
    if not series_root.is_dir():
        raise ValueError(f"data.images_dir: {series_root} is not an existing folder")
    first = Path(pattern).parts[0]
    skip = {first} if "{case_id}" not in first else set()
    folders = [p for p in sorted(series_root.iterdir()) if p.is_dir() and _visible(p) and p.name not in skip]
    if not folders:
        raise ValueError(f"data.root: {series_root} holds no case folders (one DICOM series folder per case)")
    allowed, foreground = _mapping(cfg, None)
    refs = [CaseRef(p.name, p, cfg.root / pattern.format(case_id=p.name)) for p in folders]
    return Listing(refs, allowed, foreground)  # folder names are unique: no duplicates possible


def list_phantoms(cfg: PhantomData) -> Listing:
    refs = [CaseRef(phantom_id(i), index=i) for i in range(cfg.phantom.n_cases)]
    return Listing(refs, (0, 1), (1,), modalities=("CT",))


LISTERS = {"msd": list_msd, "folder": list_folder, "dicom": list_dicom, "phantom": list_phantoms}
