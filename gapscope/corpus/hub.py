"""FLEURS from the Hugging Face hub (``corpus.source: fleurs_hf``), without the dataset script.

``google/fleurs`` is a script dataset that ``datasets`` >= 4 refuses to run, but the
repository holds the official files: per configuration a headerless TSV per split and a
tarball of the split's audio (``data/<cfg>/<split>.tsv``, ``data/<cfg>/audio/<split>.tar.gz``).
They are fetched with ``huggingface_hub.hf_hub_download`` into the standard HF cache (or
``corpus.hf_cache_dir``), so an offline cluster works from a pre-populated cache with
``HF_HUB_OFFLINE=1``. The TSV is copied and the tarball unpacked (flat, audio files only) into
the official local layout, which the ``fleurs_local`` reader then serves.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from gapscope.corpus import fleurs

log = logging.getLogger(__name__)

FLEURS_REPO = "google/fleurs"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def split_names(split: str) -> list[str]:
    """File-name spellings of a split (the dataset script calls dev ``validation``)."""
    return [split, "validation"] if split == "dev" else [split]


def candidate_files(fleurs_code: str, split: str) -> tuple[list[str], list[str]]:
    """Repository paths that may hold one split's table and audio, most likely first."""
    base = f"data/{fleurs_code}"
    tables = [f"{base}/{s}.tsv" for s in split_names(split)]
    audio = [
        name
        for s in split_names(split)
        for name in (f"{base}/audio/{s}.tar.gz", f"{base}/audio/{s}.tar", f"{base}/{s}.tar.gz")
    ]
    return tables, audio


def choose_files(listing: list[str], fleurs_code: str, split: str) -> tuple[str, str]:
    """Pick the table and audio archive of a split from the repository's file listing."""
    tables, audio = candidate_files(fleurs_code, split)
    have = set(listing)
    table = next((t for t in tables if t in have), None)
    archive = next((a for a in audio if a in have), None)
    if table is None or archive is None:
        near = sorted(f for f in listing if f.startswith(f"data/{fleurs_code}/"))
        what = "table" if table is None else "audio archive"
        hint = (
            f"it has: {', '.join(near[:12])}"
            if near
            else f"it has no data/{fleurs_code}/ folder (is {fleurs_code!r} a FLEURS config?)"
        )
        raise FileNotFoundError(
            f"FLEURS {fleurs_code}/{split}: no {what} among "
            f"{', '.join(tables if table is None else audio)} in the hub repository; {hint}"
        )
    return table, archive


def offline() -> bool:
    """Whether huggingface_hub is in offline mode (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return flag or bool(constants.is_offline_mode())


def list_files(repo: str, revision: str | None) -> list[str] | None:
    """The repository's file listing, or None offline or when the hub cannot be reached."""
    if offline():
        return None
    from huggingface_hub import list_repo_files
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return list_repo_files(repo, repo_type="dataset", revision=revision)
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError):
        raise
    except Exception as err:  # no network (httpx errors are not OSErrors): use the cache
        log.warning("cannot list %s on the hub (%s); trying the expected file names", repo, err)
        return None


def download(
    repo: str, names: list[str], *, revision: str | None, cache_dir: str | None
) -> tuple[str, Path]:
    """Download the first of ``names`` that exists; return its repository path and local file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    unreachable = offline()
    for name in names:
        try:
            path = hf_hub_download(
                repo, name, repo_type="dataset", revision=revision, cache_dir=cache_dir
            )
        except LocalEntryNotFoundError:  # not cached, and the hub is off or unreachable
            unreachable = True
            continue
        except EntryNotFoundError:
            continue
        return name, Path(path)
    where = cache_dir or "the default Hugging Face cache (HF_HUB_CACHE / HF_HOME)"
    state = "HF_HUB_OFFLINE is set" if offline() else "the hub cannot be reached"
    mode = (
        f"{state} and {where} lacks them; populate it on a machine with network "
        f"(e.g. `hf download {repo} --repo-type dataset --include '{names[0]}'`) "
        "or point corpus.hf_cache_dir at a mirrored cache"
        if unreachable
        else "the repository has none of them"
    )
    raise FileNotFoundError(f"{repo}: none of {', '.join(names)} found: {mode}")


def extract_audio(archive: str | Path, dest: str | Path) -> int:
    """Unpack an audio tarball flat into ``dest`` (audio files only); return the file count.

    Only regular files with an audio suffix are written, under their base name, so member
    paths can never escape ``dest``; a base name that occurs twice is an error. The folder
    appears complete or not at all (written beside it, then renamed).
    """
    dest = Path(dest)
    partial = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if (
                    not member.isfile()
                    or name.startswith(".")
                    or not name.lower().endswith(AUDIO_SUFFIXES)
                ):
                    continue
                target = partial / name
                if target.exists():
                    raise ValueError(f"{archive}: audio file name {name!r} occurs twice")
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                count += 1
    except (tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(f"{archive}: cannot unpack the audio archive ({err})") from err
    if count == 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(f"{archive}: no audio file in the archive")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    return count


def fetch_split(
    fleurs_code: str,
    split: str,
    table_out: str | Path,
    audio_out: str | Path,
    *,
    repo: str = FLEURS_REPO,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> dict:
    """Fetch one FLEURS split from the hub into the official local layout; return provenance."""
    listing = list_files(repo, revision)
    tables, archives = candidate_files(fleurs_code, split)
    if listing is not None:
        table_name, archive_name = choose_files(listing, fleurs_code, split)
        tables, archives = [table_name], [archive_name]
    table_name, table_file = download(repo, tables, revision=revision, cache_dir=cache_dir)
    archive_name, archive_file = download(repo, archives, revision=revision, cache_dir=cache_dir)
    table = fleurs.read_tsv(table_file)  # parse before copying: a broken table fails here
    Path(table_out).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(table_file, table_out)
    count = extract_audio(archive_file, audio_out)
    folder = fleurs.AudioFolder(audio_out)
    absent = [n for n in table["file_name"] if not folder.resolve(n).exists()]
    if absent:
        log.warning(
            "%s: %d file(s) named by the table are not in the archive (e.g. %s); the manifest "
            "stage reports them",
            archive_name,
            len(absent),
            absent[:3],
        )
    snapshot = table_file.parent
    for _ in PurePosixPath(table_name).parts[:-1]:
        snapshot = snapshot.parent
    info = {
        "repo": repo,
        "revision": revision,
        "snapshot": snapshot.name,
        "table": table_name,
        "archive": archive_name,
        "rows": int(len(table)),
        "audio_files": count,
        "missing_audio": len(absent),
    }
    log.info("fetched %s", info)
    return info
