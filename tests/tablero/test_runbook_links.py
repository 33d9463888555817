"""Every alert's ``runbook_url`` leads somewhere: a file of this repository, an anchor
that exists in it (GitHub's slug of a heading, or an explicit ``<a id="…">``), and a
section written in Spanish for the operators. The links between the operator documents
(docs/tablero.md, docs/incidents.md, docs/exports.md) resolve too, so a renamed heading
cannot leave a dead link behind."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "prometheus" / "rules" / "alerts.yml"
OPERATOR_DOCS = [ROOT / "docs" / name for name in ("tablero.md", "incidents.md", "exports.md")]

SPANISH_WORDS = re.compile(
    r"\b(de|del|la|el|los|las|en|por|que|un|una|y|no|se|su|sus|con|para|está|están|"
    r"desde|hasta|cuando|revise|mire|avise)\b",
    re.IGNORECASE,
)
ENGLISH_WORDS = re.compile(
    r"\b(the|and|of|is|are|to|with|when|this|that|from|which|for|it|its|be|has|have|"
    r"check the|look at|if|or|on|at|by|after|before|until|while)\b"
)


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped
    (letters of any script, digits, ``-`` and ``_`` kept), spaces to ``-``."""
    text = heading.strip().lower()
    text = "".join(
        c
        for c in text
        if c in " -_" or unicodedata.category(c)[0] in ("L", "N") or unicodedata.category(c) == "Mn"
    )
    return text.replace(" ", "-")


def _without_code(markdown: str) -> str:
    return re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)


def sections(path: Path) -> dict[str, tuple[int, str, str]]:
    """anchor → (heading level, heading, the text up to the next heading of the same or a
    higher level), for every heading and every explicit ``<a id>`` / ``<a name>``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: dict[str, tuple[int, str, str]] = {}
    seen: dict[str, int] = {}
    fenced = False
    headings: list[tuple[int, int, str]] = []  # (line, level, text)
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        match = re.match(r"(#{1,6}) (.+)", line)
        if match:
            headings.append((number, len(match.group(1)), match.group(2)))
    for index, (number, level, text) in enumerate(headings):
        end = next((n for n, lv, _ in headings[index + 1 :] if lv <= level), len(lines))
        body = "\n".join(lines[number + 1 : end])
        slug = github_slug(text)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out[slug if count == 0 else f"{slug}-{count}"] = (level, text, body)
    for number, line in enumerate(lines):
        for anchor in re.findall(r'<a (?:id|name)="([^"]+)"', line):
            out.setdefault(anchor, (0, anchor, "\n".join(lines[number + 1 :])))
    return out


def parent_heading(path: Path, anchor: str) -> str:
    """The heading one level above the section ``anchor`` (its chapter)."""
    level = sections(path)[anchor][0]
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"(#{1,6}) (.+)", line)
        if not match:
            continue
        if len(match.group(1)) < level:
            current = match.group(2)
        if github_slug(match.group(2)) == anchor:
            return current
    raise AssertionError(f"{anchor}: not a heading")


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: str(r["alert"]))
def test_every_alert_links_to_a_spanish_runbook_section_that_exists(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    url = rule.get("annotations", {}).get("runbook_url")
    assert url, f"{name}: no runbook_url"
    path_part, hash_sign, anchor = url.partition("#")
    assert hash_sign and anchor, f"{name}: {url} names no section"
    path = ROOT / path_part
    assert path.is_file(), f"{name}: {path_part} does not exist"
    found = sections(path)
    assert anchor in found, f"{name}: no anchor #{anchor} in {path_part}"
    _level, heading, body = found[anchor]
    assert name in heading, f"{name}: #{anchor} is the section of {heading!r}"
    prose = re.sub(r"`[^`]*`|\*[^*]*\*|\[[^\]]*\]\([^)]*\)", " ", _without_code(body))
    spanish = SPANISH_WORDS.findall(prose)
    english = ENGLISH_WORDS.findall(prose)
    assert len(spanish) >= 8, f"{name}: the runbook section is not Spanish: {body!r}"
    assert not english, f"{name}: English words in the runbook section: {english}"
    chapter = parent_heading(path, anchor)
    assert SPANISH_WORDS.search(chapter) and "Guías de actuación" in chapter, chapter


def test_every_runbook_section_has_an_alert() -> None:
    """No orphan section: each section under the runbook chapter names an alert."""
    names = {rule["alert"] for rule in alert_rules()}
    tablero = ROOT / "docs" / "tablero.md"
    runbooks = [
        text
        for anchor, (level, text, _) in sections(tablero).items()
        if level == 3 and parent_heading(tablero, anchor).startswith("Guías de actuación")
    ]
    assert set(runbooks) == names


@pytest.mark.parametrize("doc", OPERATOR_DOCS, ids=lambda p: p.name)
def test_links_between_the_operator_documents_resolve(doc: Path) -> None:
    text = _without_code(doc.read_text(encoding="utf-8"))
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"[a-z]+:", link):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.name}: {link}: no such file"
        if anchor and path.suffix == ".md":
            assert anchor in sections(path), f"{doc.name}: {link}: no such anchor"


@pytest.mark.parametrize("doc", OPERATOR_DOCS, ids=lambda p: p.name)
def test_the_operator_documents_are_in_spanish(doc: Path) -> None:
    """Every heading but code words reads Spanish, and the prose has Spanish words
    throughout (a paragraph left in English would show here)."""
    text = _without_code(doc.read_text(encoding="utf-8"))
    paragraphs = [
        p
        for p in re.split(r"\n\s*\n", text)
        if p.strip() and not p.lstrip().startswith(("|", "#", "!", "<"))
    ]
    for paragraph in paragraphs:
        prose = re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)", " ", paragraph)
        words = re.findall(r"[^\W\d_]+", prose)
        if len(words) < 12:
            continue
        english = re.findall(r"\b(the|and|is|are|with|which|when|this)\b", prose)
        assert len(english) <= 1, (doc.name, english, paragraph[:200])
        assert SPANISH_WORDS.search(prose), (doc.name, paragraph[:200])
