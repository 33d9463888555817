# syntax=docker/dockerfile:1
# Build: docker build -t scd-monitor .
# Run:   docker run -p 9464:9464 -v $PWD/data:/data -v $PWD/exports:/exports scd-monitor

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --no-cache-dir --upgrade pip \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN groupadd --system scd && useradd --system --gid scd --home-dir /data scd \
 && mkdir -p /data /exports /etc/scd-monitor && chown scd:scd /data /exports
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/catalog.example.yaml /etc/scd-monitor/catalog.yaml
ENV SCD_MONITOR_CATALOG=/etc/scd-monitor/catalog.yaml \
    SCD_MONITOR_DATABASE_URL=sqlite:////data/scd-monitor.db \
    SCD_MONITOR_EXPORT_DIR=/exports \
    SCD_MONITOR_SPOOL_DIR=/data/spool \
    SCD_MONITOR_LISTEN=0.0.0.0:9464 \
    SCD_MONITOR_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
USER scd
WORKDIR /data
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["scd-monitor"]
CMD ["run"]
