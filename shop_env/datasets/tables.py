"""Reading tabular files (parquet, CSV, JSON lines) with column checks that name the file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TABLE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")


class MissingColumnError(ValueError):
    """A table lacks a required column."""


def find_tables(folder: Path, split: str | None) -> list[Path]:
    """Table files under ``folder`` for a split, sorted for determinism.

    Files whose name or parent folder starts with ``train``/``test`` belong to that split;
    with ``split=None`` every table is returned. A missing folder gives ``[]``.

    Raises:
        OSError: ``folder`` (or a folder below it) exists but cannot be listed.
    """
    if not folder.is_dir():
        return []

    def fail(err: OSError) -> None:
        raise err

    files = sorted(
        Path(top) / name
        for top, _, names in os.walk(folder, onerror=fail)
        for name in names
        if Path(name).suffix in TABLE_SUFFIXES and (Path(top) / name).is_file()
    )
    if split in (None, "all"):
        return files
    return [p for p in files if split_of_path(p, folder) == split]


def split_of_path(path: Path, root: Path) -> str | None:
    """The split a table file under ``root`` belongs to, by its name or folder
    (``train``, ``test``, ``validation``), or None."""
    for part in path.relative_to(root).parts:
        for name in ("train", "test", "validation"):
            if part == name or part.startswith(name + "-") or part.startswith(name + "."):
                return name
    return None


def iter_table(path: Path, required: Iterable[str], wanted: Iterable[str] | None = None,
               batch_rows: int = 64) -> Iterator[dict[str, Any]]:
    """Stream the rows of one table as dicts, reading only the columns asked for.

    Parquet files are read ``batch_rows`` rows at a time from their row groups, so memory
    holds one batch of the table plus what the caller keeps, never the whole file (an
    OPeRA action shard is hundreds of MB of HTML). CSV and JSON tables are read whole.

    Args:
        path: a ``.parquet``, ``.csv``, ``.json`` or ``.jsonl`` file.
        required: columns that must exist (checked before any row is read).
        wanted: the columns to read (those present); None reads every column.
        batch_rows: rows per parquet batch.

    Raises:
        MissingColumnError: a required column is absent (the message names file and column).
        ValueError: the file cannot be parsed (the message names the file).
    """
    required = list(required)
    if path.suffix != ".parquet":
        yield from read_table(path, required)
        return
    try:
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(path)
        columns = list(handle.schema_arrow.names)
    except ImportError as err:
        raise ImportError(f"reading {path} needs {err.name}: pip install 'shop-r1[train]'") from None
    except Exception as err:  # noqa: BLE001 - any parser failure becomes a clear error
        raise ValueError(f"{os.fspath(path)}: cannot read table ({type(err).__name__}: {err})") from None
    _check_columns(path, columns, required)
    keep = columns if wanted is None else [c for c in columns if c in set(wanted) | set(required)]
    try:
        for batch in handle.iter_batches(batch_size=batch_rows, columns=keep):
            yield from batch.to_pylist()
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{os.fspath(path)}: cannot read table ({type(err).__name__}: {err})") from None
    finally:
        handle.close()


def _check_columns(path: Path, columns: list[str], required: Iterable[str]) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise MissingColumnError(
            f"{os.fspath(path)}: missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, columns)) or 'none'}"
        )


def read_table(path: Path, required: Iterable[str]) -> list[dict[str, Any]]:
    """Read one table into a list of row dicts (small tables; :func:`iter_table` streams).

    Raises:
        MissingColumnError: a required column is absent (the message names file and column).
        ValueError: the file cannot be parsed (the message names the file).
    """
    suffix = path.suffix
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            columns = table.column_names
            rows = table.to_pylist()
        else:
            import pandas as pd

            if suffix == ".csv":
                frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            else:
                frame = pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
            columns = list(frame.columns)
            rows = frame.to_dict(orient="records")
    except ImportError as err:
        raise ImportError(f"reading {path} needs {err.name}: pip install 'shop-r1[train]'") from None
    except Exception as err:  # noqa: BLE001 - any parser failure becomes a clear error
        raise ValueError(f"{os.fspath(path)}: cannot read table ({type(err).__name__}: {err})") from None
    _check_columns(path, columns, required)
    return rows
