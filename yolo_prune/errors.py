"""The one exception type users see from yolo-prune."""


class PruneError(ValueError):
    """A problem with what was asked of yolo-prune (bad file, option or model); the message says what to do."""
