"""The reader contract: how domain files become a dataset.

A reader turns source files into a lazy :class:`xarray.Dataset` (data variables with
named dims, coordinates, attrs with units / CRS / spacing) and, optionally, tables
streamed part by part (:meth:`Reader.tables`: a point cloud, an atom list). The
runtime hashes the source bytes into the dataset id, writes the dataset chunk by
chunk (and part by part) with checksums, and publishes it in the catalog. A reader must finish every check (and, for medical
images, de-identification) inside :meth:`Reader.open`, before anything is written.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from minjiang.core.errors import ParameterError, ReaderError

if TYPE_CHECKING:
    import xarray as xr
    from pydantic import BaseModel

__all__ = ["Reader"]


class Reader(abc.ABC):
    """Base class for ingest readers (xarray's ``BackendEntrypoint`` in spirit).

    Subclasses set ``name`` (``domain.format``), ``version``, ``extensions`` and
    optionally ``params`` (a pydantic model), and implement :meth:`open`.
    ``supports_directories`` says whether a folder is a valid source (a DICOM
    series); ``supports_multiple`` whether several paths are combined (files along
    time). ``chunks`` proposes the analysis chunking of the written dataset.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[type[BaseModel] | None] = None
    supports_directories: ClassVar[bool] = False
    supports_multiple: ClassVar[bool] = True

    @property
    def domain(self) -> str:
        return self.name.split(".", 1)[0]

    def guess_can_open(self, path: str | os.PathLike[str]) -> bool:
        """Cheap guess from the name (and at most a few header bytes); never raises.

        ``minjiang ingest PATH...`` (and ``Runtime.ingest`` without a reader) uses it to
        pick the reader when none is named: exactly one registered reader must claim
        every path. The default claims a file whose name ends with one of
        :attr:`extensions`; and, when :attr:`supports_directories`, a folder whose own
        name does (``cube.zarr``) or whose first entries include such a file (a folder
        of ``.dcm`` files).
        """
        try:
            p = Path(path)
            if p.is_dir():
                if not self.supports_directories:
                    return False
                if self._named_like(p.name):
                    return True
                with os.scandir(p) as entries:
                    for k, entry in enumerate(entries):
                        if k >= 64:
                            break
                        if self._named_like(entry.name) and entry.is_file():
                            return True
                return False
            return self._named_like(p.name)
        except (OSError, ValueError, TypeError):  # unreadable, NUL, over-long: not ours
            return False

    def _named_like(self, name: str) -> bool:
        return any(name.lower().endswith(ext) for ext in self.extensions)

    def source_files(self, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
        """Expand ``paths`` into the sorted list of files whose bytes define the dataset.

        Raises :class:`ReaderError` for a path that does not exist, cannot be read, is
        not a path at all (NUL, over-long, wrong type), or a folder this reader does not
        take.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if len(paths) > 1 and not self.supports_multiple:
            raise ReaderError(f"{self.name}: takes one source, got {len(paths)}")
        files: list[Path] = []
        for raw in paths:
            if not isinstance(raw, str | os.PathLike):
                raise ReaderError(
                    f"{self.name}: source {raw!r} is a {type(raw).__name__}, not a path"
                )
            p = Path(raw)
            shown = repr(p.name[:80] + ("..." if len(p.name) > 80 else ""))
            try:
                if p.is_dir():
                    if not self.supports_directories:
                        raise ReaderError(
                            f"{self.name}: {shown} is a folder; pass the files inside it"
                        )
                    files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
                elif p.is_file():
                    files.append(p)
                else:
                    raise ReaderError(f"{self.name}: source {shown} does not exist; check the path")
            except (OSError, ValueError) as err:
                if isinstance(err, ReaderError):
                    raise
                raise ReaderError(
                    f"{self.name}: source {shown} cannot be read "
                    f"({type(err).__name__}: {getattr(err, 'strerror', None) or err}); "
                    "check the path"
                ) from None
        if not files:
            raise ReaderError(f"{self.name}: no source files given")
        return files

    def validate_params(self, params: Mapping[str, Any] | None) -> BaseModel | None:
        if self.params is None:
            if params:
                raise ParameterError(f"{self.name}: takes no parameters, got {sorted(params)!r}")
            return None
        from pydantic import ValidationError

        try:
            return self.params.model_validate(dict(params or {}))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()
            )
            raise ParameterError(f"{self.name}: invalid parameters: {problems}") from None

    @abc.abstractmethod
    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        """Open ``files`` (from :meth:`source_files`) as one lazy dataset."""

    def table_columns(self, ds: xr.Dataset, params: Any) -> Mapping[str, Mapping[str, str]]:
        """The tables :meth:`tables` writes, known before any is read: table name ->
        column name -> Arrow type name (``"float64"``, ``"uint8"``, ``"string"``).

        The planner gives them to later steps of the same pipeline; every part
        :meth:`tables` yields is cast to its table's columns. Default: no tables.
        """
        return {}

    def tables(
        self, files: list[Path], params: Any, ds: xr.Dataset
    ) -> Iterable[tuple[str, str, Any]]:
        """Stream the dataset's tables: ``(table name, part name, rows)`` per part.

        Each part is written (Parquet) as it is yielded, so a table larger than memory
        is never held whole; rows are a ``pyarrow.Table``, a ``pandas.DataFrame`` or a
        mapping of columns. Part names are one path segment each and are read back in
        order of name (:func:`minjiang.storage.tile_part_name` names a part by the grid
        tile it covers, for tiled table inputs). Only tables named by
        :meth:`table_columns` may be yielded. Default: none.
        """
        return ()

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        """The chunking to write (dim -> chunk length); ``None`` lets storage decide."""
        return None

    def describe_sources(self, files: Sequence[Path]) -> list[dict[str, Any]]:
        """How the sources appear in the catalog record (default: file name and size).

        Readers of sensitive data override this so that no file name (which may carry
        patient identifiers) is recorded.
        """
        return [{"name": f.name, "bytes": f.stat().st_size} for f in files]

    def identity(self, params: Any) -> dict[str, Any]:
        """What besides the source bytes defines the dataset (reader, version, params)."""
        return {
            "reader": self.name,
            "version": self.version,
            "params": params.model_dump(mode="json") if params is not None else {},
        }
