"""Check every data file completely before anything is loaded.

Files are read in blocks with pyarrow (flat memory at any size, vectorised checks), every value
as raw bytes, so that each problem can be reported precisely: not UTF-8, empty where a value is
needed, or not of the column's type. The first problem in file order wins, reported with the
file, the line and the column. One row is one line: the course's files have no line breaks in
values, and a value with a line break is reported as such.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import LoadError
from .schema import ALL_FILES, Column, DataFile, Kind

BLOCK_BYTES = 16 << 20  # per block of rows; memory stays flat however large the file is
BOM = b"\xef\xbb\xbf"


def validate_dataset(data_dir: Path | str,
                     files: tuple[DataFile, ...] = ALL_FILES) -> dict[str, int]:
    """Validate every file of a data set; returns data rows per file (relative path).

    Raises LoadError naming the file, line and column of the first problem found.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LoadError(f"{data_dir}: no such folder (expected the data set's CSV files)")
    return {spec.path: validate_file(data_dir / spec.path, spec) for spec in files}


def validate_file(path: Path, spec: DataFile) -> int:
    """Validate one file against its spec; returns its number of data rows."""
    if not path.is_file():
        raise LoadError(f"{path}: file not found (the data set needs "
                        f"{', '.join(f.path for f in ALL_FILES)})")
    header = read_header(path)
    check_header(path, header, spec)
    columns = [spec_column(spec, name) for name in header]
    rows = 0
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
            # Blank lines stay rows (of empty values) so that row n is always line n + 1.
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.binary()),
                strings_can_be_null=False, quoted_strings_can_be_null=False))
        for batch in reader:
            check_batch(path, batch, columns, first_line=rows + 2)
            rows += batch.num_rows
    except pa.ArrowInvalid as exc:
        # pyarrow names no line for a row with the wrong number of values; find it ourselves.
        raise locate_bad_row(path, header, exc) from None
    return rows


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


def check_batch(path: Path, batch: pa.RecordBatch, columns: list[Column],
                first_line: int) -> None:
    """Raise for the first bad value of the batch (smallest row, then leftmost column)."""
    worst: tuple[int, str, str] | None = None
    for index, column in enumerate(columns):
        raw = batch.column(index)
        try:
            text = raw.cast(pa.string())
        except pa.ArrowInvalid:
            row, problem = first_non_utf8(raw)
        else:
            found = first_true(bad_values(text, column))
            if found is None:
                continue
            row, problem = found, describe(text[found].as_py(), column, batch, found)
        if worst is None or row < worst[0]:
            worst = (row, column.name, problem)
    if worst is not None:
        row, name, problem = worst
        raise LoadError(f"{path}: line {first_line + row}, column {name}: {problem}")


def bad_values(text: pa.StringArray, column: Column) -> pa.BooleanArray:
    """True where a value is not of the column's kind (an empty value counts as missing)."""
    kind = column.kind
    empty = pc.equal(pc.binary_length(text), 0)
    ok = pc.invert(empty)
    if kind.pattern:  # anchored with ^ and $, so it also rejects line breaks
        ok = pc.and_(ok, pc.match_substring_regex(text, kind.pattern))
    else:
        # pyarrow reads a quote left open across lines as one value; ClickHouse would not.
        for newline in ("\n", "\r"):
            ok = pc.and_(ok, pc.invert(pc.match_substring(text, newline)))
    if kind.values:
        ok = pc.and_(ok, pc.is_in(text, value_set=pa.array(kind.values)))
    if kind.strptime:
        ok = pc.and_(ok, valid_time(text, kind))
    elif kind.maximum is not None:
        ok = pc.and_(ok, in_range(text, ok, kind))
    if column.nullable:
        ok = pc.or_(ok, empty)
    return pc.invert(ok)


def valid_time(text: pa.StringArray, kind: Kind) -> pa.BooleanArray:
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
    longest = pc.max(pc.binary_length(pc.utf8_ltrim(text, characters="-"))).as_py() or 0
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
