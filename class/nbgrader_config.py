"""nbgrader configuration that every class member loads (JUPYTER_CONFIG_PATH; see classctl.py).

`make class-setup` fills in the exchange root and the course id and installs this file as
<class root>/etc/jupyter/nbgrader_config.py. The instructor's course folder has its own
nbgrader_config.py (the project's), loaded after this one.
"""

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "@COURSE_ID@"
c.Exchange.root = "@EXCHANGE@"
# Assignments are fetched to ~/day3 (not ~/<course>/day3).
c.Exchange.path_includes_course = False

# Submissions and feedback readable only by their student and the instructor (class/exchange.py).
c.ExchangeFactory.submit = "concurrency_lab_exchange.PrivateSubmit"
c.ExchangeFactory.release_feedback = "concurrency_lab_exchange.PrivateReleaseFeedback"
c.ExchangeFactory.collect = "concurrency_lab_exchange.OwnerCheckedCollect"
