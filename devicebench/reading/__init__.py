"""The reading side: stored runs read, judged and shown, with neither torch nor pytest.

A typed, validated view of a run (:mod:`.runs`) and the keys it may store (:mod:`.schema`);
this machine found without torch (:mod:`.host`); the work two results did (:mod:`.work`), what a
benchmark learned (:mod:`.quality`), which machine and software (:mod:`.machines`); verdicts
(:mod:`.verdicts`, :mod:`.compare`), speed-ups (:mod:`.speedup`), targets (:mod:`.targets`),
change points (:mod:`.history`), statistics (:mod:`.stats`); output (:mod:`.render`,
:mod:`.export`, :mod:`.report`, :mod:`.units`), atomic files (:mod:`.files`) and device ids as
data (:mod:`.kinds`). It imports nothing else of devicebench, so every command that only reads
runs answers at once; a test holds that.
"""
