"""
The lab's endpoints: one module per lesson topic, each mounted under its lesson prefix
in ``lab.urls`` (``api.l01`` at ``/l01/``...), so a learner opens one file and sees
everything that lesson measures.

Bodies contain nothing that varies between runs or servers (no timestamps, no process
ids), so the same request is byte-identical under every WSGI and ASGI server. The one
exception is ``/l02/pid``, whose whole point is to say which worker process answered.
"""
