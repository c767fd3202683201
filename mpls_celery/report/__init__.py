"""Plots and tables from run directories (sim or runtime): `mpls report`."""
