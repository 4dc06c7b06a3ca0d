"""The measuring side: torch lives here, pytest does not.

Devices and their backends (:mod:`.backends`, :mod:`.devices`), the one place that times and
synchronizes (:mod:`.timing`), the GPU's sensors (:mod:`.sensors`), ``torch.compile``
(:mod:`.compiling`), numeric settings (:mod:`.precision`), the machine a run is stored with
(:mod:`.fingerprint`), DDP ranks (:mod:`.distributed`), the images (:mod:`.data`), torchrun's
environment (:mod:`.env`) and the sizes and round budgets (:mod:`.config`). It may import the
reading side (the stored keys, device ids); never the pytest side.
"""
