"""The lab's stand-in for an external HTTP API (lesson 3): see ``upstream.app``."""
