"""`mpls repro`: the paper's experiments as presets, with the paper's numbers beside ours."""
