"""Reading contacts CSV files: encoding, delimiter, header, rows, and a first guess at what each column holds."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l
from phonenumbers import PhoneMetadata

from bulkapp.services.contacts.book import EMAIL, clean_text, field_key
from bulkapp.services.messaging.templates import CONTACT_VARIABLES

PREVIEW_ROWS = 5
MAX_COLUMNS = 50
DELIMITERS = (",", ";", "\t", "|")
ROLES = ("phone", "name", "department", "field", "ignore")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KE_MOBILE = re.compile(PhoneMetadata.metadata_for_region("KE").mobile.national_number_pattern)
_NUMBER_PUNCTUATION = str.maketrans("", "", " \t\u00a0-().")  # removed from numbers before the quick check

# fmt: off
PHONE_HEADERS = {
    "phone", "phone number", "phone no", "phone numbers", "mobile", "mobile number", "mobile no", "msisdn",
    "number", "tel", "telephone", "cell", "cellphone", "contact", "contacts", "simu", "namba", "nambari",
    "whatsapp", "whatsapp number", "email", "e mail", "email address",
}
NAME_HEADERS = {
    "name", "names", "full name", "fullname", "contact name", "customer", "customer name", "client",
    "client name", "member", "member name", "jina", "majina", "first name", "firstname", "last name",
    "lastname", "surname", "other names", "middle name",
}
# fmt: on
DEPARTMENT_HEADERS = {"department", "dept", "group", "category", "branch", "list", "tag", "segment", "kikundi"}
EXCEL_FILE = _l(
    "This is an Excel workbook, not a CSV file. In Excel choose File › Save As › “CSV UTF-8 (Comma delimited)” "
    "and upload that file."
)


class ImportFileError(ValueError):
    """The upload cannot be imported; ``message`` says why in a sentence for the user (lazy: it is shown in the
    viewer's language; an import that fails in the background stores an English sentence instead)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImportTooLarge(ImportFileError):
    """The upload is bigger than the size limit."""


def quick_msisdn(raw: str) -> str | None:
    """E.164 for the common Kenyan mobile forms without a full phonenumbers parse (the import's hot path).

    Returns None when unsure; the caller then asks :func:`normalise_msisdn`, which has the final word. The
    pattern is libphonenumber's own KE mobile pattern, so both always agree on what they accept.
    """
    text = raw.translate(_NUMBER_PUNCTUATION)
    size = len(text)
    if size == 10 and text[0] == "0":
        national = text[1:]
    elif size == 9:
        national = text
    elif size == 12 and text.startswith("254"):
        national = text[3:]
    elif size == 13 and text.startswith("+254"):
        national = text[4:]
    elif size == 14 and text.startswith("00254"):
        national = text[5:]
    else:
        return None
    if national.isascii() and national.isdigit() and _KE_MOBILE.fullmatch(national):
        return "+254" + national
    return None


def looks_like_contact(cell: str) -> bool:
    cell = cell.strip()
    return bool(cell) and (quick_msisdn(cell) is not None or EMAIL.fullmatch(cell) is not None)


def is_blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


@dataclass(frozen=True)
class FileInfo:
    encoding: str
    delimiter: str
    has_header: bool
    columns: list[str]
    data_rows: int
    sample: list[list[str]]


def _decode_problem(path: Path, encoding: str) -> str | None:
    """None when the whole file decodes as ``encoding`` text, else what is wrong and on which line (lazy text)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as raw:
        while block := raw.read(1 << 20):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                where = line + block[: exc.start].count(b"\n")
                return _l("line %(line)s has bytes that are not %(encoding)s text", line=where, encoding=encoding)
            bad = _CONTROL.search(text)
            if bad:
                where = line + text[: bad.start()].count("\n")
                return _l("line %(line)s has control characters", line=where)
            line += text.count("\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return _l("the file ends in the middle of a %(encoding)s character", encoding=encoding)
    return None


def _detect_encoding(path: Path) -> str:
    with open(path, "rb") as raw:
        head = raw.read(4096)
    if not head.strip():
        raise ImportFileError(_l("The file is empty."))
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise ImportFileError(EXCEL_FILE)
    if head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in head:
        raise ImportFileError(_l("This is not a text file. Upload the contacts as a CSV file (CSV UTF-8)."))
    else:
        candidates = ["utf-8", "cp1252"]  # cp1252: what Excel on Windows writes for a plain "CSV"
    first_problem = None
    for encoding in candidates:
        problem = _decode_problem(path, encoding)
        if problem is None:
            return encoding
        first_problem = first_problem or problem
    raise ImportFileError(
        _l(
            "The file is not readable text (%(problem)s). In Excel use File › Save As › “CSV UTF-8”, then "
            "upload it again.",
            problem=first_problem,
        )
    )


def _detect_delimiter(first_line: str) -> str:
    best = max(DELIMITERS, key=first_line.count)
    return best if first_line.count(best) else ","


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_names(header: list[str], width: int) -> list[str]:
    names: list[str] = []
    for index in range(width):
        name = clean_text(header[index]) if index < len(header) else ""
        name = name[:80] or f"Column {column_letter(index)}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


def inspect_file(path: Path) -> FileInfo:
    """Encoding, delimiter, header and row count of a saved upload. Raises ImportFileError with the reason."""
    encoding = _detect_encoding(path)
    with open(path, encoding=encoding, newline="") as text:
        delimiter = _detect_delimiter(text.readline())
        text.seek(0)
        reader = csv.reader(text, delimiter=delimiter)
        header: list[str] | None = None
        data_rows, width, sample = 0, 0, []
        try:
            for cells in reader:
                if is_blank(cells):
                    continue
                if header is None:
                    header = cells
                    continue
                data_rows += 1
                width = max(width, len(cells))
                if len(sample) < PREVIEW_ROWS:
                    sample.append(cells)
        except csv.Error as exc:
            raise ImportFileError(
                _l("Line %(line)s is not valid CSV (%(problem)s).", line=reader.line_num, problem=exc)
            ) from None
    if header is None:
        raise ImportFileError(_l("The file is empty."))
    has_header = not any(looks_like_contact(cell) for cell in header)
    if not has_header:
        data_rows += 1
        sample = [header, *sample][:PREVIEW_ROWS]
    width = max(width, len(header))
    if data_rows == 0:
        raise ImportFileError(_l("The file has a header row but no contacts under it."))
    if width > MAX_COLUMNS:
        raise ImportFileError(
            _l("The file has %(count)s columns; at most %(limit)s can be imported.", count=width, limit=MAX_COLUMNS)
        )
    columns = _column_names(header if has_header else [], width)
    return FileInfo(encoding, delimiter, has_header, columns, data_rows, sample)


def _header_words(column: str) -> str:
    return re.sub(r"[^a-z]+", " ", column.lower()).strip()


def guess_roles(columns: list[str], sample: list[list[str]], has_header: bool) -> list[str]:
    """A first guess at each column's role from its header (English or Swahili) and sample values."""
    roles = ["field"] * len(columns)
    words = [_header_words(c) for c in columns] if has_header else [""] * len(columns)
    for index, word in enumerate(words):
        if word in PHONE_HEADERS and "phone" not in roles:
            roles[index] = "phone"
        elif word in NAME_HEADERS:
            roles[index] = "name"
        elif word in DEPARTMENT_HEADERS and "department" not in roles:
            roles[index] = "department"

    def cells(index: int) -> list[str]:
        return [row[index] for row in sample if index < len(row)]

    if "phone" not in roles:
        scores = [
            sum(looks_like_contact(c) for c in cells(i)) if role == "field" else 0 for i, role in enumerate(roles)
        ]
        if scores and max(scores) > 0:
            roles[scores.index(max(scores))] = "phone"
    if "name" not in roles and not has_header:
        for index, role in enumerate(roles):
            if role == "field" and any(re.search(r"[^\W\d_]", c) for c in cells(index)):
                roles[index] = "name"
                break
    return roles


def mapping_from_roles(columns: list[str], roles: list[str]) -> dict[str, Any]:
    """The stored mapping; field keys are unique template-variable names (never a built-in one like name)."""
    fields: dict[str, int] = {}
    for index, role in enumerate(roles):
        if role != "field":
            continue
        base = field_key(columns[index]) or f"column_{column_letter(index).lower()}"
        key, n = base, 2
        while key in fields or key in CONTACT_VARIABLES:
            key, n = f"{base}_{n}", n + 1
        fields[key] = index
    department = [i for i, r in enumerate(roles) if r == "department"]
    return {
        "phone": roles.index("phone") if "phone" in roles else None,
        "name": [i for i, r in enumerate(roles) if r == "name"],
        "department": department[0] if department else None,
        "fields": fields,
    }


def roles_from_mapping(mapping: dict[str, Any], width: int) -> list[str]:
    roles = ["ignore"] * width
    for index in (mapping.get("fields") or {}).values():
        roles[index] = "field"
    for index in mapping.get("name") or []:
        roles[index] = "name"
    if mapping.get("department") is not None:
        roles[mapping["department"]] = "department"
    if mapping.get("phone") is not None:
        roles[mapping["phone"]] = "phone"
    return roles


def read_records(path: Path, encoding: str, delimiter: str, has_header: bool) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each data row; line numbers count the header as line 1, as a spreadsheet does."""
    with open(path, encoding=encoding, newline="") as text:
        header_pending = has_header
        for line, cells in enumerate(csv.reader(text, delimiter=delimiter), start=1):
            if is_blank(cells):
                continue
            if header_pending:
                header_pending = False
                continue
            yield line, cells
