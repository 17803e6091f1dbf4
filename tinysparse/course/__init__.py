"""The course kit: student editions of the lessons and their grading (grading.py), and
the course website of the executed lessons (site.py).

Nothing heavy is imported here: ``tinysparse.cli`` reads :data:`LESSONS` on every call,
while nbgrader, Jupyter and mkdocs are needed only by the commands that use them.
"""

from pathlib import Path

#: the committed lessons (instructor editions: solutions and hidden tests included)
LESSONS = Path(__file__).resolve().parent.parent.parent / "lessons"
