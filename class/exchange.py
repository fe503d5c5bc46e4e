"""nbgrader's exchange for a class on one machine, with submissions and feedback kept private.

nbgrader 0.9.6 hides a submission only by its name: the inbound folder cannot be listed, but the
files in it are world-readable (and each submission folder world-writable), and released feedback
files are readable by anyone who knows their name. Here:

* a submission is readable by its student and the instructor's group only (the inbound folder is
  set-group-ID with the instructor's group, so every file made in it gets that group);
* a feedback file is readable by the instructor and, through a POSIX access control list, by its
  student only;
* collect takes only submissions whose folder is owned by the student they name (a student cannot
  submit in another student's name).

`make class-setup` installs this file as ``concurrency_lab_exchange`` in the class environment and
the class's nbgrader_config.py selects these classes (``c.ExchangeFactory``).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import struct
import tempfile

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.exchange.default.submit import ExchangeSubmit
from nbgrader.utils import notebook_hash

FILE_MODE = 0o640  # the student, and the instructor's group
DIR_MODE = 0o2770


def _owner(path: str) -> str:
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except KeyError:
        return "unknown"


class PrivateSubmit(ExchangeSubmit):
    """``nbgrader submit`` whose copy in the exchange only the student and the instructor can read."""

    def do_copy(self, src, dest, log=None):
        if os.path.dirname(os.path.abspath(dest)) != os.path.abspath(self.inbound_path):
            return super().do_copy(src, dest, log)  # the student's own cache copy
        # copytree would chmod the new folder like the student's (dropping the set-group-ID bit, so
        # timestamp.txt and submission_secret.txt, written next, would get the student's group): copy
        # with nbgrader's rules into a private staging folder, then only file contents into the exchange.
        with tempfile.TemporaryDirectory() as staging:
            super().do_copy(src, os.path.join(staging, "copy"), log)
            os.mkdir(dest, 0o700)  # inherits the inbound folder's group and set-group-ID bit
            for folder, dirs, files in os.walk(os.path.join(staging, "copy")):
                target = os.path.join(dest, os.path.relpath(folder, os.path.join(staging, "copy")))
                for name in dirs:
                    os.mkdir(os.path.join(target, name), 0o700)
                for name in files:
                    shutil.copyfile(os.path.join(folder, name), os.path.join(target, name))

    def set_perms(self, dest, fileperms, dirperms):
        super().set_perms(dest, FILE_MODE, DIR_MODE)

    def copy_files(self):
        super().copy_files()
        # nbgrader opens the submission folder to everyone (0777) after set_perms; close it again.
        os.chmod(os.path.join(self.inbound_path, self.assignment_filename), DIR_MODE)


def _acl_read_for(uid: int) -> bytes:
    """A POSIX ACL (the system.posix_acl_access format): owner rw, one user r, group and others none."""
    entries = [
        (0x01, 6, 0xFFFFFFFF),  # ACL_USER_OBJ rw-
        (0x02, 4, uid),  # ACL_USER r--
        (0x04, 0, 0xFFFFFFFF),  # ACL_GROUP_OBJ ---
        (0x10, 4, 0xFFFFFFFF),  # ACL_MASK r--
        (0x20, 0, 0xFFFFFFFF),  # ACL_OTHER ---
    ]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


class PrivateReleaseFeedback(ExchangeReleaseFeedback):
    """``nbgrader release_feedback`` whose files only their student (and the instructor) can read."""

    def copy_files(self):
        excluded = set(self.coursedir.student_id_exclude.split(",")) if self.coursedir.student_id_exclude else set()
        pattern = re.escape(os.path.sep).join(
            [
                self.coursedir.format_path(
                    self.coursedir.feedback_directory, "(?P<student_id>.*)", self.coursedir.assignment_id, escape=True
                ),
                "(?P<notebook_id>.*).html",
            ]
        )
        for html_file in glob.glob(os.path.join(self.src_path, "*.html")):
            found = re.match(pattern, html_file)
            if found is None:
                self.log.error("Could not match '%s' with regexp '%s'", html_file, pattern)
                continue
            student_id, notebook_id = found.group("student_id"), found.group("notebook_id")
            if student_id in excluded:
                continue
            try:
                uid = pwd.getpwnam(student_id).pw_uid
            except KeyError:
                self.log.error("No account %s: feedback %s not released", student_id, html_file)
                continue
            folder = os.path.dirname(html_file)
            with open(os.path.join(folder, "submission_secret.txt")) as fh:
                secret = fh.read()
            checksum = notebook_hash(secret=secret, notebook_id=notebook_id)
            tmp = os.path.join(self.dest_path, f"{checksum}-tmp.html")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(html_file, "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(tmp, 0o600)  # also when the file was already there
            os.setxattr(tmp, "system.posix_acl_access", _acl_read_for(uid))
            os.replace(tmp, os.path.join(self.dest_path, f"{checksum}.html"))
            self.log.info(
                "Released feedback for '%s' on '%s/%s/%s'",
                student_id,
                self.coursedir.course_id,
                self.coursedir.assignment_id,
                notebook_id,
            )


class OwnerCheckedCollect(ExchangeCollect):
    """``nbgrader collect`` that ignores a submission made in another student's name."""

    def _sort_by_timestamp(self, records):
        def key(record):
            genuine = _owner(os.path.join(self.inbound_path, record["filename"])) == record["username"]
            return genuine, record["timestamp"]

        return sorted(records, key=key, reverse=True)

    def copy_files(self):
        kept = []
        for record in self.src_records:
            owner = _owner(os.path.join(self.inbound_path, record["filename"]))
            if owner == record["username"]:
                kept.append(record)
            else:
                self.log.warning(
                    "Ignored %s: it names %s but %s made it", record["filename"], record["username"], owner
                )
        self.src_records = kept
        super().copy_files()
