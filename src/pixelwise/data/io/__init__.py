"""File formats: PFM, .flo, 16-bit and palette PNG, .npy, SemanticKITTI .bin/.label, PLY and
MATLAB .mat, plus the checks every reader makes before it opens a file (:mod:`.files`)."""
