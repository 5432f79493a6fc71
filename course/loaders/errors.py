"""The one error the loaders raise for bad data or a failed load."""


class LoadError(Exception):
    """A data set cannot be loaded; the message names the file, line and column, or the step.

    Nothing has been changed when it is raised for a data file: every file is checked before
    the first row is loaded.
    """
