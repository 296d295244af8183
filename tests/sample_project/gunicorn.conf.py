# Gunicorn configuration for the shop, following the guide's "Production command".
# (Carries the guide's mistakes on purpose: see MISTAKES.md.)
import multiprocessing

bind = "0.0.0.0:8000"
worker_class = "uvicorn.workers.UvicornWorker"
workers = multiprocessing.cpu_count() * 2 + 1
timeout = 30
keepalive = 5
max_requests = 1000
max_requests_jitter = 50
