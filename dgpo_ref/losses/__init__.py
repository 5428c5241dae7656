"""One module per method; each defines ``SPEC``, its row in ``dgpo_ref.LOSSES``."""
