"""The time each notebook states, and the sections marked *Going further*.

Each topic notebook says at its top how long it takes, in all and on its core path (without the
sections headed *Going further*), and how much of that its graded parts take. Those times come
from one rule, stated in the start-here notebook and checked here against each notebook's content:

- reading: :data:`WORDS_PER_MINUTE` words of its text a minute;
- a code cell (run it, read its output): :data:`MINUTES_PER_CELL`;
- a graded part: :data:`MINUTES_PER_PART` to read the statement and run its checks, plus
  :data:`MINUTES_PER_LINE` for each line of code its model answer needs.

A student may skip the *Going further* sections, so nothing graded, and no core lesson, may use
what only such a section defines.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import nbformat
import pytest
from nbgrader.utils import is_grade, is_solution

from nbtools import ROOT, SOURCE

WORDS_PER_MINUTE = 100
MINUTES_PER_CELL = 1.0
MINUTES_PER_PART = 5.0
MINUTES_PER_LINE = 1.5
#: The stated times are rounded to 5 minutes; the rule's own time may differ from it by this much.
SLACK = 5

NOTEBOOKS = sorted(SOURCE.glob("[0-9][0-9]-*.ipynb"))
START_HERE = ROOT / "notebooks" / "00-start-here.ipynb"
HEADING = re.compile(r"^(#{2,3}) (?:(\d+)\. )?(.*)$")
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


@dataclass
class Section:
    """A part of a notebook between two headings: its text, its cells, and whether it is core."""

    title: str
    number: str | None
    further: bool
    words: int = 0
    cells: list[nbformat.NotebookNode] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    @property
    def graded(self) -> bool:
        return self.title.startswith("Part ")

    def minutes(self) -> float:
        """The rule's time for this section."""
        shown = [cell for cell in self.cells if not (is_grade(cell) and not is_solution(cell))]
        time = self.words / WORDS_PER_MINUTE + len(shown) * MINUTES_PER_CELL
        if self.graded:
            time += MINUTES_PER_PART + MINUTES_PER_LINE * sum(map(answer_lines, self.cells))
        return time


def answer_lines(cell: nbformat.NotebookNode) -> int:
    """The lines of code in the model answer of a solution cell (no blank lines, no comments)."""
    found = SOLUTION.search(cell.source) if is_solution(cell) else None
    lines = found.group(1).splitlines() if found else []
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def sections(nb: nbformat.NotebookNode) -> list[Section]:
    """The notebook cut at its ``##`` and ``###`` headings (a ``###`` under a *Going further* ``##`` is one too)."""
    found = [Section("top", None, False)]
    parent_further = False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            found[-1].cells.append(cell)
            continue
        for line in cell.source.splitlines():
            if heading := HEADING.match(line):
                further = "Going further" in line
                if len(heading.group(1)) == 2:
                    parent_further = further
                found.append(Section(heading.group(3), heading.group(2), further or parent_further))
            found[-1].words += len(re.sub(r"`[^`]*`", "code", line).split())
            found[-1].text.append(line)
    return found


def stated_minutes(text: str) -> list[int]:
    """Each time in a text such as "about 1 h 50 min, of which 55 min", in minutes, in order."""
    times = re.findall(r"(\d+) h(?: (\d+) min)?|(\d+) min", text)
    return [int(h or 0) * 60 + int(m or n or 0) for h, m, n in times]


def top_line(nb: nbformat.NotebookNode) -> str:
    """The **Time:** sentence at the top of a notebook."""
    found = re.search(r"\*\*Time:\*\* (.*)", nb.cells[0].source)
    assert found, "the first cell states the time"
    return found.group(1)


def parse(source: str) -> ast.Module:
    """A code cell's Python, without its IPython magics and shell lines (empty if it is not Python)."""
    try:
        return ast.parse(re.sub(r"^\s*[%!].*$", "", source, flags=re.M))
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def defined_names(source: str) -> set[str]:
    """The names a code cell binds at its top level, also inside ``if``, ``for``, ``with`` and ``try``.

    Functions and classes count by their own names; what their bodies and comprehensions bind is theirs.
    """
    names: set[str] = set()
    todo: list[ast.AST] = [parse(source)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return names


def used_names(source: str) -> set[str]:
    """The names a code cell reads and does not bind itself (a local or a loop variable is its own)."""
    tree = parse(source)
    read, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return read - bound


def needs_going_further(nb: nbformat.NotebookNode) -> list[str]:
    """What core cells take from *Going further* sections: names only they define, their numbers."""
    parts = sections(nb)
    core_defined = {name for s in parts if not s.further for c in s.cells for name in defined_names(c.source)}
    further_only = {name for s in parts if s.further for c in s.cells for name in defined_names(c.source)}
    further_only -= core_defined
    skipped = {s.number for s in parts if s.further and s.number}
    found = []
    for part in (s for s in parts if not s.further):
        for cell in part.cells:
            if names := used_names(cell.source) & further_only:
                found.append(f"{part.title}: uses {sorted(names)}")
        # "notebook 04, section 4" is another notebook's section
        own = re.sub(r"notebook \d\d,? sections? \d+", "", "\n".join(part.text))
        found += [
            f"{part.title}: cites section {n}, which is Going further"
            for n in re.findall(r"\bsections? (\d+)", own)
            if n in skipped
        ]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_graded_parts_and_core_lessons_need_no_going_further_section(path):
    """A student who skips every *Going further* section can run the core cells and solve every part."""
    nb = nbformat.read(path, as_version=4)
    assert any(s.further for s in sections(nb)), f"{path.name} marks no section Going further"
    assert not any(s.further for s in sections(nb) if s.graded), "graded parts are core"
    assert needs_going_further(nb) == []


def test_the_dependency_check_finds_a_core_cell_that_needs_a_going_further_section():
    """The check above can fail: a graded cell that calls a helper from a skippable section."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## 1. Core"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("## 2. Extra · *Going further*"),
        nbformat.v4.new_code_cell("def helper():\n    return x"),
        nbformat.v4.new_code_cell("with open('x') as f:\n    data = f.read()"),
        nbformat.v4.new_markdown_cell("## Part A (1 point): use it\n\nAs in section 2."),
        nbformat.v4.new_code_cell("helper()"),
        nbformat.v4.new_code_cell("print(data)"),
    ]
    assert needs_going_further(nb) == [
        "Part A (1 point): use it: uses ['helper']",
        "Part A (1 point): use it: uses ['data']",
        "Part A (1 point): use it: cites section 2, which is Going further",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_states_the_time_the_rule_gives(path):
    """The top line's times (in all, core path, graded parts, Going further) follow the rule."""
    nb = nbformat.read(path, as_version=4)
    parts = sections(nb)
    rule = {
        "in all": sum(s.minutes() for s in parts),
        "core path": sum(s.minutes() for s in parts if not s.further),
        "graded parts": sum(s.minutes() for s in parts if s.graded),
        "going further": sum(s.minutes() for s in parts if s.further),
    }
    stated = dict(zip(rule, stated_minutes(top_line(nb)), strict=True))
    assert stated["in all"] == stated["core path"] + stated["going further"], top_line(nb)
    for name, minutes in rule.items():
        assert abs(stated[name] - minutes) <= SLACK, f"{name}: stated {stated[name]} min, the rule gives {minutes:.0f}"


def test_start_here_states_the_rule_and_each_notebooks_time():
    """The course map's times are the notebooks' own, its totals add up, and it states the rule."""
    text = nbformat.read(START_HERE, as_version=4)
    course_map = next(cell.source for cell in text.cells if "## The course map" in cell.source)
    rows = [line for line in course_map.splitlines() if re.match(r"\| \d \|", line)]
    assert len(rows) == len(NOTEBOOKS)
    totals = [0, 0]
    for row, path in zip(rows, NOTEBOOKS, strict=True):
        nb = nbformat.read(path, as_version=4)
        in_all, core, *_ = stated_minutes(top_line(nb))
        assert stated_minutes(row.split("|")[-2]) == [in_all, core], row
        totals = [totals[0] + in_all, totals[1] + core]
    assert stated_minutes(course_map.split("takes about", 1)[1].split(".")[0]) == [totals[0]], "the course's total"
    assert f"about {totals[1] // 60} h {totals[1] % 60} min" in course_map, "the core path's total"
    rule = (
        f"{WORDS_PER_MINUTE} words a minute",
        f"{MINUTES_PER_CELL:g} minute a code cell",
        f"{MINUTES_PER_PART:g} minutes a graded part",
        f"{MINUTES_PER_LINE:g} minutes a line",
    )
    missing = [phrase for phrase in rule if phrase not in " ".join(course_map.split())]
    assert missing == [], f"the start-here notebook should state the rule: {missing}"
