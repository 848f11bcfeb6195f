# The support service's app container (the Helm chart in deploy/helm/support-service runs it with
# a Dapr sidecar; the same image serves the knowledge-base MCP server). Build from the
# repository root:  docker build -t support-service:0.1.0 .
#
# Two stages: wheels are built where a compiler is available, the runtime stage installs them
# without one and runs as an unprivileged user.
FROM python:3.11-slim AS wheels
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
# Test, fuzzing, profiling and chart-validation tools stay out of the image.
RUN grep -vE '^(pytest|schemathesis|py-spy|tqdm|kubernetes-validate|playwright|axe-playwright-python)([=<> ]|$)' requirements.txt > requirements.runtime.txt \
 && pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.runtime.txt

FROM python:3.11-slim
# The chart mounts the root filesystem read-only with a writable /tmp: caches go there.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/home/app \
    XDG_CACHE_HOME=/tmp/.cache
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app
COPY --from=wheels /build/requirements.runtime.txt /tmp/requirements.runtime.txt
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels -r /tmp/requirements.runtime.txt \
 && rm /tmp/requirements.runtime.txt
WORKDIR /srv/support
COPY app ./app
COPY setup_sample_data.py env.template ./
USER 10001:10001
EXPOSE 8000
# Dapr's sidecar reaches the app on the pod's loopback; 0.0.0.0 lets the kubelet probe it too.
CMD ["python", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
