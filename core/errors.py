"""Exceptions the core raises; the algorithms turn them into QgsProcessingException."""


class DemError(Exception):
    """Bad input or an impossible request, with a message meant for the user."""


class Cancelled(Exception):
    """The user cancelled the run; partial outputs have been removed."""
