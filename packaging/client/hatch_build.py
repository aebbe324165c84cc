"""Maps the checkout's client sources into the wheel under speech2face/.

With S2F_CLIENT_METADATA_ONLY=1 (the Makefile's development install) the wheel carries the
package's metadata and the `s2f` script but no modules: the editable full package then serves
every module from the checkout, with no installed copy to shadow a module added since.
"""

import os

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCES = {  # checkout path (relative to the repository root) -> path in the wheel
    "speech2face/__init__.py": "speech2face/__init__.py",
    "engine/__init__.py": "speech2face/engine/__init__.py",
    "engine/contract": "speech2face/engine/contract",
    "engine/client": "speech2face/engine/client",
    "engine/cli": "speech2face/engine/cli",
    "engine/web": "speech2face/engine/web",
}


class ClientSources(BuildHookInterface):
    def initialize(self, version, build_data):
        if os.environ.get("S2F_CLIENT_METADATA_ONLY") == "1":
            return
        root = os.path.normpath(os.path.join(self.root, "..", ".."))
        for source, target in SOURCES.items():
            build_data["force_include"][os.path.join(root, source)] = target
