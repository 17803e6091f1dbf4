"""Tools for teaching the course: the website of the executed lessons (:mod:`.site`).

Nothing is imported here: the submodules need the optional ``course`` extra (mkdocs,
mkdocs-jupyter, nbclient), which ``import tinysparse`` must not.
"""
