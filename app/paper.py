"""Reference settings of the paper that the Learn tab reproduces (DESIGN §8): Wan2.1-1.3B at its canonical
size and the schedules of Table 1 (CFG doubles the forwards of the undistilled rows)."""

PAPER_MODEL = "wan2.1-t2v-1.3b"
PAPER_SIZE = (81, 448, 832)  # frames, height, width
PAPER_SCHEDULES = "0-0-50 cfg, 20-20-10 cfg, 0-0-4, 0-0-2, 2-2-2, 2-2-1, 0-0-1"
