"""After grading: each student's feedback pages, a zip of them for an LMS, and ``grades.csv``.

The grader writes a student's feedback in the worker that graded them, right
after autograde (:func:`write_feedback`), so feedback is made in parallel and
only for the students graded in this run. It is what ``nbgrader
generate_feedback`` makes, with the course's configuration (hidden tests
stripped, hints shown: :mod:`.hidehiddentests`): one HTML page per notebook in
``feedback/<student>/<assignment>/``. Beside it goes one zip per student,
``feedback_zips/<assignment>/<student>.zip``, ready to upload to that student
in an LMS.

While the grader runs a student's notebooks, :class:`FeedbackAhead` makes
the pages of the notebooks already graded, in a thread of the worker (which
mostly waits for the kernel meanwhile): the same pages, made by the same
nbgrader converter, one notebook at a time.

:func:`export_grades` then writes ``grades.csv`` as ``nbgrader export`` does,
with the exporter the course configures, in this process: starting
nbgrader's command line for it costs seconds per run.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Any

from .settings import FEEDBACK_ZIPS, GradeSettings

__all__ = ["FeedbackAhead", "export_grades", "feedback_pages", "feedback_zip", "write_feedback"]


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


def _feedback_page(settings: GradeSettings, student: str, config: Any, notebook: str, log: logging.Logger) -> None:
    """Make one notebook's feedback page as ``nbgrader generate_feedback`` does (without its ``chdir``).

    nbgrader's converter changes the process's working folder while it runs,
    which a thread must not do; every path it uses is absolute here.

    Raises:
        Exception: whatever nbgrader raised (the notebook is not graded, say).
    """
    from nbconvert.writers import FilesWriter
    from nbgrader.apps import NbGraderAPI
    from nbgrader.converters import GenerateFeedback
    from traitlets.config import Config

    config = copy.deepcopy(config)
    config.CourseDirectory.notebook_id = notebook
    api = NbGraderAPI(config=config)
    api.coursedir.assignment_id = settings.assignment
    api.coursedir.student_id = student
    feedback = Config()
    feedback.HTMLExporter.template_name = "feedback"  # as NbGraderAPI.generate_feedback sets it
    app = GenerateFeedback(coursedir=api.coursedir, parent=api)
    app.update_config(feedback)
    app.force = True
    app.log = log
    # BaseConverter.start, but for os.chdir(coursedir.root):
    app.init_notebooks()
    app.writer = FilesWriter(parent=app, config=app.config)
    app.exporter = app.exporter_class(parent=app, config=app.config)
    for preprocessor in app.preprocessors:
        app.exporter.register_preprocessor(preprocessor)
    app.convert_notebooks()


class FeedbackAhead:
    """A student's feedback pages, made in a thread as each notebook's grading is done.

    The grader calls :meth:`notebook_started` (through
    :func:`~.resilientexecute.on_notebook_start`) as each notebook begins to
    run: every notebook before it is then graded, saved in the gradebook and
    written, and the thread makes its page while the grader runs the next
    notebook. :meth:`finish` makes the rest, or, if anything went wrong
    (a page failed, or the grader had to grade notebook by notebook), all the
    pages again the usual way (:func:`write_feedback`).
    """

    def __init__(self, settings: GradeSettings, student: str, config: Any) -> None:
        self.settings, self.student = settings, student
        self.config = copy.deepcopy(config)
        self.autograded = settings.root / "autograded" / student / settings.assignment
        self.made: list[str] = []
        self.failed: list[str] = []
        self._queued: set[str] = set()
        self._cleared = False
        self._log = logging.getLogger(f"concurrency_lab.feedback.{student}")
        self._log.propagate = False  # a page's log stays out of the grader's captured autograde log
        if not self._log.handlers:
            self._log.addHandler(logging.NullHandler())
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=f"feedback-{student}", daemon=True)
        self._thread.start()

    def notebook_started(self, folder: str, notebook: str) -> None:
        """Queue the page of each notebook before ``notebook`` in the student's folder (main thread)."""
        if os.path.realpath(folder) != os.path.realpath(self.autograded):
            return
        for path in sorted(self.autograded.glob("*.ipynb")):
            if path.stem < notebook and path.stem not in self._queued:
                self._queued.add(path.stem)
                self._queue.put(path.stem)

    def _page(self, notebook: str) -> None:
        if not self._cleared:  # as generate_feedback --force does first: no page of an earlier run stays
            shutil.rmtree(self.settings.root / "feedback" / self.student / self.settings.assignment, True)
            self._cleared = True
        try:
            _feedback_page(self.settings, self.student, self.config, notebook, self._log)
        except Exception as error:  # made again the usual way in finish()
            self.failed.append(f"{notebook}: {error}")
        else:
            self.made.append(notebook)

    def _work(self) -> None:
        while (notebook := self._queue.get()) is not None:
            self._page(notebook)

    def abandon(self) -> None:
        """Stop the thread once the pages queued are made (grading failed: no zip)."""
        self._queue.put(None)
        self._thread.join()

    def finish(self, graded_in_one_run: bool = True) -> list[str]:
        """Make the pages not made yet, and the zip; notes for the report if that failed.

        Args:
            graded_in_one_run: False if the grader had to grade notebook by
                notebook after nbgrader failed: the pages made ahead may show a
                first run's outputs, so all are made again.
        """
        self.abandon()
        if not graded_in_one_run or self.failed:
            return write_feedback(self.settings, self.student, self.config)
        for path in sorted(self.autograded.glob("*.ipynb")):
            if path.stem not in self.made:
                self._page(path.stem)
        if self.failed:
            return write_feedback(self.settings, self.student, self.config)
        _zip_pages(self.settings, self.student)
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
