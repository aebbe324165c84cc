"""The contracts every side shares: tensor names, FeatureSpec, audio rules, bundle, results.

`speech2face.engine.contract` itself is the serving contract (contract/tensors.py), so that
`contract.AUDIO` reads as it always has; the other contracts are its submodules.
"""

from speech2face.engine.contract.tensors import *  # noqa: F403
