"""`bdv2 data identify`: which BridgeData release or derivative a tree holds, and how complete it is.

For an RLDS/TFDS directory the answer comes from what is on disk, compared with the fingerprints in
releases.toml: dataset_info.json (name, version, splits, shard counts and lengths), features.json (the key
scheme), the shard files present (counted record by record from the TFRecord framing, without decoding), the
first record of each split hashed, and a sample of episodes parsed for cameras, image sizes and language.
Raw, numpy and TFRecord trees are read through summary.iter_facts; their collection (V1, V2, scripted, ...)
comes from the path names the release's raw layout and the converters' output layout keep.

Nothing here raises on a partial or damaged tree: what is missing is the report.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import releases as known
from .errors import DataToolsError
from .framing import count_records, first_record_sha256, iter_records

if TYPE_CHECKING:
    from .summary import DataKind

DEFAULT_SHARDS_PER_SPLIT = 8
"""Shards per split whose episodes are parsed by default (evenly spaced); --all parses every shard."""
DEFAULT_EPISODES_PER_SHARD = 4


@dataclass
class SplitReport:
    name: str
    shards_declared: int
    shards_present: int
    episodes_declared: int
    episodes_present: int
    """Records counted in the shards present (from the TFRecord framing)."""
    bytes_present: int
    missing: list[str] = field(default_factory=list)
    """Shard files dataset_info.json lists that are absent."""
    damaged: list[str] = field(default_factory=list)
    """Shards that end inside a record, or hold another number of records than dataset_info.json says."""


@dataclass
class Match:
    release: str
    title: str
    verdict: str
    """"is", "part of", "derivative of", "same keys as" or "not"."""
    evidence: list[str]
    sources: dict[str, str]


@dataclass
class Identification:
    path: str
    format: str
    """"rlds", "tfrecord", "numpy" or "raw"."""
    dataset_name: str = ""
    version: str = ""
    keys: str = ""
    """Key scheme id from releases.toml, or "" when none fits."""
    key_title: str = ""
    observation_keys: list[str] = field(default_factory=list)
    splits: list[SplitReport] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    generation: str = ""
    """V1 / V2 / ... for raw and converted trees, from the collection names on the path."""
    collections: dict[str, int] = field(default_factory=dict)
    converted_from: str = ""
    cameras_declared: list[str] = field(default_factory=list)
    cameras: dict[str, int] = field(default_factory=dict)
    """camera -> episodes (of those parsed) in which it holds real images."""
    shards_without_images: dict[str, list[str]] = field(default_factory=dict)
    """shard -> cameras declared but holding no image in any parsed episode of that shard."""
    image_sizes: dict[str, int] = field(default_factory=dict)
    episodes_parsed: int = 0
    steps_parsed: int = 0
    """Steps of the parsed episodes (every step of every episode with --all)."""
    episodes_total: int = 0
    language: dict[str, int] = field(default_factory=dict)
    """episodes (parsed), labeled, blank (no instruction at all), distinct (instructions)."""
    contract: dict[str, Any] | None = None
    """The action contract (contract.py) fitted on the parsed episodes' recorded actions."""
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Match | None:
        order = ("is", "part of", "derivative of", "same keys as")
        found = [m for m in self.matches if m.verdict in order]
        return min(found, key=lambda m: order.index(m.verdict)) if found else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        best = self.best
        d["identified_as"] = {"release": best.release, "verdict": best.verdict, "title": best.title} if best else None
        return d


# -- RLDS --------------------------------------------------------------------------------------------------

def _key_scheme(keys: set[str], knowledge: known.Knowledge) -> known.KeyScheme | None:
    return next((k for k in knowledge.keys if all(r in keys for r in k.required)), None)


def _evenly(items: list[Path], n: int | None) -> list[Path]:
    if n is None or len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _parse_sample(result: Identification, shards: list[Path], features: dict[str, Any],
                  per_shard: int | None) -> None:
    """Cameras, image sizes and language from the first `per_shard` episodes of each shard (all when None)."""
    import tensorflow as tf
    from PIL import Image

    cams = sorted(k for k in features if k.startswith("steps/observation/image"))
    result.cameras_declared = [c.rsplit("/", 1)[-1] for c in cams]
    lang_key = next((k for k in ("steps/language_instruction", "steps/observation/natural_language_instruction")
                     if k in features), None)
    cam_counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    language = Counter({"episodes": 0, "labeled": 0, "blank": 0})
    distinct: set[str] = set()
    flag_disagrees: Counter[str] = Counter()
    pairs: list[tuple[Any, Any]] = []
    for shard in shards:
        with_images: set[str] = set()
        try:
            for i, record in enumerate(iter_records(shard)):
                if per_shard is not None and i >= per_shard:
                    break
                assert isinstance(record, bytes)
                f = tf.train.Example.FromString(record).features.feature
                result.episodes_parsed += 1
                for cam in cams:
                    name = cam.rsplit("/", 1)[-1]
                    frames = f[cam].bytes_list.value if cam in f else []
                    # The release pads a missing camera with black frames; the episode_metadata/has_image_K
                    # flags are not to be trusted (all 0 in the octo excerpt, whose frames are real).
                    real = bool(frames) and _not_black(frames[0])
                    flag = f.get(f"episode_metadata/has_{name}")
                    if flag is not None and flag.int64_list.value and bool(flag.int64_list.value[0]) != real:
                        flag_disagrees[name] += 1
                    if real and frames:
                        cam_counts[name] += 1
                        with_images.add(name)
                        with Image.open(io.BytesIO(frames[0])) as im:
                            sizes[f"{name} {im.height}x{im.width}"] += 1
                _collect_pair(f, pairs)
                if "steps/is_first" in f:
                    result.steps_parsed += len(f["steps/is_first"].int64_list.value)
                language["episodes"] += 1
                texts = [b.decode("utf-8", "replace").strip() for b in f[lang_key].bytes_list.value] \
                    if lang_key and lang_key in f else []
                labeled = [t for t in texts if t]
                language["labeled" if labeled else "blank"] += 1
                distinct.update(labeled)
        except DataToolsError as e:
            result.notes.append(str(e))
        empty = [c for c in result.cameras_declared if c not in with_images]
        if empty:
            result.shards_without_images[shard.name] = empty
    for name, n in sorted(flag_disagrees.items()):
        result.notes.append(f"episode_metadata/has_{name} disagrees with the frames in {n} of "
                            f"{result.episodes_parsed} parsed episodes (the frames were believed)")
    result.cameras = dict(sorted(cam_counts.items()))
    result.image_sizes = dict(sorted(sizes.items()))
    result.language = {**language, "distinct": len(distinct)}
    if pairs:
        from .contract import infer_contract

        result.contract = infer_contract(pairs).to_dict()


def _collect_pair(f: Any, pairs: list[tuple[Any, Any]]) -> None:
    """(state [N, 7], transition actions [N - 1, 7]) of an episode with the V2 RLDS keys, for the contract."""
    import numpy as np

    if "steps/observation/state" not in f or "steps/action" not in f:
        return
    state = np.asarray(f["steps/observation/state"].float_list.value, np.float64)
    action = np.asarray(f["steps/action"].float_list.value, np.float64)
    if len(state) % 7 or len(state) != len(action) or len(state) < 14:
        return
    pairs.append((state.reshape(-1, 7), action.reshape(-1, 7)[:-1]))  # the last step's action has no successor


def _action_description(tree: dict[str, Any]) -> str:
    """features.json's description of steps/action, or ""."""
    try:
        steps = tree["featuresDict"]["features"]["steps"]["sequence"]["feature"]["featuresDict"]["features"]
        return str(steps["action"].get("description", ""))
    except (KeyError, TypeError, AttributeError):
        return ""


def _not_black(jpeg: bytes) -> bool:
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as im:
        return bool(np.asarray(im).max() > 8)


def _match(result: Identification, release: known.Release, info: dict[str, Any],
           hashes: dict[str, str]) -> Match:
    ev: list[str] = []
    splits = {s.name: s for s in result.splits}
    if release.description_contains:
        if release.description_contains in str(info.get("description", "")):
            return Match(release.id, release.title, "is", ["dataset_info.json description names it"],
                         release.sources)
        return Match(release.id, release.title, "not", [], release.sources)
    if release.first_records:
        same = [s for s, h in release.first_records.items() if hashes.get(s) == h]
        if same and len(same) == len(release.first_records):
            return Match(release.id, release.title, "is",
                         [f"first record of {', '.join(same)} has the published sha256"], release.sources)
    name_ok = result.dataset_name == release.dataset_name
    ev.append(f"dataset name {result.dataset_name!r} {'=' if name_ok else '!='} {release.dataset_name!r}")
    keys_ok = result.keys == release.keys
    ev.append(f"key scheme {result.keys or 'unknown'} {'=' if keys_ok else '!='} {release.keys}")
    counts_ok, complete = True, True
    for split, facts in release.splits.items():
        have = splits.get(split)
        if have is None:
            ev.append(f"split {split!r} absent (release has it)")
            counts_ok = False
            continue
        if "shards" in facts:
            ok = have.shards_declared == facts["shards"]
            counts_ok &= ok
            ev.append(f"{split}: {have.shards_declared} shards declared, release {facts['shards']}")
        if "episodes" in facts:
            ok = have.episodes_declared == facts["episodes"]
            counts_ok &= ok
            ev.append(f"{split}: {have.episodes_declared} episodes declared, release {facts['episodes']:,}")
        complete &= not have.missing and not have.damaged
    if release.episodes_total is not None:
        total = sum(s.episodes_declared for s in result.splits)
        ev.append(f"all splits: {total:,} episodes declared, release {release.episodes_total:,}")
    if release.transitions_total is not None and result.episodes_parsed and \
            result.episodes_parsed == result.episodes_total:
        ev.append(f"all splits: {result.steps_parsed:,} steps, release {release.transitions_total:,}")
    if name_ok and keys_ok and counts_ok:
        return Match(release.id, release.title, "is" if complete else "part of", ev, release.sources)
    if name_ok and keys_ok:
        return Match(release.id, release.title, "derivative of", ev, release.sources)
    if keys_ok:
        return Match(release.id, release.title, "same keys as", ev, release.sources)
    return Match(release.id, release.title, "not", ev, release.sources)


def _identify_rlds(root: Path, knowledge: known.Knowledge, shards_per_split: int | None,
                   episodes_per_shard: int | None) -> Identification:
    from .rlds import flatten_features, shard_names

    result = Identification(str(root), "rlds", version=root.name)
    try:
        info = json.loads((root / "dataset_info.json").read_text())
        tree = json.loads((root / "features.json").read_text())
        features = flatten_features(tree)
    except (OSError, ValueError, KeyError, TypeError) as e:
        result.notes.append(f"{root}: dataset_info.json or features.json unreadable ({e})")
        return result
    result.dataset_name = info.get("name") or root.parent.name
    result.version = info.get("version") or root.name
    result.observation_keys = sorted(k for k in features if k.startswith("steps/observation/"))
    scheme = _key_scheme(set(features), knowledge)
    result.keys, result.key_title = (scheme.id, scheme.title) if scheme else ("", "")
    hashes: dict[str, str] = {}
    to_parse: list[Path] = []
    for split in info.get("splits", []):
        names = shard_names(result.dataset_name, split)
        lengths = [int(n) for n in split.get("shardLengths", [])]
        report = SplitReport(split["name"], len(names), 0, sum(lengths), 0, 0)
        present = []
        for i, name in enumerate(names):
            file = root / name
            if not file.is_file():
                report.missing.append(name)
                continue
            present.append(file)
            report.shards_present += 1
            report.bytes_present += file.stat().st_size
            try:
                n = count_records(file)
            except DataToolsError as e:
                report.damaged.append(f"{name}: {e}".replace(f"{file}: ", ""))
                continue
            report.episodes_present += n
            if i < len(lengths) and n != lengths[i]:
                report.damaged.append(f"{name}: {n} records, dataset_info.json says {lengths[i]}")
        if present and present[0].name == names[0] and names[0] not in {d.split(":")[0] for d in report.damaged}:
            digest = first_record_sha256(present[0])
            if digest:
                hashes[split["name"]] = digest
        to_parse.extend(_evenly(present, shards_per_split))
        result.splits.append(report)
    result.episodes_total = sum(s.episodes_present for s in result.splits)
    _parse_sample(result, to_parse, features, episodes_per_shard)
    described = _action_description(tree)
    if "joint" in described.lower() and result.contract and result.contract["frame"] != "unknown":
        c = result.contract
        result.notes.append(f"features.json describes steps/action as {described!r}; the recorded actions fit "
                            f"Cartesian deltas of the state ({c['frame']} frame, R² {c['fit']['translation']:.2f}) "
                            f"and a gripper in {c['gripper']['range']}: read them as the action contract says")
    result.matches = [_match(result, r, info, hashes) for r in knowledge.releases if r.format == "rlds"]
    _rlds_notes(result, knowledge)
    return result


def _rlds_notes(result: Identification, knowledge: known.Knowledge) -> None:
    best = result.best
    if best and best.release == "oxe_bridge":
        full = knowledge.release("bridge_v2_rlds")
        result.notes.append(f"this is the early Open X-Embodiment snapshot: {result.episodes_total:,} episodes "
                            f"where the full BridgeData V2 release has {full.episodes_total:,} ({full.url})")
    for s in result.splits:
        if s.missing:
            result.notes.append(f"split {s.name}: {len(s.missing)} of {s.shards_declared} shards missing "
                                f"(first: {s.missing[0]})")
    if result.language.get("blank"):
        result.notes.append(f"{result.language['blank']} of {result.language['episodes']} parsed episodes have no "
                            "instruction (blank language)")


# -- raw, numpy, TFRecord ---------------------------------------------------------------------------------

def _collection_of(rel: Path, knowledge: known.Knowledge) -> known.RawSource | None:
    return next((s for s in knowledge.raw_sources if s.dir in rel.parts), None)


def _identify_tree(path: Path, kind: DataKind, knowledge: known.Knowledge, depth: int,
                   limit: int | None) -> Identification:
    from .summary import DataKind, iter_facts

    result = Identification(str(path), kind)
    if kind in (DataKind.TFRECORD, DataKind.NUMPY):
        scheme = next(k for k in knowledge.keys if k.id == "bridgedata_tfrecord")
        result.keys, result.key_title = scheme.id, scheme.title
        result.observation_keys = ["observations/images0", "observations/state"]
    problems: list[str] = []
    _, facts = iter_facts(path, depth, problems)
    collections: Counter[str] = Counter()
    generations: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    language = Counter({"episodes": 0, "labeled": 0, "blank": 0})
    distinct: set[str] = set()
    splits: Counter[str] = Counter()
    for f in facts:
        rel = Path(f.group.split(" ")[0])
        src = _collection_of(rel, knowledge)
        collections[src.title if src else (rel.parts[0] if rel.parts else ".")] += 1
        if src:
            generations[src.generation] += 1
        splits[f.group.rsplit(" ", 1)[-1]] += 1
        sizes["images0 " + "x".join(map(str, f.image_shape[:2]))] += 1
        labeled = [s for s in f.language if s.strip()]
        language["episodes"] += 1
        language["labeled" if labeled else "blank"] += 1
        distinct.update(labeled)
        if limit is not None and language["episodes"] >= limit:
            result.notes.append(f"stopped after {limit} episodes (--episodes)")
            break
    result.collections = dict(collections)
    result.generation = ", ".join(f"{g} ({n})" for g, n in generations.most_common())
    result.image_sizes = dict(sizes)
    result.language = {**language, "distinct": len(distinct)}
    result.episodes_parsed = result.episodes_total = language["episodes"]
    result.splits = [SplitReport(s, 0, 0, 0, n, 0) for s, n in sorted(splits.items())]
    result.notes.extend(problems[:20])
    if kind is DataKind.RAW:
        result.cameras = _raw_cameras(path, depth)
    else:
        result.cameras = {"images0": language["episodes"]}
        # rlds-to-tfrecord writes <out>/<dataset name>/[part<i>/]{train,val}/out.tfrecord and a source.json
        names = ({p.relative_to(path).parts[0] for p in path.rglob("out.tfrecord")} if kind is DataKind.TFRECORD
                 else set())
        rlds_names = {r.dataset_name for r in knowledge.releases if r.format == "rlds"}
        sources = sorted(path.rglob("source.json")) if kind is DataKind.TFRECORD else []
        if sources:
            result.converted_from = "; ".join(_converted_from(f, knowledge) for f in sources)
        elif names & rlds_names:
            result.converted_from = (f"an RLDS dataset named {', '.join(sorted(names & rlds_names))} "
                                     "(the rlds-to-tfrecord output layout)")
        elif generations:
            result.converted_from = f"raw collections: {', '.join(sorted(collections))} (the converters' layout)"
    if not result.converted_from and kind is not DataKind.RAW:
        result.notes.append("the tree records no source: the collection names on its paths are all there is")
    return result


def _converted_from(file: Path, knowledge: known.Knowledge) -> str:
    """What a converter's source.json says the tree came from, matched against the known releases."""
    try:
        src = json.loads(file.read_text())
        source = Identification(src["input"], "rlds", dataset_name=src["dataset_name"], version=src["version"])
        scheme = _key_scheme(set(src["features"]), knowledge)
        source.keys = scheme.id if scheme else ""
        source.splits = [SplitReport(s, v["shards"], v["shards"], v["episodes"], v["episodes"], 0)
                         for s, v in src["splits"].items()]
        hashes = dict(src["first_records"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{file}: unreadable ({e})"
    info = {"description": src.get("description", "")}
    source.matches = [_match(source, r, info, hashes) for r in knowledge.releases if r.format == "rlds"]
    best = source.best
    what = f"{best.verdict} {best.title} [{best.release}]" if best else "no known release"
    return f"{src['input']} ({src['converter']}, camera {src['camera']}): {what}"


def _raw_cameras(path: Path, depth: int) -> dict[str, int]:
    from . import layout
    from .raw import camera_dirs

    counts: Counter[str] = Counter()
    for task in layout.find_raw_tasks(path, depth):
        for traj in task.glob("*/raw/traj_group*/traj*"):
            for cam in camera_dirs(traj):
                counts[cam.name] += 1
    return dict(sorted(counts.items()))


def identify(path: Path, *, depth: int = 5, all_episodes: bool = False,
             knowledge: known.Knowledge | None = None) -> Identification:
    """What `path` holds and how complete it is.

    Args:
        all_episodes: parse every episode (RLDS: every shard; other formats always read everything unless
            limited); default: the first few episodes of up to DEFAULT_SHARDS_PER_SPLIT shards per split.

    Raises:
        DataToolsError: `path` is not a directory, or releases.toml is malformed.
    """
    from . import rlds
    from .summary import DataKind, detect_kind

    if not path.is_dir():
        raise DataToolsError(f"{path}: not a directory")
    knowledge = knowledge or known.load()
    kind = detect_kind(path)
    if kind is DataKind.RLDS:
        dirs = rlds.dataset_dirs(path)
        if len(dirs) > 1:
            raise DataToolsError(f"{path}: several TFDS datasets below it ({', '.join(map(str, dirs))}); pass one")
        return _identify_rlds(dirs[0], knowledge, None if all_episodes else DEFAULT_SHARDS_PER_SPLIT,
                              None if all_episodes else DEFAULT_EPISODES_PER_SHARD)
    return _identify_tree(path, kind, knowledge, depth, None)
