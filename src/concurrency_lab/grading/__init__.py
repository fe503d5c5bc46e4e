"""The instructor's half of Concurrency Lab: grading a class with nbgrader.

The notebooks never import from here; they use the top-level package. Each
module holds one part of the pipeline:

===========================  ==========================================================
:mod:`.settings`             every default, environment variable name and shared list
:mod:`.resilientexecute`     the autograde executor that survives dead and stuck kernels
:mod:`.hangdump`             the executor's part: where a timed-out cell's threads were
:mod:`.strays`               the executor's part: the processes each cell left running
:mod:`.restorecells`         deleted test cells and read-only cells put back where they sat
:mod:`.hidehiddentests`      the feedback filter: no hidden test in the feedback, hints shown
:mod:`.transport`            kernels on Unix sockets instead of TCP ports
:mod:`.warmkernel`           the next notebook's kernel, started while this one runs
:mod:`.staging`              submissions made gradable; a cell's grade_id; filling answers
:mod:`.sandbox`              each worker's limits and clean-up, and the kernel launcher
:mod:`.grader`               grade one student, grade a class, the summary table
:mod:`.feedback`             each student's feedback pages and their zip; ``grades.csv``
:mod:`.cluster`              grading on a Dask cluster: the worker plugin; a cluster of real processes
:mod:`.cli`                  ``python -m concurrency_lab.grading`` (``make grade``)
:mod:`.bench`                ``python -m concurrency_lab.grading.bench`` (``make grade-bench``)
:mod:`.profile`              ``python -m concurrency_lab.grading.profile``: where a student's seconds go
===========================  ==========================================================

Import from the module that holds a name, e.g.
``from concurrency_lab.grading.resilientexecute import ResilientExecute``.
"""
