"""Check every data file completely before anything is loaded.

Files are cut into chunks of whole lines, each read with pyarrow's multithreaded CSV reader
(flat memory at any size, vectorised checks), every value as raw bytes, so that each problem
can be reported precisely: not UTF-8, empty where a value is needed, or not of the column's
type. Chunks of all files are checked in parallel (pyarrow releases the GIL), and the results
are put back in order: the first problem in file order wins, reported with the file, the line
and the column. One row is one line: the course's files have no line breaks in values, and a
value with a line break is reported as such.

The checks take a fast path where they can (e.g. a timestamp cast over a whole column) and only
when that path fails run the exact, slower check that finds the first bad value.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import LoadError
from .schema import ALL_FILES, Column, DataFile, Kind

CHUNK_BYTES = 24 << 20  # per chunk of lines; memory stays flat however large the file is
BOM = b"\xef\xbb\xbf"
WORKERS = max(os.cpu_count() or 1, 1)


def validate_dataset(data_dir: Path | str,
                     files: tuple[DataFile, ...] = ALL_FILES) -> dict[str, int]:
    """Validate every file of a data set; returns data rows per file (relative path).

    Raises LoadError naming the file, line and column of the first problem found.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LoadError(f"{data_dir}: no such folder (expected the data set's CSV files)")
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="validate") as pool:
        checks = [FileCheck.start(pool, data_dir / spec.path, spec) for spec in files]
        try:
            return {spec.path: check.rows() for spec, check in zip(files, checks, strict=True)}
        finally:
            for check in checks:  # after the first problem the rest need not run
                check.cancel()


def validate_file(path: Path, spec: DataFile) -> int:
    """Validate one file against its spec; returns its number of data rows."""
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="validate") as pool:
        return FileCheck.start(pool, path, spec).rows()


@dataclass
class Problem:
    """The first bad value of a chunk: its row in the chunk, the column and what is wrong."""

    row: int
    column: str
    message: str


@dataclass
class ChunkResult:
    rows: int = 0
    problem: Problem | None = None
    unreadable: Exception | None = None  # pyarrow could not split it into rows


@dataclass
class FileCheck:
    """One file's checks: the header at once, then its chunks as tasks of a thread pool."""

    path: Path
    header: list[str] = field(default_factory=list)
    error: LoadError | None = None
    chunks: list[Future[ChunkResult]] = field(default_factory=list)

    @classmethod
    def start(cls, pool: Executor, path: Path, spec: DataFile) -> FileCheck:
        check = cls(path)
        try:
            if not path.is_file():
                raise LoadError(f"{path}: file not found (the data set needs "
                                f"{', '.join(f.path for f in ALL_FILES)})")
            check.header = read_header(path)
            check_header(path, check.header, spec)
        except LoadError as exc:  # raised in file order by rows(), after earlier files
            check.error = exc
            return check
        columns = [spec_column(spec, name) for name in check.header]
        check.chunks = [pool.submit(check_chunk, path, check.header, columns, begin, end)
                        for begin, end in chunk_ranges(path)]
        return check

    def rows(self) -> int:
        """Data rows of the file, once every chunk is checked; raises its first problem."""
        if self.error is not None:
            raise self.error
        rows = 0
        for chunk in self.chunks:
            result = chunk.result()
            if result.unreadable is not None:
                # pyarrow names no line for a row with the wrong number of values; find it.
                raise locate_bad_row(self.path, self.header, result.unreadable)
            if result.problem is not None:
                problem = result.problem
                line = rows + 2 + problem.row  # row n of the data is line n + 1
                raise LoadError(f"{self.path}: line {line}, column {problem.column}: "
                                f"{problem.message}")
            rows += result.rows
        return rows

    def cancel(self) -> None:
        for chunk in self.chunks:
            chunk.cancel()


def chunk_ranges(path: Path, size: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """Byte ranges of whole lines after the header, each about `size` bytes.

    A chunk ends at a line break, as pyarrow's own blocks do without newlines_in_values; a
    quote left open across lines is an error in either case.
    """
    total = path.stat().st_size
    ranges = []
    with open(path, "rb") as f:
        begin = len(f.readline())
        while begin < total:
            f.seek(min(begin + size, total))
            f.readline()  # on to the end of the line
            end = min(f.tell(), total)
            ranges.append((begin, end))
            begin = end
    return ranges


def check_chunk(path: Path, header: list[str], columns: list[Column], begin: int,
                end: int) -> ChunkResult:
    """Read and check one chunk of lines."""
    with open(path, "rb") as f:
        f.seek(begin)
        data = f.read(end - begin)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=header, use_threads=True,
                                           block_size=4 << 20),
            # Blank lines stay rows (of empty values) so that row n is always line n + 1.
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.binary()),
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        return ChunkResult(unreadable=exc)
    batch = pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns],
                                       names=header)
    # No value can hold a line break when every row is exactly one line (and every \r ends a
    # line as part of \r\n): then the per-value search for line breaks is skipped.
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    one_line_rows = lines == batch.num_rows and (
        b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))
    return ChunkResult(rows=batch.num_rows,
                       problem=check_batch(batch, columns, multiline=not one_line_rows))


def read_header(path: Path) -> list[str]:
    """The column names on line 1 (a UTF-8 byte order mark, as Excel writes, is allowed)."""
    with open(path, "rb") as f:
        first = f.readline()
    if not first.strip():
        raise LoadError(f"{path}: line 1: the file is empty; line 1 must name the columns")
    try:
        text = first.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: line 1: the header has bytes that are not UTF-8 "
                        f"({first[exc.start:exc.end]!r}); save the file as UTF-8") from None
    return [name.strip() for name in next(csv.reader([text]))]


def check_header(path: Path, header: list[str], spec: DataFile) -> None:
    """Every expected column exactly once, nothing else; the order does not matter."""
    expected = spec.names
    missing = [n for n in expected if n not in header]
    if missing:
        raise LoadError(f"{path}: line 1, column {missing[0]}: missing from the header "
                        f"(the file needs the columns {', '.join(expected)})")
    extra = [n for n in header if n not in expected]
    if extra:
        raise LoadError(f"{path}: line 1, column {extra[0]}: not a column of {spec.table} "
                        f"(expected {', '.join(expected)})")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise LoadError(f"{path}: line 1, column {name}: named twice in the header")
        seen.add(name)


def spec_column(spec: DataFile, name: str) -> Column:
    return next(c for c in spec.columns if c.name == name)


def check_batch(batch: pa.RecordBatch, columns: list[Column],
                multiline: bool = True) -> Problem | None:
    """The first bad value of the batch (smallest row, then leftmost column), or None."""
    worst: Problem | None = None
    for index, column in enumerate(columns):
        raw = batch.column(index)
        try:
            text = raw.cast(pa.string())
        except pa.ArrowInvalid:
            row, problem = first_non_utf8(raw)
        else:
            found = first_true(bad_values(text, column, multiline))
            if found is None:
                continue
            row, problem = found, describe(text[found].as_py(), column, batch, found)
        if worst is None or row < worst.row:
            worst = Problem(row, column.name, problem)
    return worst


def bad_values(text: pa.StringArray, column: Column, multiline: bool = True) -> pa.BooleanArray:
    """True where a value is not of the column's kind (an empty value counts as missing).

    `multiline=False` says that no value of the batch holds a line break (known from the
    chunk's line count), so that search is skipped.
    """
    kind = column.kind
    if kind.pattern:  # anchored with ^ and $, so it also rejects line breaks and empty values
        ok = pc.match_substring_regex(text, strict_pattern(kind))
    elif kind.values:  # none of them is empty or holds a line break
        ok = pc.is_in(text, value_set=pa.array(kind.values))
    else:
        ok = pc.greater(pc.binary_length(text), 0)
        if multiline:
            # pyarrow reads a quote left open across lines as one value; ClickHouse would not.
            for newline in ("\n", "\r"):
                ok = pc.and_(ok, pc.invert(pc.match_substring(text, newline)))
    if kind.strptime:
        ok = pc.and_(ok, valid_time(text, kind, ok))
    elif kind.maximum is not None:
        ok = pc.and_(ok, in_range(text, ok, kind))
    if column.nullable:
        ok = pc.or_(ok, pc.equal(pc.binary_length(text), 0))
    return pc.invert(ok)


def strict_pattern(kind: Kind) -> str:
    """The kind's pattern, for dates and times with the ranges of month, day, hour, minute
    and second spelled out (values outside them fail the exact check in `valid_time` too,
    with the same message), so that the fast path of `valid_time` only has to catch days
    past the end of their month and years out of range."""
    if not kind.strptime:
        return kind.pattern
    return kind.pattern.replace(
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}",
        "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])", 1).replace(
        " [0-9]{2}:[0-9]{2}:[0-9]{2}", " ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]", 1)


def valid_time(text: pa.StringArray, kind: Kind,
               shaped: pa.BooleanArray | None = None) -> pa.BooleanArray:
    """True where the value is a real date (and time) whose year fits the type.

    Fast path, when every value has the kind's shape (`shaped`): pyarrow's cast to a
    timestamp, which rejects a day past the end of its month, and the years of the earliest
    and latest value. Anything else goes to `exact_time`, which finds the bad value."""
    if shaped is not None and len(text) and pc.all(shaped).as_py():
        head = pc.utf8_slice_codeunits(text, 0, kind.width)
        try:
            parsed = head.cast(pa.timestamp("s"))
        except pa.ArrowInvalid:
            pass
        else:
            low, high = (pc.year(v).as_py() for v in pc.min_max(parsed).values())
            if kind.minimum <= low and high <= kind.maximum:
                return shaped
    return exact_time(text, kind)


def exact_time(text: pa.StringArray, kind: Kind) -> pa.BooleanArray:
    """Parses, prints back the same (rejects 2024-02-30, which strptime would roll over),
    and its year fits the type."""
    head = pc.utf8_slice_codeunits(text, 0, kind.width)
    parsed = pc.strptime(head, format=kind.strptime, unit="s", error_is_null=True)
    # A cast prints "YYYY-MM-DD HH:MM:SS" like our formats, 20 times faster than strftime.
    back = pc.utf8_slice_codeunits(pc.cast(parsed, pa.string()), 0, kind.width)
    same = pc.equal(back, head)
    year = pc.year(parsed)
    fits = pc.and_(pc.greater_equal(year, kind.minimum), pc.less_equal(year, kind.maximum))
    return pc.fill_null(pc.and_(same, fits), False)


def in_range(text: pa.StringArray, ok: pa.BooleanArray, kind: Kind) -> pa.BooleanArray:
    """Integers within the type's bounds, compared exactly as 38-digit decimals (only when
    some value has as many digits as the bound: ids are short, and the cast costs)."""
    # A minus sign counts as a digit here: at worst the exact check runs when not needed.
    longest = pc.max(pc.binary_length(text)).as_py() or 0
    if longest < len(str(kind.maximum)):
        return ok
    wide = pa.decimal128(38, 0)
    digits = pc.if_else(ok, text, "0").cast(wide)
    low = pc.greater_equal(digits, pa.scalar(kind.minimum, wide))
    return pc.and_(low, pc.less_equal(digits, pa.scalar(kind.maximum, wide)))


def first_true(mask: pa.BooleanArray) -> int | None:
    positions = pc.indices_nonzero(mask)
    return positions[0].as_py() if len(positions) else None


def first_non_utf8(raw: pa.BinaryArray) -> tuple[int, str]:
    """The first value that is not UTF-8 (only called once a cast has failed)."""
    for row, value in enumerate(raw.to_pylist()):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = value[max(exc.start - 8, 0):exc.end + 8]
            return row, (f"bytes that are not UTF-8 ({bad!r}); save the file as UTF-8 "
                         "(this looks like another encoding, e.g. Latin-1 or Windows-1252)")
    raise AssertionError("cast failed but every value decodes")  # pragma: no cover


def describe(value: str, column: Column, batch: pa.RecordBatch, row: int) -> str:
    if "\n" in value or "\r" in value:
        return ("a quoted value runs past the end of the line (a missing closing quote, or a "
                "line break inside a value)")
    if value == "":
        if all(batch.column(i)[row].as_py() == b"" for i in range(batch.num_columns)):
            return "the line is empty; remove it"
        return f"empty, but this column needs {column.kind.expected}"
    return f"{value!r} is not {column.kind.expected}"


def locate_bad_row(path: Path, header: list[str], exc: Exception) -> LoadError:
    """Scan line by line (slow, but only after pyarrow failed) for the row that breaks it."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if number == 1:
                continue
            count, open_quote = count_values(line.decode("utf-8", errors="replace"))
            if open_quote is not None:
                return LoadError(f"{path}: line {number}, column "
                                 f"{header[min(open_quote, len(header) - 1)]}: a quoted value "
                                 "runs past the end of the line (a missing closing quote, or a "
                                 "line break inside a value)")
            if count != len(header):
                where = header[count] if count < len(header) else f"(after {header[-1]})"
                return LoadError(f"{path}: line {number}, column {where}: the line has "
                                 f"{count} values, the header {len(header)} columns")
    return LoadError(f"{path}: cannot be read as CSV: {exc}")


def count_values(line: str) -> tuple[int, int | None]:
    """Values on one CSV line, and the index of a value whose quote never closes (or None)."""
    line = line.rstrip("\r\n")
    field, quoted, opened = 0, False, None
    for char in line:
        if char == '"':
            quoted = not quoted  # a doubled quote "" toggles twice: no change
            opened = field if quoted else opened
        elif char == "," and not quoted:
            field += 1
    return field + 1, (opened if quoted else None)
