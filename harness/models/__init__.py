"""Neural operator models; each owns its size (parameters, FLOPs per sample) as small documented functions.

``harness.models.fno`` holds the FNO (torch); ``harness.models.size`` its size functions (torch-free).
"""
