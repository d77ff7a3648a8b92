"""Every "DESIGN §N" reference in the repository points at a section of docs/DESIGN.md.

Code and docs cite the design notes as "DESIGN §4", "DESIGN §6 and §6a", "DESIGN §2–3", "DESIGN §7's";
a reference to a section the notes do not have (renumbered, or never written) fails here with the file,
the line and the sections that do exist.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "DESIGN.md"
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "runs",
    "outputs",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
}

HEADING = re.compile(r"^#{2,3}\s+(\d+[a-z]?)\.\s", re.MULTILINE)
_ITEM = r"§+\s*\d+[a-z]?(?:\s*[–—-]\s*\d+[a-z]?)?"
# "DESIGN" (or "DESIGN.md"), then a chain of § items joined by commas, "and", "or", "&"
REFERENCE = re.compile(rf"DESIGN(?:\.md)?\s*((?:{_ITEM})(?:\s*(?:,|and|or|&)\s*{_ITEM})*)")
BARE = re.compile(_ITEM)  # inside docs/DESIGN.md itself: cross-references written as "§N"
SECTION = re.compile(r"(\d+)([a-z]?)(?:\s*[–—-]\s*(\d+)([a-z]?))?")


def sections_cited(chain: str) -> list[str]:
    """The section labels a reference names: "§6 and §6a" → 6, 6a; "§2–3" → 2, 3."""
    labels = []
    for item in BARE.findall(chain):
        m = SECTION.search(item)
        first, first_suffix, last, last_suffix = m.groups()
        if last is None:
            labels.append(first + first_suffix)
        elif first_suffix or last_suffix:
            labels += [first + first_suffix, last + last_suffix]
        else:
            labels += [str(n) for n in range(int(first), int(last) + 1)]
    return labels


def section_order(label: str) -> tuple[int, str]:
    number = re.match(r"\d+", label)[0]
    return int(number), label[len(number) :]


def design_sections() -> set[str]:
    return set(HEADING.findall(DESIGN.read_text(encoding="utf-8")))


def repository_files() -> list[Path]:
    """The repository's .py and .md files (this file's own examples excluded)."""
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder) / name
            if path.suffix in (".py", ".md") and path != Path(__file__).resolve():
                files.append(path)
    return sorted(files)


def references() -> list[tuple[str, int, str, list[str]]]:
    """(file, line, text, sections) of every DESIGN reference in the repository's .py and .md files."""
    found = []
    for path in repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in REFERENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append((str(path.relative_to(ROOT)), line, m.group(0), sections_cited(m.group(1))))
    return found


def test_the_reference_parser_reads_every_form_the_code_uses():
    def cited(text):
        return [s for m in REFERENCE.finditer(text) for s in sections_cited(m.group(1))]

    assert cited("the jump (DESIGN §4).") == ["4"]
    assert cited("(DESIGN §6 and §6a)") == ["6", "6a"]
    assert cited("t = 1000·σ (DESIGN §2–3)") == ["2", "3"]
    assert cited("DESIGN §7's option") == ["7"]
    assert cited("(DESIGN §4: s = jump(e), ...) and §9 later") == ["4"]
    assert cited("see docs/DESIGN.md §8, §10") == ["8", "10"]
    assert cited("DESIGN\n§5") == ["5"]
    assert cited("docs/DESIGN.md, the notes") == []


def test_design_notes_exist_with_numbered_sections():
    assert DESIGN.is_file(), "docs/DESIGN.md is missing"
    sections = design_sections()
    assert {"2", "3", "4", "6", "6a", "8"} <= sections, sorted(sections)


def test_every_design_reference_points_at_an_existing_section():
    sections = design_sections()
    refs = references()
    assert len(refs) >= 10, f"found only {len(refs)} DESIGN references: is the pattern still right?"
    broken = [
        f"{file}:{line}: {text!r} cites §{s}"
        for file, line, text, cited in refs
        for s in cited
        if s not in sections
    ]
    have = ", ".join("§" + s for s in sorted(sections, key=section_order))
    assert not broken, (
        f"DESIGN references to sections that docs/DESIGN.md does not have (it has {have}):\n"
        + "\n".join(broken)
    )


def test_cross_references_inside_the_design_notes_resolve():
    sections = design_sections()
    text = DESIGN.read_text(encoding="utf-8")
    broken = []
    for m in BARE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        broken += [f"docs/DESIGN.md:{line}: §{s}" for s in sections_cited(m.group(0)) if s not in sections]
    assert not broken, "\n".join(broken)
