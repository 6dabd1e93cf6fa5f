"""Runs: training loop, run directories, logging, checkpoints, evaluation and plots (torch)."""
