# The vidflow platform image, used by docker-compose.yaml for every Airflow component
# (api-server, scheduler, dag-processor, triggerer, Celery workers), the MLflow server and
# the FastAPI services, so all of them run the same pinned environment (requirements.txt),
# the same ffmpeg and the same Spark jars.
#
#   docker build -t vidflow/platform:latest .

# --- Spark jars ---------------------------------------------------------------------------
# Maven resolves infra/maven/pom.xml (Delta, hadoop-aws, AWS SDK) at build time, exactly as
# `make setup` does locally, and writes the classpath file that VIDFLOW_SPARK_JARS_FILE
# names. A running container never fetches jars over the network.
FROM maven:3.9-eclipse-temurin-17 AS spark-jars
COPY infra/maven/pom.xml /build/pom.xml
RUN mvn -B -q -f /build/pom.xml dependency:build-classpath \
        -Dmaven.repo.local=/opt/vidflow/m2 \
        -Dmdep.outputFile=/opt/vidflow/spark-jars.txt \
        -Dmdep.includeScope=runtime \
    && test -s /opt/vidflow/spark-jars.txt

# --- platform image -------------------------------------------------------------------------
# The full (not slim) Airflow image: it ships the Celery provider and the redis client that
# the CeleryExecutor needs, which requirements.txt (written for the LocalExecutor) lacks.
FROM apache/airflow:3.3.2-python3.11

USER root
# ffmpeg/ffprobe for the media pipeline, from the distribution.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
# Java 17 for spark-submit (pyspark launches the JVM). Copied from the Temurin JRE rather
# than installed with apt, so it does not depend on which Debian release the Airflow image
# is built on (newer releases no longer package OpenJDK 17).
COPY --from=eclipse-temurin:17-jre /opt/java/openjdk /opt/java/openjdk
COPY --from=spark-jars /opt/vidflow /opt/vidflow
ENV JAVA_HOME=/opt/java/openjdk \
    PATH="/opt/java/openjdk/bin:${PATH}" \
    VIDFLOW_SPARK_JARS_FILE=/opt/vidflow/spark-jars.txt \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/vidflow/src/dags \
    PYTHONUNBUFFERED=1
RUN mkdir -p /opt/vidflow/src && chown airflow:0 /opt/vidflow/src

USER airflow
# Dependencies first: this layer is rebuilt only when requirements.txt changes.
# requirements.txt pins apache-airflow==3.3.2, so pip cannot move Airflow itself.
COPY --chown=airflow:0 requirements.txt /opt/vidflow/src/requirements.txt
RUN pip install --no-cache-dir -r /opt/vidflow/src/requirements.txt
COPY --chown=airflow:0 . /opt/vidflow/src
RUN pip install --no-cache-dir --no-deps -e /opt/vidflow/src \
    && python -c "import vidflow.config, airflow.providers.celery.executors.celery_executor" \
    && ffmpeg -hide_banner -version >/dev/null \
    && java -version

WORKDIR /opt/vidflow/src
