"""The suite's wiring: devicebench's own pytest plugin (``devicebench/plugin.py``) brings the
options, fixtures and hooks. Installed, the package registers it (the ``pytest11`` entry point
``devicebench.plugin``); run from a checkout without installing (``PYTHONPATH=.``), this loads
it, and pytest loads a plugin of that name only once."""

pytest_plugins = ["devicebench.plugin"]
