"""qualcode: codebook-driven coding of interview transcripts and literature excerpts."""

import csv

# Python's csv module refuses a field over 131,072 characters by default; one long
# excerpt or segment (or a review note) can be longer, and every reader of qualcode's
# tables would then fail. 2**31 - 1 fits a C long on every platform.
csv.field_size_limit(2**31 - 1)
