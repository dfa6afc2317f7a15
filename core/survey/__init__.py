"""Accuracy against survey points: sampling, heights, statistics, report."""
