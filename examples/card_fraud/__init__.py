"""The card-fraud demo: lakeboost's first application.

A config directory (the repo's `conf/`) plus this package, which `application.modules` names:
importing it registers the demo's config section (`demo:`), its `generate` step (synthetic
landing data) and its two custom feature functions. The framework knows none of it.
"""

from card_fraud import features, job  # noqa: F401  (register on import)
