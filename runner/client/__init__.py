"""Talking to the service: credentials, connection settings, tokens, the API client, downloads.

Layers, each with one job (httpx-style)::

    InsightsClient (api.py)      one method per catalog operation, paging, export jobs
      └── Transport (transport.py)  one request: auth header, retries, foreign errors converted
            ├── CertificateAuth (auth.py)  discovery, signed client assertion, token cache
            └── Session (session.py)  http.client keep-alive pool, TLS, proxies (environment.py)
    response.py                  Response / StreamResponse: what every layer above reads
    download.py                  streaming, Range resume, .zip check, atomic rename
    connection.py / credentials.py  what the user wrote -> frozen settings and a Credential

Nothing above this package sees a socket, TLS or ``http.client`` exception.
"""
