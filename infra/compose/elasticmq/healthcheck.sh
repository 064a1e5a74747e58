#!/bin/sh
# Health check of ElasticMQ: GET /health answers "OK" once the SQS API is up.
# The native image is a bare Debian (or, in older tags, Alpine) with neither curl nor
# wget guaranteed, so use whichever HTTP client exists and fall back to bash's /dev/tcp.
url=http://127.0.0.1:9324/health
if command -v wget >/dev/null 2>&1; then
  wget -q -O - "$url" | grep -q OK
elif command -v curl >/dev/null 2>&1; then
  curl -fsS "$url" | grep -q OK
else
  exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/9324 &&
    printf "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 &&
    grep -q OK <&3'
fi
