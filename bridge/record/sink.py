"""One analytics table written as it is produced, in bounded memory.

Rows are buffered up to ``batch`` and then appended to the open file (a Parquet row group
through ``pyarrow.parquet.ParquetWriter``, or CSV lines), so an export of any size holds at
most one batch per table.  The file is a hidden ``.NAME.partial`` until :meth:`close`
renames it into place (POSIX rename is atomic): a reader never sees half a table, and
:meth:`abort` removes it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["TableSink"]

Row = dict[str, Any]
#: rows buffered before they are appended to the file
BATCH = 20_000


def _pyarrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64(),
            "bool": pa.bool_()}[kind]


class TableSink:
    """Rows of one table (``columns``: name and type ``str``/``int``/``float``/``bool``) into
    ``directory/name.parquet`` or ``.csv``."""

    def __init__(self, directory: Path, name: str, columns: list[tuple[str, str]], *,
                 parquet: bool, batch: int = BATCH) -> None:
        self.columns = columns
        self.rows = 0
        self.path = directory / f"{name}.{'parquet' if parquet else 'csv'}"
        self._temporary = directory / f".{self.path.name}.partial"
        self._parquet = parquet
        self._batch = batch
        self._buffer: list[Row] = []
        self._writer: Any = None
        self._handle: IO[str] | None = None
        self._csv: Any = None
        if parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._schema = pa.schema([(c, _pyarrow_type(k)) for c, k in columns])
            self._writer = pq.ParquetWriter(self._temporary, self._schema)
        else:
            self._handle = self._temporary.open("w", newline="", encoding="utf-8")
            self._csv = csv.DictWriter(self._handle, fieldnames=[c for c, _ in columns],
                                       extrasaction="ignore")
            self._csv.writeheader()

    def add(self, row: Row) -> None:
        self._buffer.append(row)
        self.rows += 1
        if len(self._buffer) >= self._batch:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._parquet:
            import pyarrow as pa

            names = [c for c, _ in self.columns]
            table = pa.Table.from_pylist([{c: r.get(c) for c in names} for r in self._buffer],
                                         schema=self._schema)
            self._writer.write_table(table)
        else:
            self._csv.writerows(self._buffer)
        self._buffer.clear()

    def close(self) -> Path:
        """Write what is buffered and rename the table into place."""
        self._flush()
        if self._parquet:
            self._writer.close()
        elif self._handle is not None:
            self._handle.close()
        os.replace(self._temporary, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file (the previous table, if any, stays)."""
        if self._parquet:
            self._writer.close()
        elif self._handle is not None:
            self._handle.close()
        self._temporary.unlink(missing_ok=True)
