"""Conformance: the properties every policy loss must have, generated per method from the spec.

- :mod:`dgpo_conformance.gentests`: ``dgpo gen-tests``, the generator (imports ``spec`` and
  ``proofs``; writes ``tests/conformance/test_<method>.py``, dgpo_ref's generated defaults and
  docs/methods.md's table);
- :mod:`dgpo_conformance.schema`: Hypothesis profiles, the schema the generated files fill in, the
  spec evaluated per token; :mod:`dgpo_conformance.strategies`: batches and Hypothesis strategies;
  :mod:`dgpo_conformance.adapters`: the implementation under test (dgpo_ref's or verl's calling
  convention); :mod:`dgpo_conformance.properties`: the checks and the property functions the
  generated tests call (``C.<property>``); torch, hypothesis and pytest, never SymPy;
- :mod:`dgpo_conformance.runner`: ``dgpo conformance``, the properties against any loss function.

Nothing in ``spec/``, ``proofs/`` or ``dgpo_ref/`` imports this package. This module itself imports
nothing, so the generator does not need torch or hypothesis to name the properties.
"""

#: the properties, in report order: one generated test ``test_<property>_<method>`` each
PROPERTIES = ("gradient", "value", "continuity", "bounds", "regions", "finiteness", "aggregation",
              "invariance", "dtypes")
#: one line per property (the generated tests' docstrings)
PROPERTY_DOCS = {
    "gradient": "d loss/d log_prob = -A*V/N per token (token-mean), 0 off the mask.",
    "value": "the loss equals -sum(A*J)/N.",
    "continuity": "one-sided limits of V at each breakpoint: equal where continuous, the spec's jump elsewhere.",
    "bounds": "the per-token W lies within the bounds the proofs establish (BOUNDS).",
    "regions": "region/<R> metrics equal the spec's classification.",
    "finiteness": "p in [1e-30, 1], |log r| <= 1e3: no NaN, inf only where A*V overflows; padding gets 0.",
    "aggregation": "micro-batches with the global normalizer sum to the full batch.",
    "invariance": "permuting sequences, or tokens under token-mean, permutes the gradient, keeps the loss.",
    "dtypes": "float32 and bfloat16 inputs agree with float64 within per-dtype tolerances.",
}
