"""der: offline-first Dynamic Expert Routing of LLM experts.

Record every expert under every knowledge-transfer chain once (``der prefetch``), then train,
evaluate and report from the recording (``der pipeline``) in seconds, without a live server.
"""

__version__ = "0.1.0"
