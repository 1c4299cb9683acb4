"""The sweep: a YAML file's schema (``schema``, with every default) and reading (``spec``, ``yamlload``), the
checks of every point (``checks``), the expansion into jobs with stable ids (``expand``), tuning and trackers
blocks (``tune``, ``trackers``), the plan's summary and warnings (``plan``, ``lint``), the cost estimate
(``estimate``) and re-planning a sweep folder (``replan``). Expansion reaches the other packages only through
their torch-free rules (their ``__init__``), and ``harness.data.parts`` for the data files' headers."""
