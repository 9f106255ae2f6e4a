"""Pruning itself: coupled channel groups, importance, widths and compute targets, the stock rebuild, the summary."""
