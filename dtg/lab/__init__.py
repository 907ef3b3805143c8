"""Experiments a user runs to compare training choices: the optimizer study (`dtg lab optimizers`)."""
