"""Judging results: compare two runs, select the best algorithm per layer, report on the paper's claims."""
