FROM python:3.11-slim
WORKDIR /srv/streamlearn
COPY pyproject.toml README.md ./
COPY app app
COPY streams streams
COPY models models
COPY config config
RUN pip install --no-cache-dir . \
 && useradd --system streamlearn \
 && mkdir /models && chown streamlearn /models
USER streamlearn
ENTRYPOINT ["streamlearn"]
CMD ["worker"]
