"""After grading: each student's feedback pages, a zip of them for an LMS, and ``grades.csv``.

The grader writes a student's feedback in the worker that graded them, right
after autograde (:func:`write_feedback`), so feedback is made in parallel and
only for the students graded in this run. It is what ``nbgrader
generate_feedback`` makes, with the course's configuration (hidden tests
stripped, hints shown: :mod:`.hidehiddentests`): one HTML page per notebook in
``feedback/<student>/<assignment>/``. Beside it goes one zip per student,
``feedback_zips/<assignment>/<student>.zip``, ready to upload to that student
in an LMS.

:func:`export_grades` then writes ``grades.csv`` as ``nbgrader export`` does,
with the exporter the course configures, in this process: starting
nbgrader's command line for it costs seconds per run.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from .settings import FEEDBACK_ZIPS, GradeSettings

__all__ = ["export_grades", "feedback_pages", "feedback_zip", "write_feedback"]


def feedback_pages(settings: GradeSettings, student: str) -> list[Path]:
    """The student's feedback pages for the assignment, sorted (none if not made yet)."""
    return sorted((settings.root / "feedback" / student / settings.assignment).glob("*.html"))


def feedback_zip(settings: GradeSettings, student: str) -> Path:
    """Where the student's zip of feedback pages goes: ``feedback_zips/<assignment>/<student>.zip``."""
    return settings.root / FEEDBACK_ZIPS / settings.assignment / f"{student}.zip"


def _zip_pages(settings: GradeSettings, student: str) -> Path:
    target = feedback_zip(settings, student)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".tmp{os.getpid()}")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
        for page in feedback_pages(settings, student):
            bundle.write(page, f"{settings.assignment}/{page.name}")
    os.replace(partial, target)  # atomic: an LMS upload never picks up half a zip
    return target


def write_feedback(settings: GradeSettings, student: str, config: Any) -> list[str]:
    """Make the student's feedback pages and their zip; notes for the report if that failed.

    Args:
        settings: the course and the assignment.
        student: a student graded already (``autograded/<student>/`` exists).
        config: the nbgrader configuration to make the pages with (the grader's).
    """
    from nbgrader.apps import NbGraderAPI

    from .grader import failure_cause

    done = NbGraderAPI(config=config).generate_feedback(settings.assignment, student, force=True)
    if not done.get("success"):
        return [f"feedback failed: {failure_cause(done)}"]
    _zip_pages(settings, student)
    return []


def export_grades(settings: GradeSettings, config: Any) -> Path:
    """Write every student's scores, as ``nbgrader export`` does (``grades.csv`` by default).

    The exporter is ``ExportApp.plugin_class`` of the course's configuration
    (nbgrader's CSV exporter unless the course names another); a relative
    destination is taken from the course folder.
    """
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    from .grader import gradebook_url

    exporter_class = config.ExportApp.get("plugin_class", CsvExportPlugin)
    if isinstance(exporter_class, str):
        from traitlets.utils.importstring import import_item

        exporter_class = import_item(exporter_class)
    exporter = exporter_class(config=config)
    target = Path(exporter.to or "grades.csv")
    exporter.to = str(target if target.is_absolute() else settings.root / target)
    course_id = config.CourseDirectory.get("course_id", "")
    with Gradebook(gradebook_url(settings, config), course_id) as gradebook:
        exporter.export(gradebook)
    return Path(exporter.to)
