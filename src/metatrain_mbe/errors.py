"""The error raised for bad user input (files, options, structures)."""

__all__ = ["MBEInputError"]


class MBEInputError(ValueError):
    """Bad input: the message is one line naming the file, structure and field.

    The command-line interface prints it and exits with a non-zero code.
    """
